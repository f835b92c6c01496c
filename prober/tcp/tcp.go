// Package tcp is the tcp prober: it connects to host:port, optionally in
// TLS or after a STARTTLS preset, and runs the module's query_response
// script over the connection.
package tcp

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/check"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/probelog"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
	"github.com/sonde-exporter/sonde/prober/tlsfacts"
)

// tcpPrepared is what a tcp module needs ready before its first
// probe: its tls_config, with CA files parsed once.
type tcpPrepared struct {
	tls *tlsfacts.Client
}

// Prepare readies a tcp module when the configuration loads.
func Prepare(m *config.Module, env *core.Env) (core.Prober, error) {
	c, err := env.TLSClient(m, "tcp", &m.TCP.TLSConfig)
	if err != nil {
		return nil, err
	}
	return &tcpPrepared{tls: c}, nil
}

// phases are the phases of probe_tcp_duration_seconds, in order.
var phases = []taxonomy.Phase{taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseTLS, taxonomy.PhaseQuery}

// Probe connects to host:port, optionally over TLS or after a STARTTLS
// preset, and runs the module's query_response script.
func (prepared *tcpPrepared) Probe(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	durations := sink.GaugeVec("probe_tcp_duration_seconds", "Duration of the tcp probe by phase", "phase")
	for _, p := range phases {
		durations.With(string(p))
	}
	cfg := &m.TCP
	host, port, err := SplitHostPort(target, "tcp")
	if err != nil {
		return err
	}
	d, err := netdial.DialEndpoint(ctx, m.Resolver, m.Policy, netdial.Endpoint{Network: "tcp", Host: host, Port: port,
		Protocol: cfg.IPProtocol, Fallback: cfg.IPProtocolFallback, Source: cfg.SourceIPAddress}, sink, logger)
	durations.With(string(taxonomy.PhaseResolve)).Set(d.Resolve.Seconds())
	durations.With(string(taxonomy.PhaseConnect)).Set(d.Connect.Seconds())
	if err != nil {
		return err
	}
	defer d.Conn.Close()
	return converseTCP(ctx, d, host, m, prepared, durations, sink, logger)
}

// converseTCP runs the conversation on a connected probe: TLS, a STARTTLS
// preset, and the query_response script. It is apart from Probe so
// that its frame is not on the stack while the probe connects, the
// deepest point of a probe (TestInFlightStack in test/perf holds the stack
// a waiting probe keeps).
func converseTCP(ctx context.Context, d netdial.Dialed, host string, m *core.Module, prepared *tcpPrepared, durations probemetrics.GaugeVec, sink *probemetrics.Sink, logger *slog.Logger) error {
	cfg := &m.TCP
	defer netdial.BindDeadline(ctx, d.Conn)()
	probelog.Debug(logger, "Connected", "address", d.Addr)

	s := check.NewStream(d.Conn, prepared.tls, tlsfacts.ServerName(cfg.TLSConfig.ServerName, host), sink)
	defer func() { durations.With(string(taxonomy.PhaseTLS)).Set(s.TLSTime.Seconds()) }()
	if cfg.TLS {
		if err := s.StartTLS(ctx); err != nil {
			return err
		}
	}
	return timedScript(ctx, s, durations.With(string(taxonomy.PhaseQuery)), func() error {
		if cfg.StartTLSPreset != "" {
			if err := runPreset(ctx, cfg.StartTLSPreset, s, logger); err != nil {
				return err
			}
		}
		return check.RunScript(ctx, cfg.QueryResponse, s, check.NewScriptMetrics(sink), logger)
	})
}

// timedScript runs a stream's conversation and records its duration less
// the TLS handshakes inside it, which count in the tls phase. Its span
// keeps the whole conversation: the handshakes' own spans lie inside it.
func timedScript(ctx context.Context, s *check.Stream, g probemetrics.Gauge, run func() error) error {
	start, tlsBefore := time.Now(), s.TLSTime
	err := run()
	end := time.Now()
	g.Set((end.Sub(start) - (s.TLSTime - tlsBefore)).Seconds())
	s.Sink.Span(taxonomy.PhaseQuery, 0, start, end)
	return err
}

// SplitHostPort reads a "host:port" target. The port may be a service
// name ("smtp"), as net.Dial and blackbox_exporter allow.
func SplitHostPort(target, network string) (host, port string, err error) {
	defer core.HidePassword(&err, target)
	host, port, err = net.SplitHostPort(target)
	if err != nil {
		return "", "", taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target %q is not host:port (%v); write e.g. example.com:443 or [2001:db8::1]:22", target, err)
	}
	if why := netdial.MalformedHost(host); why != "" {
		return "", "", taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target %q has host %q, with %s; write e.g. example.com:443 or [2001:db8::1]:22", target, host, why)
	}
	p, err := net.LookupPort(network, port)
	if host == "" || err != nil || p < 1 {
		return "", "", taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target %q needs a host and a port: a number from 1 to 65535 or a service name", target)
	}
	return host, strconv.Itoa(p), nil
}

// Phases returns the phases of probe_tcp_duration_seconds, in order.
func Phases() []taxonomy.Phase { return slices.Clone(phases) }
