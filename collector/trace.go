package collector

import (
	"context"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sonde-exporter/sonde/internal/redact"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// A probe's trace: one span for the probe ("probe <module>"), a child per
// attempt, and under each attempt a child per phase the prober recorded.
// The probe and attempt spans are live, so that the context handed to the
// prober carries the attempt's span (which propagate_trace_context sends
// to the target); phase spans are made once the attempt is over, from the
// clock readings the prober took, so they cost nothing while it runs and
// nothing at all when the trace is not sampled.

// Span attribute keys, documented in docs/tracing.md.
const (
	attrModule       = attribute.Key("sonde.module")
	attrProber       = attribute.Key("sonde.prober")
	attrTarget       = attribute.Key("sonde.target")
	attrSuccess      = attribute.Key("sonde.success")
	attrAttempts     = attribute.Key("sonde.attempts")
	attrAttempt      = attribute.Key("sonde.attempt")
	attrHop          = attribute.Key("sonde.hop")
	attrFailureClass = attribute.Key("sonde.failure.class")
	attrReason       = attribute.Key("sonde.failure.reason")
	attrPhase        = attribute.Key("sonde.failure.phase")
	attrProbeID      = attribute.Key("sonde.probe.id")
)

// noTracer is used when tracing is off: its spans are invalid, so no trace
// id is logged and nothing is propagated.
var noTracer trace.Tracer = noop.NewTracerProvider().Tracer("")

func tracerOrNone(t trace.Tracer) trace.Tracer {
	if t == nil {
		return noTracer
	}
	return t
}

// requestContext continues a trace the scraper started, when it sent a
// traceparent header (a CI pipeline calling /probe may; Prometheus does
// not), so the probe shows up inside the caller's trace. With tracing off
// the header is ignored: nothing would record the probe's part.
func requestContext(r *http.Request, t trace.Tracer) context.Context {
	if t == nil || r.Header.Get("traceparent") == "" {
		return r.Context()
	}
	return propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
}

func startProbeSpan(ctx context.Context, t trace.Tracer, id int64, m *core.Module, target string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if t == noTracer {
		// What the no-op tracer's Start would give, without the context
		// it would allocate to carry it.
		return ctx, trace.SpanFromContext(ctx)
	}
	attrs := []attribute.KeyValue{attrModule.String(m.Name), attrProber.String(m.Prober), attrTarget.String(redact.Target(target))}
	if id != NoID {
		attrs = append(attrs, attrProbeID.Int64(id))
	}
	return t.Start(ctx, "probe "+m.Name, append(opts, trace.WithAttributes(attrs...))...)
}

// endProbeSpan sets the probe's outcome on its span and ends it. A span
// that records nothing has nothing to end.
func endProbeSpan(span trace.Span, r *Result) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attrSuccess.Bool(r.Err == nil), attrAttempts.Int(r.Attempts.made))
	markFailure(span, r.Err)
	span.End(trace.WithTimestamp(r.Start.Add(r.Duration)))
}

func startAttemptSpan(ctx context.Context, t trace.Tracer, n int) (context.Context, trace.Span) {
	if t == noTracer {
		return ctx, trace.SpanFromContext(ctx)
	}
	return t.Start(ctx, "attempt "+strconv.Itoa(n), trace.WithAttributes(attrAttempt.Int(n)))
}

// endAttemptSpan adds the attempt's phases as children and ends it.
func endAttemptSpan(ctx context.Context, t trace.Tracer, span trace.Span, a *Attempt) {
	if !span.IsRecording() {
		return
	}
	for _, s := range a.Spans {
		phaseSpan(ctx, t, s)
	}
	markFailure(span, a.Err)
	span.End(trace.WithTimestamp(a.End))
}

func phaseSpan(ctx context.Context, t trace.Tracer, s probemetrics.Span) {
	opts := []trace.SpanStartOption{trace.WithTimestamp(s.Start)}
	if s.Hop > 0 {
		opts = append(opts, trace.WithAttributes(attrHop.Int(s.Hop)))
	}
	_, span := t.Start(ctx, string(s.Phase), opts...)
	span.End(trace.WithTimestamp(s.End))
}

func markFailure(span trace.Span, err *taxonomy.Error) {
	if err == nil {
		return
	}
	span.SetAttributes(attrFailureClass.String(string(err.Class)), attrReason.String(string(err.Reason)),
		attrPhase.String(string(err.Phase)))
	span.SetStatus(codes.Error, redact.Cut(err.Error(), redact.MaxValue))
}
