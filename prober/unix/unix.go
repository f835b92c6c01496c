// Package unix is the unix prober, a sonde addition: it connects to a unix
// domain socket and runs the module's query_response script over it.
package unix

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/check"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/policy"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
	"github.com/sonde-exporter/sonde/prober/tlsfacts"
)

// unixPrepared is what a unix module needs ready before its first probe:
// its tls_config, with CA files parsed once.
type unixPrepared struct {
	tls *tlsfacts.Client
}

// Prepare readies a unix module when the configuration loads.
func Prepare(m *config.Module, env *core.Env) (core.Prober, error) {
	c, err := env.TLSClient(m, "unix", &m.Unix.TLSConfig)
	if err != nil {
		return nil, err
	}
	return &unixPrepared{tls: c}, nil
}

// Probe connects to the unix socket named by the target (a path) and
// runs the module's query_response script, optionally over TLS.
func (prepared *unixPrepared) Probe(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	if target == "" {
		return taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "the target must be the path of a unix socket, e.g. /run/app.sock")
	}
	if err := m.Policy.RefusePath(target); err != nil {
		return policy.TargetDenied(taxonomy.PhaseSetup, err)
	}
	var d net.Dialer
	start := time.Now()
	conn, err := d.DialContext(ctx, "unix", target)
	// The unix prober exports no phase metrics; its spans alone say
	// where the time went.
	sink.Span(taxonomy.PhaseConnect, 0, start, time.Now())
	if err != nil {
		return unixDialError(ctx, target, err)
	}
	defer conn.Close()
	defer netdial.BindDeadline(ctx, conn)()
	cfg := &m.Unix
	// A socket has no host name: the server is verified as tls_config's
	// server_name, which the configuration requires for TLS.
	s := check.NewStream(conn, prepared.tls, cfg.TLSConfig.ServerName, sink)
	if cfg.TLS {
		if err := s.StartTLS(ctx); err != nil {
			return err
		}
	}
	start = time.Now()
	err = check.RunScript(ctx, cfg.QueryResponse, s, check.NewScriptMetrics(sink), logger)
	sink.Span(taxonomy.PhaseQuery, 0, start, time.Now())
	return err
}

// unixDialError classifies a failed connect to a socket: a path with no
// socket behind it (nothing there, a file where a directory should be, a
// datagram socket) is as good as a refused port, and a path too long for a
// socket address can never be connected to.
func unixDialError(ctx context.Context, path string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENOTDIR):
		return taxonomy.Failf(taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect, "no socket at %s: %v", path, err)
	case errors.Is(err, syscall.EPROTOTYPE):
		return taxonomy.Failf(taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect, "%s is not a stream socket: %v", path, err)
	case errors.Is(err, syscall.EINVAL):
		return taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "%q cannot be a unix socket address (at most 108 bytes): %v", path, err)
	}
	return taxonomy.Classify(ctx, fmt.Errorf("connecting to %s: %w", path, err), taxonomy.PhaseConnect)
}
