package grpc

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
)

// fuzzGRPCDeadline bounds one probe. The peer hangs up after its bytes,
// so only a client that misses the end of the connection waits this long.
const fuzzGRPCDeadline = 2 * time.Second

// FuzzGRPCAnswer serves arbitrary bytes as everything a server says after
// the client's preface, to the grpc prober's own HTTP/2 client
// (grpc_h2.go) and the gRPC reading of its answer (grpc_call.go), from a
// raw TCP server on loopback, which then hangs up. Whatever the bytes,
// the probe ends in time as a success or a classified failure: never
// class unknown, and always with a phase. The seeds are a well-formed answer, a Trailers-Only one,
// an HTTP/1.1 response and nothing at all.
func FuzzGRPCAnswer(f *testing.F) {
	m := fuzzModule(f, "grpc", `service: ""`)

	var valid bytes.Buffer
	o := newH2Out(&valid, nil)
	_ = o.fr.WriteSettings()
	o.serving()
	f.Add(valid.Bytes())

	var trailersOnly bytes.Buffer
	o = newH2Out(&trailersOnly, nil)
	_ = o.fr.WriteSettings()
	o.headers(1, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "5", "grpc-message", "unknown%20service")
	f.Add(trailersOnly.Bytes())

	// A ping and a GOAWAY, so that the fuzzer starts from every frame type
	// the client acts on.
	var chatty bytes.Buffer
	o = newH2Out(&chatty, nil)
	_ = o.fr.WriteSettings()
	_ = o.fr.WritePing(false, pingData)
	_ = o.fr.WriteGoAway(1, http2.ErrCodeNo, []byte("bye"))
	o.grpcHeaders()
	o.data(false, healthFrame(healthpb.HealthCheckResponse_NOT_SERVING))
	_ = o.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	f.Add(chatty.Bytes())

	f.Add([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte{})

	// One listener serves the whole run, each connection with the input
	// being run: a listener per input took a port per input, which with
	// the ports of the connections in TIME_WAIT ran loopback out of ports
	// within a minute of fuzzing. A second connection of one input (the
	// probe's retry) gets the same bytes.
	var current atomic.Pointer[[]byte]
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	testkit.ServeConns(f, ln, func(c net.Conn) {
		answer := *current.Load()
		_ = c.SetDeadline(time.Now().Add(fuzzGRPCDeadline + time.Second))
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(c, preface); err != nil {
			return
		}
		_, _ = c.Write(answer)
		// Hang up the peer's half, then take what the client still
		// sends until it closes: the close is a FIN, not a reset that
		// could overtake the bytes. Were the connection left open,
		// every answer that promises more than it sends would wait
		// out the deadline, and the fuzzer, which minimises each new
		// input by running it again and again, would spend its time
		// waiting (a few execs a minute). TestGRPCH2Deadline covers a
		// server that keeps the call waiting.
		_ = c.(*net.TCPConn).CloseWrite()
		_, _ = io.Copy(io.Discard, c)
	})
	addr := ln.Addr().String()

	f.Fuzz(func(t *testing.T, answer []byte) {
		current.Store(&answer)
		ctx, cancel := context.WithTimeout(context.Background(), fuzzGRPCDeadline)
		defer cancel()
		sink := probemetrics.NewSink()
		start := time.Now()
		err := probeGRPC(ctx, addr, m, sink, probertest.DiscardLogger)
		probertest.ClassifiedInTime(t, err, time.Since(start), fuzzGRPCDeadline)
		if _, gerr := sink.Gather(); gerr != nil {
			t.Fatalf("the probe's metrics do not gather: %v", gerr)
		}
	})
}
