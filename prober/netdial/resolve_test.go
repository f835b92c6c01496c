package netdial

import (
	"context"
	"net"
	"testing"

	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// TestPreferredIPProtocolAsBlackboxReadsIt: anything but ip6 is ip4.
func TestPreferredIPProtocolAsBlackboxReadsIt(t *testing.T) {
	for option, want := range map[string]IPFamily{"": IP6, "ip6": IP6, "ip4": IP4, "ipv6": IP4, "IP6": IP4, "ipv4": IP4} {
		if got := PreferredFamily(option); got != want {
			t.Errorf("preferredFamily(%q) = %s, want %s", option, got, want)
		}
	}
}

// fakeResolver answers from a table: a name it does not hold is not found.
type fakeResolver map[string][]net.IP

func (f fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	ips, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	addrs := make([]net.IPAddr, len(ips))
	for i, ip := range ips {
		addrs[i] = net.IPAddr{IP: ip}
	}
	return addrs, nil
}

func (f fakeResolver) LookupIP(_ context.Context, network, host string) ([]net.IP, error) {
	all, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var ips []net.IP
	for _, ip := range all {
		if IPFamily(network).has(ip) {
			ips = append(ips, ip)
		}
	}
	if len(ips) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return ips, nil
}

func TestLookupAddress(t *testing.T) {
	r := fakeResolver{
		"dual.test":   {net.ParseIP("192.0.2.1"), net.ParseIP("2001:db8::1")},
		"v4only.test": {net.ParseIP("192.0.2.2")},
	}
	for _, tc := range []struct {
		name     string
		host     string
		want     IPFamily
		fallback bool
		ip       string // the address expected; "" for a failure
		reason   taxonomy.Reason
	}{
		{"preferred family", "dual.test", IP6, true, "2001:db8::1", ""},
		{"preferred family, no fallback", "dual.test", IP4, false, "192.0.2.1", ""},
		{"fallback to the other family", "v4only.test", IP6, true, "192.0.2.2", ""},
		{"other family only, no fallback", "v4only.test", IP6, false, "", taxonomy.ReasonNoAddress},
		{"no such name", "missing.test", IP6, false, "", taxonomy.ReasonNXDomain},
		{"literal of the family", "192.0.2.9", IP4, false, "192.0.2.9", ""},
		{"literal of the other family, no fallback", "192.0.2.9", IP6, false, "", taxonomy.ReasonNoAddress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ip, err := LookupAddress(context.Background(), r, tc.host, tc.want, tc.fallback)
			if tc.ip != "" {
				if err != nil || !ip.Equal(net.ParseIP(tc.ip)) {
					t.Fatalf("LookupAddress = %v, %v; want %s", ip, err, tc.ip)
				}
				return
			}
			checkOutcome(t, err, failure{taxonomy.ClassDNS, tc.reason, taxonomy.PhaseResolve})
		})
	}
}

func TestMalformedHost(t *testing.T) {
	for host, want := range map[string]string{
		"example.com": "",
		"::1":         "",
		"]":           "a stray bracket",
		"a b":         "a space or control character",
		"a/b":         "a slash",
	} {
		if got := MalformedHost(host); got != want {
			t.Errorf("MalformedHost(%q) = %q, want %q", host, got, want)
		}
	}
}
