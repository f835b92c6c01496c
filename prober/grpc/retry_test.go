package grpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"

	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// The tests here cover the call gRPC makes a second time: one the server
// refused before processing it (a GOAWAY below its stream, RST_STREAM
// REFUSED_STREAM). Each scenario runs the probe and grpc-go's client
// against peers that behave alike, and both must make their calls on the
// same connections and streams, and end with the same status.

// Turns of h2Calls peers.
var (
	goesAway h2Turn = func(o *h2Out, _ int, _ uint32) bool {
		_ = o.fr.WriteGoAway(0, http2.ErrCodeNo, []byte("draining"))
		return true
	}
	refusesStream h2Turn = func(o *h2Out, _ int, stream uint32) bool {
		_ = o.fr.WriteRSTStream(stream, http2.ErrCodeRefusedStream)
		return false
	}
)

// onConn takes the turn first on the peer's first connection, then on
// other connections.
func onConn(first, then h2Turn) h2Turn {
	return func(o *h2Out, conn int, stream uint32) bool {
		if conn == 1 {
			return first(o, conn, stream)
		}
		return then(o, conn, stream)
	}
}

// onStream takes the turn first on stream 1, then on later streams.
func onStream(first, then h2Turn) h2Turn {
	return func(o *h2Out, conn int, stream uint32) bool {
		if stream == 1 {
			return first(o, conn, stream)
		}
		return then(o, conn, stream)
	}
}

// warnings keeps a probe's log lines at warn and above.
func warnings() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})), &buf
}

// probeLogged is probe with a logger of the test's.
func probeLogged(t *testing.T, m *core.Module, target string, logger *slog.Logger) (*probemetrics.Sink, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sink := probemetrics.NewSink()
	err := probeGRPC(ctx, target, m, sink, logger)
	probertest.Observe(t, sink)
	return sink, err
}

// phasesAddUp asserts that each phase's duration is the sum of its spans:
// with a second connection, of both connections' spans.
func phasesAddUp(t *testing.T, sink *probemetrics.Sink, spans map[taxonomy.Phase]int) {
	t.Helper()
	sums := map[taxonomy.Phase]time.Duration{}
	counts := map[taxonomy.Phase]int{}
	for _, s := range sink.Spans() {
		sums[s.Phase] += s.Duration()
		counts[s.Phase]++
	}
	for p, n := range spans {
		if counts[p] != n {
			t.Errorf("phase %s has %d spans, want %d", p, counts[p], n)
		}
		got := probertest.Value(t, sink, "probe_grpc_duration_seconds", string(p))
		if math.Abs(got-sums[p].Seconds()) > 1e-9 {
			t.Errorf("probe_grpc_duration_seconds{phase=%q} = %v, its spans add up to %v", p, got, sums[p].Seconds())
		}
	}
}

func TestGRPCUnprocessed(t *testing.T) {
	refused := failure{taxonomy.ClassStatus, taxonomy.ReasonGRPCStatus, taxonomy.PhaseCheck}
	ca := testcert.NewCA(t, testcert.Spec{})
	serverTLS := &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, testcert.Loopback()).TLS()}, NextProtos: []string{"h2"}}
	cases := []struct {
		name    string
		turn    h2Turn
		tls     bool
		oneConn bool       // the peer takes one connection, then refuses
		trace   [][]uint32 // the streams each connection carried
		want    failure
		code    codes.Code
		message string // a part of the error's message, when set
		retried string // a part of the warning the retry logs
	}{
		{name: "GOAWAY before processing, then served on a new connection", turn: onConn(goesAway, serves),
			trace: [][]uint32{{1}, {1}}, retried: "on a new connection"},
		{name: "GOAWAY before processing, then served, over TLS", turn: onConn(goesAway, serves), tls: true,
			trace: [][]uint32{{1}, {1}}, retried: "on a new connection"},
		{name: "GOAWAY before processing, twice", turn: goesAway,
			trace: [][]uint32{{1}, {1}}, want: refused, code: codes.Unavailable, message: `GOAWAY NO_ERROR: "draining"`,
			retried: "on a new connection"},
		{name: "GOAWAY before processing, then the new connection refused", turn: goesAway, oneConn: true,
			trace: [][]uint32{{1}}, want: failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect}, code: codes.Unavailable,
			retried: "on a new connection"},
		{name: "GOAWAY before processing, then REFUSED_STREAM on the new connection", turn: onConn(goesAway, refusesStream),
			trace: [][]uint32{{1}, {1}}, want: refused, code: codes.Unavailable, message: "REFUSED_STREAM",
			retried: "on a new connection"},
		{name: "REFUSED_STREAM, then served on the same connection", turn: onStream(refusesStream, serves),
			trace: [][]uint32{{1, 3}}, retried: "on the same connection"},
		{name: "REFUSED_STREAM, then served, over TLS", turn: onStream(refusesStream, serves), tls: true,
			trace: [][]uint32{{1, 3}}, retried: "on the same connection"},
		{name: "REFUSED_STREAM twice", turn: refusesStream,
			trace: [][]uint32{{1, 3}}, want: refused, code: codes.Unavailable, message: "REFUSED_STREAM",
			retried: "on the same connection"},
		{name: "REFUSED_STREAM, then GOAWAY before processing", turn: onStream(refusesStream, goesAway),
			trace: [][]uint32{{1, 3}}, want: refused, code: codes.Unavailable, message: "GOAWAY",
			retried: "on the same connection"},
		{name: "REFUSED_STREAM after a GOAWAY goes on a new connection", turn: onConn(func(o *h2Out, _ int, stream uint32) bool {
			// The server drains: it processes stream 1, then refuses it.
			_ = o.fr.WriteGoAway(1, http2.ErrCodeNo, nil)
			_ = o.fr.WriteRSTStream(stream, http2.ErrCodeRefusedStream)
			return false
		}, serves), trace: [][]uint32{{1}, {1}}, retried: "on a new connection"},
		{name: "GOAWAY after processing, then a hang-up", turn: func(o *h2Out, _ int, _ uint32) bool {
			_ = o.fr.WriteGoAway(1, http2.ErrCodeNo, nil)
			o.grpcHeaders()
			return true
		}, trace: [][]uint32{{1}}, want: refused, code: codes.Unavailable, message: "went away"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := h2CallsOpts{oneConn: tc.oneConn}
			section := ""
			if tc.tls {
				o.tls, section = serverTLS, probertest.GRPCTLSSection(t, ca)
			}
			peer, addr := newH2Calls(t, tc.turn, o)
			logger, logged := warnings()
			sink, err := probeLogged(t, grpcModule(t, section), addr, logger)
			perr := checkOutcome(t, err, tc.want)
			if perr != nil && !strings.Contains(perr.Error(), tc.message) {
				t.Errorf("the error does not say %q: %v", tc.message, perr)
			}
			probertest.Metric(t, sink, float64(tc.code), "probe_grpc_status_code")
			if trace := peer.streams(t); !slices.EqualFunc(trace, tc.trace, slices.Equal) {
				t.Errorf("the probe's calls went on streams %v (by connection), want %v", trace, tc.trace)
			}
			warned := strings.Contains(logged.String(), "level=WARN")
			if warned != (tc.retried != "") || !strings.Contains(logged.String(), tc.retried) {
				t.Errorf("the probe logged %q; want a warning saying %q, or none when that is empty", logged, tc.retried)
			}

			grpcGoPeer, grpcGoAddr := newH2Calls(t, tc.turn, o)
			grpcGo := grpcGoCall{ca: map[bool]*testcert.CA{true: ca}[tc.tls]}.check(t, grpcGoAddr)
			sameCode(t, sink, grpcGo)
			if trace := grpcGoPeer.streams(t); !slices.EqualFunc(trace, tc.trace, slices.Equal) {
				t.Errorf("grpc-go's calls went on streams %v (by connection), want %v", trace, tc.trace)
			}
		})
	}
}

// TestGRPCUnprocessedTimings checks what the phases count when the call
// is made on a second connection: both connections' connect, tls and
// check, each phase the sum of its spans.
func TestGRPCUnprocessedTimings(t *testing.T) {
	ca := testcert.NewCA(t, testcert.Spec{})
	serverTLS := &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, testcert.Loopback()).TLS()}, NextProtos: []string{"h2"}}
	_, addr := newH2Calls(t, onConn(goesAway, serves), h2CallsOpts{tls: serverTLS})
	sink, err := probeLogged(t, grpcModule(t, probertest.GRPCTLSSection(t, ca)), addr, probertest.DiscardLogger)
	checkOutcome(t, err, failure{})
	servingSeries(t, sink, "SERVING")
	probertest.Metric(t, sink, 1, "probe_grpc_ssl")
	grpcPhases(t, sink, taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseTLS, taxonomy.PhaseCheck)
	phasesAddUp(t, sink, map[taxonomy.Phase]int{taxonomy.PhaseConnect: 2, taxonomy.PhaseTLS: 2, taxonomy.PhaseCheck: 2})
}
