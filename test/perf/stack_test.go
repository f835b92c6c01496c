package perf

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/collector"
)

// inFlight is how many probes wait at once: enough that the stacks the
// runtime had free before they started, which some of them get, are a
// small part of the figure per probe. They start batch at a time.
const inFlight, batch = 1000, 50

// stackRow bounds the goroutine stack one probe of a prober holds while
// it waits for its target. A goroutine's stack doubles whenever a call
// does not fit and stays doubled while the probe waits, so the figure
// comes in steps: a probe whose deepest call fits in 8 KiB holds about 8,
// one that goes deeper anywhere holds 16. The bounds are today's figures
// with some headroom, below the next step.
type stackRow struct {
	name   string
	module module
	peer   peerKind // "" for icmp, which waits between its packets
	kib    float64  // at most, per probe
}

var stackRows = []stackRow{
	{name: "http", module: httpModule, peer: peerHTTP, kib: 18.5},
	{name: "https", module: httpsModule, peer: peerHTTPS, kib: 19.5},
	{name: "tcp", module: tcpQueryModule, peer: peerTCP, kib: 9.5},
	{name: "dns", module: dnsModule, peer: peerDNS, kib: 9.5},
	{name: "grpc", module: grpcModule, peer: peerGRPC, kib: 9.5},
	{name: "unix", module: unixModule, peer: peerUnix, kib: 9.5},
	{name: "websocket", module: websocketModule, peer: peerWebsocket, kib: 9.5},
	{name: "icmp", module: icmpWaitModule, kib: 9.5},
}

// TestInFlightStack starts inFlight probes of each prober against a peer
// that holds its answers, each probe through the /probe handler on a
// goroutine of its own as net/http runs a handler, and holds the stack
// memory they hold once all wait, per probe, to its bound.
func TestInFlightStack(t *testing.T) {
	skipUnderRace(t)
	for _, row := range stackRows {
		t.Run(row.name, func(t *testing.T) {
			var p *peer
			target, caFile := "127.0.0.1", ""
			if row.peer != "" {
				p = startPeer(t, row.peer, true)
				target, caFile = p.target, p.caFile
			} else {
				needICMP(t)
			}
			c := newCollector(t, row.module, caFile)
			kib := stackPerProbe(t, c, p, target) / 1024
			t.Logf("%s: %.2f KiB of stack per waiting probe (bound %.1f KiB)", row.name, kib, row.kib)
			if kib > row.kib {
				t.Errorf("a waiting %s probe holds %.2f KiB of stack, more than its bound of %.1f KiB", row.name, kib, row.kib)
			}
		})
	}
}

// stackPerProbe starts inFlight probes of target, waits until all wait,
// and returns the stack memory that came in use meanwhile, per probe.
// Then it lets the peer answer (every probe must succeed), or, without a
// peer, ends the probes. Garbage collection, which may shrink a stack, is
// off meanwhile: the figure is what the probes grew to.
func stackPerProbe(t *testing.T, c *collector.Collector, p *peer, target string) float64 {
	t.Helper()
	runtime.GC() // frees the stacks of earlier probes' goroutines
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	waiting := waitingGoroutines()
	before := stackInUse()
	w := startWave(t, c, p, target)
	defer w.end() // whatever fails, the probes end before the next row starts
	awaitWaiting(t, waiting+inFlight, w)
	held := stackInUse() - before
	if p != nil {
		w.checkAnswered(t)
	}
	return float64(held) / inFlight
}

// wave is inFlight probes of one target, each through the handler on a
// goroutine of its own.
type wave struct {
	p       *peer // nil for icmp
	answers []*answer
	ended   chan int // the index of each probe that ends
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// startWave starts the probes a batch at a time, each once the peer has
// read the last batch's requests: a thousand at once would overflow the
// peer's listen queue or, for dns, its socket's receive buffer, and a dns
// probe whose query is dropped waits for its deadline.
func startWave(t *testing.T, c *collector.Collector, p *peer, target string) *wave {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &wave{p: p, answers: make([]*answer, inFlight), ended: make(chan int, inFlight), cancel: cancel}
	req := scrapeRequest(target).WithContext(ctx)
	for first := 0; first < inFlight; first += batch {
		for i := first; i < min(first+batch, inFlight); i++ {
			w.answers[i] = newAnswer()
			w.wg.Go(func() {
				c.ServeHTTP(w.answers[i], req)
				w.ended <- i
			})
		}
		if p != nil {
			w.awaitRequests(t, min(batch, inFlight-first))
		}
	}
	return w
}

// end ends the probes: the peer answers, or they are cancelled.
func (w *wave) end() {
	if w.p != nil {
		w.p.release()
	}
	w.cancel()
	w.wg.Wait()
}

// checkAnswered lets the peer answer, and fails the test unless every
// probe succeeded.
func (w *wave) checkAnswered(t *testing.T) {
	t.Helper()
	w.p.release()
	w.wg.Wait()
	for i, a := range w.answers {
		if !a.succeeded() {
			t.Fatalf("probe %d failed: status %d\n%s", i, a.status, a.text())
		}
	}
}

// endedEarly fails the test if a probe has ended while the others wait:
// it failed, since the peer answers no one yet.
func (w *wave) endedEarly(t *testing.T) {
	t.Helper()
	select {
	case i := <-w.ended:
		a := w.answers[i]
		t.Fatalf("probe %d ended while the others waited: status %d\n%s", i, a.status, a.text())
	default:
	}
}

// awaitRequests waits until the peer has read n more requests.
func (w *wave) awaitRequests(t *testing.T, n int) {
	t.Helper()
	read := make(chan error, 1)
	go func() { read <- w.p.awaitRequests(n) }()
	limit := time.After(time.Minute)
	for {
		select {
		case err := <-read:
			if err != nil {
				t.Fatal(err)
			}
			return
		case <-limit:
			t.Fatalf("the peer has not read %d more requests after a minute", n)
		case <-time.After(10 * time.Millisecond):
			w.endedEarly(t)
		}
	}
}

func stackInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.StackInuse
}

// waitingGoroutines is how many goroutines are blocked: on a channel, a
// lock, a timer or the network.
func waitingGoroutines() int {
	s := []metrics.Sample{{Name: "/sched/goroutines/waiting:goroutines"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// awaitWaiting waits until at least n goroutines have been blocked over
// several readings in a row: the probes' goroutines have all reached the
// wait, and none is passing through a short one on its way there.
func awaitWaiting(t *testing.T, n int, w *wave) {
	t.Helper()
	const steady, every = 5, 20 * time.Millisecond
	limit := time.Now().Add(time.Minute)
	for inARow := 0; inARow < steady; {
		if time.Now().After(limit) {
			t.Fatalf("%d goroutines waiting after a minute, want at least %d", waitingGoroutines(), n)
		}
		w.endedEarly(t)
		if waitingGoroutines() >= n {
			inARow++
		} else {
			inARow = 0
		}
		time.Sleep(every)
	}
}
