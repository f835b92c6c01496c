package gcfloor

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

const mib = 1 << 20

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		name               string
		live, roots, floor uint64
		want               int
	}{
		{"before the first collection", 0, 0, 32 * mib, 800},
		{"small heap", 4 * mib, 1 * mib, 32 * mib, 560},
		{"rounded down to a step", 6 * mib, 1 * mib, 32 * mib, 370},
		{"the runtime's own minimum scales", 1 * mib, 0, 64 * mib, 1600},
		{"twice live is the floor", 16 * mib, 0, 32 * mib, 100},
		{"live over half the floor", 20 * mib, 0, 32 * mib, 100},
		{"live over the floor", 300 * mib, 2 * mib, 32 * mib, 100},
		{"roots count", 8 * mib, 8 * mib, 32 * mib, 150},
	} {
		if got := Percent(tc.live, tc.roots, tc.floor); got != tc.want {
			t.Errorf("%s: Percent(%d MiB, %d MiB, %d MiB) = %d, want %d",
				tc.name, tc.live/mib, tc.roots/mib, tc.floor/mib, got, tc.want)
		}
	}
}

func TestInferRoots(t *testing.T) {
	for _, tc := range []struct {
		name             string
		live, goal, gogc uint64
		roots            uint64
		ok               bool
	}{
		{"the formula's goal", 10 * mib, 10*mib + 14*mib*2, 200, 4 * mib, true},
		{"the runtime's minimum", 1 * mib, 32 * mib, 800, 0, false},
		{"no GOGC", 1 * mib, 32 * mib, 0, 0, false},
	} {
		roots, ok := inferRoots(tc.live, tc.goal, tc.gogc)
		if roots != tc.roots || ok != tc.ok {
			t.Errorf("%s: inferRoots = %d MiB, %v; want %d MiB, %v", tc.name, roots/mib, ok, tc.roots/mib, tc.ok)
		}
	}
}

// read returns a runtime metric's value.
func read(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// collectUntil runs collections until cond holds (the tuner adjusts after
// a collection, on the cleanup goroutine) or a few seconds have passed.
func collectUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("after collections for 5s: %s (GOGC %d, live %d MiB, goal %d MiB)",
		what, read("/gc/gogc:percent"), read("/gc/heap/live:bytes")/mib, read("/gc/heap/goal:bytes")/mib)
}

// The test binary's heap is a few MiB: with a 64 MiB floor the tuner
// raises GOGC until the runtime's goal is the floor, and Stop puts GOGC
// back.
func TestFloorSetsTheGoal(t *testing.T) {
	const floor = 64 * mib
	f := Start(floor)
	collectUntil(t, "the heap goal is not near the floor", func() bool {
		goal := read("/gc/heap/goal:bytes")
		return goal > floor*85/100 && goal < floor*115/100
	})
	if g := f.GOGC(); g <= DefaultGOGC || int(read("/gc/gogc:percent")) != g {
		t.Errorf("GOGC %d, runtime says %d: want the tuner's value, above %d", g, read("/gc/gogc:percent"), DefaultGOGC)
	}
	f.Stop()
	if got := read("/gc/gogc:percent"); got != DefaultGOGC {
		t.Errorf("after Stop GOGC = %d, want %d", got, DefaultGOGC)
	}
	runtime.GC() // a cleanup armed before Stop must not raise it again
	time.Sleep(50 * time.Millisecond)
	if got := read("/gc/gogc:percent"); got != DefaultGOGC {
		t.Errorf("a collection after Stop set GOGC to %d", got)
	}
}

// A live heap over half the floor leaves GOGC at its default: the floor
// never makes a large heap grow further than it would have.
func TestFloorStepsAsideForALargeHeap(t *testing.T) {
	ballast := make([]byte, 48*mib)
	for i := range ballast {
		ballast[i] = byte(i)
	}
	f := Start(64 * mib)
	defer f.Stop()
	collectUntil(t, "GOGC is not the default", func() bool { return read("/gc/gogc:percent") == DefaultGOGC })
	runtime.KeepAlive(ballast)
	if g := f.GOGC(); g != DefaultGOGC {
		t.Errorf("tuner set GOGC %d with 48 MiB live and a 64 MiB floor, want %d", g, DefaultGOGC)
	}
}
