// Package netdial is how probers reach a target: the resolve phase (the
// module's resolver, its preferred IP family and fallback, the resolve
// metrics) and the connect phase (a fresh connection, from the configured
// source address), both under the module's target policy, which is checked
// here for every prober that dials a host. It knows no module: callers
// pass the module's resolver and policy.
package netdial

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/policy"
	"github.com/sonde-exporter/sonde/prober/probelog"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// Endpoint is where a probe connects: a host to resolve and a port, with
// the module's address-family and source-address choices.
type Endpoint struct {
	Network  string // "tcp" or "udp"
	Host     string
	Port     string
	Protocol string // preferred_ip_protocol
	Fallback bool   // ip_protocol_fallback
	Source   string // source_ip_address; empty for the system's choice
}

// Dialed is an open connection and what getting it took.
type Dialed struct {
	Conn    net.Conn
	IP      net.IP
	Addr    string // the address dialed, ip:port
	Resolve time.Duration
	Connect time.Duration
}

// DialEndpoint runs the resolve phase (exporting its metrics) and the
// connect phase of a probe: a fresh connection to the resolved address,
// from the configured source address if any. r and p are the module's
// resolver and target policy (nil when every target is allowed).
func DialEndpoint(ctx context.Context, r Resolver, p *policy.Target, e Endpoint, sink *probemetrics.Sink, logger *slog.Logger) (Dialed, error) {
	var d Dialed
	dialer, err := d.resolveEndpoint(ctx, r, p, &e, sink, logger)
	if err != nil {
		return d, err
	}
	start := time.Now()
	d.Conn, err = dialer.DialContext(ctx, FamilyOf(d.IP).Network(e.Network), d.Addr)
	end := time.Now()
	d.Connect = end.Sub(start)
	sink.Span(taxonomy.PhaseConnect, 0, start, end)
	if err != nil {
		return d, DialError(ctx, e, d.Addr, err)
	}
	return d, nil
}

// resolveEndpoint runs the resolve phase into d and returns the dialer to
// connect with. It is apart from DialEndpoint so that its frame is off the
// stack while the probe connects, the deepest point of most probes
// (TestInFlightStack in test/perf holds the stack a waiting probe keeps).
func (d *Dialed) resolveEndpoint(ctx context.Context, r Resolver, p *policy.Target, e *Endpoint, sink *probemetrics.Sink, logger *slog.Logger) (*net.Dialer, error) {
	ip, took, err := ResolveTarget(ctx, r, p, e.Host, e.Protocol, e.Fallback, sink, logger)
	d.Resolve = took
	if err != nil {
		return nil, err
	}
	d.IP = ip
	dialer, err := LocalDialer(*e, ip)
	if err != nil {
		return nil, err
	}
	d.Addr = net.JoinHostPort(ip.String(), e.Port)
	probelog.Debug(logger, "Connecting", "network", e.Network, "address", d.Addr, "source", e.Source)
	return dialer, nil
}

// NewDialer returns a dialer for a probe's connection. It turns TCP
// keep-alive off: a probe's connection lives for one probe, far less than
// the 15 s of idleness before the first keep-alive, and turning it on costs
// four system calls per connection, for nothing.
func NewDialer() *net.Dialer { return &net.Dialer{KeepAlive: -1} }

// LocalDialer binds the dialer to source_ip_address, which must be of the
// family the target resolved to.
func LocalDialer(e Endpoint, target net.IP) (*net.Dialer, error) {
	d := NewDialer()
	if e.Source == "" {
		return d, nil
	}
	src := net.ParseIP(e.Source)
	if src == nil {
		return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonSourceAddress, taxonomy.PhaseConnect, "source_ip_address %q is not an IP address", e.Source)
	}
	if FamilyOf(src) != FamilyOf(target) {
		return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonSourceAddress, taxonomy.PhaseConnect,
			"source_ip_address %s is %s but the target resolved to %s; set preferred_ip_protocol to %s and ip_protocol_fallback to false",
			src, FamilyOf(src), target, FamilyOf(src))
	}
	if e.Network == "udp" {
		d.LocalAddr = &net.UDPAddr{IP: src}
	} else {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	return d, nil
}

// DialError classifies a failed dial. A source address the host does not
// have is the configuration's fault, not the target's.
func DialError(ctx context.Context, e Endpoint, addr string, err error) error {
	if e.Source != "" && errors.Is(err, syscall.EADDRNOTAVAIL) {
		return taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonSourceAddress, taxonomy.PhaseConnect,
			"source_ip_address %s is not an address of this host: %v", e.Source, err)
	}
	return taxonomy.Classify(ctx, fmt.Errorf("connecting to %s: %w", addr, err), taxonomy.PhaseConnect)
}

// BindDeadline makes blocking reads and writes on conn end at the probe's
// deadline, or as soon as the probe is cancelled (the scrape abandoned).
// The returned function releases the binding.
func BindDeadline(ctx context.Context, conn net.Conn) (release func() bool) {
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	return context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
}

// NewResolver returns the resolver a module's dns_resolver option names.
// Over udp, Go's resolver still retries a truncated answer over tcp.
func NewResolver(option string) (Resolver, error) {
	network, addr, err := config.ParseDNSResolver(option)
	if err != nil {
		return nil, fmt.Errorf("dns_resolver: %w", err)
	}
	var d net.Dialer
	server := addr
	if network == "tcp" {
		server = "tcp://" + addr
	}
	return moduleResolver{server: server, Resolver: &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, asked, _ string) (net.Conn, error) {
			if network == "tcp" {
				asked = "tcp"
			}
			return d.DialContext(ctx, asked, addr)
		},
	}}, nil
}

// moduleResolver is a dns_resolver's resolver. Go's resolver names the
// system's server (/etc/resolv.conf) in its errors even though Dial sends
// every query to the module's, so a failed lookup would blame a server it
// never asked: the errors are made to name the module's server instead.
type moduleResolver struct {
	*net.Resolver
	server string // host:port, behind tcp:// for a resolver over tcp
}

func (r moduleResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	addrs, err := r.Resolver.LookupIPAddr(ctx, host)
	return addrs, r.namingServer(err)
}

func (r moduleResolver) LookupIP(ctx context.Context, network, host string) ([]net.IP, error) {
	ips, err := r.Resolver.LookupIP(ctx, network, host)
	return ips, r.namingServer(err)
}

// namingServer copies rather than changes the *net.DNSError: Go hands the
// same one to every concurrent lookup of a name.
func (r moduleResolver) namingServer(err error) error {
	dnsErr, ok := err.(*net.DNSError)
	if !ok {
		return err
	}
	named := *dnsErr
	named.Server = r.server
	return &named
}
