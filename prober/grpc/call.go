package grpc

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/sonde-exporter/sonde/prober/core"
)

// A probe makes one unary call on a connection it opened for that call
// alone (grpc_h2.go speaks the HTTP/2), and a second, as gRPC does, when
// the server refused the first unprocessed. What gRPC adds to HTTP/2 for a
// unary call is small and fixed by the protocol (doc/PROTOCOL-HTTP2.md in
// grpc/grpc): a few request headers, a 5-byte prefix on each message, and
// the status in the trailers. The message types and status codes are
// grpc-go's.

const (
	grpcHealthPath = "/grpc.health.v1.Health/Check"
	// grpcMaxMessage is the largest answer read, grpc-go's default limit
	// on a received message.
	grpcMaxMessage = 4 << 20
)

// grpcRequestFields are the header fields every call of a module sends
// after the pseudo-headers: gRPC's own, then the module's metadata, in a
// stable order. grpc-go drops metadata that would replace one of its own
// headers, and so does this.
func grpcRequestFields(md map[string][]string, userAgent string) []hpack.HeaderField {
	fields := []hpack.HeaderField{
		{Name: "content-type", Value: "application/grpc"},
		{Name: "user-agent", Value: userAgent},
		{Name: "te", Value: "trailers"},
	}
	keys := make([]string, 0, len(md))
	for key := range md {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if reservedGRPCHeader(key) {
			continue
		}
		for _, v := range md[key] {
			if strings.HasSuffix(key, "-bin") {
				v = base64.RawStdEncoding.EncodeToString([]byte(v))
			}
			fields = append(fields, hpack.HeaderField{Name: key, Value: v})
		}
	}
	return fields
}

// reservedGRPCHeader reports whether a metadata key names a header gRPC
// sets itself.
func reservedGRPCHeader(key string) bool {
	switch key {
	case "content-type", "user-agent", "te", "grpc-encoding", "grpc-message", "grpc-message-type",
		"grpc-status", "grpc-timeout":
		return true
	}
	return strings.HasPrefix(key, ":")
}

// grpcFrame returns msg as a gRPC length-prefixed message, uncompressed.
func grpcFrame(msg proto.Message) ([]byte, error) {
	b, err := proto.Marshal(msg)
	if err != nil {
		return nil, err
	}
	frame := make([]byte, 5, 5+len(b))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(b)))
	return append(frame, b...), nil
}

// callFailure is how a health check call failed.
type callFailure struct {
	status *status.Status
	// fromServer says the status is the server's own: a grpc-status, an
	// HTTP status, a stream reset or a GOAWAY. Otherwise sonde got no
	// answer it could read (a broken connection, frames or messages that
	// are not valid), and the status is the one grpc-go would give.
	fromServer bool
	// spokeHTTP2 says the server sent at least one valid HTTP/2 frame.
	spokeHTTP2 bool
	// noALPN says the TLS handshake agreed on no protocol, where gRPC
	// needs h2 (sonde offers only h2, so a server picks it or nothing).
	noALPN bool
	// unsent says the request's header list is larger than the server
	// takes, so that sonde did not send it, as gRPC does not.
	unsent bool
	// unprocessed says the server refused the call before processing it
	// (RST_STREAM REFUSED_STREAM, or a GOAWAY below its stream): gRPC
	// makes such a call once more, on a new connection when the server
	// is going away (goneAway), else on the same one.
	unprocessed bool
	goneAway    bool
	// elsewhere says the probe should make the call once more on a new
	// connection.
	elsewhere bool
}

// retryable says gRPC would make the call once more, time allowing.
func (f *callFailure) retryable(ctx context.Context) bool {
	return f != nil && f.unprocessed && ctx.Err() == nil
}

// serverSaid is a failure the server answered.
func serverSaid(st *status.Status) *callFailure {
	return &callFailure{status: st, fromServer: true, spokeHTTP2: true}
}

// unreadable is a failure to read an answer, with the code grpc-go would
// give it.
func unreadable(code codes.Code, format string, args ...any) *callFailure {
	return &callFailure{status: status.Newf(code, format, args...)}
}

// callHealth makes the health check call on conn and returns the answer,
// or how the call failed. While mayRetry, a call the server refused
// unprocessed is made once more, as gRPC makes it: here when the server
// refused the stream alone, and by the caller, on a new connection
// (callFailure.elsewhere), when the server is going away.
func (p *grpcPrepared) callHealth(ctx context.Context, m *core.Module, conn net.Conn, authority string, mayRetry bool, logger *slog.Logger) (*healthpb.HealthCheckResponse, *callFailure) {
	h, fail := openH2(ctx, conn)
	if fail != nil {
		return nil, fail
	}
	defer h.close()
	// The fields are made once the server's settings came, so that
	// grpc-timeout gives the time left when the request goes out.
	request := p.request
	answer, fail := h.call(p.healthRequestFields(ctx, m, authority), request)
	if mayRetry && fail.retryable(ctx) && !fail.goneAway {
		logger.Warn("The server refused the health check's stream; making the call once more on the same connection, as gRPC does",
			"code", codeName(fail.status.Code()), "message", fail.status.Message())
		mayRetry = false
		answer, fail = h.call(p.healthRequestFields(ctx, m, authority), request)
	}
	if fail != nil {
		fail.elsewhere = mayRetry && fail.retryable(ctx)
		return nil, fail
	}
	resp, fail := readHealthAnswer(answer)
	if fail != nil {
		fail.spokeHTTP2 = true
	}
	return resp, fail
}

// healthRequestFields are the call's header fields: a POST to the health
// service with the module's headers and the probe's remaining time as
// grpc-timeout.
func (p *grpcPrepared) healthRequestFields(ctx context.Context, m *core.Module, authority string) []hpack.HeaderField {
	scheme := "http"
	if m.GRPC.TLS {
		scheme = "https"
	}
	fields := make([]hpack.HeaderField, 0, 4+len(p.fields)+3)
	fields = append(fields,
		hpack.HeaderField{Name: ":method", Value: http.MethodPost},
		hpack.HeaderField{Name: ":scheme", Value: scheme},
		hpack.HeaderField{Name: ":path", Value: grpcHealthPath},
		hpack.HeaderField{Name: ":authority", Value: authority})
	fields = append(fields, p.fields...)
	if deadline, ok := ctx.Deadline(); ok {
		fields = append(fields, hpack.HeaderField{Name: "grpc-timeout", Value: grpcTimeout(time.Until(deadline))})
	}
	if m.PropagateTraceContext {
		h := http.Header{}
		core.InjectTraceContext(ctx, m, h)
		for name, values := range h {
			for _, v := range values {
				fields = append(fields, hpack.HeaderField{Name: strings.ToLower(name), Value: v})
			}
		}
	}
	return fields
}

// timeoutUnits are grpc-timeout's units, finest first.
var timeoutUnits = [...]struct {
	unit   time.Duration
	suffix string
}{{time.Nanosecond, "n"}, {time.Microsecond, "u"}, {time.Millisecond, "m"}, {time.Second, "S"}, {time.Minute, "M"}, {time.Hour, "H"}}

// grpcTimeout writes d as a grpc-timeout value: at most eight digits and a
// unit, in the finest unit that fits, rounded up.
func grpcTimeout(d time.Duration) string {
	const most = 1e8 - 1
	d = max(d, time.Nanosecond)
	for _, u := range timeoutUnits {
		n := d / u.unit
		if d%u.unit != 0 {
			n++
		}
		if n <= most {
			return strconv.FormatInt(int64(n), 10) + u.suffix
		}
	}
	return strconv.Itoa(most) + "H"
}

// transportFailure is a call that ended in HTTP/2 rather than in gRPC:
// grpc-go says UNAVAILABLE for a broken connection or stream.
func transportFailure(err error) *callFailure {
	return unreadable(codes.Unavailable, "%v", err)
}

// readHealthAnswer reads the answer to the call: one message, then the
// status in the trailers, or the status alone ("Trailers-Only").
func readHealthAnswer(resp *h2Answer) (*healthpb.HealthCheckResponse, *callFailure) {
	if st := nonGRPCStatus(resp); st != nil {
		return nil, serverSaid(st)
	}
	msg, fail := answerMessage(resp.body)
	if fail != nil {
		return nil, fail
	}
	st, fail := trailerStatus(resp)
	switch {
	case fail != nil:
		return nil, fail
	case st.Code() != codes.OK:
		return nil, serverSaid(st)
	case msg == nil:
		return nil, unreadable(codes.Internal, "the server answered OK without a response message")
	}
	answer := &healthpb.HealthCheckResponse{}
	if err := proto.Unmarshal(msg, answer); err != nil {
		return nil, unreadable(codes.Internal, "the response message is not a HealthCheckResponse: %v", err)
	}
	return answer, nil
}

// httpStatusCodes are the gRPC codes grpc-go gives an answer that is not
// gRPC's, by its HTTP status; any other status is UNKNOWN.
var httpStatusCodes = map[int]codes.Code{
	http.StatusBadRequest:         codes.Internal,
	http.StatusUnauthorized:       codes.Unauthenticated,
	http.StatusForbidden:          codes.PermissionDenied,
	http.StatusNotFound:           codes.Unimplemented,
	http.StatusTooManyRequests:    codes.Unavailable,
	http.StatusBadGateway:         codes.Unavailable,
	http.StatusServiceUnavailable: codes.Unavailable,
	http.StatusGatewayTimeout:     codes.Unavailable,
}

// nonGRPCStatus returns the status of an answer that is not gRPC's (its
// content type is not application/grpc), nil for a gRPC answer, whatever
// its HTTP status.
func nonGRPCStatus(resp *h2Answer) *status.Status {
	ct := resp.header.Get("Content-Type")
	if isGRPCContentType(ct) {
		return nil
	}
	code, ok := httpStatusCodes[resp.status]
	if !ok {
		code = codes.Unknown
	}
	return status.Newf(code, "the server answered HTTP status %d (%s) with content type %q, not gRPC",
		resp.status, http.StatusText(resp.status), ct)
}

// isGRPCContentType reports whether ct is application/grpc, alone or
// with a subtype (application/grpc+proto) or parameters. Case counts, as
// it does for grpc-go: Application/GRPC is not gRPC's.
func isGRPCContentType(ct string) bool {
	const base = "application/grpc"
	if !strings.HasPrefix(ct, base) {
		return false
	}
	rest := ct[len(base):]
	return rest == "" || rest[0] == '+' || rest[0] == ';'
}

// answerMessage returns the one message of a unary answer's body, nil
// when there is none.
func answerMessage(body []byte) ([]byte, *callFailure) {
	if len(body) == 0 {
		return nil, nil
	}
	if len(body) < 5 {
		return nil, unreadable(codes.Internal, "the answer ended inside a message prefix")
	}
	if body[0]&1 != 0 {
		return nil, unreadable(codes.Internal, "the response message is compressed, though sonde accepts no compression")
	}
	n := binary.BigEndian.Uint32(body[1:5])
	switch rest := uint64(len(body) - 5); {
	case n > grpcMaxMessage:
		return nil, unreadable(codes.ResourceExhausted, "the response message has %d bytes, more than the %d a health check reads", n, grpcMaxMessage)
	case rest < uint64(n):
		return nil, unreadable(codes.Internal, "the answer ended inside a message: %d of its %d bytes came", rest, n)
	case rest > uint64(n):
		return nil, unreadable(codes.Internal, "the server sent more than one response message to a unary call")
	}
	return body[5:], nil
}

// trailerStatus returns the status the server ended the call with: from
// the trailers, or from the headers of a Trailers-Only answer.
func trailerStatus(resp *h2Answer) (*status.Status, *callFailure) {
	h := resp.trailer
	if resp.trailersOnly {
		h = resp.header
	}
	if h == nil {
		return nil, unreadable(codes.Internal, "the server ended the call without trailers")
	}
	raw := h.Get("Grpc-Status")
	if raw == "" {
		// grpc-go reads a missing status as UNKNOWN.
		return nil, unreadable(codes.Unknown, "the server ended the call without a grpc-status")
	}
	// A 32-bit signed number, as grpc-go reads it: "-1" is code 4294967295.
	code, err := strconv.ParseInt(raw, 10, 32)
	if err != nil {
		return nil, unreadable(codes.Unknown, "the server sent grpc-status %q, which is not a 32-bit number", raw)
	}
	return status.New(codes.Code(uint32(code)), grpcMessage(h.Get("Grpc-Message"))), nil
}

// grpcMessage decodes grpc-message, in which the sender percent-encodes
// bytes outside printable ASCII. A % that does not start an escape is kept,
// as grpc-go keeps it.
func grpcMessage(raw string) string {
	if !strings.Contains(raw, "%") {
		return raw
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		if raw[i] == '%' && i+2 < len(raw) && isHex(raw[i+1]) && isHex(raw[i+2]) {
			v, _ := strconv.ParseUint(raw[i+1:i+3], 16, 8)
			b.WriteByte(byte(v))
			i += 2
			continue
		}
		b.WriteByte(raw[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
