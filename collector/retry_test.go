package collector

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// flaky is a prober that fails with the given errors, in order, then
// succeeds; it records when each attempt started.
type flaky struct {
	mu       sync.Mutex
	failures []*taxonomy.Error
	starts   []time.Time
}

func (f *flaky) probe(_ context.Context, _ string, _ *core.Module, sink *probemetrics.Sink, _ *slog.Logger) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts = append(f.starts, time.Now())
	sink.Set("attempt", "which attempt wrote this sink", float64(len(f.starts)))
	if n := len(f.starts); n <= len(f.failures) {
		return f.failures[n-1]
	}
	return nil
}

func fail(class taxonomy.Class, reason taxonomy.Reason) *taxonomy.Error {
	return taxonomy.Failf(class, reason, taxonomy.PhaseConnect, "attempt failed")
}

func retryModule(mutate func(r *config.Retry)) *core.Module {
	r := config.DefaultRetry()
	r.InitialBackoff = 20 * time.Millisecond
	mutate(&r)
	return &core.Module{Name: "m", Module: config.Module{Retry: r}}
}

func half() float64 { return 0.5 } // no jitter: the backoff exactly

// quietEnv logs nowhere and traces nothing.
func quietEnv() *probeEnv {
	return &probeEnv{logger: slog.New(slog.DiscardHandler), tracer: noTracer}
}

func TestRetryDecisions(t *testing.T) {
	refused := fail(taxonomy.ClassConnect, taxonomy.ReasonRefused)
	tests := []struct {
		name       string
		retry      func(r *config.Retry)
		failures   []*taxonomy.Error
		wantMade   int
		wantOK     bool
		wantFailed map[taxonomy.Class]int
	}{
		{"blackbox behaviour: one attempt", func(r *config.Retry) {}, []*taxonomy.Error{refused}, 1, false, map[taxonomy.Class]int{"connect": 1}},
		{"connect retried until it succeeds", func(r *config.Retry) { r.Attempts = 3 }, []*taxonomy.Error{refused, refused}, 3, true, map[taxonomy.Class]int{"connect": 2}},
		{"out of attempts", func(r *config.Retry) { r.Attempts = 2 }, []*taxonomy.Error{refused, refused, refused}, 2, false, map[taxonomy.Class]int{"connect": 2}},
		{"assertion is never retried", func(r *config.Retry) { r.Attempts = 3 },
			[]*taxonomy.Error{fail(taxonomy.ClassAssertion, taxonomy.ReasonBodyRegex)}, 1, false, map[taxonomy.Class]int{"assertion": 1}},
		{"status is not retried by default", func(r *config.Retry) { r.Attempts = 3 },
			[]*taxonomy.Error{fail(taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus)}, 1, false, map[taxonomy.Class]int{"status": 1}},
		{"status is retried when listed", func(r *config.Retry) { r.Attempts = 3; r.On = []string{"status"} },
			[]*taxonomy.Error{fail(taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus)}, 2, true, map[taxonomy.Class]int{"status": 1}},
		{"NXDOMAIN is never retried", func(r *config.Retry) { r.Attempts = 3 },
			[]*taxonomy.Error{fail(taxonomy.ClassDNS, taxonomy.ReasonNXDomain)}, 1, false, map[taxonomy.Class]int{"dns": 1}},
		{"a server without the health service is never retried", func(r *config.Retry) { r.Attempts = 3 },
			[]*taxonomy.Error{fail(taxonomy.ClassProtocol, taxonomy.ReasonGRPCUnimplemented)}, 1, false, map[taxonomy.Class]int{"protocol": 1}},
		{"a truncated DNS answer is never retried", func(r *config.Retry) { r.Attempts = 3 },
			[]*taxonomy.Error{fail(taxonomy.ClassProtocol, taxonomy.ReasonTruncated)}, 1, false, map[taxonomy.Class]int{"protocol": 1}},
		{"SERVFAIL is", func(r *config.Retry) { r.Attempts = 3 },
			[]*taxonomy.Error{fail(taxonomy.ClassDNS, taxonomy.ReasonServFail)}, 2, true, map[taxonomy.Class]int{"dns": 1}},
		{"prober failures are never retried", func(r *config.Retry) { r.Attempts = 3 },
			[]*taxonomy.Error{fail(taxonomy.ClassProber, taxonomy.ReasonSourceAddress)}, 1, false, map[taxonomy.Class]int{"prober": 1}},
		{"classes change between attempts", func(r *config.Retry) { r.Attempts = 4 },
			[]*taxonomy.Error{refused, fail(taxonomy.ClassTimeout, taxonomy.ReasonDeadline), fail(taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus)},
			3, false, map[taxonomy.Class]int{"connect": 1, "timeout": 1, "status": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &flaky{failures: tc.failures}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			sink, err, a := runAttempts(ctx, f.probe, retryModule(tc.retry), "t", 5*time.Second, quietEnv(), half)
			if a.made != tc.wantMade || (err == nil) != tc.wantOK {
				t.Errorf("made %d attempts, err %v; want %d, success %v", a.made, err, tc.wantMade, tc.wantOK)
			}
			if !equalCounts(a.failed, tc.wantFailed) {
				t.Errorf("failed = %v, want %v", a.failed, tc.wantFailed)
			}
			// The metrics are the last attempt's.
			if v, _ := sink.Value("attempt"); int(v) != a.made {
				t.Errorf("the sink is attempt %v's, want the last, %d", v, a.made)
			}
		})
	}
}

func equalCounts(a, b map[taxonomy.Class]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Each attempt waits its backoff first. A timer fires late on a busy
// machine, never early: a wait is held to its backoff from below, and from
// above only to a margin of seconds, which the uncapped backoffs here
// (4s, then 400s) exceed. The exact figures are backoff's, tested alone.
func TestRetryBackoffTiming(t *testing.T) {
	refused := fail(taxonomy.ClassConnect, taxonomy.ReasonRefused)
	f := &flaky{failures: []*taxonomy.Error{refused, refused, refused}}
	m := retryModule(func(r *config.Retry) {
		r.Attempts = 4
		r.InitialBackoff = 40 * time.Millisecond
		r.Multiplier = 100
		r.MaxBackoff = 100 * time.Millisecond
	})
	const timeout = 20 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err, a := runAttempts(ctx, f.probe, m, "t", timeout, quietEnv(), half)
	if err != nil || a.made != 4 {
		t.Fatalf("made %d, err %v", a.made, err)
	}
	// 40ms, then capped at 100ms.
	for i, want := range []time.Duration{40 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond} {
		got := f.starts[i+1].Sub(f.starts[i])
		if got < want || got > want+2*time.Second {
			t.Errorf("wait before attempt %d = %v, want %v", i+2, got, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	policy := config.Retry{InitialBackoff: 40 * time.Millisecond, Multiplier: 2, MaxBackoff: 100 * time.Millisecond, Jitter: 0.2}
	tests := []struct {
		n      int
		random float64
		want   time.Duration
	}{
		{1, 0.5, 40 * time.Millisecond},
		{2, 0.5, 80 * time.Millisecond},
		{3, 0.5, 100 * time.Millisecond}, // 160ms, capped
		{9, 0.5, 100 * time.Millisecond},
		{1, 0, 32 * time.Millisecond},  // less 20%
		{3, 1, 120 * time.Millisecond}, // the cap plus 20%
	}
	for _, tc := range tests {
		if got := backoff(policy, tc.n, tc.random); got != tc.want {
			t.Errorf("backoff after attempt %d with random %v = %v, want %v", tc.n, tc.random, got, tc.want)
		}
	}
}

func TestRetryJitterIsBounded(t *testing.T) {
	p := config.DefaultRetry() // 100ms, jitter 0.2
	for _, r := range []float64{0, 0.25, 0.5, 0.75, 0.999999} {
		d := backoff(p, 1, r)
		if d < 80*time.Millisecond || d > 120*time.Millisecond {
			t.Errorf("backoff with random %v = %v, want within 100ms ± 20%%", r, d)
		}
	}
	if backoff(p, 1, 0) == backoff(p, 1, 0.999999) {
		t.Error("jitter does not spread the backoff")
	}
	if d := backoff(p, 10, 0.5); d != 2*time.Second {
		t.Errorf("the 10th backoff = %v, want max_backoff 2s", d)
	}
}

// Attempts share the probe's one deadline: the loop stops when another
// attempt would not have the floor (min(100ms, timeout/10)) left. The
// backoffs are long enough that a busy machine makes fewer attempts, never
// more, and the probe is held to its deadline with a margin of seconds.
func TestRetryKeepsTheDeadline(t *testing.T) {
	refused := fail(taxonomy.ClassConnect, taxonomy.ReasonRefused)
	f := &flaky{failures: slices.Repeat([]*taxonomy.Error{refused}, 9)}
	m := retryModule(func(r *config.Retry) {
		r.Attempts = 10
		r.InitialBackoff = 300 * time.Millisecond
		r.Multiplier = 1
	})
	const timeout = 1500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	start := time.Now()
	_, err, a := runAttempts(ctx, f.probe, m, "t", timeout, quietEnv(), half)
	if took := time.Since(start); took > timeout+2*time.Second {
		t.Errorf("the attempts took %v, past the %v deadline", took, timeout)
	}
	// At 0, 0.3, 0.6, 0.9 and 1.2s at the soonest: a sixth would start at
	// the deadline.
	if err == nil || a.made < 2 || a.made > 5 {
		t.Errorf("made %d attempts in 1.5s with 300ms backoffs, err %v; want 2 to 5", a.made, err)
	}
	last := f.starts[len(f.starts)-1]
	if left := deadline.Sub(last); left < attemptFloor(timeout) {
		t.Errorf("the last attempt started with %v left, under the %v floor", left, attemptFloor(timeout))
	}
}

// nextAttempt grants another attempt only if the floor is left after the
// backoff. The deadlines are seconds away from either side of the floor,
// so that the time the test itself takes does not matter.
func TestNextAttemptLeavesTheFloor(t *testing.T) {
	refused := fail(taxonomy.ClassConnect, taxonomy.ReasonRefused)
	const timeout = 10 * time.Second // a floor of 100ms
	tests := []struct {
		name     string
		left     time.Duration // until the deadline; none when 0
		wait     time.Duration
		n        int
		err      *taxonomy.Error
		want     bool
		wantWait time.Duration
	}{
		{"no deadline", 0, time.Second, 1, refused, true, time.Second},
		{"room for the wait and the floor", 10 * time.Second, 8 * time.Second, 1, refused, true, 8 * time.Second},
		{"the wait leaves less than the floor", 10 * time.Second, 9950 * time.Millisecond, 1, refused, false, 0},
		{"the wait passes the deadline", time.Second, 5 * time.Second, 1, refused, false, 0},
		{"out of attempts", 10 * time.Second, time.Second, 3, refused, false, 0},
		{"not retried", 10 * time.Second, time.Second, 1, fail(taxonomy.ClassAssertion, taxonomy.ReasonBodyRegex), false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.left > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.left)
				defer cancel()
			}
			policy := config.DefaultRetry()
			policy.Attempts, policy.InitialBackoff, policy.MaxBackoff, policy.Jitter = 3, tc.wait, time.Hour, 0
			wait, again := nextAttempt(ctx, policy, tc.n, tc.err, timeout, half)
			if again != tc.want || (again && wait != tc.wantWait) {
				t.Errorf("nextAttempt = %v, %v; want %v, %v", wait, again, tc.wantWait, tc.want)
			}
		})
	}
}

// The exported metrics: attempts, failed attempts by class, the first
// attempt's duration, and the exporter's counters.
func TestRetryMetricsThroughTheHandler(t *testing.T) {
	var calls atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close() // no answer: protocol/unexpected_eof, retried by default
			return
		}
		io.WriteString(w, "ok")
	}))
	defer target.Close()
	c := collectorFor(t, `
modules:
  http_retry:
    prober: http
    retry:
      attempts: 3
      initial_backoff: 10ms
`)
	_, body := scrape(t, c, url.Values{"module": {"http_retry"}, "target": {target.URL}}, nil)
	m := parseMetrics(t, body)
	for name, want := range map[string]float64{"probe_success": 1, "probe_attempts": 3} {
		if got := m[name].value(); got != want {
			t.Errorf("%s = %v, want %v\n%s", name, got, want, body)
		}
	}
	failed := m["probe_failed_attempts"]
	if failed == nil || len(failed.series) != 1 || failed.series[0].labels["class"] != "protocol" || failed.series[0].value != 2 {
		t.Errorf("probe_failed_attempts = %+v, want {class=protocol} 2", failed)
	}
	if first, total := m["probe_first_attempt_duration_seconds"].value(), m["probe_duration_seconds"].value(); first <= 0 || first >= total {
		t.Errorf("first attempt %v, whole probe %v", first, total)
	}
	if got := testutil.ToFloat64(c.attempts.WithLabelValues("http_retry", "failure")); got != 2 {
		t.Errorf("sonde_probe_attempts_total{result=failure} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(c.attempts.WithLabelValues("http_retry", "success")); got != 1 {
		t.Errorf("sonde_probe_attempts_total{result=success} = %v, want 1", got)
	}

	// A probe that fails for good counts once, by its last class.
	_, body = scrape(t, c, url.Values{"module": {"http_retry"}, "target": {closedPort(t)}}, nil)
	if !strings.Contains(body, `probe_failed_attempts{class="connect"} 3`) {
		t.Errorf("refused three times:\n%s", body)
	}
	if got := testutil.ToFloat64(c.failures.WithLabelValues("http_retry", "connect")); got != 1 {
		t.Errorf("sonde_probe_failures_total{class=connect} = %v, want 1", got)
	}
}

// A flaky target per prober family: it fails twice, then answers.
func TestRetryFlakyTargets(t *testing.T) {
	t.Run("tcp", func(t *testing.T) {
		var conns atomic.Int32
		addr := listen(t, func(c net.Conn) {
			if conns.Add(1) > 2 {
				io.WriteString(c, "READY\r\n")
			}
			c.Close() // the first two hang up before the banner
		})
		c := collectorFor(t, `
modules:
  tcp_retry:
    prober: tcp
    retry: {attempts: 3, initial_backoff: 10ms}
    tcp:
      query_response:
        - expect: "^READY"
`)
		assertRetried(t, c, "tcp_retry", addr, "protocol")
	})
	t.Run("unix", func(t *testing.T) {
		path := t.TempDir() + "/app.sock"
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		var conns atomic.Int32
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				if conns.Add(1) > 2 {
					io.WriteString(c, "READY\n")
				}
				c.Close()
			}
		}()
		c := collectorFor(t, `
modules:
  unix_retry:
    prober: unix
    retry: {attempts: 3, initial_backoff: 10ms}
    unix:
      query_response:
        - expect: "^READY"
`)
		assertRetried(t, c, "unix_retry", path, "protocol")
	})
	t.Run("websocket", func(t *testing.T) {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) <= 2 {
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
				return
			}
			ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
			if err == nil {
				ws.WriteMessage(websocket.TextMessage, []byte("hello"))
				ws.ReadMessage()
				ws.Close()
			}
		}))
		t.Cleanup(srv.Close)
		c := collectorFor(t, `
modules:
  ws_retry:
    prober: websocket
    retry: {attempts: 3, initial_backoff: 10ms}
    websocket:
      query_response:
        - expect: "^hello$"
`)
		assertRetried(t, c, "ws_retry", "ws://"+srv.Listener.Addr().String()+"/", "protocol")
	})
	t.Run("dns", func(t *testing.T) {
		addr := flakyDNS(t, 2)
		c := collectorFor(t, `
modules:
  dns_retry:
    prober: dns
    retry: {attempts: 3, initial_backoff: 10ms}
    dns:
      transport_protocol: tcp
      query_name: example.com
      query_type: A
`)
		assertRetried(t, c, "dns_retry", addr, "protocol")
	})
}

func assertRetried(t *testing.T, c *Collector, module, target, class string) {
	t.Helper()
	_, body := scrape(t, c, url.Values{"module": {module}, "target": {target}}, nil)
	m := parseMetrics(t, body)
	if m["probe_success"].value() != 1 || m["probe_attempts"].value() != 3 {
		t.Fatalf("want success after 3 attempts:\n%s", body)
	}
	if !strings.Contains(body, `probe_failed_attempts{class="`+class+`"} 2`) {
		t.Errorf("want 2 failed attempts of class %s:\n%s", class, body)
	}
}

// collectorFor returns a collector serving the given configuration.
func collectorFor(t testing.TB, cfgText string) *Collector {
	t.Helper()
	cfg, err := config.Load([]byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	set, err := prober.NewSet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := New(Options{HistoryLimit: 10, Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()})
	c.SetModules(set)
	return c
}

// listen serves each TCP connection on loopback with handle.
func listen(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return l.Addr().String()
}

// flakyDNS serves DNS over TCP on loopback: the first `bad` queries get no
// answer, the connection closed (protocol/unexpected_eof), later ones a
// proper A record.
func flakyDNS(t *testing.T, bad int32) string {
	t.Helper()
	var n atomic.Int32
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: l, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if n.Add(1) <= bad {
			w.Close()
			return
		}
		m := new(dns.Msg)
		m.SetReply(r)
		rr, _ := dns.NewRR("example.com. 60 IN A 192.0.2.1")
		m.Answer = append(m.Answer, rr)
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return l.Addr().String()
}

func TestRetryConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"attempts: 0", "retry.attempts: must be between 1 (no retry) and 10"},
		{"on: [assertion]", `retry.on[0]: "assertion" cannot be retried`},
		{"on: [prober]", `retry.on[0]: "prober" cannot be retried`},
		{"initial_backoff: 3s", "retry.max_backoff: 2s is shorter than initial_backoff 3s"},
		{"jitter: 2", "retry.jitter: must be between 0 and 1"},
	} {
		_, err := config.Load([]byte("modules:\n  m:\n    prober: http\n    retry: {" + tc.yaml + "}\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
