package netdial

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"time"

	"github.com/sonde-exporter/sonde/prober/policy"
	"github.com/sonde-exporter/sonde/prober/probelog"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// Resolver is what probers need of a DNS resolver; *net.Resolver has it.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupIP(ctx context.Context, network, host string) ([]net.IP, error)
}

// IPFamily is an IP protocol preference: "ip4" or "ip6".
type IPFamily string

const (
	IP4 IPFamily = "ip4"
	IP6 IPFamily = "ip6"
)

// PreferredFamily reads preferred_ip_protocol. Blackbox prefers IPv6 when
// the option is unset.
func PreferredFamily(option string) IPFamily {
	if option == "" || option == string(IP6) {
		return IP6
	}
	return IP4 // as blackbox reads it: anything but ip6 means ip4
}

func (f IPFamily) other() IPFamily {
	if f == IP4 {
		return IP6
	}
	return IP4
}

func (f IPFamily) Number() float64 {
	if f == IP4 {
		return 4
	}
	return 6
}

// Network names a transport in this ipFamily for net.Dial, e.g. "tcp4".
func (f IPFamily) Network(transport string) string {
	if f == IP4 {
		return transport + "4"
	}
	return transport + "6"
}

func (f IPFamily) has(ip net.IP) bool {
	return (ip.To4() != nil) == (f == IP4)
}

func FamilyOf(ip net.IP) IPFamily {
	if ip.To4() != nil {
		return IP4
	}
	return IP6
}

// resolveMetrics are the common metrics of the resolve phase. They are
// registered before resolving so that they are exported, at 0, even when
// resolution fails, as blackbox_exporter does.
type resolveMetrics struct {
	Protocol, LookupTime, AddrHash probemetrics.Gauge
}

func NewResolveMetrics(sink *probemetrics.Sink) resolveMetrics {
	return resolveMetrics{
		Protocol:   sink.Gauge("probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6"),
		LookupTime: sink.Gauge("probe_dns_lookup_time_seconds", "Returns the time taken for probe dns lookup in seconds"),
		AddrHash:   sink.Gauge("probe_ip_addr_hash", "Specifies the hash of IP address. It's useful to detect if the IP address changes."),
	}
}

// MalformedHost says what makes host no host name or IP address any
// resolver could know, or returns "". Parsers let through stray brackets
// ("http://]/") and spaces ("a b:80"); refused here, they are the
// operator's typo (HTTP 400) instead of a failed lookup.
func MalformedHost(host string) string {
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

// ResolveTarget resolves host to the one address the probe will use,
// honouring the preferred ipFamily and the fallback, exports the resolve
// metrics and returns how long the lookup took. Every prober that dials
// a host resolves it here, so this is where the module's target policy
// (p; nil when every target is allowed) is enforced: the name before the
// lookup, the address after it. r is the module's resolver.
func ResolveTarget(ctx context.Context, r Resolver, p *policy.Target, host, preferred string, fallback bool, sink *probemetrics.Sink, logger *slog.Logger) (net.IP, time.Duration, error) {
	metrics := NewResolveMetrics(sink)
	if err := p.RefuseName(host); err != nil {
		return nil, 0, policy.TargetDenied(taxonomy.PhaseSetup, err)
	}
	want := PreferredFamily(preferred)
	probelog.Debug(logger, "Resolving target address", "host", host, "ip_protocol", want)
	start := time.Now()
	ip, err := LookupAddress(ctx, r, host, want, fallback)
	end := time.Now()
	took := end.Sub(start)
	metrics.LookupTime.Set(took.Seconds())
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
	if err := p.RefuseAddress(host, ip); err != nil {
		return nil, took, policy.TargetDenied(taxonomy.PhaseResolve, err)
	}
	metrics.Protocol.Set(FamilyOf(ip).Number())
	metrics.AddrHash.Set(IPHash(ip))
	probelog.Debug(logger, "Resolved target address", "host", host, "ip", ip) // net.IP formats itself when read
	return ip, took, nil
}

// LookupAddress returns one address of host, preferring ipFamily want and
// falling back to the other one if allowed. An IP literal is its own answer.
func LookupAddress(ctx context.Context, r Resolver, host string, want IPFamily, fallback bool) (net.IP, error) {
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
func lookupFamily(ctx context.Context, r Resolver, host string, want IPFamily) (net.IP, error) {
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

func pick(addrs []net.IPAddr, want IPFamily) net.IP {
	for _, a := range addrs {
		if want.has(a.IP) {
			return a.IP
		}
	}
	return nil
}

// IPHash gives an address a number that changes when the address does.
// The address is hashed in its shortest form, so an IPv4 address hashes the
// same whichever way the resolver returned it.
func IPHash(ip net.IP) float64 {
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	h := fnv.New32a()
	h.Write(ip)
	return float64(h.Sum32())
}
