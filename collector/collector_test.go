package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/prober"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

const testConfig = `
modules:
  http_2xx:
    prober: http
    timeout: 5s
  http_body:
    prober: http
    http:
      fail_if_body_not_matches_regexp: ["healthy"]
      basic_auth:
        username: probe
        password: hunter2
  tcp_connect:
    prober: tcp
    timeout: 5s
  future:
    prober: icmp
`

// newTestCollector returns a collector serving testConfig and the registry
// holding its own metrics.
func newTestCollector(tb testing.TB, logger *slog.Logger) (*Collector, *prometheus.Registry) {
	tb.Helper()
	cfg, err := config.Load([]byte(testConfig))
	if err != nil {
		tb.Fatal(err)
	}
	// Every prober of the schema runs today; a module naming one a newer
	// configuration might know stands for a prober this build cannot run.
	future := cfg.Modules["future"]
	future.Prober = "quic"
	cfg.Modules["future"] = future
	set, err := prober.NewSet(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	c := New(Options{TimeoutOffset: 0.5, HistoryLimit: 3, Logger: logger, ProberLevel: slog.LevelInfo, Registerer: reg})
	c.SetModules(set)
	return c, reg
}

func probeURL(params url.Values) string { return "/probe?" + params.Encode() }

// scrape sends one /probe request and returns the response and its body.
func scrape(t *testing.T, h http.Handler, params url.Values, header http.Header) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, probeURL(params), nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// parseMetrics reads a text exposition into families by name.
func parseMetrics(t *testing.T, body string) map[string]*familyView {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the exposition: %v\n%s", err, body)
	}
	out := map[string]*familyView{}
	for name, mf := range mfs {
		fv := &familyView{}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			fv.series = append(fv.series, seriesView{labels: labels, value: m.GetGauge().GetValue()})
		}
		out[name] = fv
	}
	return out
}

type seriesView struct {
	labels map[string]string
	value  float64
}

type familyView struct{ series []seriesView }

func (f *familyView) value() float64 { return f.series[0].value }

// The scrapes /probe refuses, with blackbox_exporter's status codes, checked
// in its order: the module, the scrape timeout header, the target, the
// prober. Each case is wrong in its own way and in every way checked
// later, so a check made in the wrong order shows.
func TestProbeRefusals(t *testing.T) {
	c, reg := newTestCollector(t, nil)
	badTimeout := http.Header{ScrapeTimeoutHeader: {"soon"}}
	tests := []struct {
		name   string
		params url.Values
		header http.Header
		status int
		want   string
	}{
		{"unknown module", url.Values{"module": {"nope"}}, badTimeout, 400, `Unknown module "nope"; the configured modules are: future, http_2xx, http_body`},
		{"bad scrape timeout header", url.Values{"module": {"future"}}, badTimeout, 500, `Failed to parse timeout from Prometheus header: strconv.ParseFloat: parsing "soon": invalid syntax`},
		{"out of range scrape timeout header", url.Values{"module": {"future"}}, http.Header{ScrapeTimeoutHeader: {"1e400"}}, 500, "value out of range"},
		{"missing target", url.Values{"module": {"future"}}, nil, 400, "Target parameter is missing"},
		{"unknown prober", url.Values{"module": {"future"}, "target": {"127.0.0.1"}, "hostname": {"a b"}}, nil, 400, `Unknown prober "quic"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := scrape(t, c, tc.params, tc.header)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tc.status, body)
			}
			if !strings.HasPrefix(body, tc.want) && !strings.Contains(body, tc.want) {
				t.Errorf("body %q does not contain %q", body, tc.want)
			}
		})
	}
	if got := testutil.ToFloat64(c.unknownModule); got != 1 {
		t.Errorf("blackbox_module_unknown_total = %v, want 1", got)
	}
	if n, err := testutil.GatherAndCount(reg, "blackbox_module_unknown_total"); err != nil || n != 1 {
		t.Errorf("blackbox_module_unknown_total registered %d times (err %v), want 1", n, err)
	}
}

// A module whose prober sonde does not know is answered exactly as
// blackbox_exporter answers it, and never probes.
func TestUnknownProberIsBlackboxs400(t *testing.T) {
	cfg := &config.Config{Modules: map[string]config.Module{"m": {Prober: "quic"}}}
	set, err := prober.NewSet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := New(Options{HistoryLimit: 10, Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()})
	c.SetModules(set)
	resp, body := scrape(t, c, url.Values{"module": {"m"}, "target": {"127.0.0.1:1"}}, nil)
	if resp.StatusCode != http.StatusBadRequest || body != "Unknown prober \"quic\"\n" {
		t.Errorf("status %d body %q, want 400 %q", resp.StatusCode, body, "Unknown prober \"quic\"\n")
	}
	if recent, _ := c.History().Lists(); len(recent) != 0 {
		t.Errorf("a refused scrape is in the history: %v", targets(recent))
	}
}

func TestProbeSuccessAndFailure(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != "probe" || pass != "hunter2" {
			io.WriteString(w, "who are you?")
			return
		}
		io.WriteString(w, "healthy")
	}))
	defer target.Close()
	refused := closedPort(t)
	c, _ := newTestCollector(t, nil)

	tests := []struct {
		name        string
		module      string
		target      string
		wantSuccess float64
		wantFailure map[string]string
	}{
		{"default module", "", target.URL, 1, nil},
		{"body check with basic auth", "http_body", target.URL, 1, nil},
		{"refused", "http_2xx", refused, 0, map[string]string{"class": "connect", "reason": "refused", "phase": "connect"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			params := url.Values{"target": {tc.target}}
			if tc.module != "" {
				params.Set("module", tc.module)
			}
			resp, body := scrape(t, c, params, http.Header{ScrapeTimeoutHeader: {"3"}})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			m := parseMetrics(t, body)
			if got := m["probe_success"].value(); got != tc.wantSuccess {
				t.Errorf("probe_success = %v, want %v\n%s", got, tc.wantSuccess, body)
			}
			for _, name := range []string{"probe_duration_seconds", "probe_timeout_seconds", "probe_http_status_code"} {
				if m[name] == nil {
					t.Errorf("%s missing", name)
				}
			}
			info := m["probe_failure_info"]
			if tc.wantFailure == nil {
				if info != nil {
					t.Errorf("probe_failure_info present on success: %v", info.series)
				}
				return
			}
			if info == nil || len(info.series) != 1 {
				t.Fatalf("probe_failure_info = %v, want one series", info)
			}
			for k, v := range tc.wantFailure {
				if info.series[0].labels[k] != v {
					t.Errorf("probe_failure_info %s = %q, want %q", k, info.series[0].labels[k], v)
				}
			}
		})
	}
}

func TestProbeTimeoutIsExported(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer target.Close()
	c, _ := newTestCollector(t, nil)
	tests := []struct {
		header string
		module string
		want   float64
	}{
		{"10", "http_2xx", 5},  // module timeout is shorter than 10-0.5
		{"3", "http_2xx", 2.5}, // scrape timeout less the offset is shorter
		{"", "http_body", 119.5},
	}
	for _, tc := range tests {
		h := http.Header{}
		if tc.header != "" {
			h.Set(ScrapeTimeoutHeader, tc.header)
		}
		_, body := scrape(t, c, url.Values{"module": {tc.module}, "target": {target.URL}}, h)
		if got := parseMetrics(t, body)["probe_timeout_seconds"].value(); got != tc.want {
			t.Errorf("header %q module %s: probe_timeout_seconds = %v, want %v", tc.header, tc.module, got, tc.want)
		}
	}
}

func TestTimeoutComputation(t *testing.T) {
	tests := []struct {
		name   string
		header string
		module time.Duration
		offset float64
		want   time.Duration
	}{
		{"no header: 120s less offset", "", 0, 0.5, 119500 * time.Millisecond},
		{"zero header counts as absent", "0", 0, 0.5, 119500 * time.Millisecond},
		{"header less offset", "10", 0, 0.5, 9500 * time.Millisecond},
		{"module shorter than header", "10", 3 * time.Second, 0.5, 3 * time.Second},
		{"module longer than header", "10", 30 * time.Second, 0.5, 9500 * time.Millisecond},
		{"fractional header", "1.5", 0, 0.5, time.Second},
		{"offset eats everything, module set", "0.4", 2 * time.Second, 0.5, 2 * time.Second},
		{"offset eats everything, no module timeout: whole scrape", "0.4", 0, 0.5, 400 * time.Millisecond},
		{"no offset", "7", 0, 0, 7 * time.Second},
		// What blackbox_exporter does with a header that parses but
		// makes no sense: the module's timeout, else no time at all.
		{"negative header, module set", "-5", 3 * time.Second, 0.5, 3 * time.Second},
		{"negative header, no module timeout", "-5", 0, 0.5, 0},
		{"minus infinity, module set", "-Inf", 3 * time.Second, 0.5, 3 * time.Second},
		{"infinity, module set", "+Inf", 3 * time.Second, 0.5, 3 * time.Second},
		{"NaN, even with a module timeout", "NaN", 3 * time.Second, 0.5, 0},
		{"NaN, no module timeout", "NaN", 0, 0.5, 0},
		// Too long to be a duration: blackbox overflows into a negative
		// timeout and fails at once; sonde clamps to the longest duration.
		{"infinity, no module timeout", "Inf", 0, 0.5, math.MaxInt64},
		{"1e10, no module timeout", "1e10", 0, 0.5, math.MaxInt64},
		{"1e10, module set", "1e10", 3 * time.Second, 0.5, 3 * time.Second},
		{"1e10, no offset", "1e10", 0, 0, math.MaxInt64},
		{"too long for a duration", "1e300", 0, 0.5, math.MaxInt64},
		{"just below the longest duration", "9223372036.854775", 0, 0, 9223372036854774784},
		{"rounds to 2^63 nanoseconds", "9223372036.8547758", 0, 0, math.MaxInt64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.header != "" {
				h.Set(ScrapeTimeoutHeader, tc.header)
			}
			got, err := probeTimeout(h, tc.module, tc.offset)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"abc", "1e400", "5s", ""} {
		h := http.Header{ScrapeTimeoutHeader: {bad}}
		_, err := probeTimeout(h, 0, 0.5)
		var ref *refusal
		if bad == "" {
			if err != nil {
				t.Errorf("an empty header is no header: %v", err)
			}
			continue
		}
		if !errors.As(err, &ref) || ref.status != http.StatusInternalServerError {
			t.Errorf("header %q: %v, want blackbox's 500", bad, err)
		}
	}
}

// A scrape timeout header that leaves the probe no time is answered as
// blackbox_exporter answers it: 200, a probe that failed at once. With a
// module timeout the probe runs with that.
func TestScrapeTimeoutLeavingNoTime(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer target.Close()
	c := collectorFor(t, `
modules:
  no_timeout:
    prober: http
  with_timeout:
    prober: http
    timeout: 5s
  tcp:
    prober: tcp
`)
	tcpTarget := strings.TrimPrefix(target.URL, "http://")
	tests := []struct {
		module, target, header string
		success                float64
		timeout                float64
	}{
		{"no_timeout", target.URL, "-5", 0, 0},
		{"no_timeout", target.URL, "NaN", 0, 0},
		{"tcp", tcpTarget, "-5", 0, 0},
		{"with_timeout", target.URL, "-5", 1, 5},
		{"with_timeout", target.URL, "-Inf", 1, 5},
	}
	for _, tc := range tests {
		t.Run(tc.module+" "+tc.header, func(t *testing.T) {
			start := time.Now()
			resp, body := scrape(t, c, url.Values{"module": {tc.module}, "target": {tc.target}}, http.Header{ScrapeTimeoutHeader: {tc.header}})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200: %s", resp.StatusCode, body)
			}
			if took := time.Since(start); took > 4*time.Second {
				t.Errorf("the scrape took %v", took)
			}
			m := parseMetrics(t, body)
			if got := m["probe_success"].value(); got != tc.success {
				t.Errorf("probe_success = %v, want %v\n%s", got, tc.success, body)
			}
			if got := m["probe_timeout_seconds"].value(); got != tc.timeout {
				t.Errorf("probe_timeout_seconds = %v, want %v", got, tc.timeout)
			}
			if tc.success == 0 {
				if info := m["probe_failure_info"].series[0].labels; info["class"] != "timeout" || info["reason"] != "deadline" {
					t.Errorf("probe_failure_info = %v, want timeout/deadline", info)
				}
			}
		})
	}
}

func TestProbeDeadlineIsKept(t *testing.T) {
	hang := make(chan struct{})
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	defer target.Close()
	defer close(hang)
	c, _ := newTestCollector(t, nil)
	start := time.Now()
	_, body := scrape(t, c, url.Values{"target": {target.URL}}, http.Header{ScrapeTimeoutHeader: {"0.8"}})
	// The target never answers: a probe that ignored its deadline would
	// hang until the test ends, so a margin of seconds catches it.
	if took := time.Since(start); took > 300*time.Millisecond+2*time.Second {
		t.Errorf("the probe took %v with a 0.3s deadline", took)
	}
	m := parseMetrics(t, body)
	info := m["probe_failure_info"].series[0].labels
	if info["class"] != "timeout" || info["reason"] != "deadline" || info["phase"] != "processing" {
		t.Errorf("probe_failure_info = %v, want timeout/deadline/processing", info)
	}
}

func TestScrapeCancelledByPrometheus(t *testing.T) {
	hang := make(chan struct{})
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	defer target.Close()
	defer close(hang)
	c, _ := newTestCollector(t, nil)
	m, _ := c.Modules().Module("http_2xx")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	res := Run(ctx, m, target.URL, 5*time.Second, slog.New(slog.DiscardHandler), slog.LevelInfo)
	if res.Err == nil || res.Err.Class != taxonomy.ClassTimeout || res.Err.Reason != taxonomy.ReasonCanceled {
		t.Errorf("err = %v, want timeout/canceled", res.Err)
	}
}

func TestDebugOutput(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "sick") }))
	defer target.Close()
	c, _ := newTestCollector(t, nil)
	resp, body := scrape(t, c, url.Values{"module": {"http_body"}, "target": {target.URL}, "debug": {"true"}}, nil)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	for _, want := range []string{
		"Logs for the probe:",
		`msg="Beginning probe" module=http_body target=` + target.URL,
		`fail_if_body_not_matches_regexp[0] \"healthy\" did not match the body`,
		"Metrics that would have been returned:",
		"probe_success 0",
		`probe_failure_info{class="assertion",phase="validate",reason="body_regex"} 1`,
		"Module configuration:",
		"prober: http",
		"password: <secret>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("debug output lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "hunter2") {
		t.Error("debug output shows the password")
	}
}

func TestExpositionFormats(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer target.Close()
	c, _ := newTestCollector(t, nil)
	params := url.Values{"target": {target.URL}}

	resp, body := scrape(t, c, params, http.Header{
		"Accept":          {"application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"},
		"Accept-Encoding": {"gzip"},
	})
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/openmetrics-text") || !bytes.HasSuffix(plain, []byte("# EOF\n")) {
		t.Errorf("want OpenMetrics ending in # EOF, got %q:\n%s", resp.Header.Get("Content-Type"), plain)
	}

	resp, body = scrape(t, c, params, http.Header{"Accept-Encoding": {"gzip;q=0, identity"}})
	if resp.Header.Get("Content-Encoding") != "" || !strings.Contains(body, "probe_success 1") {
		t.Errorf("gzip;q=0 must get plain text, got encoding %q body %q", resp.Header.Get("Content-Encoding"), body)
	}
}

func TestHostnameParameter(t *testing.T) {
	var gotHost string
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { gotHost = r.Host }))
	defer target.Close()
	c, _ := newTestCollector(t, nil)
	_, body := scrape(t, c, url.Values{"target": {target.URL}, "hostname": {"www.example.test"}}, nil)
	if !strings.Contains(body, "probe_success 1") || gotHost != "www.example.test" {
		t.Errorf("Host %q, body %s", gotHost, body)
	}
}

// A hostname parameter is never a reason to refuse the scrape, as in
// blackbox_exporter, except one that contradicts the module's own Host
// header (blackbox's 400). One that is no host name fails the probe of a
// prober that would send it, before anything is sent; the tcp prober uses
// it only as a TLS server name, and probes without TLS as blackbox does.
func TestHostnameParameterIsNeverRefused(t *testing.T) {
	var contacted atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { contacted.Add(1) }))
	defer target.Close()
	c := collectorFor(t, `
modules:
  http_2xx:
    prober: http
  http_host:
    prober: http
    http:
      headers:
        Host: www.example.test
  tcp_connect:
    prober: tcp
  grpc:
    prober: grpc
  websocket:
    prober: websocket
`)
	hostPort := strings.TrimPrefix(target.URL, "http://")
	tests := []struct {
		module, target, hostname string
		status                   int
		success                  float64
	}{
		{"http_2xx", target.URL, "a b", 200, 0},
		{"http_2xx", target.URL, "a/b", 200, 0},
		{"http_2xx", target.URL, "a\r\nX-Injected: 1", 200, 0},
		{"tcp_connect", hostPort, "a b", 200, 1},
		{"grpc", hostPort, "a/b", 200, 0},
		{"websocket", target.URL, "a b", 200, 0},
		{"http_host", target.URL, "other.example.test", 400, 0},
	}
	for _, tc := range tests {
		t.Run(tc.module+" "+tc.hostname, func(t *testing.T) {
			contacted.Store(0)
			resp, body := scrape(t, c, url.Values{"module": {tc.module}, "target": {tc.target}, "hostname": {tc.hostname}}, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status != http.StatusOK {
				if !strings.Contains(body, "Bad hostname parameter") {
					t.Errorf("body %q", body)
				}
				return
			}
			m := parseMetrics(t, body)
			if got := m["probe_success"].value(); got != tc.success {
				t.Fatalf("probe_success = %v, want %v\n%s", got, tc.success, body)
			}
			if tc.success == 1 {
				return
			}
			if info := m["probe_failure_info"].series[0].labels; info["class"] != "prober" || info["reason"] != "invalid_target" || info["phase"] != "setup" {
				t.Errorf("probe_failure_info = %v, want prober/invalid_target in setup", info)
			}
			if n := contacted.Load(); n != 0 {
				t.Errorf("the target got %d requests", n)
			}
		})
	}
}

func TestHistoryKeepsFailuresApart(t *testing.T) {
	h := NewHistory(2)
	m := &core.Module{Name: "m"}
	failure := taxonomy.Failf(taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect, "refused")
	add := func(target string, err *taxonomy.Error) *Result {
		r := &Result{Module: m, Target: target, Err: err, log: &probeLog{}}
		h.Add(r)
		return r
	}
	failed := add("a", failure)
	for _, target := range []string{"b", "c", "d"} {
		add(target, nil)
	}
	recent, failedList := h.Lists()
	if len(recent) != 2 || recent[0].Target != "d" || recent[1].Target != "c" {
		t.Errorf("recent = %v, want d, c", targets(recent))
	}
	if len(failedList) != 1 || failedList[0] != failed {
		t.Errorf("failed = %v, want a", targets(failedList))
	}
	if got, ok := h.Get(failed.ID); !ok || got != failed {
		t.Error("the failed probe pushed out of the recent list is not found by id")
	}
	if _, ok := h.Get(1); ok {
		t.Error("probe b should be gone")
	}
	if got, ok := h.Earliest("a", "m"); !ok || got != failed {
		t.Error("Earliest(a, m) did not find the failed probe")
	}
	if _, ok := NewHistory(0).Get(0); ok {
		t.Error("a zero limit keeps nothing")
	}
}

func targets(rs []*Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Target)
	}
	return out
}

func TestPages(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer target.Close()
	c, _ := newTestCollector(t, nil)
	evil := target.URL + "/<script>alert(1)</script>"
	scrape(t, c, url.Values{"target": {evil}}, nil)
	scrape(t, c, url.Values{"target": {closedPort(t)}}, nil)

	page := get(t, c.LandingPage, "/")
	for _, want := range []string{"http_body", "future", "(unknown: its scrapes are answered 400)", "Recent failed probes", "connect/refused in connect", `href="logs?id=1"`} {
		if !strings.Contains(page, want) {
			t.Errorf("landing page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>alert") {
		t.Error("the landing page does not escape targets")
	}

	cfg := get(t, c.ConfigPage, "/config")
	if !strings.Contains(cfg, "password: <secret>") || strings.Contains(cfg, "hunter2") {
		t.Errorf("/config must mask secrets:\n%s", cfg)
	}

	logs := get(t, c.LogsPage, "/logs?id=1")
	if !strings.Contains(logs, "class=connect reason=refused phase=connect") {
		t.Errorf("/logs?id=1:\n%s", logs)
	}
	byTarget := get(t, c.LogsPage, "/logs?"+url.Values{"module": {"http_2xx"}, "target": {evil}}.Encode())
	if !strings.Contains(byTarget, "probe_success 1") {
		t.Errorf("/logs by target:\n%s", byTarget)
	}
	for path, code := range map[string]int{"/logs?id=x": 400, "/logs?id=99": 404, "/logs": 400} {
		rec := httptest.NewRecorder()
		c.LogsPage(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != code {
			t.Errorf("%s: status %d, want %d", path, rec.Code, code)
		}
	}
}

// /logs answers as blackbox_exporter's does, checked against the 0.28
// binary: the same refusals for each mix of id, target and module, and by
// target the probe kept longest, of any module unless one is named.
func TestLogsPageAsBlackbox(t *testing.T) {
	c := collectorFor(t, `
modules:
  http_2xx:
    prober: http
  tcp_connect:
    prober: tcp
`)
	closed := closedPort(t)
	hostPort := strings.TrimPrefix(closed, "http://")
	// Probe 0: tcp of host:port; 1: http of the URL; 2: http of host:port.
	scrape(t, c, url.Values{"module": {"tcp_connect"}, "target": {hostPort}}, nil)
	scrape(t, c, url.Values{"module": {"http_2xx"}, "target": {closed}}, nil)
	scrape(t, c, url.Values{"module": {"http_2xx"}, "target": {hostPort}}, nil)
	tests := []struct {
		query  url.Values
		status int
		want   string // the body's start, or for 200 the probe's module= tag and id
	}{
		{url.Values{}, 400, "Probe id or target must be defined as http query parameters"},
		{url.Values{"id": {"x"}}, 400, "Probe id or target must be defined as http query parameters"},
		{url.Values{"id": {"-1"}}, 400, "Probe id or target must be defined as http query parameters"},
		{url.Values{"module": {"http_2xx"}}, 400, "Probe id or target must be defined as http query parameters"},
		{url.Values{"id": {"0"}, "target": {hostPort}}, 400, "Probe id and target can't be defined at the same time"},
		{url.Values{"id": {"0"}, "module": {"http_2xx"}}, 400, "Probe module filter only works in conjunction with target parameter"},
		{url.Values{"id": {"99"}}, 404, "Probe id not found"},
		{url.Values{"id": {"-5"}}, 404, "Probe id not found"},
		{url.Values{"target": {"nowhere:1"}}, 404, "Probe target not found"},
		{url.Values{"target": {hostPort}, "module": {"icmp"}}, 404, "Probe target not found"},
		{url.Values{"id": {"1"}}, 200, "module=http_2xx target=" + closed + " probe_id=1"},
		{url.Values{"target": {hostPort}}, 200, "module=tcp_connect target=" + hostPort + " probe_id=0"},
		{url.Values{"target": {hostPort}, "module": {"http_2xx"}}, 200, "module=http_2xx target=" + hostPort + " probe_id=2"},
		{url.Values{"id": {"x"}, "target": {closed}}, 200, "module=http_2xx target=" + closed + " probe_id=1"},
	}
	for _, tc := range tests {
		t.Run(tc.query.Encode(), func(t *testing.T) {
			rec := httptest.NewRecorder()
			c.LogsPage(rec, httptest.NewRequest(http.MethodGet, "/logs?"+tc.query.Encode(), nil))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if body := rec.Body.String(); tc.status != 200 && body != tc.want+"\n" || tc.status == 200 && !strings.Contains(body, tc.want) {
				t.Errorf("body %q, want %q", body, tc.want)
			}
		})
	}
}

// By target, /logs shows the probe kept longest, as blackbox's does: a
// failure kept after it left the recent list before anything in it.
func TestHistoryEarliest(t *testing.T) {
	h := NewHistory(2)
	m, other := &core.Module{Name: "m"}, &core.Module{Name: "other"}
	failure := taxonomy.Failf(taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect, "refused")
	add := func(m *core.Module, target string, err *taxonomy.Error) *Result {
		r := &Result{Module: m, Target: target, Err: err, log: &probeLog{}}
		h.Add(r)
		return r
	}
	kept := add(m, "t", failure)
	add(other, "t", nil)
	add(m, "t", nil) // pushes the failure out of the recent list
	if got, ok := h.Earliest("t", ""); !ok || got != kept {
		t.Errorf("Earliest(t, any) = %v, want the kept failure", got)
	}
	if got, ok := h.Earliest("t", "other"); !ok || got.Module != other {
		t.Errorf("Earliest(t, other) = %v", got)
	}
	if _, ok := h.Earliest("u", ""); ok {
		t.Error("found a target never probed")
	}
}

func get(t *testing.T, h http.HandlerFunc, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("%s: status %d: %s", path, rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// TestProbeLogsReachTheMainLogAtProberLevel: probe lines at --log.prober
// or above reach the main log at their own level, whatever --log.level
// says, as in blackbox_exporter 0.27 and later. A successful probe logs
// its progress at debug, a failed one its failure at error.
func TestProbeLogsReachTheMainLogAtProberLevel(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer target.Close()
	down := closedPort(t)
	for _, tc := range []struct {
		mainLevel, proberLevel slog.Level
		target                 string
		want, notWant          string
	}{
		{slog.LevelInfo, slog.LevelInfo, target.URL, "", `msg="Probe succeeded"`},
		{slog.LevelInfo, slog.LevelInfo, down, `level=ERROR msg="Probe failed"`, `msg="Beginning probe"`},
		{slog.LevelInfo, slog.LevelDebug, target.URL, `level=DEBUG msg="Probe succeeded"`, ""},
		{slog.LevelError, slog.LevelDebug, target.URL, `level=DEBUG msg="Beginning probe"`, ""},
		{slog.LevelDebug, slog.LevelError, down, `level=ERROR msg="Probe failed"`, `msg="Beginning probe"`},
	} {
		var buf bytes.Buffer
		main := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.mainLevel}))
		c, _ := newTestCollector(t, main)
		c.proberLevel = tc.proberLevel
		scrape(t, c, url.Values{"target": {tc.target}}, nil)
		out := buf.String()
		if tc.want != "" && !strings.Contains(out, tc.want) {
			t.Errorf("main %v, prober %v, target %s: no %s in the main log:\n%s", tc.mainLevel, tc.proberLevel, tc.target, tc.want, out)
		}
		if tc.notWant != "" && strings.Contains(out, tc.notWant) {
			t.Errorf("main %v, prober %v, target %s: %s in the main log:\n%s", tc.mainLevel, tc.proberLevel, tc.target, tc.notWant, out)
		}
		if tc.want != "" && !strings.Contains(out, "module=http_2xx target="+tc.target) {
			t.Errorf("forwarded lines lack module and target:\n%s", out)
		}
	}
}

func TestProbeHandlerGroups(t *testing.T) {
	log := &probeLog{}
	var main bytes.Buffer
	h := newProbeHandler(log, slog.NewTextHandler(&main, nil), slog.LevelInfo, []slog.Attr{slog.String("module", "m")})
	logger := slog.New(h).With("a", 1).WithGroup("g").With("b", 2)
	logger.Info("hello", "c", 3)
	got := log.render([]slog.Attr{slog.String("module", "m")})
	if !strings.Contains(got, "a=1 g.b=2 g.c=3") {
		t.Errorf("rendered %q", got)
	}
	if !strings.Contains(main.String(), "a=1 g.b=2 g.c=3") {
		t.Errorf("forwarded %q", main.String())
	}
}

// closedPort returns a URL on which nothing listens until the test ends.
func closedPort(t *testing.T) string {
	t.Helper()
	return "http://" + testkit.ClosedTCPAddr(t)
}

func TestProberPanicFailsOnlyThatProbe(t *testing.T) {
	m := &core.Module{Name: "m"}
	log := &probeLog{}
	var main bytes.Buffer
	env := probeEnv{
		// The main log shows only errors, and --log.prober is at its
		// highest: the panic must reach it all the same.
		logger: slog.New(newProbeHandler(log, slog.NewTextHandler(&main, &slog.HandlerOptions{Level: slog.LevelError}), slog.LevelError, nil)),
		tracer: noTracer,
	}
	boom := func(context.Context, string, *core.Module, *probemetrics.Sink, *slog.Logger) error { panic("boom") }
	err := runProber(context.Background(), boom, "t", m, probemetrics.NewSink(), &env)
	e := taxonomy.Classify(context.Background(), err, taxonomy.PhaseUnknown)
	if e.Class != taxonomy.ClassProber || e.Reason != taxonomy.ReasonInternal || !strings.Contains(e.Error(), "the prober panicked: boom") {
		t.Errorf("err = %v, want prober/internal naming the panic", e)
	}
	if !strings.Contains(log.render(nil), "please report it") {
		t.Error("the panic is not in the probe's log")
	}
	if !strings.Contains(main.String(), "level=ERROR") || !strings.Contains(main.String(), "panic=boom") {
		t.Errorf("the panic did not reach the main log at error level:\n%s", main.String())
	}
}

// TestPagesShowConfigWarnings: the warnings of the configuration in use
// are on the landing page, escaped, and at the top of /config as YAML
// comments, so that the page still loads as a configuration.
func TestPagesShowConfigWarnings(t *testing.T) {
	cfg, err := config.Load([]byte("modules:\n  typo:\n    prober: htp\n  odd:\n    prober: http\n    http:\n      valid_status_codes: [999]\n      headers: {X-A: '<b>'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	set, err := prober.NewSet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := New(Options{TimeoutOffset: 0.5, HistoryLimit: 3, Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()})
	c.SetModules(set)

	page := get(t, c.LandingPage, "/")
	for _, want := range []string{"Configuration warnings", `line 3: module &#34;typo&#34;: prober: &#34;htp&#34; is not a prober`, `line 7: module &#34;odd&#34;: http.valid_status_codes[0]: 999`} {
		if !strings.Contains(page, want) {
			t.Errorf("landing page lacks %q", want)
		}
	}
	shown := get(t, c.ConfigPage, "/config")
	if !strings.HasPrefix(shown, `# warning: line 3: module "typo": prober:`) {
		t.Errorf("/config does not start with the warnings:\n%s", shown)
	}
	reloaded, err := config.Load([]byte(shown))
	if err != nil || len(reloaded.Warnings) != 2 {
		t.Errorf("/config does not load back with its two warnings: %v, %v", err, reloaded)
	}
}
