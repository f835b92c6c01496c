package http

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// A probe's request to a plain-HTTP target, with no proxy, is made by
// roundTripDirect on the probe's own goroutine instead of by net/http's
// Transport. The Transport runs a read loop and a write loop on two
// goroutines of their own for every connection, which pooling pays back
// and a probe, with one request per fresh connection, does not: every probe in
// flight would hold those two goroutines and their state, and every probe
// would pay for starting them and handing the response between them
// (docs/performance.md). The request and the response are
// still written and parsed by net/http (Request.Write, ReadResponse).

const (
	// maxDirectBody is the largest request body sent directly. The
	// Transport keeps reading while it writes, so a target answering
	// before it has read a large body (413, say) is still heard; a body
	// this small fits in the socket's buffer, so writing it first and
	// reading after loses nothing.
	maxDirectBody = 64 << 10
)

// direct reports whether req can be made by roundTripDirect: a plain
// http request, of a module whose http_client_config adds nothing to it
// in prometheus/common's round tripper but the Transport itself.
func (t *httpTransport) direct(req *http.Request) bool {
	if req.URL.Scheme != "http" || !t.prepared.direct {
		return false
	}
	return req.Body == nil || req.Body == http.NoBody ||
		(req.ContentLength > 0 && req.ContentLength <= maxDirectBody)
}

// roundTripDirect sends req on a fresh connection and reads the response
// header. The response's body reads from the connection and closing it
// closes the connection.
func (t *httpTransport) roundTripDirect(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	conn, err := t.dial(ctx, "tcp", dialAddress(req.URL))
	if err != nil {
		return nil, err
	}
	t.timeline.mark(func(r *roundTrip) *time.Time { return &r.gotConn })
	c := newDirectConn(ctx, conn)
	resp, err := c.exchange(req, t.timeline)
	if err != nil {
		c.Close()
		return nil, err
	}
	return resp, nil
}

// validHeader refuses what net/http's Transport refuses: a header name or
// value that cannot be sent. The headers are the module's, so it is the
// module's configuration that cannot be used, whichever path sends them.
func validHeader(h http.Header) error {
	for name, values := range h {
		if !httpguts.ValidHeaderFieldName(name) {
			return taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup,
				"http.headers: %q is not a valid header name; a name is a token, without spaces or separators", name)
		}
		for _, v := range values {
			if !httpguts.ValidHeaderFieldValue(v) {
				return taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup,
					"http.headers: the value of %q cannot be sent: it holds a line break or another control character", name)
			}
		}
	}
	return nil
}

// directConn is a probe's connection for one request. Its reads and writes
// end when the request's context does, with the context's error, and the
// response header it reads is bounded.
type directConn struct {
	net.Conn
	ctx     context.Context
	stop    func() bool // stops the context's hold on the connection
	header  int64       // bytes the response header may still take; -1 once it is read
	closing sync.Once
}

func newDirectConn(ctx context.Context, conn net.Conn) *directConn {
	c := &directConn{Conn: conn, ctx: ctx, header: core.MaxResponseHeader}
	// Closing wakes every blocked read and write at once, and no
	// connection outlives its probe, whether or not its body was closed.
	c.stop = context.AfterFunc(ctx, func() { c.closing.Do(func() { conn.Close() }) })
	return c
}

// exchange writes req and reads the response's header, skipping the
// informational responses that may come first. As in net/http's
// Transport, their number is not bounded, their headers are: they count
// toward the header limit of the final response.
func (c *directConn) exchange(req *http.Request, tl *timeline) (*http.Response, error) {
	if err := c.send(req); err != nil {
		return nil, fmt.Errorf("writing the request: %w", c.cause(err))
	}
	br := bufio.NewReaderSize(c, probeBufferSize)
	if _, err := br.Peek(1); err != nil {
		return nil, fmt.Errorf("reading the response: %w", c.cause(err))
	}
	tl.mark(func(r *roundTrip) *time.Time { return &r.firstByte })
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, fmt.Errorf("reading the response: %w", c.cause(err))
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			c.header = -1
			resp.Body = &directBody{body: resp.Body, conn: c}
			return resp, nil
		}
	}
}

// send writes req asking the target to close the connection after it, as
// the Transport does when keep-alives are off.
func (c *directConn) send(req *http.Request) error {
	w := bufio.NewWriterSize(c, probeBufferSize)
	closing := *req
	closing.Close = true
	if err := closing.Write(w); err != nil {
		return err
	}
	return w.Flush()
}

func (c *directConn) Read(p []byte) (int, error) {
	if c.header == 0 {
		return 0, core.ErrHeaderTooLarge
	}
	if c.header > 0 && int64(len(p)) > c.header {
		p = p[:c.header]
	}
	n, err := c.Conn.Read(p)
	if c.header > 0 {
		c.header -= int64(n)
	}
	return n, c.contextError(err)
}

func (c *directConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	return n, c.contextError(err)
}

// cause is the error to report for err, met while parsing what the target
// sent: the context's, when it ended. A read cut short by the deadline
// leaves a partial line, which bufio hands over as if it were whole, so
// the parser may fail on it (a status line "HTTP/1.1 2") before it sees
// the read's error.
func (c *directConn) cause(err error) error {
	if c.ctx.Err() != nil {
		return c.ctx.Err()
	}
	return err
}

// contextError returns the context's error for an I/O error caused by the
// context ending, so that it is told from a timeout of the target's.
func (c *directConn) contextError(err error) error {
	if err != nil && c.ctx.Err() != nil && !errors.Is(err, io.EOF) {
		return c.ctx.Err()
	}
	return err
}

func (c *directConn) Close() error {
	var err error
	c.closing.Do(func() {
		c.stop()
		err = c.Conn.Close()
	})
	return err
}

// directBody is a response body read from a directConn. Closing it closes
// the connection without reading the rest: net/http's own body would read
// on to the end, which a target sending an endless body never reaches.
// Its first error is returned by every later read, as the Transport's
// body does: net/http's body answers a read after a broken chunked
// trailer with "invalid Read on closed Body", which says nothing of the
// target.
type directBody struct {
	body io.ReadCloser
	conn *directConn
	err  error
}

func (b *directBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.body.Read(p)
	if err != nil && err != io.EOF {
		err = b.conn.cause(err)
	}
	b.err = err
	return n, err
}

func (b *directBody) Close() error { return b.conn.Close() }
