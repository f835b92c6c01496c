// Package redact makes text that came from a scrape or from a target fit
// to be shown: the password of a URL masked, and a value too long for a log
// line cut. Both the collector and the probers use it, so that a target
// reads the same in the pages, the logs, the traces and the error messages.
package redact

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Mask replaces a password, as url.URL.Redacted writes it.
const Mask = "xxxxx"

// Password returns s with the password of its userinfo masked. It works on
// the text as written, not on a parsed URL, so that it masks what url.Parse
// refuses (an invalid escape in the path), what has no host
// (http://user:pass@/x) and what has no scheme (user:pass@host:port/x, to
// which the http prober adds http:// and sends as basic auth). The
// userinfo is what comes before the last @ of the authority, which starts
// after the scheme's // (or at the start of s) and ends at the first /, ?
// or #; its password, what follows its first colon. A username without a
// password is kept, as Redacted keeps it.
func Password(s string) string {
	if strings.IndexByte(s, '@') < 0 {
		return s // the common case: nothing to look for
	}
	from, to, ok := passwordAt(s)
	if !ok {
		return s
	}
	return s[:from] + Mask + s[to:]
}

// passwordAt returns where the password of s's userinfo is.
func passwordAt(s string) (from, to int, ok bool) {
	start := authorityStart(s)
	authority := s[start:]
	if end := strings.IndexAny(authority, "/?#"); end >= 0 {
		authority = authority[:end]
	}
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return 0, 0, false
	}
	colon := strings.IndexByte(authority[:at], ':')
	if colon < 0 {
		return 0, 0, false
	}
	return start + colon + 1, start + at, true
}

// PasswordIn returns text, a message about target, with the password of
// target's userinfo masked wherever it appears: in target, as written or
// quoted (%q), and alone, in a fragment of target the message quotes (a
// host or a port cut out of it).
func PasswordIn(text, target string) string {
	from, to, ok := passwordAt(target)
	if !ok || from == to {
		return text
	}
	masked := target[:from] + Mask + target[to:]
	text = replaceQuoted(text, target, masked)
	return replaceQuoted(text, target[from:to], Mask)
}

// replaceQuoted replaces old with new in text, both as they are and as
// strconv.Quote writes them inside its quotes.
func replaceQuoted(text, old, new string) string {
	text = strings.ReplaceAll(text, old, new)
	if q := strconv.Quote(old); q[1:len(q)-1] != old {
		text = strings.ReplaceAll(text, q[1:len(q)-1], new)
	}
	return text
}

// authorityStart is where the authority of s begins: after "scheme://" or
// a leading "//", else at its start. A // further on, in a path, does not
// count: the part before it is not a scheme.
func authorityStart(s string) int {
	i := strings.Index(s, "//")
	if i < 0 {
		return 0
	}
	if i == 0 || s[i-1] == ':' && isScheme(s[:i-1]) {
		return i + 2
	}
	return 0
}

// isScheme reports whether s is a URL scheme: a letter, then letters,
// digits, +, - or . (RFC 3986, section 3.1).
func isScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// MaxValue is the most of one value a log line shows, and of a target or
// an error message the history keeps. It is well above the values probes
// log in practice (URLs, which browsers and CDNs advise keeping under
// 2 KiB; error messages; DNS records), and small enough that a hostile
// answer, a megabyte Location header met on every redirect, costs each
// line and each history entry a few KiB.
const MaxValue = 4 << 10

// Cut returns s if it is at most limit bytes long, else its start (never
// a partly cut character) followed by a marker that says it was cut and
// how long it was, "…[cut: 921600 bytes]", in limit bytes at most: so a
// value cut once is left alone by a second cut. The result never shares
// memory with a cut s, so keeping it does not keep s.
func Cut(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	marker := "…[cut: " + strconv.Itoa(len(s)) + " bytes]"
	n := max(0, limit-len(marker))
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + marker
}

// Target is a target, or a URL, as sonde shows it: its password masked
// and, if very long, cut.
func Target(s string) string { return Cut(Password(s), MaxValue) }
