package idn

import "testing"

func TestASCII(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"example.com", "example.com"},
		{"_sip._tcp.example.com", "_sip._tcp.example.com"}, // refused by the lookup profile, so left alone
		{"Example.COM.", "Example.COM."},                   // ASCII is left exactly as written
		{"bücher.example", "xn--bcher-kva.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"bad\u00a0name.example", "bad\u00a0name.example"}, // not a valid IDN: left as it is, for the lookup to fail
	} {
		if got := ASCII(tc.name); got != tc.want {
			t.Errorf("ASCII(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
