package prober

import (
	"testing"

	"golang.org/x/net/icmp"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// The icmp prober's spans, where the process may open an ICMP socket. The
// rtt metric is the replies' mean; its span is the whole exchange, so it
// lasts at least as long.
func TestTimelineICMP(t *testing.T) {
	icmpSocketUsable(t)
	runTimelineCases(t, []timelineCase{{
		name: "one packet",
		setup: func(t *testing.T) (*core.Module, string) {
			m := defaultModule(t, "icmp", func(cm *config.Module) { cm.ICMP.IPProtocol = "ip4" })
			return m, "v4only.test"
		},
		spans:   []string{"resolve/0", "setup/0", "rtt/0"},
		metrics: phaseSeries("probe_icmp_duration_seconds", taxonomy.PhaseResolve, taxonomy.PhaseSetup),
		check: func(t *testing.T, sink *probemetrics.Sink, spans []probemetrics.Span) {
			rtt := probertest.Value(t, sink, "probe_icmp_duration_seconds", string(taxonomy.PhaseRTT))
			if exchange := only(t, spans, taxonomy.PhaseRTT).Duration().Seconds(); rtt <= 0 || rtt > exchange {
				t.Errorf("rtt phase %v, want more than 0 and at most the exchange's span, %v", rtt, exchange)
			}
		},
	}})
}

// icmpSocketUsable skips the test when this process may open neither a
// datagram nor a raw ICMP socket, the kinds the icmp prober tries.
func icmpSocketUsable(t *testing.T) {
	t.Helper()
	for _, network := range []string{"udp4", "ip4:icmp"} {
		if c, err := icmp.ListenPacket(network, "127.0.0.1"); err == nil {
			c.Close()
			return
		}
	}
	t.Skip("this process may open neither datagram nor raw ICMP sockets")
}
