package cli

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP trace receiver in the test: it decodes what
// sonde exports, over gRPC or HTTP with protobuf bodies.
type otlpReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string // service.name of each resource received
}

func (r *otlpReceiver) add(req *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		r.services = append(r.services, attr(rs.GetResource().GetAttributes(), "service.name"))
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
}

func (r *otlpReceiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.add(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want a protobuf POST to /v1/traces", http.StatusBadRequest)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.add(&msg)
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// span returns the received span with that name, if any.
func (r *otlpReceiver) span(name string) *tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.spans {
		if s.GetName() == name {
			return s
		}
	}
	return nil
}

func (r *otlpReceiver) children(parent *tracepb.Span) map[string]*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]*tracepb.Span{}
	for _, s := range r.spans {
		if string(s.GetParentSpanId()) == string(parent.GetSpanId()) {
			out[s.GetName()] = s
		}
	}
	return out
}

func attr(attrs []*commonpb.KeyValue, key string) string {
	for _, kv := range attrs {
		if kv.GetKey() == key {
			v := kv.GetValue()
			switch {
			case v.GetStringValue() != "":
				return v.GetStringValue()
			case v.GetIntValue() != 0:
				return strconv.FormatInt(v.GetIntValue(), 10)
			}
			if _, ok := v.GetValue().(*commonpb.AnyValue_BoolValue); ok {
				if v.GetBoolValue() {
					return "true"
				}
				return "false"
			}
		}
	}
	return ""
}

const tracedConfig = `
modules:
  traced:
    prober: http
    timeout: 5s
    propagate_trace_context: true
  untraced:
    prober: http
    timeout: 5s
`

// TestProbesAreTraced runs sonde with an OTLP endpoint, given by the flag
// or by the OTEL_* environment, over each protocol, and checks the spans
// that arrive: the probe, its attempt, the attempt's phases with their
// real times, and the trace context the target received.
func TestProbesAreTraced(t *testing.T) {
	tests := []struct {
		name     string
		protocol string
		byEnv    bool
	}{
		{"http/protobuf by flag", "http/protobuf", false},
		{"grpc by environment", "grpc", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recv := &otlpReceiver{}
			endpoint := startReceiver(t, recv, tc.protocol)
			// Spans are sent in batches; a short delay keeps the test short.
			t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
			var extra []string
			if tc.byEnv {
				t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
				t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", tc.protocol)
			} else {
				extra = []string{"--tracing.endpoint=" + endpoint, "--tracing.protocol=" + tc.protocol}
			}
			checkTracedProbes(t, recv, extra)
		})
	}
}

func startReceiver(t *testing.T, recv *otlpReceiver, protocol string) string {
	t.Helper()
	if protocol == "http/protobuf" {
		srv := httptest.NewServer(recv)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, recv)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return "http://" + lis.Addr().String()
}

func checkTracedProbes(t *testing.T, recv *otlpReceiver, extra []string) {
	var mu sync.Mutex
	var traceparents []string
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		traceparents = append(traceparents, r.Header.Get("traceparent"))
		mu.Unlock()
	}))
	defer target.Close()
	cfg := filepath.Join(t.TempDir(), "sonde.yml")
	writeFile(t, cfg, tracedConfig)
	// --log.prober=debug: a successful probe's lines are at debug.
	p := startSonde(t, cfg, append([]string{"--log.prober=debug"}, extra...)...)
	if code, body := p.probe(t, "traced", target.URL); code != 200 || !strings.Contains(body, "probe_success 1") {
		t.Fatalf("probe: %d\n%s", code, body)
	}
	if code, body := p.probe(t, "untraced", target.URL); code != 200 || !strings.Contains(body, "probe_success 1") {
		t.Fatalf("probe: %d\n%s", code, body)
	}
	waitFor(t, func() bool { return recv.span("probe traced") != nil && recv.span("probe untraced") != nil })

	probe := recv.span("probe traced")
	if got := attr(probe.GetAttributes(), "sonde.module"); got != "traced" {
		t.Errorf("sonde.module = %q", got)
	}
	if got := attr(probe.GetAttributes(), "sonde.success"); got != "true" {
		t.Errorf("sonde.success = %q", got)
	}
	if recv.services[0] != "sonde" {
		t.Errorf("service.name = %q, want sonde", recv.services[0])
	}
	attempt := recv.children(probe)["attempt 1"]
	if attempt == nil {
		t.Fatalf("the probe span has no attempt child")
	}
	phases := recv.children(attempt)
	for _, phase := range []string{"connect", "processing", "transfer"} {
		s := phases[phase]
		if s == nil {
			t.Errorf("attempt 1 has no %s span; it has %v", phase, keys(phases))
			continue
		}
		if s.GetStartTimeUnixNano() < attempt.GetStartTimeUnixNano() || s.GetEndTimeUnixNano() > attempt.GetEndTimeUnixNano() ||
			s.GetEndTimeUnixNano() < s.GetStartTimeUnixNano() {
			t.Errorf("%s span [%d, %d] lies outside its attempt [%d, %d]", phase, s.GetStartTimeUnixNano(),
				s.GetEndTimeUnixNano(), attempt.GetStartTimeUnixNano(), attempt.GetEndTimeUnixNano())
		}
	}

	// The traced module sent the attempt's context; the other sent none.
	mu.Lock()
	defer mu.Unlock()
	want := "00-" + hex.EncodeToString(probe.GetTraceId()) + "-" + hex.EncodeToString(attempt.GetSpanId()) + "-01"
	if len(traceparents) != 2 || traceparents[0] != want || traceparents[1] != "" {
		t.Errorf("the target received traceparent %q, want %q then none", traceparents, want)
	}
	// The probe's log lines carry the trace id.
	if id := hex.EncodeToString(probe.GetTraceId()); !strings.Contains(p.logs.String(), "trace_id="+id) {
		t.Errorf("sonde's log lacks trace_id=%s:\n%s", id, p.logs)
	}
}

func keys(m map[string]*tracepb.Span) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
