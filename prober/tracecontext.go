package prober

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc/metadata"
)

// With propagate_trace_context, a probe's request carries the W3C trace
// context of the attempt that sends it, so that the target's own spans
// join the probe's trace. The context holds a span only when tracing is
// on; otherwise nothing is added.
var traceContext propagation.TraceContext

// injectTraceContext adds traceparent (and tracestate) to h when the
// module asks for it.
func injectTraceContext(ctx context.Context, m *Module, h http.Header) {
	if m.PropagateTraceContext {
		traceContext.Inject(ctx, propagation.HeaderCarrier(h))
	}
}

// outgoingMetadata returns ctx carrying the gRPC metadata to send: the
// module's, and the trace context when the module asks for it.
func outgoingMetadata(ctx context.Context, m *Module, md metadata.MD) context.Context {
	if m.PropagateTraceContext {
		md = md.Copy()
		if md == nil {
			md = metadata.MD{}
		}
		traceContext.Inject(ctx, metadataCarrier(md))
	}
	if md == nil {
		return ctx
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// metadataCarrier lets the propagator write gRPC metadata.
type metadataCarrier metadata.MD

func (c metadataCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c metadataCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
