package config

import (
	"net/netip"
	"slices"
	"testing"
)

// The targets block: what loads, what is refused with its line, and what
// each kind of rule matches.

func TestTargetsLoad(t *testing.T) {
	cfg := mustLoad(t, yml(
		"modules:",
		"  web:",
		"    prober: http",
		"    targets:",
		"      allow: ['*.example.com', 10.0.0.0/8, 'fd00::/8', 192.0.2.7, '2001:db8::1']",
		"      deny: ['db-?.example.com', 10.1.0.0/16]",
		"      schemes: [https]",
		"  ws:",
		"    prober: websocket",
		"    targets: {schemes: [wss]}",
		"  socket:",
		"    prober: unix",
		"    targets:",
		"      allow: ['/run/app/*.sock']",
		"      deny: [/run/app/admin.sock]",
		"  plain:",
		"    prober: tcp",
	))
	web := cfg.Modules["web"].Targets
	assertEqual(t, "allow", web.Allow, []string{"*.example.com", "10.0.0.0/8", "fd00::/8", "192.0.2.7", "2001:db8::1"})
	assertEqual(t, "deny", web.Deny, []string{"db-?.example.com", "10.1.0.0/16"})
	assertEqual(t, "schemes", web.Schemes, []string{"https"})
	assertEqual(t, "websocket schemes", cfg.Modules["ws"].Targets.Schemes, []string{"wss"})
	assertEqual(t, "unix allow", cfg.Modules["socket"].Targets.Allow, []string{"/run/app/*.sock"})
	assertEqual(t, "unset", cfg.Modules["plain"].Targets.IsSet(), false)
}

func TestTargetsErrors(t *testing.T) {
	targets := func(prober string, lines ...string) string {
		return module(append([]string{"    prober: " + prober, "    targets:"}, lines...)...)
	}
	runErrorCases(t, []errorCase{
		{name: "prefix too long", src: targets("http", "      allow: [10.0.0.0/33]"),
			want: `line 5: module "m": targets.allow[0]: "10.0.0.0/33" is not a CIDR (prefix length out of range)`},
		{name: "bits past the prefix", src: targets("tcp", "      deny:", "        - 10.0.0.0/8", "        - 10.0.0.1/8"),
			want: `line 7: module "m": targets.deny[1]: "10.0.0.1/8" has bits set past its /8; write 10.0.0.0/8 for the range, or /32 for the one address`},
		{name: "IPv4 field over 255", src: targets("icmp", "      deny: [300.1.1.1]"),
			want: `line 5: module "m": targets.deny[0]: "300.1.1.1" is not an IP address`},
		{name: "bad IPv6", src: targets("grpc", "      deny: ['fd00:::1']"),
			want: `line 5: module "m": targets.deny[0]: "fd00:::1" is not an IP address`},
		{name: "an address written as a pattern", src: targets("http", "      allow: ['10.0.0.*']"),
			want: `line 5: module "m": targets.allow[0]: "10.0.0.*" looks like an address pattern, but host name patterns match names only; write a CIDR such as 10.0.0.0/24`},
		{name: "a character no host has", src: targets("http", "      deny: ['db!.internal']"),
			want: `line 5: module "m": targets.deny[0]: "db!.internal" is not a host name pattern: "!" is not allowed`},
		{name: "a character class", src: targets("http", "      deny: ['db[12].internal']"),
			want: `line 5: module "m": targets.deny[0]: "db[12].internal" is not a host name pattern: "[" is not allowed`},
		{name: "leading dot", src: targets("tcp", "      deny: ['.example.com']"),
			want: `line 5: module "m": targets.deny[0]: ".example.com" is not a host name pattern: it has an empty label`},
		{name: "double dot", src: targets("grpc", "      deny: ['example..com']"),
			want: `line 5: module "m": targets.deny[0]: "example..com" is not a host name pattern: it has an empty label`},
		{name: "a URL", src: targets("http", "      allow: ['https://example.com']"),
			want: `line 5: module "m": targets.allow[0]: "https://example.com" is a URL; write only its host here, and list schemes in targets.schemes`},
		{name: "a port", src: targets("tcp", "      allow: ['example.com:443']"),
			want: `line 5: module "m": targets.allow[0]: "example.com:443" has a port; rules match hosts and addresses on any port`},
		{name: "a zone", src: targets("icmp", "      deny: ['fe80::1%eth0']"),
			want: `line 5: module "m": targets.deny[0]: "fe80::1%eth0" has a zone; rules match addresses without their zone, write fe80::1`},
		{name: "IPv4-mapped address", src: targets("tcp", "      deny: ['::ffff:10.0.0.1']"),
			want: `line 5: module "m": targets.deny[0]: "::ffff:10.0.0.1" is an IPv4 address in IPv6 form; write 10.0.0.1`},
		{name: "IPv4-mapped range", src: targets("tcp", "      deny: ['::ffff:10.0.0.0/104']"),
			want: `line 5: module "m": targets.deny[0]: "::ffff:10.0.0.0/104" is an IPv4 range in IPv6 form`},
		{name: "empty entry", src: targets("http", "      deny: ['']"),
			want: `line 5: module "m": targets.deny[0]: an empty entry matches nothing; remove it`},
		{name: "a path rule in an http module", src: targets("http", "      allow: [/run/app.sock]"),
			want: `line 5: module "m": targets.allow[0]: "/run/app.sock" is a socket path pattern, which only unix modules use`},
		{name: "an address rule in a unix module", src: targets("unix", "      allow: [10.0.0.0/8]"),
			want: `line 5: module "m": targets.allow[0]: "10.0.0.0/8" matches hosts or addresses, but a unix module's targets are socket paths`},
		{name: "a host rule in a unix module", src: targets("unix", "      deny: [app.internal]"),
			want: `line 5: module "m": targets.deny[0]: "app.internal" matches hosts or addresses, but a unix module's targets are socket paths`},
		{name: "a bad path pattern", src: targets("unix", "      allow: ['/run/[a.sock']"),
			want: `line 5: module "m": targets.allow[0]: "/run/[a.sock" is not a valid path pattern (syntax error in pattern)`},
		{name: "schemes of a tcp module", src: targets("tcp", "      schemes: [https]"),
			want: `line 5: module "m": targets.schemes[0]: a tcp target has no scheme; only http and websocket modules can list schemes`},
		{name: "a scheme http cannot have", src: targets("http", "      schemes: [https, ftp]"),
			want: `line 5: module "m": targets.schemes[1]: "ftp" is not a scheme of the http prober; use http or https`},
		{name: "a scheme in capitals", src: targets("http", "      schemes: [HTTPS]"),
			want: `line 5: module "m": targets.schemes[0]: "HTTPS" is not a scheme of the http prober; use http or https`},
		{name: "https for a websocket", src: targets("websocket", "      schemes: [https]"),
			want: `line 5: module "m": targets.schemes[0]: "https" is not a websocket scheme; use ws or wss (http:// and https:// targets count as ws:// and wss://)`},
		{name: "misspelt key", src: targets("http", "      allowed: ['*.example.com']"),
			want: `line 5: module "m": targets: unknown field "allowed" (did you mean "allow"?)`},
		{name: "unknown key", src: targets("http", "      private: false"),
			want: `line 5: module "m": targets: unknown field "private"; known fields are: allow, deny, schemes`},
	})
}

// Every entry a user may write parses, with the kind it reads as.
func TestParseTargetRuleKinds(t *testing.T) {
	for _, tc := range []struct {
		prober, entry string
		kind          RuleKind
		prefix        string // AddressRule only
	}{
		{"http", "10.0.0.0/8", AddressRule, "10.0.0.0/8"},
		{"http", "fd00::/8", AddressRule, "fd00::/8"},
		{"http", "192.0.2.7", AddressRule, "192.0.2.7/32"},
		{"http", "2001:db8::1", AddressRule, "2001:db8::1/128"},
		{"http", "::", AddressRule, "::/128"},
		{"http", "*.example.com", HostRule, ""},
		{"http", "db-?.internal", HostRule, ""},
		{"http", "localhost", HostRule, ""},
		{"http", "*", HostRule, ""},
		{"http", "_sip._tcp.example.com", HostRule, ""},
		{"http", "1.example.com", HostRule, ""},
		{"unix", "/run/app/*.sock", PathRule, ""},
		{"unix", "/run/app.sock", PathRule, ""},
	} {
		r, err := ParseTargetRule(tc.prober, tc.entry)
		if err != nil {
			t.Errorf("%s %q: %v", tc.prober, tc.entry, err)
			continue
		}
		if r.Kind != tc.kind {
			t.Errorf("%q is of kind %d, want %d", tc.entry, r.Kind, tc.kind)
		}
		if tc.prefix != "" && r.Prefix != netip.MustParsePrefix(tc.prefix) {
			t.Errorf("%q is the range %s, want %s", tc.entry, r.Prefix, tc.prefix)
		}
	}
}

// What each kind of rule matches, as docs/configuration.md describes it.
// Names are given in the form the prober compares: lower case, no
// trailing dot.
func TestTargetRuleMatches(t *testing.T) {
	for _, tc := range []struct {
		entry string
		in    string
		want  bool
	}{
		// Host patterns: one label per label, '*' and '?' stop at dots.
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "a.b.example.com", false},
		{"*.*.example.com", "a.b.example.com", true},
		{"*.Example.COM", "www.example.com", true}, // patterns are case-insensitive
		{"example.com", "example.com", true},
		{"example.com.", "example.com", true}, // a fully qualified pattern
		{"example.com", "www.example.com", false},
		{"db-?.internal", "db-1.internal", true},
		{"db-?.internal", "db-12.internal", false},
		{"db-?.internal", "db-.internal", false},
		{"db-*.internal", "db-.internal", true}, // '*' may match nothing
		{"db-*.internal", "db-primary.internal", true},
		{"*", "localhost", true},
		{"*", "localhost.localdomain", false},
		{"*.example.com", "10.0.0.1", false},
		// Addresses and ranges.
		{"10.0.0.0/8", "10.255.0.1", true},
		{"10.0.0.0/8", "11.0.0.1", false},
		{"192.0.2.7", "192.0.2.7", true},
		{"192.0.2.7", "192.0.2.8", false},
		{"fd00::/8", "fd12::1", true},
		{"fd00::/8", "fe80::1", false},
		{"10.0.0.0/8", "::ffff:10.0.0.1", false}, // the prober unmaps first
		// Socket paths: '*' stops at '/'.
		{"/run/app/*.sock", "/run/app/web.sock", true},
		{"/run/app/*.sock", "/run/app/sub/web.sock", false},
		{"/run/app/*.sock", "/run/other.sock", false},
		{"/run/app.sock", "/run/app.sock", true},
	} {
		prober := "http"
		if tc.entry[0] == '/' {
			prober = "unix"
		}
		r, err := ParseTargetRule(prober, tc.entry)
		if err != nil {
			t.Fatalf("%q: %v", tc.entry, err)
		}
		var got bool
		switch r.Kind {
		case HostRule:
			got = r.MatchesHost(tc.in)
		case PathRule:
			got = r.MatchesPath(tc.in)
		case AddressRule:
			a, err := netip.ParseAddr(tc.in)
			got = err == nil && r.MatchesAddr(a)
		}
		if got != tc.want {
			t.Errorf("%q matching %q = %v, want %v", tc.entry, tc.in, got, tc.want)
		}
	}
}

// A rule of one kind never matches what another kind would.
func TestTargetRuleKindsDoNotMix(t *testing.T) {
	host, _ := ParseTargetRule("http", "*")
	cidr, _ := ParseTargetRule("http", "0.0.0.0/0")
	path, _ := ParseTargetRule("unix", "/*")
	if host.MatchesAddr(netip.MustParseAddr("10.0.0.1")) || host.MatchesPath("/x") {
		t.Error("a host rule matched an address or a path")
	}
	if cidr.MatchesHost("example") || cidr.MatchesPath("/x") {
		t.Error("an address rule matched a name or a path")
	}
	if path.MatchesHost("x") || path.MatchesAddr(netip.MustParseAddr("10.0.0.1")) {
		t.Error("a path rule matched a name or an address")
	}
}

// /config shows the block, and what it shows loads again.
func TestTargetsRoundTrip(t *testing.T) {
	src := module("    prober: http", "    targets:", "      allow: ['*.example.com', 10.0.0.0/8]", "      deny: [10.1.0.0/16]", "      schemes: [https]")
	want := mustModule(t, src, "m").Targets
	out, err := Marshal(mustLoad(t, src))
	if err != nil {
		t.Fatal(err)
	}
	got := mustModule(t, string(out), "m").Targets
	if !slices.Equal(got.Allow, want.Allow) || !slices.Equal(got.Deny, want.Deny) || !slices.Equal(got.Schemes, want.Schemes) {
		t.Errorf("after a round trip through Marshal: %+v, want %+v\n%s", got, want, out)
	}
}

// The schema knows the block: an editor accepts it and flags a scheme no
// prober has, or a misspelt key.
func TestSchemaKnowsTargets(t *testing.T) {
	s := compileSchema(t)
	good := module("    prober: http", "    targets: {allow: ['*.example.com'], deny: [10.0.0.0/8], schemes: [https]}")
	if err := s.Validate(yamlToJSON(t, good)); err != nil {
		t.Errorf("the schema rejects a targets block sonde accepts: %v", err)
	}
	for _, bad := range []string{
		module("    prober: http", "    targets: {schemes: [ftp]}"),
		module("    prober: http", "    targets: {allowed: [example.com]}"),
	} {
		if _, err := Load([]byte(bad)); err == nil {
			t.Errorf("sonde accepts\n%s", bad)
		}
		if err := s.Validate(yamlToJSON(t, bad)); err == nil {
			t.Errorf("the schema accepts\n%s", bad)
		}
	}
}
