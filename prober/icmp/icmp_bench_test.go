//go:build unix

package icmp

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
)

// BenchmarkICMPConcurrency measures what one ICMP probe to 127.0.0.1 costs
// in CPU (user plus system time of the whole process, from getrusage, so
// that the kernel's work for the probe's packets counts) when 10 probes
// run at once and when 1,000 do, and the ratio of the two. Without the
// kernel sorting the replies (datagram sockets) or a filter in it (raw
// sockets), every probe would read every other probe's replies and the
// cost per probe would grow with the number of probes.
//
// Each probe sends 3 requests 25ms apart, so that the probes of a round
// overlap: all 1,000 sockets are open while the replies arrive.
//
//	go test ./prober -run '^$' -bench ICMPConcurrency -benchtime 3x
func BenchmarkICMPConcurrency(b *testing.B) {
	kind := benchKind(b)
	cm := config.DefaultModule()
	cm.Prober = "icmp"
	cm.ICMP.IPProtocol, cm.ICMP.Packets, cm.ICMP.PacketInterval = "ip4", 3, 25*time.Millisecond
	m, err := prepareModule("bench", cm)
	if err != nil {
		b.Fatal(err)
	}
	m.Prepared.(*icmpPrepared).kinds = []socketKind{kind}
	probeRound(m, 100) // warm up: goroutine stacks, the Go heap

	var few, many roundCost
	for b.Loop() {
		for range 20 {
			few.add(probeRound(m, 10))
		}
		many.add(probeRound(m, 1000))
	}
	b.ReportMetric(few.perProbe(), "cpu-µs/probe@10")
	b.ReportMetric(many.perProbe(), "cpu-µs/probe@1000")
	b.ReportMetric(many.perProbe()/few.perProbe(), "ratio")
	b.ReportMetric(float64(few.failed+many.failed), "failed-probes")
	b.ReportMetric(float64(few.lost+many.lost), "lost-packets")
	b.Logf("%s sockets: %.1f µs of CPU per probe at 10 concurrent, %.1f at 1,000: ratio %.2f; %d of %d probes failed, %d packets lost",
		kind, few.perProbe(), many.perProbe(), many.perProbe()/few.perProbe(), few.failed+many.failed, few.probes+many.probes, few.lost+many.lost)
}

// benchKind is the socket kind the benchmark can use: datagram if allowed,
// as sonde would choose, else raw.
func benchKind(b *testing.B) socketKind {
	for _, kind := range []socketKind{datagramSocket, rawSocket} {
		if s, err := listenICMP(kind, netdial.IP4, nil, 0); err == nil {
			s.Close()
			return kind
		}
	}
	b.Skip("this process may open neither datagram nor raw ICMP sockets")
	return 0
}

// roundCost adds up rounds of probes.
type roundCost struct {
	cpu                  time.Duration
	probes, failed, lost int
}

func (c *roundCost) add(r roundCost) {
	c.cpu += r.cpu
	c.probes += r.probes
	c.failed += r.failed
	c.lost += r.lost
}

func (c *roundCost) perProbe() float64 {
	return float64(c.cpu.Microseconds()) / float64(c.probes)
}

// probeRound starts n probes of 127.0.0.1 at once and waits for them all.
func probeRound(m *core.Module, n int) roundCost {
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
		lost   atomic.Int64
	)
	gate := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			sink := probemetrics.NewSink()
			if probeICMP(ctx, "127.0.0.1", m, sink, probertest.DiscardLogger) != nil {
				failed.Add(1)
			}
			sent, _ := sink.Value("probe_icmp_packets_sent")
			received, _ := sink.Value("probe_icmp_packets_received")
			lost.Add(int64(sent - received))
		}()
	}
	start := processCPU()
	close(gate)
	wg.Wait()
	return roundCost{cpu: processCPU() - start, probes: n, failed: int(failed.Load()), lost: int(lost.Load())}
}

// processCPU is the CPU time the process used so far, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
