package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// TestPanickingProbeIsRecoveredLoggedAndCounted follows a panic through
// the path every scrape takes (Run, then what ServeHTTP does with the
// result): the process survives, the probe fails as prober/internal, the
// main log gets the panic with the goroutine's stack so the bug can be
// reported, the probe's own log (debug=true, /logs) has it too, and
// sonde_probe_failures_total{class="prober"} counts the probe.
//
// The panic is a real one on the probe's path: a module that skipped
// preparation (prober.NewModule) has no prober, and calling it panics. A
// core.Set cannot hold such a module, which is why ServeHTTP's two
// steps after Run are taken here by hand rather than through a request.
func TestPanickingProbeIsRecoveredLoggedAndCounted(t *testing.T) {
	tests := []struct {
		name     string
		attempts int // retry.attempts; class prober is never retried
	}{
		{name: "single attempt", attempts: 1},
		{name: "with retries on every class the configuration allows", attempts: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cm := config.DefaultModule()
			cm.Prober = "http"
			cm.Retry.Attempts = tt.attempts
			cm.Retry.On = []string{"dns", "connect", "timeout", "tls", "protocol", "status"}
			m := &core.Module{Name: "unprepared", Module: cm}

			var mainLog bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&mainLog, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c, _ := newTestCollector(t, logger)

			res := Run(context.Background(), m, "http://127.0.0.1:1/", time.Second, logger, slog.LevelInfo)
			c.history.Add(res)
			c.count(res)

			if res.Err == nil {
				t.Fatal("the unprepared module did not panic; this test needs another way to make a prober panic")
			}
			if res.Err.Class != taxonomy.ClassProber || res.Err.Reason != taxonomy.ReasonInternal {
				t.Errorf("failure = %s/%s, want prober/internal: %v", res.Err.Class, res.Err.Reason, res.Err)
			}
			if !strings.Contains(res.Err.Error(), "the prober panicked") {
				t.Errorf("the failure does not say the prober panicked: %v", res.Err)
			}
			if res.Attempts.made != 1 {
				t.Errorf("%d attempts made, want 1: a bug does not go away on another try", res.Attempts.made)
			}
			if v, ok := res.Sink.Value("probe_failure_info", "prober", "internal", string(taxonomy.PhaseUnknown)); !ok || v != 1 {
				t.Errorf("probe_failure_info{class=prober,reason=internal,phase=unknown} = %v (present %v), want 1", v, ok)
			}
			if v, _ := res.Sink.Value("probe_success"); v != 0 {
				t.Errorf("probe_success = %v, want 0", v)
			}

			stack := panicStack(t, mainLog.String())
			for _, want := range []string{"goroutine ", "panic(", "collector.runProber"} {
				if !strings.Contains(stack, want) {
					t.Errorf("the logged stack lacks %q:\n%s", want, stack)
				}
			}
			if !strings.Contains(res.Log(), "please report it") || !strings.Contains(res.Log(), "collector.runProber") {
				t.Errorf("the probe's own log lacks the panic and its stack:\n%s", res.Log())
			}

			if got := testutil.ToFloat64(c.failures.WithLabelValues("unprepared", "prober")); got != 1 {
				t.Errorf(`sonde_probe_failures_total{module="unprepared",class="prober"} = %v, want 1`, got)
			}
			if got := testutil.ToFloat64(c.attempts.WithLabelValues("unprepared", "failure")); got != 1 {
				t.Errorf(`sonde_probe_attempts_total{module="unprepared",result="failure"} = %v, want 1`, got)
			}
			if _, failed := c.history.Lists(); len(failed) != 1 {
				t.Errorf("the history keeps %d failed probes, want the panicked one", len(failed))
			}
		})
	}
}

// panicStack finds the main log's record of the panic and returns its
// stack attribute. The record arrives at the --log.prober level, as every
// line a probe logs does.
func panicStack(t *testing.T, log string) string {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("main log line %q is not JSON: %v", line, err)
		}
		msg, _ := rec["msg"].(string)
		if !strings.Contains(msg, "panicked") {
			continue
		}
		stack, _ := rec["stack"].(string)
		if stack == "" {
			t.Fatalf("the panic's record has no stack: %s", line)
		}
		return stack
	}
	t.Fatalf("the main log has no record of the panic:\n%s", log)
	return ""
}
