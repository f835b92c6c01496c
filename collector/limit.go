package collector

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/sonde-exporter/sonde/internal/redact"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// Concurrency limits: --probe.max-concurrent for all modules together and
// a module's max_concurrent for its own probes. A probe over a limit waits
// for a slot within its own deadline. If it gets one it runs with what is
// left of the deadline; if not, it fails as prober/resource_exhausted, a
// probe failure answered with its metrics like any other.

// slots is a counting semaphore. A buffered channel is FIFO for its
// waiters and needs no dependency.
type slots chan struct{}

// tryAcquire takes a slot if one is free.
func (s slots) tryAcquire() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

// acquire takes a slot, waiting until ctx is done at the latest.
func (s slots) acquire(ctx context.Context) bool {
	select {
	case s <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s slots) release() { <-s }

// limits holds the global semaphore and one per module with a limit. A
// reload replaces the module semaphores whose size changed; probes in
// flight release into the one they took, so the new size applies to new
// probes at once and the old one drains as they end.
type limits struct {
	global  slots // nil: no global limit
	mu      sync.Mutex
	modules atomic.Pointer[map[string]slots] // by module name; no entry: no limit

	inFlight prometheus.Gauge
	waiting  prometheus.Gauge
	rejected *prometheus.CounterVec
}

func newLimits(global int, reg prometheus.Registerer) *limits {
	l := &limits{
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sonde_probes_in_flight",
			Help: "Probes running now, not counting those waiting for a slot.",
		}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sonde_probes_waiting",
			Help: "Probes waiting for a slot under --probe.max-concurrent or their module's max_concurrent.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sonde_probes_rejected_total",
			Help: "Probes that found no slot under --probe.max-concurrent or their module's max_concurrent before their deadline, and failed as prober/resource_exhausted.",
		}, []string{"module"}),
	}
	if global > 0 {
		l.global = make(slots, global)
	}
	l.modules.Store(&map[string]slots{})
	reg.MustRegister(l.inFlight, l.waiting, l.rejected)
	return l
}

// setModules sizes the module semaphores for a new set of modules,
// keeping each whose size is unchanged (its slots stay taken by the
// probes running) and dropping those of modules gone or unlimited.
func (l *limits) setModules(s *core.Set) {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := *l.modules.Load()
	next := make(map[string]slots, len(old))
	for _, name := range s.Names() {
		m, _ := s.Module(name)
		if m.MaxConcurrent <= 0 {
			continue
		}
		if cur, ok := old[name]; ok && cap(cur) == m.MaxConcurrent {
			next[name] = cur
			continue
		}
		next[name] = make(slots, m.MaxConcurrent)
	}
	l.modules.Store(&next)
}

// limited runs the probe, as Runner.Run does, once it has a slot under
// the global and the module's limit, giving it what is left of timeout. A
// probe that finds no slot before its deadline is not run: its Result
// says prober/resource_exhausted.
func (c *Collector) limited(ctx context.Context, id int64, m *core.Module, target string, timeout time.Duration) *Result {
	module := (*c.limits.modules.Load())[m.Name]
	// A probe given no time fails at once as a timeout, as blackbox's
	// does, not as a probe that found no slot.
	if (module == nil && c.limits.global == nil) || timeout <= 0 {
		return c.run(ctx, id, m, target, timeout)
	}
	return c.inSlot(ctx, id, m, target, timeout, module)
}

// run runs the probe, counted in flight. Without limits the probe runs
// from here with no frame of the slot logic below it on its stack
// (TestInFlightStack in test/perf holds the stack a waiting probe keeps).
func (c *Collector) run(ctx context.Context, id int64, m *core.Module, target string, timeout time.Duration) *Result {
	c.limits.inFlight.Inc()
	defer c.limits.inFlight.Dec()
	return c.runner().Run(ctx, id, m, target, timeout)
}

// inSlot waits for a slot of the module's limit (module, nil for none)
// and the global one, then runs the probe with what is left of timeout.
func (c *Collector) inSlot(ctx context.Context, id int64, m *core.Module, target string, timeout time.Duration, module slots) *Result {
	l := c.limits
	start := time.Now()
	wait, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	waiting := false
	take := func(s slots) bool {
		if s == nil || s.tryAcquire() {
			return true
		}
		if !waiting {
			waiting = true
			l.waiting.Inc()
		}
		return s.acquire(wait)
	}
	// The module's slot first: a probe held back by its own module does
	// not keep a global slot from the others meanwhile.
	gotModule := take(module)
	gotGlobal := gotModule && take(l.global)
	if waiting {
		l.waiting.Dec()
	}
	release := func() {
		if gotModule && module != nil {
			module.release()
		}
		if gotGlobal && l.global != nil {
			l.global.release()
		}
	}
	left := timeout
	if waiting {
		left -= time.Since(start)
	}
	if !gotGlobal || left <= 0 {
		release()
		l.rejected.WithLabelValues(m.Name).Inc()
		return c.rejected(ctx, id, m, target, timeout, start, gotModule)
	}
	defer release()
	return c.run(ctx, id, m, target, left)
}

// rejected returns the Result of a probe that got no slot: it failed in
// phase setup after waiting from start, and the prober never ran.
// byGlobal says which limit was full.
func (c *Collector) rejected(ctx context.Context, id int64, m *core.Module, target string, timeout time.Duration, start time.Time, byGlobal bool) *Result {
	which := fmt.Sprintf("the module's max_concurrent (%d)", m.MaxConcurrent)
	if byGlobal {
		which = fmt.Sprintf("--probe.max-concurrent (%d)", cap(c.limits.global))
	}
	err := taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonResourceExhausted, taxonomy.PhaseSetup,
		"no probe slot came free in %s: as many probes as %s allows were running; raise the limit or lower the probe rate",
		time.Since(start).Round(time.Millisecond), which)
	return c.failedBeforeRunning(ctx, id, m, target, timeout, start, err)
}

// failedBeforeRunning returns the Result of a probe that failed with err
// from start on, without its prober running.
func (c *Collector) failedBeforeRunning(ctx context.Context, id int64, m *core.Module, target string, timeout time.Duration, start time.Time, err *taxonomy.Error) *Result {
	r := &Result{ID: id, numbered: id != NoID, Module: m, Target: target, Timeout: timeout, Start: start,
		Sink: probemetrics.NewSink(), log: &probeLog{}, Err: err, shown: redact.Target(target)}
	r.Duration = time.Since(start)
	r.record()
	// Traced like any probe, so a trace search for failures finds the
	// probes that never ran; it has no attempt to show.
	_, span := startProbeSpan(ctx, tracerOrNone(c.tracer), id, m, target, trace.WithTimestamp(start))
	if sc := span.SpanContext(); sc.HasTraceID() {
		r.traceID = sc.TraceID().String()
	}
	endProbeSpan(span, r)
	r.tags = logTags(r)
	plog := slog.New(newProbeHandler(r.log, c.logger.Handler(), c.proberLevel, r.tags))
	plog.Error("Probe failed", "duration_seconds", r.Duration.Seconds(), "class", r.Err.Class, "reason", r.Err.Reason, "phase", r.Err.Phase, "err", r.Err.Err)
	return r
}
