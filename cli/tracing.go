package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/version"
	"go.opentelemetry.io/otel"

	"github.com/sonde-exporter/sonde/internal/tracing"
)

// addTracingFlags adds the --tracing.* flags. Each one left out defers to
// the standard OTEL_* variable, so that a deployment already configured
// for OpenTelemetry needs no flag at all.
func addTracingFlags(cmd *kingpin.CmdClause, o *tracing.Options) {
	cmd.Flag("tracing.endpoint", "OTLP endpoint URL to send probe traces to, e.g. http://localhost:4318 (http/protobuf) or http://localhost:4317 (grpc). "+
		"Tracing is off unless this or OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.").StringVar(&o.Endpoint)
	cmd.Flag("tracing.protocol", "OTLP protocol: grpc or http/protobuf. Default: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf.").
		EnumVar(&o.Protocol, tracing.ProtocolGRPC, tracing.ProtocolHTTP)
	cmd.Flag("tracing.sampling-ratio", "Fraction of probes traced, 0 to 1 (a probe whose scrape carries a sampled traceparent is always traced). Default: OTEL_TRACES_SAMPLER, else every probe.").
		Default("-1").Float64Var(&o.SamplingRatio)
}

// startTracing sets tracing up, and reports where spans go. The SDK's
// own errors (a collector that is down) are logged, not printed by its
// default handler.
func startTracing(o tracing.Options, logger *slog.Logger) (*tracing.Setup, error) {
	if o.SamplingRatio > 1 {
		return nil, errSamplingRatio(o.SamplingRatio)
	}
	o.Version = version.Version
	s, err := tracing.New(context.Background(), o)
	if err != nil {
		return nil, err
	}
	if s.Tracer == nil {
		logger.Debug("Tracing is off; set --tracing.endpoint or OTEL_EXPORTER_OTLP_ENDPOINT to turn it on")
		return s, nil
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("Sending traces failed", "err", err)
	}))
	logger.Info("Tracing probes", "endpoint", s.Endpoint, "protocol", s.Protocol)
	return s, nil
}

// flushTraces sends the spans still queued, giving the collector a few
// seconds at most.
func flushTraces(s *tracing.Setup, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		logger.Warn("Flushing traces at exit failed", "err", err)
	}
}

type errSamplingRatio float64

func (e errSamplingRatio) Error() string {
	return "--tracing.sampling-ratio must be between 0 and 1"
}
