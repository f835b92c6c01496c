package collector

import (
	"net/url"

	"github.com/sonde-exporter/sonde/internal/redact"
)

// shownURL is a /probe URL as the main log shows it: the password of its
// target masked, and cut if very long.
func shownURL(u *url.URL) string {
	q := u.Query()
	masked := false
	for i, t := range q["target"] {
		if m := redact.Password(t); m != t {
			q["target"][i], masked = m, true
		}
	}
	if !masked {
		return redact.Cut(u.String(), redact.MaxValue)
	}
	c := *u
	c.RawQuery = q.Encode()
	return redact.Cut(c.String(), redact.MaxValue)
}
