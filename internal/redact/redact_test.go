package redact

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPassword(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://alice:PW@127.0.0.1:8080/x", "http://alice:xxxxx@127.0.0.1:8080/x"},
		{"alice:PW@127.0.0.1:8080/x", "alice:xxxxx@127.0.0.1:8080/x"}, // the http prober adds http://
		{"http://alice:PW@host/%zz", "http://alice:xxxxx@host/%zz"},   // url.Parse refuses it
		{"http://alice:PW@/x", "http://alice:xxxxx@/x"},               // no host
		{"https://alice:p@ss@host/", "https://alice:xxxxx@host/"},     // the last @ ends the userinfo
		{"//alice:PW@host/x", "//alice:xxxxx@host/x"},
		{"alice:PW@host", "alice:xxxxx@host"},
		{"http://alice:PW@host?q=1", "http://alice:xxxxx@host?q=1"},
		{"http://alice:PW@host#f", "http://alice:xxxxx@host#f"},
		{"ws://alice:PW@host:80", "ws://alice:xxxxx@host:80"},
		{"http://alice:@host/", "http://alice:xxxxx@host/"}, // an empty password, as Redacted masks it
		{"alice:PW@host:80/a//b", "alice:xxxxx@host:80/a//b"},
		// Nothing to mask.
		{"http://alice@host/", "http://alice@host/"},
		{"http://host/users/@me", "http://host/users/@me"},
		{"http://host/a:b@c", "http://host/a:b@c"},
		{"host:80/x?mail=a:b@c", "host:80/x?mail=a:b@c"},
		{"example.com:443", "example.com:443"},
		{"[2001:db8::1]:53", "[2001:db8::1]:53"},
		{"", ""},
		{"@", "@"},
	}
	for _, tc := range tests {
		if got := Password(tc.in); got != tc.want {
			t.Errorf("Password(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Where url.Parse reads a password, Password masks the same one, as
// Redacted does.
func TestPasswordAgreesWithRedacted(t *testing.T) {
	for _, s := range []string{
		"http://alice:PW@host/x", "https://a%20b:p%40w@host:443/?q#f", "http://alice:p:w@host",
		"ftp://u:p@h", "http://alice:PW@[::1]:80/", "http://u:p@h/x@y",
	} {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := Password(s); got != u.Redacted() {
			t.Errorf("Password(%q) = %q; Redacted: %q", s, got, u.Redacted())
		}
	}
}

func TestPasswordIn(t *testing.T) {
	tests := []struct{ text, target, want string }{
		{`target "alice:PW@host" needs a port`, "alice:PW@host", `target "alice:xxxxx@host" needs a port`},
		{`target "alice:PW@host": "PW@host" is not a port number`, "alice:PW@host", `target "alice:xxxxx@host": "xxxxx@host" is not a port number`},
		{`parse "http://a:P\"W\x01@h/%zz": invalid`, "http://a:P\"W\x01@h/%zz", `parse "http://a:xxxxx@h/%zz": invalid`},
		{"no password here", "http://alice@host", "no password here"},
		{"empty password", "http://alice:@host", "empty password"},
	}
	for _, tc := range tests {
		if got := PasswordIn(tc.text, tc.target); got != tc.want {
			t.Errorf("PasswordIn(%q, %q) = %q, want %q", tc.text, tc.target, got, tc.want)
		}
	}
}

func TestCut(t *testing.T) {
	if got := Cut("short", 10); got != "short" {
		t.Errorf("Cut(short) = %q", got)
	}
	long := strings.Repeat("a", 921600)
	got := Cut(long, MaxValue)
	marker := "…[cut: 921600 bytes]"
	if want := strings.Repeat("a", MaxValue-len(marker)) + marker; got != want {
		t.Errorf("Cut(921600 bytes) = %d bytes, ending %q", len(got), got[len(got)-30:])
	}
	// A character is never split: 23 bytes leave room for 2.5 of these
	// 2-byte ones before the marker.
	s := strings.Repeat("é", 20)
	if got := Cut(s, 23); !utf8.ValidString(got) || got != "éé…[cut: 40 bytes]" {
		t.Errorf("Cut(%q, 23) = %q", s, got)
	}
	// A value cut once is left as it is.
	if again := Cut(got, MaxValue); again != got {
		t.Errorf("Cut again: %q", again[len(again)-40:])
	}
}

func TestTarget(t *testing.T) {
	target := "http://alice:PW@host/" + strings.Repeat("x", 1<<20)
	got := Target(target)
	if strings.Contains(got, "PW") || len(got) > MaxValue || !strings.HasSuffix(got, "[cut: 1048600 bytes]") { // the length once masked
		t.Errorf("Target(1 MiB URL) = %d bytes: %q...%q", len(got), got[:40], got[len(got)-40:])
	}
}

// The common case costs nothing.
func TestPasswordDoesNotAllocateWithoutUserinfo(t *testing.T) {
	s := "https://example.com:443/health?x=1"
	if n := testing.AllocsPerRun(100, func() { _ = Target(s) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
