// Package idn gives an internationalised host name the ASCII form DNS
// carries (xn--...). Both the target policy, which compares names as they
// are looked up, and the probers that look names up or send them need it.
package idn

import (
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// ASCII returns an internationalised name (a query_name, a target's host)
// in the ASCII form DNS carries (xn--...), as blackbox does. ASCII names
// are left exactly as written: the IDNA lookup profile would refuse names
// such as _sip._tcp.
func ASCII(name string) string {
	if isASCII(name) {
		return name
	}
	if ascii, err := idna.Lookup.ToASCII(name); err == nil {
		return ascii
	}
	return name
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
