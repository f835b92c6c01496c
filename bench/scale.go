package bench

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// ScaleStats are the figures of one wave of scale mode: N probes in flight
// at once against a target that answers late.
type ScaleStats struct {
	InFlight int // probes started
	// PeakInFlight is the most scrapes that were waiting for an answer at
	// the same moment, as the harness saw them: InFlight when the ramp is
	// short enough that every scrape was in flight at once.
	PeakInFlight int
	Stats        Stats         // their outcomes; Stats.PeakRSS is VmHWM over the wave
	Idle         Sample        // the exporter before the wave
	Peak         Sample        // the largest of each figure sampled during it
	Samples      int           // how many samples were taken
	Wall         time.Duration // from the first scrape to the last answer
}

// Sample is the exporter's resources at one moment.
type Sample struct {
	RSS        uint64 // bytes
	Goroutines int    // go_goroutines from its /metrics
	OpenFiles  int    // entries of /proc/<pid>/fd
	// Stacks and Heap are go_memstats_stack_inuse_bytes and
	// go_memstats_heap_inuse_bytes, which both exporters serve: where the
	// RSS goes.
	Stacks, Heap uint64
}

func (s *Sample) maxWith(o Sample) {
	s.RSS = max(s.RSS, o.RSS)
	s.Goroutines = max(s.Goroutines, o.Goroutines)
	s.OpenFiles = max(s.OpenFiles, o.OpenFiles)
	s.Stacks = max(s.Stacks, o.Stacks)
	s.Heap = max(s.Heap, o.Heap)
}

// wave is one run of scale mode.
type wave struct {
	exporter      *exporter
	module        Module
	n             int
	ramp          time.Duration // the scrapes start evenly spread over it
	scrapeTimeout time.Duration
	wait          time.Duration // how long a scrape waits for its answer; scrapeTimeout if 0
	every         time.Duration // sampling interval
}

// run starts n scrapes spread over the ramp, so that the listen queues
// are not asked to hold ten thousand handshakes at once; with the target
// answering after longer than the ramp, all n are in flight together at
// its end. The exporter is sampled until the last answer.
func (w wave) run(ctx context.Context) (ScaleStats, error) {
	pid := w.exporter.pid
	if err := w.exporter.connect(ctx); err != nil {
		return ScaleStats{}, err
	}
	idle, err := w.sample(ctx)
	if err != nil {
		return ScaleStats{}, err
	}
	resetPeakMemory(pid)
	before, err := readCPU(pid)
	if err != nil {
		return ScaleStats{}, err
	}
	done := make(chan struct{})
	peaks := make(chan sampled, 1)
	go func() { peaks <- w.sampleUntil(ctx, done) }()

	start := time.Now()
	outcomes, spans := w.launch(ctx, start)
	wall := time.Since(start)
	close(done)
	peak := <-peaks
	after, err := readCPU(pid)
	if err != nil {
		return ScaleStats{}, err
	}
	mem, err := readMemory(pid)
	if err != nil {
		return ScaleStats{}, err
	}
	s := summarize(outcomes)
	s.Elapsed, s.PeakRSS = wall, mem.Peak
	after.since(before, &s)
	return ScaleStats{InFlight: w.n, PeakInFlight: peakOverlap(spans), Stats: s, Idle: idle, Peak: peak.max, Samples: peak.n, Wall: wall}, w.exporter.alive()
}

// span is when one scrape was sent and when its answer came, as offsets
// from the start of the wave.
type span struct{ from, to time.Duration }

func (w wave) launch(ctx context.Context, start time.Time) ([]outcome, []span) {
	outcomes := make([]outcome, w.n)
	spans := make([]span, w.n)
	var wg sync.WaitGroup
	for i := range w.n {
		at := start.Add(time.Duration(int64(w.ramp) * int64(i) / int64(w.n)))
		wg.Go(func() {
			time.Sleep(time.Until(at))
			sent := time.Since(start)
			sc := newScraper(w.exporter, i, w.module, w.scrapeTimeout)
			sc.wait = max(sc.wait, w.wait)
			outcomes[i] = sc.scrape(ctx)
			spans[i] = span{from: sent, to: sent + outcomes[i].latency}
		})
	}
	wg.Wait()
	return outcomes, spans
}

// peakOverlap returns the most spans open at one moment. A span that ends
// exactly when another starts does not overlap it.
func peakOverlap(spans []span) int {
	type edge struct {
		at    time.Duration
		delta int
	}
	edges := make([]edge, 0, 2*len(spans))
	for _, s := range spans {
		edges = append(edges, edge{s.from, 1}, edge{s.to, -1})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.delta, b.delta) // ends before starts
	})
	open, peak := 0, 0
	for _, e := range edges {
		open += e.delta
		peak = max(peak, open)
	}
	return peak
}

type sampled struct {
	max Sample
	n   int
}

// sampleUntil samples the exporter every interval until done and returns
// the largest figures seen. A sample that fails in part (the exporter too
// busy to answer /metrics in time) keeps what it read.
func (w wave) sampleUntil(ctx context.Context, done <-chan struct{}) sampled {
	var out sampled
	tick := time.NewTicker(w.every)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return out
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
		s, _ := w.sample(ctx) // what could be read still counts
		out.max.maxWith(s)
		out.n++
	}
}

// sample reads the exporter's resident memory, goroutines and open files.
// On error it returns what it could read.
func (w wave) sample(ctx context.Context) (Sample, error) {
	var s Sample
	pid := w.exporter.pid
	mem, err := readMemory(pid)
	if err != nil {
		return s, err
	}
	s.RSS = mem.RSS
	if s.OpenFiles, err = openFiles(pid); err != nil {
		return s, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	body, err := w.exporter.exposition(ctx, w.exporter.clients[0])
	if err != nil {
		return s, err
	}
	g, _ := sampleValue(body, "go_goroutines")
	stacks, _ := sampleValue(body, "go_memstats_stack_inuse_bytes")
	heap, _ := sampleValue(body, "go_memstats_heap_inuse_bytes")
	s.Goroutines, s.Stacks, s.Heap = int(g), uint64(stacks), uint64(heap)
	return s, nil
}
