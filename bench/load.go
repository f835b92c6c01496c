package bench

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Stats are the figures of one exporter on one module, over one round or
// summed over several.
type Stats struct {
	Probes   int           // scrapes answered or given up on
	Failures int           // not 200, or probe_success not 1
	Late     int           // past the scrape timeout, or the probe past its own
	Elapsed  time.Duration // wall time of the rounds
	CPU      time.Duration // the exporter's user+system time during them
	PeakRSS  uint64        // the largest VmHWM of the rounds, bytes
	// HarnessCPU is the harness's own (scrapes and targets), OtherCPU the
	// rest of the machine's: other work sharing the CPUs, which slows
	// both exporters alike when they alternate.
	HarnessCPU, OtherCPU time.Duration
	// FirstFailure says why the first failed probe failed.
	FirstFailure string
	// Outcomes counts the answers by class/reason of probe_failure_info.
	Outcomes map[string]int

	latencies  []time.Duration // of the scrapes, sorted
	probeTimes []time.Duration // probe_duration_seconds of the answers, sorted
	// probeOver is probe_duration_seconds less probe_timeout_seconds, of
	// the answers that have both, sorted: how far past the time it was
	// given each probe ran, as the exporter counts.
	probeOver []time.Duration
}

// ProbesPerSecond is the throughput.
func (s Stats) ProbesPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Probes) / s.Elapsed.Seconds()
}

// CPUPer1000 is the exporter's CPU-seconds per 1,000 probes.
func (s Stats) CPUPer1000() float64 {
	if s.Probes == 0 {
		return 0
	}
	return s.CPU.Seconds() * 1000 / float64(s.Probes)
}

// Latency returns the q-quantile (0 to 1) of the scrape latencies, by the
// nearest-rank method.
func (s Stats) Latency(q float64) time.Duration {
	return quantile(s.latencies, q)
}

// ProbeTime returns the q-quantile of the probes' own durations
// (probe_duration_seconds): the latency less the time spent reaching the
// exporter, queued in it, and writing the answer.
func (s Stats) ProbeTime(q float64) time.Duration {
	return quantile(s.probeTimes, q)
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// add sums another round into s.
func (s *Stats) add(r Stats) {
	s.Probes += r.Probes
	s.Failures += r.Failures
	s.Late += r.Late
	s.Elapsed += r.Elapsed
	s.CPU += r.CPU
	s.HarnessCPU += r.HarnessCPU
	s.OtherCPU += r.OtherCPU
	s.PeakRSS = max(s.PeakRSS, r.PeakRSS)
	if s.FirstFailure == "" {
		s.FirstFailure = r.FirstFailure
	}
	for class, n := range r.Outcomes {
		if s.Outcomes == nil {
			s.Outcomes = map[string]int{}
		}
		s.Outcomes[class] += n
	}
	s.latencies = mergeSorted(s.latencies, r.latencies)
	s.probeTimes = mergeSorted(s.probeTimes, r.probeTimes)
	s.probeOver = mergeSorted(s.probeOver, r.probeOver)
}

func mergeSorted(a, b []time.Duration) []time.Duration {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return out
}

// round is one timed round of load: concurrency workers scrape one module
// of one exporter back to back for duration.
type round struct {
	exporter      *exporter
	module        Module
	concurrency   int
	duration      time.Duration
	scrapeTimeout time.Duration
}

// run drives the round and measures the exporter over it. CPU and time are
// taken from just before the first scrape to just after the last answer,
// so every probe counted is paid for and every cost counted has its probe.
func (r round) run(ctx context.Context) (Stats, error) {
	pid := r.exporter.pid
	resetPeakMemory(pid)
	before, err := readCPU(pid)
	if err != nil {
		return Stats{}, err
	}
	start := time.Now()
	outcomes := r.drive(ctx, start.Add(r.duration))
	elapsed := time.Since(start)
	after, err := readCPU(pid)
	if err != nil {
		return Stats{}, err
	}
	mem, err := readMemory(pid)
	if err != nil {
		return Stats{}, err
	}
	s := summarize(outcomes)
	s.Elapsed, s.PeakRSS = elapsed, mem.Peak
	after.since(before, &s)
	return s, r.exporter.alive()
}

// drive runs the workers until stop and returns every outcome.
func (r round) drive(ctx context.Context, stop time.Time) []outcome {
	results := make([][]outcome, r.concurrency)
	var wg sync.WaitGroup
	for i := range r.concurrency {
		wg.Go(func() {
			s := newScraper(r.exporter, i, r.module, r.scrapeTimeout)
			for time.Now().Before(stop) && ctx.Err() == nil {
				results[i] = append(results[i], s.scrape(ctx))
			}
		})
	}
	wg.Wait()
	return slices.Concat(results...)
}

// summarize counts the outcomes and sorts their latencies.
func summarize(outcomes []outcome) Stats {
	s := Stats{Probes: len(outcomes), latencies: make([]time.Duration, 0, len(outcomes)), Outcomes: map[string]int{}}
	for _, o := range outcomes {
		s.Outcomes[o.class]++
		s.latencies = append(s.latencies, o.latency)
		if o.probe > 0 {
			s.probeTimes = append(s.probeTimes, o.probe)
		}
		if o.probe > 0 && o.allowed > 0 {
			s.probeOver = append(s.probeOver, o.probe-o.allowed)
		}
		if o.late {
			s.Late++
		}
		if !o.ok {
			s.Failures++
			if s.FirstFailure == "" {
				s.FirstFailure = o.failure
			}
		}
	}
	slices.Sort(s.latencies)
	slices.Sort(s.probeTimes)
	slices.Sort(s.probeOver)
	return s
}
