package grpc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// The tests here put the grpc prober's own HTTP/2 client (grpc_h2.go)
// against a peer written frame by frame, for the answers a grpc-go server
// never gives: pings and GOAWAYs at awkward moments, resets, broken
// messages, frames on the wrong stream, non-gRPC answers.

// h2Out writes a peer's frames. Its header blocks share one HPACK encoder,
// as the blocks of one connection must: the client decodes them all with
// one dynamic table.
type h2Out struct {
	fr    *http2.Framer
	enc   *hpack.Encoder
	block bytes.Buffer
}

func newH2Out(w io.Writer, r io.Reader) *h2Out {
	o := &h2Out{fr: http2.NewFramer(w, r)}
	o.enc = hpack.NewEncoder(&o.block)
	return o
}

// encode returns name/value pairs as a header block.
func (o *h2Out) encode(pairs ...string) []byte {
	o.block.Reset()
	for i := 0; i+1 < len(pairs); i += 2 {
		_ = o.enc.WriteField(hpack.HeaderField{Name: pairs[i], Value: pairs[i+1]})
	}
	return slices.Clone(o.block.Bytes())
}

// headers writes a header block of name/value pairs on stream in one
// HEADERS frame, ending the stream when end is set.
func (o *h2Out) headers(stream uint32, end bool, pairs ...string) {
	_ = o.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: o.encode(pairs...), EndStream: end, EndHeaders: true})
}

// grpcHeaders writes the headers that open a gRPC answer on stream 1.
func (o *h2Out) grpcHeaders() {
	o.headers(1, false, ":status", "200", "content-type", "application/grpc")
}

// trailers writes the header block that ends stream 1.
func (o *h2Out) trailers(pairs ...string) { o.headers(1, true, pairs...) }

// data writes a DATA frame on stream 1.
func (o *h2Out) data(end bool, b []byte) { _ = o.fr.WriteData(1, end, b) }

// serving writes a whole well-formed answer: headers, one SERVING
// message, trailers with grpc-status 0.
func (o *h2Out) serving() {
	o.grpcHeaders()
	o.data(false, healthFrame(healthpb.HealthCheckResponse_SERVING))
	o.trailers("grpc-status", "0")
}

// hold reads what the client sends until it closes the connection,
// answering nothing: a server that keeps the call waiting.
func (o *h2Out) hold() {
	for {
		if _, err := o.fr.ReadFrame(); err != nil {
			return
		}
	}
}

// healthFrame is a HealthCheckResponse as a gRPC message: a flag byte (0,
// uncompressed), the length in 4 bytes big-endian, the protobuf bytes.
func healthFrame(s healthpb.HealthCheckResponse_ServingStatus) []byte {
	b, err := proto.Marshal(&healthpb.HealthCheckResponse{Status: s})
	if err != nil {
		panic(err) // a HealthCheckResponse always marshals
	}
	return lengthPrefixed(0, uint32(len(b)), b)
}

// lengthPrefixed is a gRPC message frame whose prefix says what the case
// needs, whatever follows it.
func lengthPrefixed(flag byte, n uint32, payload []byte) []byte {
	frame := make([]byte, 5, 5+len(payload))
	frame[0] = flag
	binary.BigEndian.PutUint32(frame[1:], n)
	return append(frame, payload...)
}

// h2Seen is what the peer read from the client: the request, and the
// frames the client sent.
type h2Seen struct {
	fields []hpack.HeaderField // the request's header block, in order
	body   []byte              // the request's DATA on stream 1
	frames []seenFrame         // after the preface, until the client closed
	err    error               // why the request could not be read
}

// seenFrame is what the tests look at of a frame, copied out of it: the
// framer may reuse a frame's buffer on the next read.
type seenFrame struct {
	typ   http2.FrameType
	flags http2.Flags
	ping  [8]byte
}

// has reports whether the client sent a frame of type typ with flags set.
func (s h2Seen) has(typ http2.FrameType, flags http2.Flags) bool {
	for _, f := range s.frames {
		if f.typ == typ && f.flags.Has(flags) {
			return true
		}
	}
	return false
}

// h2Peer starts a raw HTTP/2 server. On each connection it reads the
// client's preface, sends its own SETTINGS (as servers do, without
// waiting for a request: gRPC clients wait for them), reads the request
// (to the end of stream 1), runs answer (which may be nil), then hangs up
// its half of the connection and reads what the client still sends until
// the client closes: a FIN rather than a reset, which could overtake the
// answer. What it saw of the first connection comes on the channel.
func h2Peer(t *testing.T, answer func(o *h2Out)) (string, <-chan h2Seen) {
	t.Helper()
	seen := make(chan h2Seen, 1)
	addr := probertest.RawServer(t, func(c net.Conn) {
		s := serveH2(c, answer)
		select {
		case seen <- s:
		default: // not the first connection
		}
	})
	return addr, seen
}

func serveH2(c net.Conn, answer func(o *h2Out)) (s h2Seen) {
	// The test's patience, should the client never close.
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil || string(preface) != http2.ClientPreface {
		s.err = fmt.Errorf("reading the client preface: got %q, %v", preface, err)
		return s
	}
	o := newH2Out(c, c)
	o.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	_ = o.fr.WriteSettings()
	for ended := false; !ended; {
		f, err := o.fr.ReadFrame()
		if err != nil {
			s.err = fmt.Errorf("reading the request: %w", err)
			return s
		}
		s.frames = append(s.frames, seenFrame{typ: f.Header().Type, flags: f.Header().Flags})
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			s.fields = append(s.fields, f.Fields...)
			ended = f.StreamEnded()
		case *http2.DataFrame:
			s.body = append(s.body, f.Data()...)
			ended = f.StreamEnded()
		}
	}
	if answer != nil {
		answer(o)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	for {
		f, err := o.fr.ReadFrame()
		if err != nil {
			return s
		}
		sf := seenFrame{typ: f.Header().Type, flags: f.Header().Flags}
		if p, ok := f.(*http2.PingFrame); ok {
			sf.ping = p.Data
		}
		s.frames = append(s.frames, sf)
	}
}

// awaitSeen returns what the peer saw, once the client has closed.
func awaitSeen(t *testing.T, seen <-chan h2Seen) h2Seen {
	t.Helper()
	select {
	case s := <-seen:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("the peer never saw the client close the connection")
		return h2Seen{}
	}
}

// pingData is the opaque data of the peer's PING, which the ACK must echo.
var pingData = [8]byte{'s', 'o', 'n', 'd', 'e', '-', 'h', '2'}

// TestGRPCH2Answers runs the probe against answers written frame by frame,
// and grpc-go's client against the same answers: the probe's status code
// must be the one grpc-go ends with, but where grpcGo names another.
// Where a case fails, want is what callError makes of the status the
// exchange ended with: INTERNAL, UNKNOWN and a non-gRPC answer are
// protocol/malformed_response; UNAVAILABLE before any headers (and
// without a broken connection) too; an UNAVAILABLE after the headers, and
// every code callError has no case for (CANCELED, RESOURCE_EXHAUSTED,
// UNAUTHENTICATED, ...), is status/grpc_status, as if the server had
// answered it; NOT_FOUND is status/grpc_service_unknown.
func TestGRPCH2Answers(t *testing.T) {
	malformed := failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseCheck}
	refused := failure{taxonomy.ClassStatus, taxonomy.ReasonGRPCStatus, taxonomy.PhaseCheck}
	cases := []struct {
		name    string
		answer  func(o *h2Out)
		want    failure
		code    codes.Code
		message string             // a part of the error's message, when set
		seen    func(h2Seen) error // a check of what the peer saw, when set
		// grpcGo is set where grpc-go's client ends otherwise, on purpose:
		// the code it ends with, and why (in a comment).
		grpcGo *codes.Code
	}{
		{name: "well-formed answer", answer: (*h2Out).serving},
		{name: "PING first", answer: func(o *h2Out) {
			_ = o.fr.WritePing(false, pingData)
			o.serving()
		}, seen: func(s h2Seen) error {
			for _, f := range s.frames {
				if f.typ == http2.FramePing {
					if !f.flags.Has(http2.FlagPingAck) || f.ping != pingData {
						return fmt.Errorf("the client sent PING flags %v data %q, want an ACK of %q", f.flags, f.ping, pingData)
					}
					return nil
				}
			}
			return fmt.Errorf("the client did not answer the PING; it sent %v", s.frames)
		}},
		{name: "SETTINGS acknowledged", answer: (*h2Out).serving, seen: func(s h2Seen) error {
			if !s.has(http2.FrameSettings, http2.FlagSettingsAck) {
				return fmt.Errorf("the client did not acknowledge the server's SETTINGS; it sent %v", s.frames)
			}
			return nil
		}},
		{name: "100 Continue first", answer: func(o *h2Out) {
			o.headers(1, false, ":status", "100")
			o.serving()
		}},
		{name: "frames that need nothing", answer: func(o *h2Out) {
			// WINDOW_UPDATE, PRIORITY and a frame type HTTP/2 does not
			// define are for the client to skip (RFC 9113, 4.1, 5.5).
			_ = o.fr.WriteWindowUpdate(0, 1000)
			_ = o.fr.WritePriority(1, http2.PriorityParam{Weight: 20})
			_ = o.fr.WriteRawFrame(0xfa, 0, 1, []byte("extension"))
			_ = o.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 20})
			o.serving()
		}},
		{name: "headers in CONTINUATION frames", answer: func(o *h2Out) {
			block := o.encode(":status", "200", "content-type", "application/grpc", "x-padding", strings.Repeat("p", 100))
			_ = o.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:10]})
			_ = o.fr.WriteContinuation(1, false, block[10:40])
			_ = o.fr.WriteContinuation(1, true, block[40:])
			o.data(false, healthFrame(healthpb.HealthCheckResponse_SERVING))
			o.trailers("grpc-status", "0")
		}},
		{name: "message split over padded DATA frames", answer: func(o *h2Out) {
			msg := healthFrame(healthpb.HealthCheckResponse_SERVING)
			o.grpcHeaders()
			_ = o.fr.WriteDataPadded(1, false, msg[:3], make([]byte, 7))
			o.data(false, msg[3:])
			o.data(false, nil)
			o.trailers("grpc-status", "0")
		}},
		{name: "GOAWAY last stream 1, then the answer", answer: func(o *h2Out) {
			_ = o.fr.WriteGoAway(1, http2.ErrCodeNo, []byte("draining"))
			o.serving()
		}},
		{name: "GOAWAY last stream 1, then a hang-up", answer: func(o *h2Out) {
			// The GOAWAY is reported after another frame was read, when
			// the framer has taken its buffer back: in aa5a076 this
			// panicked ("Frame accessor called on non-owned Frame").
			_ = o.fr.WriteGoAway(1, http2.ErrCodeNo, nil)
			o.grpcHeaders()
		}, want: refused, code: codes.Unavailable, message: "went away"},
		{name: "RST_STREAM CANCEL", answer: func(o *h2Out) {
			_ = o.fr.WriteRSTStream(1, http2.ErrCodeCancel)
		}, want: refused, code: codes.Canceled, message: "CANCELED"},
		{name: "RST_STREAM ENHANCE_YOUR_CALM", answer: func(o *h2Out) {
			_ = o.fr.WriteRSTStream(1, http2.ErrCodeEnhanceYourCalm)
		}, want: refused, code: codes.ResourceExhausted, message: "RESOURCE_EXHAUSTED"},
		{name: "RST_STREAM INTERNAL_ERROR", answer: func(o *h2Out) {
			_ = o.fr.WriteRSTStream(1, http2.ErrCodeInternal)
		}, want: malformed, code: codes.Internal, message: "RST_STREAM INTERNAL_ERROR"},
		{name: "RST_STREAM FLOW_CONTROL_ERROR", answer: func(o *h2Out) {
			_ = o.fr.WriteRSTStream(1, http2.ErrCodeFlowControl)
		}, want: refused, code: codes.ResourceExhausted, message: "RST_STREAM FLOW_CONTROL_ERROR"},
		{name: "RST_STREAM with a code HTTP/2 does not define", answer: func(o *h2Out) {
			_ = o.fr.WriteRSTStream(1, 0xbad)
		}, want: malformed, code: codes.Unknown, message: "RST_STREAM"},
		{name: "RST_STREAM of a stream sonde did not open", answer: func(o *h2Out) {
			_ = o.fr.WriteRSTStream(3, http2.ErrCodeCancel)
			o.serving()
		}}, // ignored, as grpc-go ignores resets of streams it does not have
		{name: "Trailers-Only NOT_FOUND", answer: func(o *h2Out) {
			o.headers(1, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "5", "grpc-message", "no such service")
		}, want: failure{taxonomy.ClassStatus, taxonomy.ReasonGRPCServiceUnknown, taxonomy.PhaseCheck}, code: codes.NotFound, message: "no such service"},
		{name: "percent-encoded grpc-message", answer: func(o *h2Out) {
			o.grpcHeaders()
			o.trailers("grpc-status", "14", "grpc-message", "caf%C3%A9%0Adown")
		}, want: refused, code: codes.Unavailable, message: "café\ndown"},
		{name: "no grpc-status", answer: func(o *h2Out) {
			o.grpcHeaders()
			o.data(false, healthFrame(healthpb.HealthCheckResponse_SERVING))
			o.trailers("grpc-message", "ok")
		}, want: malformed, code: codes.Unknown, message: "without a grpc-status"},
		{name: "Trailers-Only without grpc-status", answer: func(o *h2Out) {
			o.headers(1, true, ":status", "200", "content-type", "application/grpc")
		}, want: malformed, code: codes.Unknown, message: "without a grpc-status"},
		{name: "grpc-status -1", answer: func(o *h2Out) {
			// A 32-bit signed number, as grpc-go reads it.
			o.headers(1, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "-1")
		}, want: refused, code: math.MaxUint32, message: "CODE(4294967295)"},
		{name: "grpc-status beyond 32 bits", answer: func(o *h2Out) {
			o.headers(1, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "4294967296")
		}, want: malformed, code: codes.Unknown, message: "not a 32-bit number"},
		{name: "grpc-status not a number", answer: func(o *h2Out) {
			o.grpcHeaders()
			o.data(false, healthFrame(healthpb.HealthCheckResponse_SERVING))
			o.trailers("grpc-status", "zero")
		}, want: malformed, code: codes.Unknown, message: `grpc-status "zero"`},
		{name: "grpc-status in the headers, no trailers", answer: func(o *h2Out) {
			o.headers(1, false, ":status", "200", "content-type", "application/grpc", "grpc-status", "0")
			o.data(true, healthFrame(healthpb.HealthCheckResponse_SERVING))
			// Only a Trailers-Only answer carries its status in the headers.
		}, want: malformed, code: codes.Internal, message: "without trailers"},
		{name: "compressed message", answer: func(o *h2Out) {
			o.grpcHeaders()
			msg := healthFrame(healthpb.HealthCheckResponse_SERVING)
			msg[0] = 1
			o.data(false, msg)
			o.trailers("grpc-status", "0")
		}, want: malformed, code: codes.Internal, message: "compressed"},
		{name: "two messages", answer: func(o *h2Out) {
			o.grpcHeaders()
			o.data(false, healthFrame(healthpb.HealthCheckResponse_SERVING))
			o.data(false, healthFrame(healthpb.HealthCheckResponse_SERVING))
			o.trailers("grpc-status", "0")
		}, want: malformed, code: codes.Internal, message: "more than one response message"},
		{name: "message longer than 4 MiB", answer: func(o *h2Out) {
			// Only the prefix: the length alone must refuse it.
			o.grpcHeaders()
			o.data(false, lengthPrefixed(0, grpcMaxMessage+1, nil))
			o.trailers("grpc-status", "0")
		}, want: malformed, code: codes.ResourceExhausted, message: "more than the 4194304"},
		{name: "message cut short", answer: func(o *h2Out) {
			o.grpcHeaders()
			o.data(true, lengthPrefixed(0, 10, []byte{8, 1}))
		}, want: malformed, code: codes.Internal, message: "ended inside a message"},
		{name: "message not a HealthCheckResponse", answer: func(o *h2Out) {
			o.grpcHeaders()
			o.data(false, lengthPrefixed(0, 2, []byte{0xff, 0xff}))
			o.trailers("grpc-status", "0")
		}, want: malformed, code: codes.Internal, message: "not a HealthCheckResponse"},
		{name: "OK without a message", answer: func(o *h2Out) {
			o.grpcHeaders()
			o.trailers("grpc-status", "0")
		}, want: malformed, code: codes.Internal, message: "without a response message"},
		{name: "DATA before HEADERS", answer: func(o *h2Out) {
			o.data(false, healthFrame(healthpb.HealthCheckResponse_SERVING))
			o.serving()
		}, want: malformed, code: codes.Internal, message: "data before its headers"},
		{name: "headers on stream 3", answer: func(o *h2Out) {
			// Skipped, as grpc-go skips headers of streams it did not open.
			o.headers(3, false, ":status", "200", "content-type", "application/grpc")
			o.serving()
		}},
		{name: "DATA frame larger than 16 KiB", answer: func(o *h2Out) {
			// The client's SETTINGS leave SETTINGS_MAX_FRAME_SIZE at its
			// default, 16 KiB. A frame-size error is a connection error
			// (RFC 9113, 4.2), which grpc-go reports as UNAVAILABLE; it
			// is sonde's finding, not the server's status.
			o.grpcHeaders()
			o.data(false, make([]byte, 16<<10+1))
			o.trailers("grpc-status", "0")
		}, want: malformed, code: codes.Unavailable, message: "frame too large"},
		{name: "second header block that does not end the stream", answer: func(o *h2Out) {
			o.grpcHeaders()
			o.headers(1, false, "x-more", "1")
		}, want: malformed, code: codes.Internal, message: "second header block"},
		{name: "gRPC answer without :status", answer: func(o *h2Out) {
			// grpc-go does not look at a gRPC answer's :status.
			o.headers(1, false, "content-type", "application/grpc")
			o.data(false, healthFrame(healthpb.HealthCheckResponse_SERVING))
			o.trailers("grpc-status", "0")
		}},
		{name: "gRPC answer with :status 503", answer: func(o *h2Out) {
			o.headers(1, false, ":status", "503", "content-type", "application/grpc")
			o.data(false, healthFrame(healthpb.HealthCheckResponse_SERVING))
			o.trailers("grpc-status", "0")
		}},
		{name: "no :status, no content-type", answer: func(o *h2Out) {
			o.headers(1, true, "grpc-status", "0")
		}, want: malformed, code: codes.Internal, message: ":status"},
		{name: "content-type in capitals", answer: func(o *h2Out) {
			// Not gRPC's to grpc-go, which compares it case by case.
			o.headers(1, false, ":status", "200", "content-type", "Application/GRPC")
			o.data(false, healthFrame(healthpb.HealthCheckResponse_SERVING))
			o.trailers("grpc-status", "0")
		}, want: malformed, code: codes.Unknown, message: "Application/GRPC"},
		{name: "informational answer that ends the stream", answer: func(o *h2Out) {
			o.headers(1, true, ":status", "103")
		}, want: malformed, code: codes.Internal, message: "informational"},
		{name: "header list larger than sonde reads", answer: func(o *h2Out) {
			// Past sonde's limit (1 MiB) and under grpc-go's (16 MiB), in
			// one small frame: the encoder enters the field in its dynamic
			// table once, then repeats it by index, a byte each.
			pairs := []string{":status", "200", "content-type", "application/grpc"}
			for range 320 {
				pairs = append(pairs, "x-big", strings.Repeat("b", 3500))
			}
			o.headers(1, false, pairs...)
			o.data(false, healthFrame(healthpb.HealthCheckResponse_SERVING))
			o.trailers("grpc-status", "0")
		}, want: malformed, code: codes.Internal, message: "header list is larger",
			// grpc-go reads 16 MiB of headers; sonde bounds what a probe
			// holds at 1 MiB, and says so in its settings.
			grpcGo: new(codes.OK)},
		{name: "PUSH_PROMISE", answer: func(o *h2Out) {
			_ = o.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: o.encode(":method", "GET"), EndHeaders: true})
			o.serving()
		}, want: malformed, code: codes.Unavailable, message: "PUSH_PROMISE",
			// sonde's settings disable push, so the server broke them;
			// grpc-go leaves push enabled and skips the frame.
			grpcGo: new(codes.OK)},
		{name: "200 text/html", answer: func(o *h2Out) {
			o.headers(1, false, ":status", "200", "content-type", "text/html")
			o.data(true, []byte("<html>hello</html>"))
		}, want: malformed, code: codes.Unknown, message: `HTTP status 200 (OK) with content type "text/html"`},
		{name: "401 without content-type", answer: func(o *h2Out) {
			o.headers(1, true, ":status", "401")
		}, want: refused, code: codes.Unauthenticated, message: "HTTP status 401"},
		// The server spoke HTTP/2, so the message does not ask whether it is
		// a gRPC port or needs TLS.
		{name: "close after SETTINGS", want: failure{taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, taxonomy.PhaseCheck}, code: codes.Unavailable,
			message: "EOF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr, seen := h2Peer(t, tc.answer)
			sink, err := probertest.Run(t, grpcModule(t, ""), addr)
			grpcGoAddr, _ := h2Peer(t, tc.answer)
			grpcGo := grpcGoCall{}.check(t, grpcGoAddr)
			if tc.grpcGo == nil {
				sameCode(t, sink, grpcGo)
			} else if grpcGo.Code() != *tc.grpcGo {
				t.Errorf("grpc-go's client ended with %v (%q), which the case says is %v", grpcGo.Code(), grpcGo.Message(), *tc.grpcGo)
			}
			perr := checkOutcome(t, err, tc.want)
			if perr != nil && !strings.Contains(perr.Error(), tc.message) {
				t.Errorf("the error does not say %q: %v", tc.message, perr)
			}
			probertest.Metric(t, sink, float64(tc.code), "probe_grpc_status_code")
			if tc.want == (failure{}) {
				servingSeries(t, sink, "SERVING")
			} else {
				servingSeries(t, sink, "")
			}
			s := awaitSeen(t, seen)
			if s.err != nil {
				t.Fatalf("the peer: %v", s.err)
			}
			if tc.seen != nil {
				if err := tc.seen(s); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestGRPCH2Deadline probes peers that keep the call waiting under a short
// deadline: the probe must end on time, in the check phase.
func TestGRPCH2Deadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	cases := []struct {
		name   string
		answer func(o *h2Out)
		want   failure
		code   codes.Code
	}{
		{name: "no answer after SETTINGS", answer: (*h2Out).hold,
			want: failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseCheck}, code: codes.DeadlineExceeded},
		{name: "headers, then nothing", answer: func(o *h2Out) {
			o.grpcHeaders()
			o.hold()
		}, want: failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseCheck}, code: codes.DeadlineExceeded},
		{name: "GOAWAY last stream 1, headers, then nothing", answer: func(o *h2Out) {
			// As "GOAWAY last stream 1, then a hang-up" in
			// TestGRPCH2Answers, the connection failing by the deadline.
			_ = o.fr.WriteGoAway(1, http2.ErrCodeNo, nil)
			o.grpcHeaders()
			o.hold()
		}, want: failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseCheck}, code: codes.DeadlineExceeded},
		{name: "non-gRPC answer whose body does not end", answer: func(o *h2Out) {
			// A streaming endpoint: more than grpc-go reads of a non-gRPC
			// body (1 KiB) and no end.
			o.headers(1, false, ":status", "200", "content-type", "text/event-stream")
			o.data(false, bytes.Repeat([]byte("data: tick\n\n"), 200))
			o.hold()
			// Judged by its headers, without waiting for the body's end.
		}, want: failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseCheck}, code: codes.Unknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := h2Peer(t, tc.answer)
			sink, took, err := probertest.Probe(t, grpcModule(t, ""), addr, timeout)
			if took > timeout+200*time.Millisecond {
				t.Errorf("the probe took %v with a %v deadline", took, timeout)
			}
			checkOutcome(t, err, tc.want)
			probertest.Metric(t, sink, float64(tc.code), "probe_grpc_status_code")
			servingSeries(t, sink, "")
		})
	}
}

// grpcTimeoutValue is grpc-timeout's syntax: at most eight digits and a
// unit (doc/PROTOCOL-HTTP2.md in grpc/grpc).
var grpcTimeoutValue = regexp.MustCompile(`^([0-9]{1,8})([numSMH])$`)

// parseGRPCTimeout reads a grpc-timeout value.
func parseGRPCTimeout(v string) (time.Duration, error) {
	m := grpcTimeoutValue.FindStringSubmatch(v)
	if m == nil {
		return 0, fmt.Errorf("grpc-timeout %q is not 1 to 8 digits and one of n u m S M H", v)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	unit := map[string]time.Duration{"n": time.Nanosecond, "u": time.Microsecond, "m": time.Millisecond,
		"S": time.Second, "M": time.Minute, "H": time.Hour}[m[2]]
	return time.Duration(n) * unit, nil
}

// TestGRPCH2Request checks the request as it reaches the wire, against
// what gRPC over HTTP/2 asks of a unary call.
func TestGRPCH2Request(t *testing.T) {
	const timeout = 10 * time.Second
	addr, seen := h2Peer(t, (*h2Out).serving)
	_, _, err := probertest.Probe(t, grpcModule(t, `service: "svc.A"`), addr, timeout)
	checkOutcome(t, err, failure{})
	s := awaitSeen(t, seen)
	if s.err != nil {
		t.Fatalf("the peer: %v", s.err)
	}

	got := map[string][]string{}
	for _, f := range s.fields {
		got[f.Name] = append(got[f.Name], f.Value)
	}
	for name, want := range map[string]string{
		":method": "POST", ":scheme": "http", ":path": "/grpc.health.v1.Health/Check", ":authority": addr,
		"content-type": "application/grpc", "te": "trailers",
	} {
		if !slices.Equal(got[name], []string{want}) {
			t.Errorf("%s = %q, want %q", name, got[name], want)
		}
	}
	if ua := got["user-agent"]; len(ua) != 1 || !strings.HasPrefix(ua[0], "grpc-go/") {
		t.Errorf("user-agent = %q, want one value starting grpc-go/, as blackbox's client sends", ua)
	}
	if cl, ok := got["content-length"]; ok {
		t.Errorf("the request has content-length %q; a gRPC request has none", cl)
	}
	if gt := got["grpc-timeout"]; len(gt) != 1 {
		t.Errorf("grpc-timeout = %q, want one value", gt)
	} else if d, err := parseGRPCTimeout(gt[0]); err != nil {
		t.Error(err)
	} else if d <= 0 || d > timeout {
		t.Errorf("grpc-timeout %q is %v, want more than 0 and at most the probe's %v", gt[0], d, timeout)
	}

	if len(s.body) < 5 {
		t.Fatalf("the request's DATA is %x, shorter than a message prefix", s.body)
	}
	if s.body[0] != 0 {
		t.Errorf("the request message has flag %d, want 0 (uncompressed)", s.body[0])
	}
	if n := binary.BigEndian.Uint32(s.body[1:5]); int(n) != len(s.body)-5 {
		t.Errorf("the request message's prefix says %d bytes, and %d follow", n, len(s.body)-5)
	}
	var req healthpb.HealthCheckRequest
	if err := proto.Unmarshal(s.body[5:], &req); err != nil {
		t.Fatalf("the request message is not a HealthCheckRequest: %v", err)
	}
	if req.GetService() != "svc.A" {
		t.Errorf("the request asks for service %q, want svc.A", req.GetService())
	}
}

func TestGRPCTimeout(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{time.Nanosecond, "1n"},
		{0, "1n"}, // a deadline already past still sends a valid value
		{-time.Second, "1n"},
		{99999999 * time.Nanosecond, "99999999n"}, // eight digits, the most there may be
		{100 * time.Millisecond, "100000u"},
		{999 * time.Millisecond, "999000u"},
		{5 * time.Second, "5000000u"},
		{100*time.Second + time.Nanosecond, "100001m"}, // rounded up, never promising less time than is left
		{200 * time.Hour, "720000S"},
		// Rounding up must not overflow; 2562048H is more than a Duration holds.
		{math.MaxInt64, "2562048H"},
	}
	for _, tc := range cases {
		t.Run(tc.d.String(), func(t *testing.T) {
			got := grpcTimeout(tc.d)
			if got != tc.want {
				t.Errorf("grpcTimeout(%v) = %q, want %q", tc.d, got, tc.want)
			}
			d, err := parseGRPCTimeout(got)
			if err != nil {
				t.Fatal(err)
			}
			if d < tc.d && tc.d != math.MaxInt64 {
				t.Errorf("grpcTimeout(%v) = %q, which is %v: less time than is left", tc.d, got, d)
			}
		})
	}
}

func TestIsGRPCContentType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/grpc":               true,
		"application/grpc+proto":         true,
		"application/grpc+json":          true,
		"application/grpc;charset=utf-8": true,
		"Application/GRPC":               false, // as grpc-go reads it, though media types ignore case
		"":                               false,
		"application/gr":                 false,
		"application/grpcx":              false,
		"application/grpc-web":           false, // another protocol
		"application/grpc-web+proto":     false,
		"application/json":               false,
		"text/html":                      false,
		" application/grpc":              false,
	} {
		if got := isGRPCContentType(ct); got != want {
			t.Errorf("isGRPCContentType(%q) = %v, want %v", ct, got, want)
		}
	}
}

func TestGRPCMessageDecoding(t *testing.T) {
	for raw, want := range map[string]string{
		"":                 "",
		"plain words":      "plain words",
		"caf%C3%A9%0Adown": "café\ndown",
		"100%25":           "100%",
		"a+b":              "a+b", // percent-encoding, not a form: + is itself
		"%FF":              "\xff",
		// A % that starts no escape is kept, and the rest decoded, as
		// grpc-go does.
		"100%":           "100%",
		"%zz":            "%zz",
		"caf%C3%A9 100%": "café 100%",
	} {
		if got := grpcMessage(raw); got != want {
			t.Errorf("grpcMessage(%q) = %q, want %q", raw, got, want)
		}
	}
}
