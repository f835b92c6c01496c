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
	return probeOf(ctx, "http", target, m, sink, logger)
}

func probeTCP(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return probeOf(ctx, "tcp", target, m, sink, logger)
}

func probeICMP(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return probeOf(ctx, "icmp", target, m, sink, logger)
}

func probeDNS(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return probeOf(ctx, "dns", target, m, sink, logger)
}

func probeGRPC(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return probeOf(ctx, "grpc", target, m, sink, logger)
}

// probeOf runs the probe of m, which must be a module of prober.
func probeOf(ctx context.Context, prober, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	f, ok := m.Func()
	if !ok || m.Prober != prober {
		panic("a " + prober + " probe of a module of the " + m.Prober + " prober")
	}
	return f(ctx, target, m, sink, logger)
}
