package bench

import (
	"context"
	"sync"
	"time"
)

// ScaleStats are the figures of one wave of scale mode: N probes in flight
// at once against a target that answers late.
type ScaleStats struct {
	InFlight int           // probes started
	Stats    Stats         // their outcomes; Stats.PeakRSS is VmHWM over the wave
	Idle     Sample        // the exporter before the wave
	Peak     Sample        // the largest of each figure sampled during it
	Samples  int           // how many samples were taken
	Wall     time.Duration // from the first scrape to the last answer
}

// Sample is the exporter's resources at one moment.
type Sample struct {
	RSS        uint64 // bytes
	Goroutines int    // go_goroutines from its /metrics
	OpenFiles  int    // entries of /proc/<pid>/fd
}

func (s *Sample) maxWith(o Sample) {
	s.RSS = max(s.RSS, o.RSS)
	s.Goroutines = max(s.Goroutines, o.Goroutines)
	s.OpenFiles = max(s.OpenFiles, o.OpenFiles)
}

// wave is one run of scale mode.
type wave struct {
	exporter      *exporter
	module        Module
	n             int
	ramp          time.Duration // the scrapes start evenly spread over it
	scrapeTimeout time.Duration
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
	outcomes := w.launch(ctx, start)
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
	return ScaleStats{InFlight: w.n, Stats: s, Idle: idle, Peak: peak.max, Samples: peak.n, Wall: wall}, w.exporter.alive()
}

func (w wave) launch(ctx context.Context, start time.Time) []outcome {
	outcomes := make([]outcome, w.n)
	var wg sync.WaitGroup
	for i := range w.n {
		at := start.Add(time.Duration(int64(w.ramp) * int64(i) / int64(w.n)))
		wg.Go(func() {
			time.Sleep(time.Until(at))
			outcomes[i] = newScraper(w.exporter, i, w.module, w.scrapeTimeout).scrape(ctx)
		})
	}
	wg.Wait()
	return outcomes
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
	g, err := w.exporter.metric(ctx, "go_goroutines")
	s.Goroutines = int(g)
	return s, err
}
