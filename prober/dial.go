package prober

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// endpoint is where a probe connects: a host to resolve and a port, with
// the module's address-family and source-address choices.
type endpoint struct {
	network  string // "tcp" or "udp"
	host     string
	port     string
	protocol string // preferred_ip_protocol
	fallback bool   // ip_protocol_fallback
	source   string // source_ip_address; empty for the system's choice
}

// dialed is an open connection and what getting it took.
type dialed struct {
	conn    net.Conn
	ip      net.IP
	addr    string // the address dialed, ip:port
	resolve time.Duration
	connect time.Duration
}

// dialEndpoint runs the resolve phase (exporting its metrics) and the
// connect phase of a probe: a fresh connection to the resolved address,
// from the configured source address if any.
func dialEndpoint(ctx context.Context, m *Module, e endpoint, sink *probemetrics.Sink, logger *slog.Logger) (dialed, error) {
	var d dialed
	dialer, err := d.resolveEndpoint(ctx, m, &e, sink, logger)
	if err != nil {
		return d, err
	}
	start := time.Now()
	d.conn, err = dialer.DialContext(ctx, familyOf(d.ip).network(e.network), d.addr)
	end := time.Now()
	d.connect = end.Sub(start)
	sink.Span(taxonomy.PhaseConnect, 0, start, end)
	if err != nil {
		return d, dialError(ctx, e, d.addr, err)
	}
	return d, nil
}

// resolveEndpoint runs the resolve phase into d and returns the dialer to
// connect with. It is apart from dialEndpoint so that its frame is off the
// stack while the probe connects, the deepest point of most probes (see
// Runner.Run in collector).
func (d *dialed) resolveEndpoint(ctx context.Context, m *Module, e *endpoint, sink *probemetrics.Sink, logger *slog.Logger) (*net.Dialer, error) {
	ip, took, err := resolveTarget(ctx, m, e.host, e.protocol, e.fallback, sink, logger)
	d.resolve = took
	if err != nil {
		return nil, err
	}
	d.ip = ip
	dialer, err := localDialer(*e, ip)
	if err != nil {
		return nil, err
	}
	d.addr = net.JoinHostPort(ip.String(), e.port)
	Debug(logger, "Connecting", "network", e.network, "address", d.addr, "source", e.source)
	return dialer, nil
}

// newDialer returns a dialer for a probe's connection. It turns TCP
// keep-alive off: a probe's connection lives for one probe, far less than
// the 15 s of idleness before the first keep-alive, and turning it on costs
// four system calls per connection, a tenth of what a tcp probe does in the
// kernel.
func newDialer() *net.Dialer { return &net.Dialer{KeepAlive: -1} }

// localDialer binds the dialer to source_ip_address, which must be of the
// family the target resolved to.
func localDialer(e endpoint, target net.IP) (*net.Dialer, error) {
	d := newDialer()
	if e.source == "" {
		return d, nil
	}
	src := net.ParseIP(e.source)
	if src == nil {
		return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonSourceAddress, taxonomy.PhaseConnect, "source_ip_address %q is not an IP address", e.source)
	}
	if familyOf(src) != familyOf(target) {
		return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonSourceAddress, taxonomy.PhaseConnect,
			"source_ip_address %s is %s but the target resolved to %s; set preferred_ip_protocol to %s and ip_protocol_fallback to false",
			src, familyOf(src), target, familyOf(src))
	}
	if e.network == "udp" {
		d.LocalAddr = &net.UDPAddr{IP: src}
	} else {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	return d, nil
}

// dialError classifies a failed dial. A source address the host does not
// have is the configuration's fault, not the target's.
func dialError(ctx context.Context, e endpoint, addr string, err error) error {
	if e.source != "" && errors.Is(err, syscall.EADDRNOTAVAIL) {
		return taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonSourceAddress, taxonomy.PhaseConnect,
			"source_ip_address %s is not an address of this host: %v", e.source, err)
	}
	return taxonomy.Classify(ctx, fmt.Errorf("connecting to %s: %w", addr, err), taxonomy.PhaseConnect)
}

// bindDeadline makes blocking reads and writes on conn end at the probe's
// deadline, or as soon as the probe is cancelled (the scrape abandoned).
// The returned function releases the binding.
func bindDeadline(ctx context.Context, conn net.Conn) (release func() bool) {
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	return context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
}

// newResolver returns the resolver a module's dns_resolver option names.
// Over udp, Go's resolver still retries a truncated answer over tcp.
func newResolver(option string) (Resolver, error) {
	network, addr, err := config.ParseDNSResolver(option)
	if err != nil {
		return nil, fmt.Errorf("dns_resolver: %w", err)
	}
	var d net.Dialer
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, asked, _ string) (net.Conn, error) {
			if network == "tcp" {
				asked = "tcp"
			}
			return d.DialContext(ctx, asked, addr)
		},
	}, nil
}
