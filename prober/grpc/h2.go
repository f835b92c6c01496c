package grpc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A health check is the only call its connection carries (or, when the
// server refuses its stream, the only two), and the exchange is written
// here on x/net's HTTP/2 framer rather than left to a full client. Both
// full clients at hand keep per-connection machinery for long-lived,
// shared connections: grpc-go's ClientConn (resolver, balancer, channel
// bookkeeping, goroutines) cost more than the rest of the probe together,
// and net/http's ClientConn keeps a connection that never went through its
// pool alive for 5 s after it is closed, so that at a few thousand probes
// a second it held 100 MB. On one stream of a fresh connection HTTP/2 is
// short: the client sends its preface and settings, reads the server's
// settings, sends the whole request with their acknowledgement, then reads
// frames, acknowledging settings and pings, until the stream ends.

// h2Answer is what the server answered on the stream.
type h2Answer struct {
	status       int // the final :status of an answer that is not gRPC's
	header       http.Header
	trailer      http.Header
	trailersOnly bool // the headers ended the stream: they hold the status
	body         []byte
}

const (
	// h2Window is the receive window sonde announces, for the stream and
	// the connection: room for the largest answer it reads.
	h2Window = grpcMaxMessage + 5 + 1
	// h2MaxFrame is the largest frame read: HTTP/2's default, which sonde
	// does not raise.
	h2MaxFrame = 16 << 10
	// h2MaxHeaderList bounds the decoded size of a header block.
	h2MaxHeaderList = 1 << 20
	// h2MaxInformational bounds the 1xx answers skipped before the real one.
	h2MaxInformational = 5
	// h2DefaultWindow is HTTP/2's initial window size.
	h2DefaultWindow = 65535
)

// h2Conn is a probe's HTTP/2 connection.
type h2Conn struct {
	conn net.Conn
	fr   *http2.Framer
	out  bytes.Buffer // frames written by fr, sent by flush
	// enc writes every header block of the connection: the server decodes
	// them all with one dynamic table.
	enc   *hpack.Encoder
	block bytes.Buffer // enc's output, one block at a time
	stop  func() bool  // releases the deadline's hold on conn
	// headerLimit is the server's SETTINGS_MAX_HEADER_LIST_SIZE, and
	// unlimited, as HTTP/2 has it, until the server sets one.
	headerLimit uint64
	// sendWindow is what the connection's flow control lets sonde send.
	sendWindow int64
	spoke      bool // a valid frame came from the server
	// goneAway says a GOAWAY came, with lastStream its last-stream-id:
	// the server takes no new stream on the connection.
	goneAway   bool
	lastStream uint32
	// goAway describes a GOAWAY that let the call finish, if one came; a
	// frame is only valid until the next is read.
	goAway string
	nextID uint32   // the stream the next call opens
	st     h2Stream // the call being made
}

// h2Stream is the state of one call's stream.
type h2Stream struct {
	id     uint32
	answer h2Answer
	ended  bool // the server ended the stream, or sonde has read enough
	skips  int  // 1xx answers skipped
}

// openH2 starts HTTP/2 on conn, fresh and speaking it from its first
// byte: sonde's preface and settings, then the server's SETTINGS, which a
// server sends first and which say how large a request it takes. Reads
// and writes end when ctx does; the caller tells a deadline from a broken
// connection by ctx, and closes the h2Conn.
func openH2(ctx context.Context, conn net.Conn) (*h2Conn, *callFailure) {
	c := &h2Conn{conn: conn, headerLimit: math.MaxUint64, sendWindow: h2DefaultWindow, nextID: 1}
	c.stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	c.fr = http2.NewFramer(&c.out, bufio.NewReaderSize(conn, 2<<10))
	c.fr.SetMaxReadFrameSize(h2MaxFrame)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = h2MaxHeaderList
	c.enc = hpack.NewEncoder(&c.block)
	if err := c.sendPreface(); err != nil {
		c.close()
		return nil, transportFailure(err)
	}
	if fail := c.awaitSettings(); fail != nil {
		c.close()
		return nil, fail
	}
	return c, nil
}

// close releases the connection's deadline binding; the caller closes
// the net.Conn.
func (c *h2Conn) close() { c.stop() }

// sendPreface writes the connection preface and sonde's settings.
func (c *h2Conn) sendPreface() error {
	c.out.WriteString(http2.ClientPreface)
	_ = c.fr.WriteSettings(
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2Window},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: h2MaxHeaderList},
	)
	_ = c.fr.WriteWindowUpdate(0, h2Window-h2DefaultWindow)
	return c.flush()
}

// awaitSettings reads the server's first frame, which must be SETTINGS
// (gRPC refuses a connection whose server starts otherwise), and queues
// its acknowledgement to go out with the request. The request leaves
// about a round trip after the connect, as it does from gRPC: a server
// sends its settings when it accepts the connection, half a round trip
// after the client saw it open, or on reading the client's preface.
func (c *h2Conn) awaitSettings() *callFailure {
	f, err := c.fr.ReadFrame()
	if err != nil {
		return c.readError(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		return unreadable(codes.Unavailable, "the server's first frame is %v, not the SETTINGS an HTTP/2 server sends first", f.Header().Type)
	}
	c.spoke = true
	if !sf.IsAck() {
		c.takeSettings(sf)
	}
	return nil
}

// takeSettings applies the server's settings that shape what sonde sends,
// and writes their acknowledgement.
func (c *h2Conn) takeSettings(f *http2.SettingsFrame) {
	if v, ok := f.Value(http2.SettingMaxHeaderListSize); ok {
		c.headerLimit = uint64(v)
	}
	if v, ok := f.Value(http2.SettingHeaderTableSize); ok {
		c.enc.SetMaxDynamicTableSizeLimit(v)
	}
	_ = c.fr.WriteSettingsAck()
}

// call sends a request on the connection's next stream, fields being its
// header fields, pseudo-headers first, and reads the answer to the end of
// the stream. A header list larger than the server takes is not sent, as
// gRPC does not send it: the call fails with INTERNAL.
func (c *h2Conn) call(fields []hpack.HeaderField, body []byte) (*h2Answer, *callFailure) {
	if fail := c.checkHeaderList(fields); fail != nil {
		return nil, fail
	}
	c.st = h2Stream{id: c.nextID}
	c.nextID += 2
	if fail := c.awaitWindow(len(body)); fail != nil {
		return nil, c.failed(fail)
	}
	if err := c.sendRequest(fields, body); err != nil {
		return nil, c.failed(transportFailure(err))
	}
	for !c.st.ended {
		if fail := c.readFrame(); fail != nil {
			return nil, c.failed(fail)
		}
		c.spoke = true
	}
	return &c.st.answer, nil
}

// failed completes a failure with what the connection knows of it.
func (c *h2Conn) failed(fail *callFailure) *callFailure {
	fail.spokeHTTP2 = fail.spokeHTTP2 || c.spoke
	fail.goneAway = c.goneAway
	return fail
}

// headerListSize is a header list's size as HTTP/2 counts it against
// SETTINGS_MAX_HEADER_LIST_SIZE: each field's name and value, plus 32.
func headerListSize(fields []hpack.HeaderField) uint64 {
	var n uint64
	for _, f := range fields {
		n += uint64(f.Size())
	}
	return n
}

// checkHeaderList refuses a header list larger than the server takes.
func (c *h2Conn) checkHeaderList(fields []hpack.HeaderField) *callFailure {
	size := headerListSize(fields)
	if size <= c.headerLimit {
		return nil
	}
	return &callFailure{
		status: status.Newf(codes.Internal, "the request's header list is %d bytes, more than the %d bytes the server takes (its SETTINGS_MAX_HEADER_LIST_SIZE)",
			size, c.headerLimit),
		unsent:     true,
		spokeHTTP2: true,
	}
}

// awaitWindow reads frames until the connection's flow control lets n
// bytes be sent: only a second call, whose request follows the first's
// on a connection the server has not yet credited, can wait.
func (c *h2Conn) awaitWindow(n int) *callFailure {
	for c.sendWindow < int64(n) {
		if fail := c.readFrame(); fail != nil {
			return fail
		}
	}
	return nil
}

// sendRequest writes the request, with whatever the reading of frames
// queued (the SETTINGS acknowledgement), in one write.
func (c *h2Conn) sendRequest(fields []hpack.HeaderField, body []byte) error {
	c.writeHeaders(fields, len(body) == 0)
	c.sendWindow -= int64(len(body))
	for len(body) > 0 {
		chunk := body[:min(len(body), h2MaxFrame)]
		body = body[len(chunk):]
		_ = c.fr.WriteData(c.st.id, len(body) == 0, chunk)
	}
	return c.flush()
}

// writeHeaders writes the request's header block on the call's stream,
// split into CONTINUATION frames when it is larger than a frame.
func (c *h2Conn) writeHeaders(fields []hpack.HeaderField, endStream bool) {
	c.block.Reset()
	for _, f := range fields {
		_ = c.enc.WriteField(f)
	}
	b := c.block.Bytes()
	first := b[:min(len(b), h2MaxFrame)]
	b = b[len(first):]
	_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: c.st.id, BlockFragment: first, EndStream: endStream, EndHeaders: len(b) == 0})
	for len(b) > 0 {
		frag := b[:min(len(b), h2MaxFrame)]
		b = b[len(frag):]
		_ = c.fr.WriteContinuation(c.st.id, len(b) == 0, frag)
	}
}

// flush sends the frames written so far.
func (c *h2Conn) flush() error {
	_, err := c.conn.Write(c.out.Bytes())
	c.out.Reset()
	return err
}

// readFrame reads and handles one frame from the server.
func (c *h2Conn) readFrame() *callFailure {
	f, err := c.fr.ReadFrame()
	if err != nil {
		return c.readError(err)
	}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		return c.reply(!f.IsAck(), func() { c.takeSettings(f) })
	case *http2.PingFrame:
		return c.reply(!f.IsAck(), func() { _ = c.fr.WritePing(true, f.Data) })
	case *http2.WindowUpdateFrame:
		if f.StreamID == 0 {
			c.sendWindow += int64(f.Increment)
		}
	case *http2.MetaHeadersFrame:
		return c.onHeaders(f)
	case *http2.DataFrame:
		return c.onData(f)
	case *http2.RSTStreamFrame:
		return c.onReset(f)
	case *http2.GoAwayFrame:
		return c.onGoAway(f)
	case *http2.PushPromiseFrame:
		return unreadable(codes.Unavailable, "the server sent PUSH_PROMISE, which sonde's settings disabled")
	}
	return nil // PRIORITY and unknown frames: nothing to do
}

// reply sends what write writes when a frame asks for an answer.
func (c *h2Conn) reply(needed bool, write func()) *callFailure {
	if !needed {
		return nil
	}
	write()
	if err := c.flush(); err != nil {
		return transportFailure(err)
	}
	return nil
}

// onHeaders takes the answer's headers, then its trailers. Header blocks
// of other streams are skipped, as grpc-go skips them: the framer has
// decoded them, which keeps the HPACK table in step.
func (c *h2Conn) onHeaders(f *http2.MetaHeadersFrame) *callFailure {
	s := &c.st
	switch {
	case f.StreamID != s.id:
		return nil
	case f.Truncated:
		return unreadable(codes.Internal, "the server's header list is larger than the %d bytes sonde reads", h2MaxHeaderList)
	case s.answer.header != nil:
		if !f.StreamEnded() {
			return unreadable(codes.Internal, "the server sent a second header block that does not end the stream")
		}
		s.answer.trailer = regularFields(f)
		s.ended = true
		return nil
	}
	h := regularFields(f)
	if !isGRPCContentType(h.Get("Content-Type")) {
		return s.onHTTPAnswer(f, h)
	}
	// A gRPC answer: its :status is not looked at, as grpc-go does not.
	s.answer.header = h
	s.answer.trailersOnly = f.StreamEnded()
	s.ended = f.StreamEnded()
	return nil
}

// onHTTPAnswer takes headers that are not gRPC's: an informational
// answer to skip, or an HTTP answer, which ends the exchange: its body
// says nothing more.
func (s *h2Stream) onHTTPAnswer(f *http2.MetaHeadersFrame, h http.Header) *callFailure {
	code, err := strconv.Atoi(f.PseudoValue("status"))
	if err != nil {
		return unreadable(codes.Internal, "the server answered with :status %q", f.PseudoValue("status"))
	}
	if code >= 100 && code < 200 {
		if f.StreamEnded() {
			return unreadable(codes.Internal, "the server ended the stream with an informational answer (:status %d)", code)
		}
		if s.skips < h2MaxInformational {
			s.skips++
			return nil
		}
	}
	s.answer.status = code
	s.answer.header = h
	s.ended = true
	return nil
}

// regularFields returns a header block's fields as a header.
func regularFields(f *http2.MetaHeadersFrame) http.Header {
	fields := f.RegularFields()
	h := make(http.Header, len(fields))
	for _, hf := range fields {
		h.Add(hf.Name, hf.Value)
	}
	return h
}

// onData keeps the answer's body, up to what a health check reads.
func (c *h2Conn) onData(f *http2.DataFrame) *callFailure {
	s := &c.st
	if f.StreamID != s.id {
		return nil
	}
	if s.answer.header == nil {
		return unreadable(codes.Internal, "the server sent data before its headers")
	}
	if len(s.answer.body)+len(f.Data()) > h2Window {
		return unreadable(codes.ResourceExhausted, "the answer's body is longer than the %d bytes a health check reads", h2Window)
	}
	s.answer.body = append(s.answer.body, f.Data()...)
	s.ended = f.StreamEnded()
	return nil
}

// onReset ends the call whose stream the server reset. REFUSED_STREAM
// says the server did not process it.
func (c *h2Conn) onReset(f *http2.RSTStreamFrame) *callFailure {
	if f.StreamID != c.st.id {
		return nil // a stream sonde gave up on, or never opened
	}
	fail := serverSaid(resetStatus(f.ErrCode))
	fail.unprocessed = f.ErrCode == http2.ErrCodeRefusedStream
	return fail
}

// onGoAway keeps reading when the server will still answer the call, and
// ends it when the server says it never processed it. A GOAWAY HTTP/2
// does not allow (an even stream, or one raising the previous GOAWAY's)
// breaks the connection, as in grpc-go.
func (c *h2Conn) onGoAway(f *http2.GoAwayFrame) *callFailure {
	last := f.LastStreamID
	switch {
	case last%2 == 0 && last != 0:
		return unreadable(codes.Unavailable, "the server sent GOAWAY with last stream %d, which no client opens", last)
	case c.goneAway && last > c.lastStream:
		return unreadable(codes.Unavailable, "the server sent GOAWAY with last stream %d after one with %d", last, c.lastStream)
	}
	c.goneAway, c.lastStream = true, last
	desc := fmt.Sprintf("GOAWAY %v", f.ErrCode)
	if d := f.DebugData(); len(d) > 0 {
		desc += fmt.Sprintf(": %q", d)
	}
	if last >= c.st.id {
		c.goAway = desc
		return nil
	}
	fail := serverSaid(status.Newf(codes.Unavailable, "the server sent %s before processing the call", desc))
	fail.unprocessed = true
	return fail
}

// readError is the failure of a call whose connection did not give a
// valid frame.
func (c *h2Conn) readError(err error) *callFailure {
	var connErr http2.ConnectionError
	var streamErr http2.StreamError
	switch {
	case c.goAway != "":
		return serverSaid(status.Newf(codes.Unavailable, "the server went away (%s) before ending the call: %v", c.goAway, err))
	case errors.As(err, &streamErr):
		return unreadable(codes.Internal, "the server's answer is not valid HTTP/2: %v", err)
	case errors.As(err, &connErr), errors.Is(err, http2.ErrFrameTooLarge):
		return unreadable(codes.Unavailable, "the server does not speak HTTP/2 as gRPC needs: %v", err)
	}
	return transportFailure(err)
}

// resetStatus is the status of a call whose stream the server reset, by
// the reset's code, as grpc-go maps them: the codes HTTP/2 defines are
// INTERNAL but for a few, and a code it does not define is UNKNOWN.
func resetStatus(code http2.ErrCode) *status.Status {
	c := codes.Internal
	switch code {
	case http2.ErrCodeRefusedStream:
		c = codes.Unavailable
	case http2.ErrCodeCancel:
		c = codes.Canceled
	case http2.ErrCodeEnhanceYourCalm, http2.ErrCodeFlowControl:
		c = codes.ResourceExhausted
	case http2.ErrCodeInadequateSecurity:
		c = codes.PermissionDenied
	default:
		if code > http2.ErrCodeHTTP11Required {
			c = codes.Unknown
		}
	}
	return status.Newf(c, "the server reset the stream (RST_STREAM %v)", code)
}
