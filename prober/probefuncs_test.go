package prober

import (
	"context"
	"log/slog"

	"github.com/sonde-exporter/sonde/prober/probemetrics"
)

// The probe of each prober, for tests that run one on a module directly.
// Each asserts the module is of its prober.

func probeHTTP(ctx context.Context, target string, m *Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return m.prober.(*httpPrepared).Probe(ctx, target, m, sink, logger)
}

func probeTCP(ctx context.Context, target string, m *Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return m.prober.(*tcpPrepared).Probe(ctx, target, m, sink, logger)
}

func probeICMP(ctx context.Context, target string, m *Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return m.prober.(*icmpPrepared).Probe(ctx, target, m, sink, logger)
}

func probeDNS(ctx context.Context, target string, m *Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return m.prober.(*dnsPrepared).Probe(ctx, target, m, sink, logger)
}

func probeGRPC(ctx context.Context, target string, m *Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return m.prober.(*grpcPrepared).Probe(ctx, target, m, sink, logger)
}

func probeUnix(ctx context.Context, target string, m *Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return m.prober.(*unixPrepared).Probe(ctx, target, m, sink, logger)
}

func probeWebsocket(ctx context.Context, target string, m *Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return m.prober.(*wsPrepared).Probe(ctx, target, m, sink, logger)
}
