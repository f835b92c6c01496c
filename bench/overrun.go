package bench

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Overrun mode holds thousands of probes of a target that never finishes
// its answer, so that every probe ends at its deadline, and measures how
// late past that deadline the answers come: the exporter's promise that a
// probe ends by its deadline, under load. It runs the measured exporter
// once as it is and once with --probe.max-concurrent, and the compared
// one (blackbox_exporter has no such flag) as it is.

const (
	// overrunModule is the module overrun mode probes with.
	overrunModule = "http_overrun"
	// trickleGap is the pause between two bytes of the trickling target.
	trickleGap = 200 * time.Millisecond
	// overrunHeadroom is how much longer than the probe's deadline the
	// scrape timeout sent to the exporter is: enough that the module's
	// timeout, not the scrape's less --timeout-offset, is the deadline,
	// in both exporters.
	overrunHeadroom = time.Second
	// overrunPatience is how much longer than the scrape timeout the
	// harness waits for an answer, so that an overrun is measured rather
	// than cut off.
	overrunPatience = 10 * time.Second
	// settleTolerance is how many goroutines above its idle count an
	// exporter may keep and still count as back to its baseline: the
	// harness's own scrape of /metrics, which each sample makes, and a
	// runtime helper or two that come and go.
	settleTolerance = 3
)

// OverrunStats are one exporter's figures for one overrun wave.
type OverrunStats struct {
	Exporter      string
	MaxConcurrent int           // the --probe.max-concurrent given, 0 for none
	Deadline      time.Duration // every probe's: the module's timeout
	Probes        int
	// Outcomes counts the answers by class/reason of probe_failure_info
	// ("success", "no class" for an exporter that has no such metric,
	// "no answer" for a scrape that failed).
	Outcomes map[string]int
	Stats    Stats  // latencies of the scrapes, probe_duration_seconds, CPU, VmHWM
	Idle     Sample // before the wave
	Peak     Sample // the largest of each figure sampled during it
	After    Sample // once settled, or when the settle time ran out
	Samples  int
	// Settled says whether goroutines and open files came back to their
	// idle counts (within settleTolerance goroutines) within the settle
	// time, and SettleTook how long that took.
	Settled    bool
	SettleTook time.Duration
}

// Past returns the q-quantile of how long after the probe's deadline the
// scrapes were answered, as the harness saw them (negative: before).
func (s OverrunStats) Past(q float64) time.Duration { return s.Stats.Latency(q) - s.Deadline }

// ProbePast returns the q-quantile of how long past the time it was given
// each probe ran, in the exporter's own account: probe_duration_seconds
// less probe_timeout_seconds, or less the deadline for an exporter that
// does not say its timeout (blackbox). It leaves out the time the scrape
// took to reach the probe, and the answer the harness. A probe that
// waited for a slot under --probe.max-concurrent was given what was left.
func (s OverrunStats) ProbePast(q float64) time.Duration {
	if len(s.Stats.probeOver) > 0 {
		return quantile(s.Stats.probeOver, q)
	}
	return s.Stats.ProbeTime(q) - s.Deadline
}

// OutcomeList describes the outcomes, most frequent first.
func (s OverrunStats) OutcomeList() string {
	names := slices.SortedFunc(maps.Keys(s.Outcomes), func(a, b string) int {
		if d := s.Outcomes[b] - s.Outcomes[a]; d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", n, s.Outcomes[n])
	}
	return strings.Join(parts, ", ")
}

// overrunRun is one wave of overrun mode: an exporter, and the
// --probe.max-concurrent it is given (0: none).
type overrunRun struct {
	spec  ExporterSpec
	limit int
}

// overrunRuns lists the waves: A as it is, B as it is, then A with the
// limit, each exporter started afresh.
func overrunRuns(o Options) []overrunRun {
	runs := []overrunRun{{spec: o.A}}
	if o.B != nil {
		runs = append(runs, overrunRun{spec: *o.B})
	}
	if n := o.OverrunMaxConcurrent; n > 0 {
		limited := o.A
		limited.Argv = append(slices.Clone(o.A.Argv), fmt.Sprintf("--probe.max-concurrent=%d", n))
		runs = append(runs, overrunRun{spec: limited, limit: n})
	}
	return runs
}

// runOverrun runs every wave of overrun mode, one exporter at a time.
func (s *setup) runOverrun(ctx context.Context, o Options) ([]OverrunStats, error) {
	modules, err := s.targets.modules([]string{overrunModule})
	if err != nil {
		return nil, err
	}
	var out []OverrunStats
	for _, run := range overrunRuns(o) {
		st, err := s.overrunOne(ctx, o, run, modules[0])
		if err != nil {
			return out, err
		}
		s.logf("%s: answers past the deadline p99 %s, max %s; peak RSS %.0f MiB; back to baseline: %v",
			st.Exporter, st.Past(0.99).Round(time.Millisecond), st.Past(1).Round(time.Millisecond), mib(st.Stats.PeakRSS), st.Settled)
		out = append(out, st)
	}
	return out, nil
}

func (s *setup) overrunOne(ctx context.Context, o Options, run overrunRun, m Module) (OverrunStats, error) {
	e, err := s.start(ctx, run.spec, o.OverrunProbes, true)
	if err != nil {
		return OverrunStats{}, err
	}
	defer e.stop()
	name := run.spec.Name()
	if run.limit > 0 {
		name += fmt.Sprintf(" --probe.max-concurrent=%d", run.limit)
	}
	s.logf("%s: %d probes of a target that never finishes its answer, deadline %s, started over %s",
		name, o.OverrunProbes, o.OverrunTimeout, o.OverrunRamp)
	w := wave{exporter: e, module: m, n: o.OverrunProbes, ramp: o.OverrunRamp,
		scrapeTimeout: o.OverrunTimeout + overrunHeadroom, wait: o.OverrunTimeout + overrunHeadroom + overrunPatience,
		every: 250 * time.Millisecond}
	wv, err := w.run(ctx)
	if err != nil {
		return OverrunStats{}, err
	}
	st := OverrunStats{
		Exporter: name, MaxConcurrent: run.limit, Deadline: o.OverrunTimeout, Probes: o.OverrunProbes,
		Outcomes: wv.Stats.Outcomes, Stats: wv.Stats, Idle: wv.Idle, Peak: wv.Peak, Samples: wv.Samples,
	}
	start := time.Now()
	st.After, st.Settled = w.settle(ctx, wv.Idle, o.OverrunSettle)
	st.SettleTook = time.Since(start)
	return st, e.alive()
}

// settle samples the exporter until its goroutines and open files are
// back to idle's, or limit has passed, and returns the last sample and
// whether they came back.
func (w wave) settle(ctx context.Context, idle Sample, limit time.Duration) (Sample, bool) {
	deadline := time.Now().Add(limit)
	for {
		now, err := w.sample(ctx)
		back := err == nil && now.Goroutines <= idle.Goroutines+settleTolerance && now.OpenFiles <= idle.OpenFiles
		if back || time.Now().After(deadline) || ctx.Err() != nil {
			return now, back
		}
		time.Sleep(w.every)
	}
}
