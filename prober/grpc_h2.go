package prober

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A health check is the only stream its connection carries, and the
// exchange is written here on x/net's HTTP/2 framer rather than left to a
// full client. Both full clients at hand keep per-connection machinery for
// long-lived, shared connections: grpc-go's ClientConn (resolver,
// balancer, channel bookkeeping, goroutines) cost more than the rest
// of the probe together, and net/http's ClientConn keeps a connection that
// never went through its pool alive for 5 s after it is closed, so that at
// a few thousand probes a second it held 100 MB. On one stream of a fresh
// connection HTTP/2 is short: the client sends its preface, settings and
// the whole request at once, then reads frames, acknowledging settings and
// pings, until the stream ends.

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

// h2Stream is the one stream of a probe's HTTP/2 connection.
type h2Stream struct {
	conn   net.Conn
	fr     *http2.Framer
	out    bytes.Buffer // frames written by fr, sent by flush
	answer h2Answer
	ended  bool // the server ended the stream, or sonde has read enough
	spoke  bool // a valid frame came from the server
	skips  int  // 1xx answers skipped
	// goneAway says a GOAWAY came, with lastStream its last-stream-id.
	goneAway   bool
	lastStream uint32
	// goAway describes a GOAWAY that let the call finish, if one came; a
	// frame is only valid until the next is read.
	goAway string
}

// exchangeH2 sends one request on conn, fresh and speaking HTTP/2 from its
// first byte, and reads the answer to the end of its stream. fields are
// the request's header fields, pseudo-headers first.
func exchangeH2(ctx context.Context, conn net.Conn, fields []hpack.HeaderField, body []byte) (*h2Answer, *callFailure) {
	// Reads and writes end when ctx does; the caller tells a deadline from
	// a broken connection by ctx.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	s := &h2Stream{conn: conn}
	s.fr = http2.NewFramer(&s.out, bufio.NewReaderSize(conn, 2<<10))
	s.fr.SetMaxReadFrameSize(h2MaxFrame)
	s.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	s.fr.MaxHeaderListSize = h2MaxHeaderList
	if err := s.sendRequest(fields, body); err != nil {
		return nil, transportFailure(err)
	}
	for !s.ended {
		if fail := s.readFrame(); fail != nil {
			fail.spokeHTTP2 = fail.spokeHTTP2 || s.spoke
			return nil, fail
		}
		s.spoke = true
	}
	return &s.answer, nil
}

// sendRequest writes the connection preface, sonde's settings and the
// whole request in one write: a client need not wait for the server's
// settings.
func (s *h2Stream) sendRequest(fields []hpack.HeaderField, body []byte) error {
	s.out.WriteString(http2.ClientPreface)
	_ = s.fr.WriteSettings(
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2Window},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: h2MaxHeaderList},
	)
	_ = s.fr.WriteWindowUpdate(0, h2Window-h2DefaultWindow)
	s.writeHeaders(fields, len(body) == 0)
	for len(body) > 0 {
		chunk := body[:min(len(body), h2MaxFrame)]
		body = body[len(chunk):]
		_ = s.fr.WriteData(1, len(body) == 0, chunk)
	}
	return s.flush()
}

// writeHeaders writes the request's header block on stream 1, split into
// CONTINUATION frames when it is larger than a frame.
func (s *h2Stream) writeHeaders(fields []hpack.HeaderField, endStream bool) {
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range fields {
		_ = enc.WriteField(f)
	}
	b := block.Bytes()
	first := b[:min(len(b), h2MaxFrame)]
	b = b[len(first):]
	_ = s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndStream: endStream, EndHeaders: len(b) == 0})
	for len(b) > 0 {
		frag := b[:min(len(b), h2MaxFrame)]
		b = b[len(frag):]
		_ = s.fr.WriteContinuation(1, len(b) == 0, frag)
	}
}

// flush sends the frames written so far.
func (s *h2Stream) flush() error {
	_, err := s.conn.Write(s.out.Bytes())
	s.out.Reset()
	return err
}

// readFrame reads and handles one frame from the server.
func (s *h2Stream) readFrame() *callFailure {
	f, err := s.fr.ReadFrame()
	if err != nil {
		return s.readError(err)
	}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		return s.reply(!f.IsAck(), s.fr.WriteSettingsAck)
	case *http2.PingFrame:
		return s.reply(!f.IsAck(), func() error { return s.fr.WritePing(true, f.Data) })
	case *http2.MetaHeadersFrame:
		return s.onHeaders(f)
	case *http2.DataFrame:
		return s.onData(f)
	case *http2.RSTStreamFrame:
		if f.StreamID != 1 {
			return nil
		}
		return serverSaid(resetStatus(f.ErrCode))
	case *http2.GoAwayFrame:
		return s.onGoAway(f)
	case *http2.PushPromiseFrame:
		return unreadable(codes.Unavailable, "the server sent PUSH_PROMISE, which sonde's settings disabled")
	}
	return nil // WINDOW_UPDATE, PRIORITY and unknown frames: nothing to do
}

// reply sends what write writes when a frame asks for an answer.
func (s *h2Stream) reply(needed bool, write func() error) *callFailure {
	if !needed {
		return nil
	}
	_ = write()
	if err := s.flush(); err != nil {
		return transportFailure(err)
	}
	return nil
}

// onHeaders takes the answer's headers, then its trailers. Header blocks
// of other streams are skipped, as grpc-go skips them: the framer has
// decoded them, which keeps the HPACK table in step.
func (s *h2Stream) onHeaders(f *http2.MetaHeadersFrame) *callFailure {
	switch {
	case f.StreamID != 1:
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
func (s *h2Stream) onData(f *http2.DataFrame) *callFailure {
	if f.StreamID != 1 {
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

// onGoAway keeps reading when the server will still answer the call, and
// ends it when the server says it never processed it. A GOAWAY HTTP/2
// does not allow (an even stream, or one raising the previous GOAWAY's)
// breaks the connection, as in grpc-go.
func (s *h2Stream) onGoAway(f *http2.GoAwayFrame) *callFailure {
	last := f.LastStreamID
	switch {
	case last%2 == 0 && last != 0:
		return unreadable(codes.Unavailable, "the server sent GOAWAY with last stream %d, which no client opens", last)
	case s.goneAway && last > s.lastStream:
		return unreadable(codes.Unavailable, "the server sent GOAWAY with last stream %d after one with %d", last, s.lastStream)
	}
	s.goneAway, s.lastStream = true, last
	desc := fmt.Sprintf("GOAWAY %v", f.ErrCode)
	if d := f.DebugData(); len(d) > 0 {
		desc += fmt.Sprintf(": %q", d)
	}
	if last >= 1 {
		s.goAway = desc
		return nil
	}
	return serverSaid(status.Newf(codes.Unavailable, "the server sent %s before processing the call", desc))
}

// readError is the failure of a call whose connection did not give a
// valid frame.
func (s *h2Stream) readError(err error) *callFailure {
	var connErr http2.ConnectionError
	var streamErr http2.StreamError
	switch {
	case s.goAway != "":
		return serverSaid(status.Newf(codes.Unavailable, "the server went away (%s) before ending the call: %v", s.goAway, err))
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
