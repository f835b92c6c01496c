package prober

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"time"

	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// ipFamily is an IP protocol preference: "ip4" or "ip6".
type ipFamily string

const (
	ip4 ipFamily = "ip4"
	ip6 ipFamily = "ip6"
)

// preferredFamily reads preferred_ip_protocol. Blackbox prefers IPv6 when
// the option is unset.
func preferredFamily(option string) ipFamily {
	if option == "" || option == string(ip6) {
		return ip6
	}
	return ip4 // as blackbox reads it: anything but ip6 means ip4
}

func (f ipFamily) other() ipFamily {
	if f == ip4 {
		return ip6
	}
	return ip4
}

func (f ipFamily) number() float64 {
	if f == ip4 {
		return 4
	}
	return 6
}

// network names a transport in this ipFamily for net.Dial, e.g. "tcp4".
func (f ipFamily) network(transport string) string {
	if f == ip4 {
		return transport + "4"
	}
	return transport + "6"
}

func (f ipFamily) has(ip net.IP) bool {
	return (ip.To4() != nil) == (f == ip4)
}

func familyOf(ip net.IP) ipFamily {
	if ip.To4() != nil {
		return ip4
	}
	return ip6
}

// resolveMetrics are the common metrics of the resolve phase. They are
// registered before resolving so that they are exported, at 0, even when
// resolution fails, as blackbox_exporter does.
type resolveMetrics struct {
	protocol, lookupTime, addrHash probemetrics.Gauge
}

func newResolveMetrics(sink *probemetrics.Sink) resolveMetrics {
	return resolveMetrics{
		protocol:   sink.Gauge("probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6"),
		lookupTime: sink.Gauge("probe_dns_lookup_time_seconds", "Returns the time taken for probe dns lookup in seconds"),
		addrHash:   sink.Gauge("probe_ip_addr_hash", "Specifies the hash of IP address. It's useful to detect if the IP address changes."),
	}
}

// malformedHost says what makes host no host name or IP address any
// resolver could know, or returns "". Parsers let through stray brackets
// ("http://]/") and spaces ("a b:80"); refused here, they are the
// operator's typo (HTTP 400) instead of a failed lookup.
func malformedHost(host string) string {
	for _, r := range host {
		switch {
		case r == '[' || r == ']':
			return "a stray bracket"
		case r <= ' ' || r == 0x7f:
			return "a space or control character"
		case r == '/' || r == '\\':
			return "a slash"
		}
	}
	return ""
}

// resolveTarget resolves host to the one address the probe will use,
// honouring the preferred ipFamily and the fallback, exports the resolve
// metrics and returns how long the lookup took. Every prober that dials
// a host resolves it here, so this is where the module's target policy
// is enforced: the name before the lookup, the address after it.
func resolveTarget(ctx context.Context, m *Module, host, preferred string, fallback bool, sink *probemetrics.Sink, logger *slog.Logger) (net.IP, time.Duration, error) {
	metrics := newResolveMetrics(sink)
	if err := m.policy.refuseName(host); err != nil {
		return nil, 0, targetDenied(taxonomy.PhaseSetup, err)
	}
	want := preferredFamily(preferred)
	Debug(logger, "Resolving target address", "host", host, "ip_protocol", want)
	start := time.Now()
	ip, err := lookupAddress(ctx, m.resolver, host, want, fallback)
	end := time.Now()
	took := end.Sub(start)
	metrics.lookupTime.Set(took.Seconds())
	// An IP literal is parsed, not looked up: no resolve phase happened,
	// though the metric keeps blackbox's (near zero) value for it.
	if net.ParseIP(host) == nil {
		sink.Span(taxonomy.PhaseResolve, 0, start, end)
	}
	if err != nil {
		logger.Error("Resolution failed", "host", host, "err", err)
		return nil, took, err
	}
	// Checked before the address's metrics are set: the hash of a denied
	// address would tell an anonymous scraper what internal names resolve to.
	if err := m.policy.refuseAddress(host, ip); err != nil {
		return nil, took, targetDenied(taxonomy.PhaseResolve, err)
	}
	metrics.protocol.Set(familyOf(ip).number())
	metrics.addrHash.Set(ipHash(ip))
	Debug(logger, "Resolved target address", "host", host, "ip", ip) // net.IP formats itself when read
	return ip, took, nil
}

// lookupAddress returns one address of host, preferring ipFamily want and
// falling back to the other one if allowed. An IP literal is its own answer.
func lookupAddress(ctx context.Context, r Resolver, host string, want ipFamily, fallback bool) (net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		if !fallback && !want.has(ip) {
			return nil, taxonomy.Failf(taxonomy.ClassDNS, taxonomy.ReasonNoAddress, taxonomy.PhaseResolve,
				"target %s is not an %s address and ip_protocol_fallback is off", host, want)
		}
		return ip, nil
	}
	if !fallback {
		return lookupFamily(ctx, r, host, want)
	}
	addrs, err := r.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, taxonomy.Classify(ctx, fmt.Errorf("resolving %q: %w", host, err), taxonomy.PhaseResolve)
	}
	if ip := pick(addrs, want); ip != nil {
		return ip, nil
	}
	if ip := pick(addrs, want.other()); ip != nil {
		return ip, nil
	}
	return nil, taxonomy.Failf(taxonomy.ClassDNS, taxonomy.ReasonNoAddress, taxonomy.PhaseResolve, "resolving %q: no IP address in the answer", host)
}

// lookupFamily resolves host in one ipFamily only. Go's resolver reports a
// name with no record of the asked type like a missing name, so a second
// lookup tells "no such name" from "no address of this ipFamily".
func lookupFamily(ctx context.Context, r Resolver, host string, want ipFamily) (net.IP, error) {
	ips, err := r.LookupIP(ctx, string(want), host)
	if err == nil && len(ips) > 0 {
		return ips[0], nil
	}
	var dnsErr *net.DNSError
	var addrErr *net.AddrError // "no suitable address": /etc/hosts has only the other family
	if err == nil || errors.As(err, &addrErr) || (errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
		if others, oerr := r.LookupIPAddr(ctx, host); oerr == nil && len(others) > 0 {
			return nil, taxonomy.Failf(taxonomy.ClassDNS, taxonomy.ReasonNoAddress, taxonomy.PhaseResolve,
				"%q has no %s address and ip_protocol_fallback is off", host, want)
		}
	}
	if err == nil || addrErr != nil {
		return nil, taxonomy.Failf(taxonomy.ClassDNS, taxonomy.ReasonNoAddress, taxonomy.PhaseResolve, "resolving %q: no %s address", host, want)
	}
	return nil, taxonomy.Classify(ctx, fmt.Errorf("resolving %q: %w", host, err), taxonomy.PhaseResolve)
}

func pick(addrs []net.IPAddr, want ipFamily) net.IP {
	for _, a := range addrs {
		if want.has(a.IP) {
			return a.IP
		}
	}
	return nil
}

// ipHash gives an address a number that changes when the address does.
// The address is hashed in its shortest form, so an IPv4 address hashes the
// same whichever way the resolver returned it.
func ipHash(ip net.IP) float64 {
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	h := fnv.New32a()
	h.Write(ip)
	return float64(h.Sum32())
}
