package policy

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/sonde-exporter/sonde/config"
)

// newTarget makes the policy of a module of prober with targets, failing
// the test on a rule it refuses.
func newTarget(t *testing.T, prober string, targets config.Targets, global ...DenyList) *Target {
	t.Helper()
	p, err := New("m", &config.Module{Prober: prober, Targets: targets}, global)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// refusal is what a check of the policy said: "" when it allowed the
// target, else a part of its message.
func refusal(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestTargetDecides(t *testing.T) {
	private := DenyList{By: "--probe.deny-private", Ranges: PrivateRanges()}
	for _, tc := range []struct {
		name    string
		targets config.Targets
		global  []DenyList
		host    string
		ip      string // the address host resolved to; "" checks the name alone
		want    string // a part of the refusal; "" for none
	}{
		{name: "denied name", targets: config.Targets{Deny: []string{"*.internal"}}, host: "db.internal", want: `targets.deny entry "*.internal"`},
		{name: "denied name, other spelling", targets: config.Targets{Deny: []string{"*.internal"}}, host: "DB.Internal.", want: "targets.deny"},
		{name: "name not allowed", targets: config.Targets{Allow: []string{"*.example.com"}}, host: "example.org", want: "matches no targets.allow entry"},
		{name: "name allowed", targets: config.Targets{Allow: []string{"*.example.com"}}, host: "www.example.com"},
		{name: "name left to its address", targets: config.Targets{Allow: []string{"192.0.2.0/24"}}, host: "example.org"},
		{name: "address allowed", targets: config.Targets{Allow: []string{"192.0.2.0/24"}}, host: "example.org", ip: "192.0.2.7"},
		{name: "address not allowed", targets: config.Targets{Allow: []string{"192.0.2.0/24"}}, host: "example.org", ip: "198.51.100.1", want: `address 198.51.100.1 of "example.org" matches no targets.allow entry`},
		{name: "denied address", targets: config.Targets{Deny: []string{"10.0.0.0/8"}}, host: "example.org", ip: "10.1.2.3", want: `targets.deny entry "10.0.0.0/8"`},
		{name: "global list before allow", targets: config.Targets{Allow: []string{"127.0.0.0/8"}}, global: []DenyList{private}, host: "127.0.0.1", ip: "127.0.0.1", want: "--probe.deny-private (loopback)"},
		{name: "what the unspecified address reaches", global: []DenyList{private}, host: "0.0.0.0", ip: "0.0.0.0", want: "denied by --probe.deny-private (unspecified)"},
		{name: "what a mapped address reaches", targets: config.Targets{Deny: []string{"127.0.0.1"}}, host: "::ffff:0.0.0.0", ip: "::ffff:0.0.0.0", want: "(which reaches 127.0.0.1)"},
		{name: "public address, global list", global: []DenyList{private}, host: "example.org", ip: "192.0.2.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTarget(t, "http", tc.targets, tc.global...)
			err := p.RefuseName(tc.host)
			if err == nil && tc.ip != "" {
				err = p.RefuseAddress(tc.host, net.ParseIP(tc.ip))
			}
			got := refusal(err)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("refused %q, want %q", got, tc.want)
			}
		})
	}
}

// A nil policy is a module without rules: it allows everything.
func TestNilTargetAllowsEverything(t *testing.T) {
	var p *Target
	if p := newTarget(t, "http", config.Targets{}); p != nil {
		t.Fatalf("a module without rules has a policy: %+v", p)
	}
	for _, err := range []error{
		p.RefuseName("db.internal"),
		p.RefuseAddress("127.0.0.1", net.ParseIP("127.0.0.1")),
		p.RefuseScheme("ftp"),
		p.RefusePath("/run/../docker.sock"),
		p.CheckHost("127.0.0.1", "setup"),
	} {
		if err != nil {
			t.Errorf("a nil policy refused: %v", err)
		}
	}
}

func TestTargetRefusesSchemesAndPaths(t *testing.T) {
	web := newTarget(t, "http", config.Targets{Schemes: []string{"https"}})
	if err := web.RefuseScheme("https"); err != nil {
		t.Errorf("https refused: %v", err)
	}
	if got := refusal(web.RefuseScheme("http")); !strings.Contains(got, `scheme "http" is not in targets.schemes`) {
		t.Errorf("http refused with %q", got)
	}
	unix := newTarget(t, "unix", config.Targets{Allow: []string{"/run/app/*.sock"}})
	for path, want := range map[string]string{
		"/run/app/a.sock":          "",
		"/run/app/../docker.sock":  "not in its clean form",
		"/run/docker.sock":         "matches no targets.allow entry",
		"/run/app/sub/deeper.sock": "matches no targets.allow entry",
	} {
		if got := refusal(unix.RefusePath(path)); (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("path %s refused with %q, want %q", path, got, want)
		}
	}
}

// New checks what the configuration checks too, for modules built in code.
func TestNewRefusesBadRules(t *testing.T) {
	_, err := New("bad", &config.Module{Prober: "http", Targets: config.Targets{Deny: []string{"10.0.0.1/8"}, Schemes: []string{"ftp"}}}, nil)
	for _, want := range []string{"targets.deny[0]", "targets.schemes[0]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New = %v, want an error naming %s", err, want)
		}
	}
}

func TestPrivateRanges(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"::1", "loopback"},
		{"10.1.2.3", "private, RFC 1918"},
		{"172.16.0.1", "private, RFC 1918"},
		{"172.31.255.255", "private, RFC 1918"},
		{"192.168.1.1", "private, RFC 1918"},
		{"100.64.0.1", "shared address space, CGNAT"},
		{"100.100.100.200", "shared address space, CGNAT"},
		{"169.254.169.254", "cloud metadata service"},
		{"fd00:ec2::254", "cloud metadata service"},
		{"169.254.1.1", "link-local"},
		{"fe80::1", "link-local"},
		{"fc00::1", "unique local"},
		{"fd12:3456::1", "unique local"},
		{"224.0.0.251", "multicast"},
		{"ff02::1", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"8.8.8.8", ""},
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"192.0.2.1", ""},
		{"2001:4860:4860::8888", ""},
	} {
		got := ""
		for _, r := range PrivateRanges() {
			if r.Prefix.Contains(netip.MustParseAddr(tc.addr)) {
				got = r.Name
				break
			}
		}
		if got != tc.want {
			t.Errorf("%s is %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestAddressForms(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		want []string
	}{
		{"0.0.0.0", []string{"0.0.0.0", "127.0.0.1"}},
		{"::ffff:0.0.0.0", []string{"0.0.0.0", "127.0.0.1"}},
		{"::", []string{"::", "::1"}},
		{"0.1.2.3", []string{"0.1.2.3"}}, // routed (or refused) as any address
		{"::ffff:127.0.0.1", []string{"127.0.0.1"}},
		{"64:ff9b::a00:1", []string{"64:ff9b::a00:1", "10.0.0.1"}},
		{"192.0.2.1", []string{"192.0.2.1"}},
	} {
		var got []string
		for _, a := range AddressForms(net.ParseIP(tc.ip)) {
			got = append(got, a.String())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("addressForms(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
}
