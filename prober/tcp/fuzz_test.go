package tcp

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/prober/check"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
	"github.com/sonde-exporter/sonde/prober/tlsfacts"
)

// fuzzScriptModules are the tcp modules FuzzQueryResponse runs; the fuzzer
// picks one per input. The first is a query_response script that uses
// every kind of step (expect with groups and labels, send expanding the
// groups, expect_bytes, starttls); the others run a STARTTLS preset, which
// parses its protocol's replies itself, then one expect over TLS.
var fuzzScriptModules = []string{`
query_response:
  - expect: "^(?i)\\+?(OK|220|SSH-2\\.0)[- ](\\S*)(.*)$"
    labels:
      - name: banner
        value: "${2}"
    send: "HELLO ${2}${3}"
  - expect_bytes: "\x00\x01"
  - send: "STARTTLS"
  - expect: "^(?:OK|220)"
  - starttls: true
  - expect: "^secure (\\d+)$"
    labels:
      - name: banner
        value: "${1}"
tls_config:
  server_name: fuzz.test
`,
	"starttls_preset: smtp\nquery_response:\n  - expect: \"^220\"\n",
	"starttls_preset: imap\nquery_response:\n  - expect: \"^\\\\* OK\"\n",
	"starttls_preset: pop3\nquery_response:\n  - expect: \"^\\\\+OK\"\n",
	"starttls_preset: ftp\nquery_response:\n  - expect: \"^220\"\n",
	"starttls_preset: postgres\nquery_response:\n  - expect: \"^R\"\n",
}

// fuzzScriptDeadline bounds one run. A peer that keeps the connection open
// holds the script until then, so it is short.
const fuzzScriptDeadline = 50 * time.Millisecond

// FuzzQueryResponse plays a peer that sends arbitrary bytes to the
// query_response engine of the tcp prober, over net.Pipe (one per
// direction), in turns (peerTurn), and then either hangs up or keeps the
// connection open and silent. Whatever it sends, the
// script ends by its deadline (a hostile peer cannot hold a probe longer
// than its timeout) as a success or a classified failure, never an
// unknown one, in a phase that names a step, the STARTTLS exchange or the
// handshake. The seeds in testdata/fuzz/FuzzQueryResponse are
// conversations that pass each module and near misses.
func FuzzQueryResponse(f *testing.F) {
	modules := make([]*core.Module, len(fuzzScriptModules))
	for i, section := range fuzzScriptModules {
		modules[i] = fuzzModule(f, "tcp", section)
	}
	f.Fuzz(func(t *testing.T, peer []byte, module uint8, hangUp bool) {
		m := modules[int(module)%len(modules)]
		start := time.Now()
		err := converseWithPeer(t, m, peer, hangUp)
		perr := probertest.ClassifiedInTime(t, err, time.Since(start), fuzzScriptDeadline)
		if perr == nil {
			return
		}
		if p := string(perr.Phase); !strings.HasPrefix(p, "query_step_") && perr.Phase != taxonomy.PhaseStartTLS && perr.Phase != taxonomy.PhaseTLS {
			t.Fatalf("failure in phase %q, which is not a step, starttls or tls: %v", p, err)
		}
	})
}

// peerTurn separates the peer's turns in a fuzzed byte stream: the peer
// sends what follows it only once the probe has written something since
// the last turn, as a server answers a command. Without turns a peer's
// every byte would arrive before the probe said anything, and a STARTTLS
// exchange would never reach the handshake.
var peerTurn = []byte("\x00\x7f\x00")

// converseWithPeer runs what probeTCP runs once connected, over a
// connection made of two pipes, one per direction, so that the peer can
// hang up its side (the probe reads EOF) and still take what the probe
// sends, as a TCP peer that closed its half does.
func converseWithPeer(t *testing.T, m *core.Module, peer []byte, hangUp bool) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), fuzzScriptDeadline)
	defer cancel()
	probeReads, peerWrites := net.Pipe()
	peerReads, probeWrites := net.Pipe()
	spoke := make(chan struct{}, 64)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the peer's ears: take everything the probe says
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, err := peerReads.Read(buf)
			if n > 0 {
				select {
				case spoke <- struct{}{}:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() { // the peer's mouth
		defer wg.Done()
		defer peerWrites.Close()
		for i, turn := range bytes.Split(peer, peerTurn) {
			if i > 0 {
				select {
				case <-spoke:
				case <-ctx.Done():
					return
				}
			}
			if _, err := peerWrites.Write(turn); err != nil {
				return
			}
		}
		if !hangUp {
			<-ctx.Done()
		}
	}()
	conn := &duplex{Conn: probeReads, w: probeWrites}
	defer func() {
		conn.Close()
		peerReads.Close()
		wg.Wait()
	}()
	defer netdial.BindDeadline(ctx, conn)()
	sink := probemetrics.NewSink()
	s := check.NewStream(conn, m.Prepared.(*tcpPrepared).tls, tlsfacts.ServerName(m.TCP.TLSConfig.ServerName, "fuzz.test"), sink)
	durations := sink.GaugeVec("probe_tcp_duration_seconds", "Duration of the tcp probe by phase", "phase")
	err := timedScript(ctx, s, durations.With(string(taxonomy.PhaseQuery)), func() error {
		if m.TCP.StartTLSPreset != "" {
			if err := runPreset(ctx, m.TCP.StartTLSPreset, s, probertest.DiscardLogger); err != nil {
				return err
			}
		}
		return check.RunScript(ctx, m.TCP.QueryResponse, s, check.NewScriptMetrics(sink), probertest.DiscardLogger)
	})
	if _, gerr := sink.Gather(); gerr != nil {
		t.Fatalf("the script's metrics do not gather: %v", gerr)
	}
	return err
}

// duplex is the probe's end of the two pipes: it reads from one and
// writes to the other.
type duplex struct {
	net.Conn          // the read side
	w        net.Conn // the write side
}

func (d *duplex) Write(b []byte) (int, error) { return d.w.Write(b) }

func (d *duplex) Close() error {
	d.w.Close()
	return d.Conn.Close()
}

func (d *duplex) SetDeadline(t time.Time) error {
	d.w.SetWriteDeadline(t)
	return d.Conn.SetReadDeadline(t)
}

func (d *duplex) SetWriteDeadline(t time.Time) error { return d.w.SetWriteDeadline(t) }
