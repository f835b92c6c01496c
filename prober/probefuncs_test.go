package prober

import (
	"context"
	"log/slog"

	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
)

// The probe of each prober, for tests that run one on a module directly.
// Each asserts the module is of its prober.

func probeHTTP(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return m.Prepared.(*httpPrepared).Probe(ctx, target, m, sink, logger)
}

func probeTCP(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return m.Prepared.(*tcpPrepared).Probe(ctx, target, m, sink, logger)
}

func probeICMP(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return m.Prepared.(*icmpPrepared).Probe(ctx, target, m, sink, logger)
}

func probeDNS(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return m.Prepared.(*dnsPrepared).Probe(ctx, target, m, sink, logger)
}

func probeGRPC(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return m.Prepared.(*grpcPrepared).Probe(ctx, target, m, sink, logger)
}
