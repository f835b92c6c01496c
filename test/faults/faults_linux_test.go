package faults

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/collector"
	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/prober"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// labDelay is the delay line's one-way delay to the peer, netem's
// `delay 200ms`: every round trip takes at least this long.
const labDelay = 200 * time.Millisecond

// overrun is how far past its deadline a probe may end here: far more than
// the time to notice the deadline and record the metrics, enough for a
// machine running other packages' tests under the race detector, and far
// less than any fault of the lab holds a probe that ignores its deadline
// (a minute at least). The load harness's overrun mode measures the real
// figure.
const overrun = 2 * time.Second

// failure is the class, reason and phase a probe must fail with; the zero
// value means it must succeed.
type failure struct {
	class  taxonomy.Class
	reason taxonomy.Reason
	phase  taxonomy.Phase
}

func (f failure) String() string {
	if f == (failure{}) {
		return "success"
	}
	return fmt.Sprintf("%s/%s in phase %s", f.class, f.reason, f.phase)
}

// TestFaultsOnTheWire probes the lab's peer through each fault and holds
// the outcome to what docs/error-classes.md says: the class, reason and
// phase of the failure (or success), and a probe that ends by its deadline
// whatever the network does. The scenarios run one after another, so that
// their timings are not disturbed by each other.
func TestFaultsOnTheWire(t *testing.T) {
	requireLab(t)
	testkit.HoldTimingLock(t)
	l := newLab(t, labDelay)
	peer := func(port int) string { return net.JoinHostPort(l.peerAddr.String(), strconv.Itoa(port)) }
	delayed := func(port int) string { return net.JoinHostPort(l.peerDelayed.String(), strconv.Itoa(port)) }

	tests := []struct {
		name    string
		prober  string
		section string // the module's prober section, YAML
		target  string
		timeout time.Duration
		want    failure
		// runs is how many probes to make (1 when 0); check gets them
		// all. Timings are judged on several, as a busy machine (CI runs
		// packages in parallel on two cores) only ever adds to a phase.
		runs int
		// baseline is the same peer without the fault (over the veth
		// pair): probed as many times, its phases are what the machine
		// costs, which the fault's phases must exceed by the delay alone.
		baseline string
		// warm runs the probe once before the measured ones: the first
		// TLS handshake of a process pays for one-time set-up (tens of
		// ms), which a long-running exporter pays once, not per probe.
		warm  bool
		check func(t *testing.T, results, baseline []*collector.Result)
	}{
		{
			// 30% of the echo requests are dropped on the way in: the
			// probe counts the loss and fails min_success_ratio.
			name:    "30% loss",
			prober:  "icmp",
			section: "packets: 50\npacket_interval: 10ms\nmin_success_ratio: 0.95\npreferred_ip_protocol: ip4",
			target:  l.peerAddr.String(),
			timeout: 1500 * time.Millisecond,
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonPacketLoss, taxonomy.PhaseRTT},
			check: func(t *testing.T, results, _ []*collector.Result) {
				sent := value(t, results[0], "probe_icmp_packets_sent")
				loss := value(t, results[0], "probe_icmp_packet_loss_ratio")
				if sent != 50 {
					t.Errorf("probe_icmp_packets_sent = %v, want 50", sent)
				}
				// 50 requests each lost with p=0.3: outside [0.1, 0.55]
				// happens about once in 10^4 runs.
				if loss < 0.10 || loss > 0.55 {
					t.Errorf("probe_icmp_packet_loss_ratio = %v, want about %v", loss, float64(lossPercent)/100)
				}
				t.Logf("loss ratio %.2f over %v requests", loss, sent)
			},
		},
		{
			// Every round trip takes the delay: the connection one, and
			// the request's.
			name:     "200ms delay, http",
			prober:   "http",
			section:  "preferred_ip_protocol: ip4",
			target:   "http://" + delayed(portHTTP) + "/",
			baseline: "http://" + peer(portHTTP) + "/",
			timeout:  3 * time.Second,
			runs:     3,
			check: func(t *testing.T, results, baseline []*collector.Result) {
				phases(t, results, baseline, "probe_http_duration_seconds", map[string]time.Duration{
					"resolve": 0, "connect": labDelay, "tls": 0, "processing": labDelay, "transfer": 0,
				})
			},
		},
		{
			// TLS 1.3 adds one round trip, counted in the tls phase.
			name:     "200ms delay, https",
			prober:   "http",
			section:  "preferred_ip_protocol: ip4\ntls_config:\n  insecure_skip_verify: true",
			target:   "https://" + delayed(portHTTPS) + "/",
			baseline: "https://" + peer(portHTTPS) + "/",
			timeout:  3 * time.Second,
			runs:     3,
			warm:     true,
			check: func(t *testing.T, results, baseline []*collector.Result) {
				phases(t, results, baseline, "probe_http_duration_seconds", map[string]time.Duration{
					"resolve": 0, "connect": labDelay, "tls": labDelay, "processing": labDelay, "transfer": 0,
				})
			},
		},
		{
			// The SYN is dropped: nothing comes back, and the connect
			// phase runs into the deadline.
			name:    "blackhole",
			prober:  "tcp",
			section: "preferred_ip_protocol: ip4",
			target:  peer(portDropped),
			timeout: 500 * time.Millisecond,
			want:    failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseConnect},
		},
		{
			name:    "reset on connect",
			prober:  "tcp",
			section: "preferred_ip_protocol: ip4",
			target:  peer(portReset),
			timeout: 500 * time.Millisecond,
			want:    failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect},
		},
		{
			// Connected and the request sent, no response byte ever.
			name:    "peer accepts and never answers",
			prober:  "http",
			section: "preferred_ip_protocol: ip4",
			target:  "http://" + peer(portSilent) + "/",
			timeout: 500 * time.Millisecond,
			want:    failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseProcessing},
		},
		{
			// Bytes keep coming, never a whole response: the first byte
			// ended processing, so the deadline falls in transfer.
			name:    "slowloris",
			prober:  "http",
			section: "preferred_ip_protocol: ip4",
			target:  "http://" + peer(portSlowloris) + "/",
			timeout: 500 * time.Millisecond,
			want:    failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseTransfer},
		},
		{
			// The server reads the query and never answers.
			name:    "DNS server never answers",
			prober:  "dns",
			section: "query_name: example.test\npreferred_ip_protocol: ip4",
			target:  peer(portDNS),
			timeout: 500 * time.Millisecond,
			want:    failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseQuery},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := module(t, tt.prober, tt.section)
			logger := slog.New(slog.DiscardHandler)
			if tt.warm {
				collector.Run(context.Background(), m, tt.target, tt.timeout, logger, slog.LevelDebug)
			}
			var results []*collector.Result
			for range max(tt.runs, 1) {
				start := time.Now()
				res := collector.Run(context.Background(), m, tt.target, tt.timeout, logger, slog.LevelDebug)
				took := time.Since(start)
				t.Logf("%s took %v (deadline %v): %v", tt.target, took.Round(time.Millisecond), tt.timeout, outcome(res))
				if took > tt.timeout+overrun {
					t.Errorf("the probe took %v, more than its %v deadline and %v", took, tt.timeout, overrun)
				}
				got := failure{}
				if res.Err != nil {
					got = failure{res.Err.Class, res.Err.Reason, res.Err.Phase}
				}
				if got != tt.want {
					t.Errorf("outcome %s, want %s; error: %v", got, tt.want, res.Err)
				}
				results = append(results, res)
			}
			var baseline []*collector.Result
			for range max(tt.runs, 1) {
				if tt.baseline != "" {
					baseline = append(baseline, collector.Run(context.Background(), m, tt.baseline, tt.timeout, logger, slog.LevelDebug))
				}
			}
			if tt.check != nil && !t.Failed() {
				tt.check(t, results, baseline)
			}
		})
	}
}

// module loads a module of prober from its section, as the exporter does.
func module(t *testing.T, proberName, section string) *core.Module {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "modules:\n  fault:\n    prober: %s\n    %s:\n", proberName, proberName)
	for _, line := range strings.Split(section, "\n") {
		b.WriteString("      " + line + "\n")
	}
	cfg, err := config.Load([]byte(b.String()))
	if err != nil {
		t.Fatalf("config.Load:\n%s\n%v", b.String(), err)
	}
	m, err := prober.NewModule("fault", cfg.Modules["fault"])
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func outcome(res *collector.Result) string {
	if res.Err == nil {
		return "success"
	}
	return res.Err.Error()
}

func value(t *testing.T, res *collector.Result, name string, labels ...string) float64 {
	t.Helper()
	v, ok := res.Sink.Value(name, labels...)
	if !ok {
		t.Fatalf("%s%v is not exported", name, labels)
	}
	return v
}

// phases holds each phase of a duration family to the delay the fault
// adds: no shorter than that delay (within 5ms plus 5% of it), and no
// longer than the baseline's plus that delay plus half a lab delay, which
// a phase that took a round trip too many (or another phase's) passes by
// far. What the machine adds (scheduling, the race detector, crypto) only
// lengthens a phase, so the lower bound is the network's alone, the upper
// one has room for a busy machine, and each phase, with and without the
// fault, is taken at its shortest over the runs.
func phases(t *testing.T, results, baseline []*collector.Result, family string, added map[string]time.Duration) {
	t.Helper()
	shortest := func(rs []*collector.Result, phase string) time.Duration {
		d := time.Duration(math.MaxInt64)
		for _, res := range rs {
			if res.Err != nil {
				t.Fatalf("a probe failed: %v", res.Err)
			}
			d = min(d, time.Duration(value(t, res, family, phase)*float64(time.Second)))
		}
		return d
	}
	var got []string
	for phase, delay := range added {
		base, faulty := shortest(baseline, phase), shortest(results, phase)
		got = append(got, fmt.Sprintf("%s=%v (%v without)", phase, faulty.Round(100*time.Microsecond), base.Round(100*time.Microsecond)))
		least, most := delay-(5*time.Millisecond+delay/20), base+delay+labDelay/2
		if faulty < least || faulty > most {
			t.Errorf("%s{phase=%q} = %v at best over %d probes, want from %v (the %v the fault adds) to %v (%v without the fault, plus that, plus %v)",
				family, phase, faulty, len(results), least, delay, most, base, labDelay/2)
		}
	}
	sort.Strings(got)
	t.Logf("%s, shortest of %d: %s", family, len(results), strings.Join(got, ", "))
}
