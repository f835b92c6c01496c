package grpc

import (
	"crypto/tls"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sonde-exporter/sonde/internal/testkit"
)

// h2Calls is a frame-level peer for more than one call, on more than one
// connection, as grpc_h2_test.go's h2Peer is for one: it notes what each
// connection carried, so that a test can compare the probe's calls with
// grpc-go's client's on the wire.

// h2Turn answers one request of an h2Calls peer: conn counts the peer's
// connections from 1, stream is the request's. It returns whether to hang
// up the connection after answering.
type h2Turn func(o *h2Out, conn int, stream uint32) (hangUp bool)

// h2Calls is a raw HTTP/2 server that takes any number of calls on any
// number of connections, and notes which streams each connection carried.
type h2Calls struct {
	h2CallsOpts
	turn     h2Turn
	accepted atomic.Int32
	ended    chan h2Trace
}

// h2CallsOpts shape an h2Calls peer.
type h2CallsOpts struct {
	tls      *tls.Config     // serve TLS when set
	oneConn  bool            // take one connection, then stop listening: a second dial is refused
	settings []http2.Setting // the peer's SETTINGS
}

// h2Trace is what one connection of an h2Calls peer carried.
type h2Trace struct {
	conn    int
	streams []uint32 // the requests read, by stream
	headers int      // the HEADERS frames read, whole requests or not
}

// newH2Calls starts an h2Calls peer.
func newH2Calls(t *testing.T, turn h2Turn, o h2CallsOpts) (*h2Calls, string) {
	t.Helper()
	p := &h2Calls{h2CallsOpts: o, turn: turn, ended: make(chan h2Trace, 16)}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.oneConn {
		ln = &oneShot{Listener: ln}
	}
	testkit.ServeConns(t, ln, p.serve)
	return p, ln.Addr().String()
}

// oneShot is a listener that closes after its first connection.
type oneShot struct{ net.Listener }

func (l *oneShot) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	l.Listener.Close()
	return c, err
}

// serve runs one connection: the peer's SETTINGS after the client's
// preface, then a turn for every request, until a turn hangs up or the
// client closes.
func (p *h2Calls) serve(c net.Conn) {
	tr := h2Trace{conn: int(p.accepted.Add(1))}
	defer func() { p.ended <- tr }()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second)) // the test's patience
	if p.tls != nil {
		c = tls.Server(c, p.tls)
	}
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil || string(preface) != http2.ClientPreface {
		return
	}
	o := newH2Out(c, c)
	o.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	_ = o.fr.WriteSettings(p.settings...)
	for {
		f, err := o.fr.ReadFrame()
		if err != nil {
			return
		}
		if f.Header().Type == http2.FrameHeaders {
			tr.headers++
		}
		if h := f.Header(); h.StreamID == 0 || !h.Flags.Has(http2.FlagDataEndStream) ||
			(h.Type != http2.FrameData && h.Type != http2.FrameHeaders) {
			continue // not the end of a request
		}
		tr.streams = append(tr.streams, f.Header().StreamID)
		if p.turn(o, tr.conn, f.Header().StreamID) {
			hangUp(c)
			return
		}
	}
}

// hangUp closes the peer's half of c and reads what the client still
// sends until it closes: a FIN rather than a reset, which could overtake
// what the peer sent last.
func hangUp(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, c)
}

// traces returns what each connection carried, by connection, once
// every connection the peer took has ended.
func (p *h2Calls) traces(t *testing.T) []h2Trace {
	t.Helper()
	got := make([]h2Trace, p.accepted.Load())
	deadline := time.After(10 * time.Second)
	for ended := 0; ended < len(got); ended++ {
		select {
		case tr := <-p.ended:
			got[tr.conn-1] = tr
		case <-deadline:
			t.Fatalf("the client never closed the peer's connections; %d of %d ended", ended, len(got))
		}
	}
	return got
}

// streams returns the streams each connection carried, by connection.
func (p *h2Calls) streams(t *testing.T) [][]uint32 {
	t.Helper()
	var got [][]uint32
	for _, tr := range p.traces(t) {
		got = append(got, tr.streams)
	}
	return got
}

// serveOn writes a whole SERVING answer on stream.
func serveOn(o *h2Out, stream uint32) {
	o.headers(stream, false, ":status", "200", "content-type", "application/grpc")
	_ = o.fr.WriteData(stream, false, healthFrame(healthpb.HealthCheckResponse_SERVING))
	o.headers(stream, true, "grpc-status", "0")
}

// serves is an h2Turn that answers SERVING.
var serves h2Turn = func(o *h2Out, _ int, stream uint32) bool {
	serveOn(o, stream)
	return false
}
