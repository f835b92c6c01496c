// Package gcfloor keeps the garbage collector from running while the heap
// is small.
//
// With the default GOGC of 100 the collector starts a cycle each time the
// heap doubles from what the last one left live. An exporter answering
// probes keeps little live (a few MiB), so under load it collects dozens
// of times a second, and each cycle has costs that do not shrink with the
// heap: waking the mark workers, scanning every goroutine's stack, turning
// write barriers on and off. Floor raises GOGC, cycle by cycle, so that the
// next collection is due no earlier than at a given heap size; once the
// live heap is over half of that floor, GOGC is back at 100 and the
// collector paces itself as usual, so a large heap (thousands of probes in
// flight) grows no more than it would have.
package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// DefaultGOGC is the collector's own default, used above the floor.
const DefaultGOGC = 100

// runtimeMinHeap is the Go runtime's smallest heap goal at GOGC=100
// (defaultHeapMinimum in runtime/mgcpacer.go), which it scales with GOGC.
const runtimeMinHeap = 4 << 20

// Floor is a running tuner. Stop puts GOGC back at its default.
type Floor struct {
	bytes uint64
	// mu orders adjust and Stop, so that a collection's adjustment
	// cannot set GOGC after Stop put it back.
	mu      sync.Mutex
	stopped bool
	percent atomic.Int64 // the GOGC last set
	roots   uint64       // the stacks and globals the runtime counted last
	sample  []metrics.Sample
}

// sentinel is garbage by design: its cleanup runs once per collection and
// arms a new one. It holds a pointer so that the allocator does not pack it
// with other small objects, which would delay its cleanup.
type sentinel struct{ _ *int }

// Start tunes GOGC so that the heap may grow to at least bytes before a
// collection. It sets GOGC once now and again after each collection, from
// the live heap that collection measured.
func Start(bytes uint64) *Floor {
	f := &Floor{
		bytes: bytes,
		sample: []metrics.Sample{
			{Name: "/gc/heap/live:bytes"},
			{Name: "/gc/heap/goal:bytes"},
			{Name: "/gc/gogc:percent"},
		},
	}
	f.percent.Store(DefaultGOGC)
	f.adjust()
	f.arm()
	return f
}

// Stop ends the tuning and puts GOGC back at its default.
func (f *Floor) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	f.stopped = true
	f.percent.Store(DefaultGOGC)
	debug.SetGCPercent(DefaultGOGC)
}

// GOGC returns the value the tuner set last.
func (f *Floor) GOGC() int { return int(f.percent.Load()) }

func (f *Floor) arm() {
	runtime.AddCleanup(&sentinel{}, func(f *Floor) {
		if f.adjust() {
			f.arm()
		}
	}, f)
}

// adjust sets GOGC for what the last collection measured: the live heap,
// and the goal the runtime set from it with the GOGC then in force. The
// heap now is not used: it holds garbage. It reports false once stopped.
func (f *Floor) adjust() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	metrics.Read(f.sample)
	var m [3]uint64
	for i, s := range f.sample {
		if s.Value.Kind() != metrics.KindUint64 {
			return true // a runtime without these metrics: leave GOGC alone
		}
		m[i] = s.Value.Uint64()
	}
	live, goal, gogc := m[0], m[1], m[2]
	if roots, ok := inferRoots(live, goal, gogc); ok {
		f.roots = roots
	}
	if want := Percent(live, f.roots, f.bytes); f.percent.Swap(int64(want)) != int64(want) {
		debug.SetGCPercent(want)
	}
	return true
}

// The runtime's heap goal is the larger of
//
//	live + (live + roots) * GOGC/100
//	runtimeMinHeap * GOGC/100
//
// roots being the goroutine stacks and globals it counts along with the
// heap.

// inferRoots solves the first form for roots, when the goal is not the
// second one.
func inferRoots(live, goal, gogc uint64) (uint64, bool) {
	if gogc == 0 || goal <= runtimeMinHeap*gogc/100+runtimeMinHeap/16 {
		return 0, false
	}
	withRoots := (goal - min(goal, live)) * 100 / gogc
	return withRoots - min(withRoots, live), true
}

// Percent returns the GOGC that puts the runtime's goal at twice what it
// counts, or at floor if that is more. GOGC moves in steps of a tenth of
// the default, so that a live heap wavering a little does not reset it
// every cycle.
func Percent(live, roots, floor uint64) int {
	if 2*live+roots >= floor {
		return DefaultGOGC
	}
	p := floor * 100 / runtimeMinHeap
	if live+roots > 0 {
		p = min(p, (floor-live)*100/(live+roots))
	}
	const step = DefaultGOGC / 10
	return max(DefaultGOGC, int(p/step)*step)
}
