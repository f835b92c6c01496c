package collector

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober"
	"github.com/sonde-exporter/sonde/prober/core"
)

const traceConfig = `
modules:
  traced:
    prober: http
    propagate_trace_context: true
    retry:
      attempts: 2
      initial_backoff: 10ms
`

// tracedCollector is a collector whose spans land in memory.
func tracedCollector(t *testing.T) (*Collector, *tracetest.InMemoryExporter) {
	t.Helper()
	return collectorWithSpans(t, traceConfig, Options{HistoryLimit: 10, Logger: slog.New(slog.DiscardHandler)})
}

// collectorWithSpans serves the configuration yml with o, tracing into
// spans kept in memory.
func collectorWithSpans(t testing.TB, yml string, o Options) (*Collector, *tracetest.InMemoryExporter) {
	t.Helper()
	cfg, err := config.Load([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	set, err := prober.NewSet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	o.Registerer, o.Tracer = prometheus.NewRegistry(), tp.Tracer("test")
	c := New(o)
	c.SetModules(set)
	return c, spans
}

// spansByName indexes the exported spans; names repeat only for phases.
func spansByName(exp *tracetest.InMemoryExporter) map[string][]tracetest.SpanStub {
	out := map[string][]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		out[s.Name] = append(out[s.Name], s)
	}
	return out
}

func attrValue(attrs []attribute.KeyValue, key attribute.Key) string {
	for _, a := range attrs {
		if a.Key == key {
			return a.Value.Emit()
		}
	}
	return ""
}

// TestProbeTraceFollowsTheAttempts: a probe whose first attempt fails and
// second succeeds gives one probe span, two attempt spans under it, the
// phases of each under their attempt, and the target sees the second
// attempt's context.
func TestProbeTraceFollowsTheAttempts(t *testing.T) {
	var calls int
	var got []string
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		got = append(got, r.Header.Get("traceparent"))
		if calls == 1 {
			// A reset connection: a protocol failure, retried.
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close()
		}
	}))
	defer target.Close()
	c, exp := tracedCollector(t)
	resp, body := scrape(t, c, url.Values{"module": {"traced"}, "target": {target.URL}}, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "probe_success 1") || !strings.Contains(body, "probe_attempts 2") {
		t.Fatalf("probe: %d\n%s", resp.StatusCode, body)
	}
	spans := spansByName(exp)
	probe := spans["probe traced"]
	if len(probe) != 1 {
		t.Fatalf("want one probe span, got %v", exp.GetSpans())
	}
	root := probe[0]
	for key, want := range map[attribute.Key]string{attrModule: "traced", attrProber: "http", attrTarget: target.URL,
		attrSuccess: "true", attrAttempts: "2", attrProbeID: "0"} {
		if v := attrValue(root.Attributes, key); v != want {
			t.Errorf("probe span %s = %q, want %q", key, v, want)
		}
	}
	first, second := spans["attempt 1"], spans["attempt 2"]
	if len(first) != 1 || len(second) != 1 {
		t.Fatalf("want attempts 1 and 2, got %v", exp.GetSpans())
	}
	if first[0].Parent.SpanID() != root.SpanContext.SpanID() || second[0].Parent.SpanID() != root.SpanContext.SpanID() {
		t.Error("the attempt spans are not children of the probe span")
	}
	if first[0].Status.Code != codes.Error || attrValue(first[0].Attributes, attrFailureClass) == "" {
		t.Errorf("the failed attempt has status %v, class %q", first[0].Status, attrValue(first[0].Attributes, attrFailureClass))
	}
	for _, phase := range []string{"connect", "processing"} {
		if n := len(spans[phase]); n != 2 {
			t.Errorf("want a %s span per attempt, got %d", phase, n)
		}
	}
	for _, s := range spans["connect"] {
		a := first[0]
		if s.Parent.SpanID() == second[0].SpanContext.SpanID() {
			a = second[0]
		} else if s.Parent.SpanID() != a.SpanContext.SpanID() {
			t.Fatalf("a connect span's parent is no attempt")
		}
		if s.StartTime.Before(a.StartTime) || s.EndTime.After(a.EndTime) {
			t.Errorf("connect [%v, %v] lies outside its attempt [%v, %v]", s.StartTime, s.EndTime, a.StartTime, a.EndTime)
		}
	}
	want := "00-" + root.SpanContext.TraceID().String() + "-" + second[0].SpanContext.SpanID().String() + "-01"
	if len(got) != 2 || got[1] != want {
		t.Errorf("the target received traceparent %q, want the second %q", got, want)
	}
	res, _ := c.History().Get(0)
	if res.TraceID() != root.SpanContext.TraceID().String() || !strings.Contains(res.DebugOutput(), "trace_id="+res.TraceID()) {
		t.Errorf("trace id %q is not the probe's, or not in its debug output:\n%s", res.TraceID(), res.DebugOutput())
	}
}

// TestProbeTraceOfAFailure: the probe span says why the probe failed.
func TestProbeTraceOfAFailure(t *testing.T) {
	c, exp := tracedCollector(t)
	scrape(t, c, url.Values{"module": {"traced"}, "target": {closedPort(t)}}, nil)
	root := spansByName(exp)["probe traced"]
	if len(root) != 1 {
		t.Fatalf("want one probe span, got %v", exp.GetSpans())
	}
	s := root[0]
	if s.Status.Code != codes.Error || attrValue(s.Attributes, attrSuccess) != "false" ||
		attrValue(s.Attributes, attrFailureClass) != "connect" || attrValue(s.Attributes, attrReason) != "refused" ||
		attrValue(s.Attributes, attrPhase) != "connect" {
		t.Errorf("probe span: status %v, attributes %v", s.Status, s.Attributes)
	}
	if d := s.EndTime.Sub(s.StartTime); d <= 0 || d > 5*time.Second {
		t.Errorf("probe span lasted %v", d)
	}
}

// TestProbeJoinsTheCallersTrace: a scrape that carries a traceparent gets
// its probe traced inside the caller's trace.
func TestProbeJoinsTheCallersTrace(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer target.Close()
	c, exp := tracedCollector(t)
	const caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	scrape(t, c, url.Values{"module": {"traced"}, "target": {target.URL}}, http.Header{"Traceparent": {caller}})
	root := spansByName(exp)["probe traced"]
	if len(root) != 1 || root[0].SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" ||
		root[0].Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("the probe did not join the caller's trace: %v", root)
	}
}

// TestUntracedProbeHasNoTraceID: with tracing off nothing is propagated
// and no trace id is logged.
func TestUntracedProbeHasNoTraceID(t *testing.T) {
	var got string
	target := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("traceparent")
	}))
	defer target.Close()
	cfg, err := config.Load([]byte(traceConfig))
	if err != nil {
		t.Fatal(err)
	}
	set, err := prober.NewSet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := Runner{Logger: slog.New(slog.DiscardHandler)}.Run(context.Background(), 7, mustModule(t, set, "traced"), target.URL, 5*time.Second)
	if !res.Success() || got != "" || res.TraceID() != "" || strings.Contains(res.Log(), "trace_id") ||
		!strings.Contains(res.Log(), "probe_id=7") {
		t.Errorf("success %v, traceparent %q, trace id %q, log:\n%s", res.Success(), got, res.TraceID(), res.Log())
	}
}

func mustModule(t *testing.T, set *core.Set, name string) *core.Module {
	t.Helper()
	m, ok := set.Module(name)
	if !ok {
		t.Fatalf("no module %q", name)
	}
	return m
}

// TestJSONLogLinesCarryTheProbe: with --log.format=json each line a probe
// sends to the main log is one JSON object tagged with the probe, and its
// trace when traced.
func TestJSONLogLinesCarryTheProbe(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer target.Close()
	c, _ := tracedCollector(t)
	var buf strings.Builder
	c.logger = slog.New(slog.NewJSONHandler(&buf, nil))
	c.proberLevel = slog.LevelDebug // every line of a successful probe
	scrape(t, c, url.Values{"module": {"traced"}, "target": {target.URL}}, nil)
	res, _ := c.History().Get(0)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("want the probe's lines in the main log, got:\n%s", buf.String())
	}
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not one JSON object per line: %v\n%s", err, line)
		}
		if rec["module"] != "traced" || rec["target"] != target.URL || rec["probe_id"] != 0.0 || rec["trace_id"] != res.TraceID() {
			t.Errorf("line lacks the probe's tags: %s", line)
		}
	}
}

// TestUntracedCollectorIgnoresTheCallersTrace: with tracing off, a scrape's
// traceparent is neither logged nor passed on to the target.
func TestUntracedCollectorIgnoresTheCallersTrace(t *testing.T) {
	var got string
	target := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("traceparent")
	}))
	defer target.Close()
	c, _ := tracedCollector(t)
	c.tracer = nil
	scrape(t, c, url.Values{"module": {"traced"}, "target": {target.URL}},
		http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
	res, _ := c.History().Get(0)
	if got != "" || res.TraceID() != "" {
		t.Errorf("tracing off: the target got traceparent %q, the probe has trace id %q", got, res.TraceID())
	}
}
