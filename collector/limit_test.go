package collector

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/metricsdoc"
	"github.com/sonde-exporter/sonde/prober"
	"github.com/sonde-exporter/sonde/prober/core"
)

const limitConfig = `
modules:
  http_2xx:
    prober: http
  one:
    prober: http
    max_concurrent: 1
`

// limitedCollector returns a collector serving cfgText with
// --probe.max-concurrent set to global.
func limitedCollector(t *testing.T, cfgText string, global int) *Collector {
	t.Helper()
	c := New(Options{TimeoutOffset: 0.5, HistoryLimit: 10, Logger: slog.New(slog.DiscardHandler),
		Registerer: prometheus.NewRegistry(), MaxConcurrent: global})
	c.SetModules(moduleSet(t, cfgText))
	return c
}

func moduleSet(t *testing.T, cfgText string) *core.Set {
	t.Helper()
	cfg, err := config.Load([]byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	set, err := prober.NewSet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// gatedTarget serves /hold, which answers only once the gate opens (or
// after delay, if set), and /fast, which answers at once. It keeps the
// most requests it saw at once.
type gatedTarget struct {
	*httptest.Server
	gate           chan struct{}
	opened         sync.Once
	delay          time.Duration
	now, maxAtOnce atomic.Int32
}

func newGatedTarget(t *testing.T, delay time.Duration) *gatedTarget {
	g := &gatedTarget{gate: make(chan struct{}), delay: delay}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := g.now.Add(1)
		defer g.now.Add(-1)
		for {
			m := g.maxAtOnce.Load()
			if n <= m || g.maxAtOnce.CompareAndSwap(m, n) {
				break
			}
		}
		if r.URL.Path == "/hold" {
			var after <-chan time.Time
			if g.delay > 0 {
				after = time.After(g.delay)
			}
			select {
			case <-g.gate:
			case <-after:
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(func() {
		g.open()
		g.Close()
	})
	return g
}

func (g *gatedTarget) open() { g.opened.Do(func() { close(g.gate) }) }

// answer is one scrape's outcome, safe to collect from goroutines.
type answer struct {
	code int
	body string
}

// scrapeAsync sends a /probe request with the given scrape timeout header
// and delivers the answer on the returned channel.
func scrapeAsync(c *Collector, module, target, scrapeTimeout string) <-chan answer {
	out := make(chan answer, 1)
	go func() {
		req := httptest.NewRequest(http.MethodGet, probeURL(url.Values{"module": {module}, "target": {target}}), nil)
		req.Header.Set(ScrapeTimeoutHeader, scrapeTimeout)
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, req)
		out <- answer{rec.Code, rec.Body.String()}
	}()
	return out
}

// waitInFlight waits until n probes run.
func waitInFlight(t *testing.T, c *Collector, n float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(c.limits.inFlight) != n {
		if time.Now().After(deadline) {
			t.Fatalf("in flight: %v, want %v", testutil.ToFloat64(c.limits.inFlight), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConcurrencyLimitRejectsAtTheDeadline(t *testing.T) {
	tests := []struct {
		name    string
		global  int
		holder  string // module of the probes holding slots on /hold
		holders int
		module  string // module of the probes sent next, to /fast
		extra   int
		// rejected of the extra probes, and what their message names.
		rejected int
		which    string
	}{
		{"global limit", 2, "http_2xx", 2, "http_2xx", 2, 2, "--probe.max-concurrent (2)"},
		{"global limit, other module", 2, "http_2xx", 2, "one", 1, 1, "--probe.max-concurrent (2)"},
		{"module limit", 0, "one", 1, "one", 2, 2, "the module's max_concurrent (1)"},
		{"module limit leaves other modules alone", 0, "one", 1, "http_2xx", 3, 0, ""},
		{"module limit under a global one", 3, "one", 1, "one", 1, 1, "the module's max_concurrent (1)"},
		{"global limit with room", 3, "one", 1, "http_2xx", 2, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := newGatedTarget(t, 0)
			c := limitedCollector(t, limitConfig, tc.global)
			var holders []<-chan answer
			for range tc.holders {
				holders = append(holders, scrapeAsync(c, tc.holder, target.URL+"/hold", "10.5"))
			}
			waitInFlight(t, c, float64(tc.holders))

			// Extra probes that are to be rejected have a 300ms deadline
			// (0.8 - offset 0.5) to wait out; those that are to run have
			// 10s, which a busy machine does not run out of.
			scrapeTimeout := "0.8"
			if tc.rejected == 0 {
				scrapeTimeout = "10.5"
			}
			start := time.Now()
			var extras []<-chan answer
			for range tc.extra {
				extras = append(extras, scrapeAsync(c, tc.module, target.URL+"/fast", scrapeTimeout))
			}
			rejected := 0
			for _, ch := range extras {
				a := <-ch
				if a.code != http.StatusOK {
					t.Fatalf("extra probe answered %d:\n%s", a.code, a.body)
				}
				m := parseMetrics(t, a.body)
				if m["probe_success"].value() == 1 {
					continue
				}
				rejected++
				fi := m["probe_failure_info"].series[0].labels
				if fi["class"] != "prober" || fi["reason"] != "resource_exhausted" || fi["phase"] != "setup" {
					t.Errorf("failure info %v, want prober/resource_exhausted/setup", fi)
				}
				if d := m["probe_duration_seconds"].value(); d < 0.29 || d > 5 {
					t.Errorf("probe_duration_seconds %v, want the 0.3s waited", d)
				}
				if v := m["probe_timeout_seconds"].value(); v != 0.3 {
					t.Errorf("probe_timeout_seconds %v, want 0.3", v)
				}
				if v := m["probe_attempts"].value(); v != 0 {
					t.Errorf("probe_attempts %v, want 0: the prober never ran", v)
				}
			}
			if elapsed := time.Since(start); tc.rejected > 0 && elapsed < 290*time.Millisecond {
				t.Errorf("rejected after %v, before the 300ms deadline", elapsed)
			}
			if rejected != tc.rejected {
				t.Errorf("%d extra probes rejected, want %d", rejected, tc.rejected)
			}
			if got := testutil.ToFloat64(c.limits.rejected.WithLabelValues(tc.module)); got != float64(tc.rejected) {
				t.Errorf("sonde_probes_rejected_total{module=%q} %v, want %d", tc.module, got, tc.rejected)
			}
			if got := testutil.ToFloat64(c.failures.WithLabelValues(tc.module, "prober")); got != float64(tc.rejected) {
				t.Errorf(`sonde_probe_failures_total{class="prober"} %v, want %d`, got, tc.rejected)
			}
			if tc.rejected > 0 {
				// The probe's log says which limit was full.
				recent, _ := c.history.Lists()
				if !strings.Contains(recent[0].Log(), tc.which) {
					t.Errorf("the rejected probe's log does not name %q:\n%s", tc.which, recent[0].Log())
				}
			}

			target.open()
			for _, ch := range holders {
				if a := <-ch; a.code != 200 || !strings.Contains(a.body, "probe_success 1") {
					t.Errorf("a probe holding a slot failed: %d\n%s", a.code, a.body)
				}
			}
			if v := testutil.ToFloat64(c.limits.inFlight); v != 0 {
				t.Errorf("sonde_probes_in_flight %v after every probe ended", v)
			}
			if v := testutil.ToFloat64(c.limits.waiting); v != 0 {
				t.Errorf("sonde_probes_waiting %v after every probe ended", v)
			}
		})
	}
}

// Probes over the limit that get a slot before their deadline run, with
// what is left of it, and never more than the limit run at once.
func TestConcurrencyLimitWaitersGetASlot(t *testing.T) {
	target := newGatedTarget(t, 100*time.Millisecond)
	c := limitedCollector(t, limitConfig, 2)
	var probes []<-chan answer
	for range 6 {
		probes = append(probes, scrapeAsync(c, "http_2xx", target.URL+"/hold", "10.5"))
	}
	shortest := 10.0
	for _, ch := range probes {
		a := <-ch
		if a.code != 200 || !strings.Contains(a.body, "probe_success 1") {
			t.Fatalf("probe failed: %d\n%s", a.code, a.body)
		}
		shortest = min(shortest, parseMetrics(t, a.body)["probe_timeout_seconds"].value())
	}
	if got := target.maxAtOnce.Load(); got > 2 {
		t.Errorf("%d probes reached the target at once, over the limit of 2", got)
	}
	// The last pair waited for two rounds of 100ms.
	if shortest > 9.85 || shortest < 5 {
		t.Errorf("shortest probe_timeout_seconds %v: a probe that waited should run with what is left of its 10s", shortest)
	}
	if got := testutil.ToFloat64(c.limits.rejected.WithLabelValues("http_2xx")); got != 0 {
		t.Errorf("%v probes rejected", got)
	}
	if v := testutil.ToFloat64(c.limits.inFlight); v != 0 {
		t.Errorf("sonde_probes_in_flight %v after every probe ended", v)
	}
}

// A reload that changes a module's limit applies it to new probes at once,
// without disturbing the probes that hold slots of the old one.
func TestConcurrencyLimitFollowsReload(t *testing.T) {
	target := newGatedTarget(t, 0)
	c := limitedCollector(t, limitConfig, 0)
	holder := scrapeAsync(c, "one", target.URL+"/hold", "10.5")
	waitInFlight(t, c, 1)

	// A probe to be rejected waits out a 100ms deadline; one to run has
	// 10s, which a busy machine does not run out of.
	probe := func(wantSuccess bool) {
		t.Helper()
		scrapeTimeout := "0.6"
		if wantSuccess {
			scrapeTimeout = "10.5"
		}
		a := <-scrapeAsync(c, "one", target.URL+"/fast", scrapeTimeout)
		if got := strings.Contains(a.body, "probe_success 1"); a.code != 200 || got != wantSuccess {
			t.Fatalf("probe success %v, want %v: %d\n%s", got, wantSuccess, a.code, a.body)
		}
	}
	probe(false) // the one slot is taken

	c.SetModules(moduleSet(t, limitConfig)) // same limit: the slot stays taken
	probe(false)

	c.SetModules(moduleSet(t, strings.Replace(limitConfig, "max_concurrent: 1", "max_concurrent: 2", 1)))
	probe(true)

	c.SetModules(moduleSet(t, strings.Replace(limitConfig, "max_concurrent: 1", "", 1)))
	probe(true)

	target.open()
	if a := <-holder; !strings.Contains(a.body, "probe_success 1") {
		t.Errorf("the probe holding a slot across reloads failed:\n%s", a.body)
	}
	if v := testutil.ToFloat64(c.limits.inFlight); v != 0 {
		t.Errorf("sonde_probes_in_flight %v after every probe ended", v)
	}
	if got := testutil.ToFloat64(c.limits.rejected.WithLabelValues("one")); got != 2 {
		t.Errorf("sonde_probes_rejected_total{module=\"one\"} %v, want 2", got)
	}
}

// The limits' metrics are documented with their labels.
func TestConcurrencyMetricsDocumented(t *testing.T) {
	docs, err := metricsdoc.Load("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	l := newLimits(1, reg)
	l.rejected.WithLabelValues("m").Inc()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 3 {
		t.Errorf("gathered %d families, want 3", len(mfs))
	}
	for _, mf := range mfs {
		names := []string{}
		for _, l := range mf.GetMetric()[0].GetLabel() {
			names = append(names, l.GetName())
		}
		if p := metricsdoc.Check(docs, mf.GetName(), names); p != "" {
			t.Error(p)
		}
	}
}

// TestRejectedProbeIsTracedAndNumbered: a probe the limit turns away keeps
// the id it was given (its log lines and the history agree) and, with
// tracing on, has a probe span that says why it failed.
func TestRejectedProbeIsTracedAndNumbered(t *testing.T) {
	g := newGatedTarget(t, 0)
	c := limitedCollector(t, limitConfig, 0)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	c.tracer = tp.Tracer("test")

	holder := scrapeAsync(c, "one", g.URL+"/hold", "5")
	waitInFlight(t, c, 1)
	if a := <-scrapeAsync(c, "one", g.URL+"/fast", "0.7"); !strings.Contains(a.body, `reason="resource_exhausted"`) {
		t.Fatalf("the second probe was not rejected: %d\n%s", a.code, a.body)
	}
	g.open()
	<-holder

	_, failed := c.History().Lists()
	if len(failed) != 1 {
		t.Fatalf("want the rejected probe in the failed history, got %d", len(failed))
	}
	res := failed[0]
	if !strings.Contains(res.Log(), "probe_id="+strconv.FormatInt(res.ID, 10)) {
		t.Errorf("the rejected probe's log does not carry its id %d:\n%s", res.ID, res.Log())
	}
	var span *tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.SpanContext.TraceID().String() == res.TraceID() && s.Name == "probe one" {
			span = &s
		}
	}
	if span == nil || attrValue(span.Attributes, attrReason) != "resource_exhausted" || span.Status.Code != codes.Error {
		t.Errorf("no failed probe span for the rejected probe (trace %q): %v", res.TraceID(), exp.GetSpans())
	}
}
