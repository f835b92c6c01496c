package perf

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"testing"
)

// allocRow bounds what one successful probe of a prober allocates, from
// the scrape's request to its gzipped answer: the module lookup, the
// deadline, the probe itself, the common metrics, the history entry and
// the exposition. The bounds are today's figures with about 15 %
// headroom.
type allocRow struct {
	name   string
	module module
	peer   peerKind
	bound  allocBound
	// datagram is an icmp probe's bound on a ping socket, which sonde
	// opens per probe when the system allows it (bound is on the raw
	// sockets it keeps otherwise).
	datagram allocBound
}

// allocBound is at most how many allocations, and how many KiB, a probe
// makes.
type allocBound struct{ allocs, kib float64 }

var allocRows = []allocRow{
	{name: "http", module: httpModule, peer: peerHTTP, bound: allocBound{167, 20.8}},
	{name: "https", module: httpsModule, peer: peerHTTPS, bound: allocBound{893, 124.5}},
	{name: "tcp", module: tcpModule, peer: peerTCP, bound: allocBound{98, 10.5}},
	{name: "dns", module: dnsModule, peer: peerDNS, bound: allocBound{124, 22.1}},
	{name: "grpc", module: grpcModule, peer: peerGRPC, bound: allocBound{199, 20.2}},
	{name: "unix", module: unixModule, peer: peerUnix, bound: allocBound{76, 14.0}},
	{name: "websocket", module: websocketModule, peer: peerWebsocket, bound: allocBound{179, 37.1}},
	{name: "icmp", module: icmpModule, peer: peerNone, bound: allocBound{118, 13.1}, datagram: allocBound{133, 13.8}},
}

// TestAllocationsPerProbe holds each prober's probe, whole scrape
// included, to its allocation bounds.
func TestAllocationsPerProbe(t *testing.T) {
	skipUnderRace(t)
	for _, row := range allocRows {
		t.Run(row.name, func(t *testing.T) {
			target, caFile, bound := "127.0.0.1", "", row.bound
			if row.peer != peerNone {
				p := startChild(t, row.peer, childSpec{})
				target, caFile = p.target, p.caFile
			} else if needICMP(t) == "datagram" {
				bound = row.datagram
			}
			c := newCollector()
			setModule(t, c, row.module, caFile)
			allocs, bytes := allocsPerProbe(t, c, target)
			kib := bytes / 1024
			t.Logf("%s: %.1f allocations, %.1f KiB per probe (bounds %.0f, %.1f KiB)", row.name, allocs, kib, bound.allocs, bound.kib)
			if allocs > bound.allocs {
				t.Errorf("a %s probe allocates %.1f times, more than its bound of %.0f", row.name, allocs, bound.allocs)
			}
			if kib > bound.kib {
				t.Errorf("a %s probe allocates %.1f KiB, more than its bound of %.1f KiB", row.name, kib, bound.kib)
			}
		})
	}
}

// allocsPerProbe scrapes the collector's module "probe" of target, one
// probe after the other, and returns the allocations and bytes allocated
// per probe. Garbage collection is off while it counts, so that the
// pools (answer buffers, gzip writers) are not emptied at random moments
// of the count.
func allocsPerProbe(t *testing.T, c http.Handler, target string) (allocs, bytes float64) {
	t.Helper()
	const warmup, runs = 20, 200
	req := scrapeRequest(target)
	w := newAnswer()
	for range warmup {
		w.reset()
		c.ServeHTTP(w, req)
		if !w.succeeded() {
			t.Fatalf("the probe failed: status %d\n%s", w.status, w.text())
		}
	}
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		w.reset()
		c.ServeHTTP(w, req)
	}
	runtime.ReadMemStats(&after)
	if !w.succeeded() {
		t.Fatalf("the last probe failed: status %d\n%s", w.status, w.text())
	}
	return float64(after.Mallocs-before.Mallocs) / runs, float64(after.TotalAlloc-before.TotalAlloc) / runs
}

func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("the race detector makes frames larger and drops sync.Pool items at random, so the figures would not be sonde's; make test runs this package again without it")
	}
}
