package core

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/propagation"
)

// With propagate_trace_context, a probe's request carries the W3C trace
// context of the attempt that sends it, so that the target's own spans
// join the probe's trace. The context holds a span only when tracing is
// on; otherwise nothing is added.
var traceContext propagation.TraceContext

// InjectTraceContext adds traceparent (and tracestate) to h when the
// module asks for it.
func InjectTraceContext(ctx context.Context, m *Module, h http.Header) {
	if m.PropagateTraceContext {
		traceContext.Inject(ctx, propagation.HeaderCarrier(h))
	}
}
