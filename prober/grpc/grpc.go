// Package grpc is the grpc prober: it calls the standard health service
// over its own HTTP/2 frame client, in clear text or TLS.
package grpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/probelog"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
	"github.com/sonde-exporter/sonde/prober/tlsfacts"
)

// The grpc prober resolves the target's host, opens a fresh TCP connection
// to that address and, with `tls`, completes the TLS handshake on it, then
// speaks HTTP/2 over it to make one grpc.health.v1.Health/Check call
// (grpc_call.go). Dialling itself keeps every phase timed and classified as
// in the other probers, and keeps resolvers, proxies and reconnections out
// of the probe. The one retry kept is gRPC's transparent one: a call the
// server refused before processing it is made once more.

// grpcPrepared is what a grpc module needs ready before its first probe.
type grpcPrepared struct {
	tls     *tlsfacts.Client    // tls_config, offering h2 by ALPN
	fields  []hpack.HeaderField // gRPC's request headers and the metadata
	request []byte              // the HealthCheckRequest, framed
	// unsendable is why the call cannot be made as configured (metadata
	// gRPC refuses to send, a request too large): every probe fails with
	// it once the target resolved, as blackbox's call fails.
	unsendable *taxonomy.Error
}

// Prepare readies a grpc module when the configuration loads.
func Prepare(m *config.Module, env *core.Env) (core.Prober, error) {
	c, err := env.TLSClient(m, "grpc", &m.GRPC.TLSConfig)
	if err != nil {
		return nil, err
	}
	// gRPC runs over HTTP/2, and gRPC servers refuse a TLS client that does
	// not offer h2 by ALPN.
	c.WithALPN("h2")
	p := &grpcPrepared{tls: c}
	md, err := grpcMetadata(m.GRPC.Metadata)
	if err != nil {
		// grpc-go refuses to send it, with INTERNAL, before connecting.
		p.unsendable = taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseCheck, "%v", err)
	}
	p.fields = grpcRequestFields(md, grpcUserAgent)
	p.request, err = grpcFrame(&healthpb.HealthCheckRequest{Service: m.GRPC.Service})
	if err != nil {
		return nil, fmt.Errorf("grpc.service: encoding the health check request: %w", err)
	}
	if len(p.request) > h2DefaultWindow && p.unsendable == nil {
		// The request is sent before the server's settings could open a
		// larger window.
		p.unsendable = taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonUnsupported, taxonomy.PhaseCheck, "grpc.service is %d bytes long; sonde sends a health check request in HTTP/2's initial window of %d bytes", len(m.GRPC.Service), h2DefaultWindow)
	}
	return p, nil
}

// grpcUserAgent is the User-Agent blackbox_exporter's gRPC client sends,
// grpc-go's own, at the version sonde links.
var grpcUserAgent = "grpc-go/" + grpc.Version

// grpcMetadata builds the metadata sent with every health check. A key or
// value gRPC cannot send fails every call, as in blackbox. Keys are
// lowercased, as gRPC metadata keys are: grpc-go refuses capitals, and
// blackbox sends them as written, so fails.
func grpcMetadata(option map[string][]string) (map[string][]string, error) {
	if len(option) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(option))
	for name := range option {
		names = append(names, name)
	}
	sort.Strings(names) // keys differing only in case merge in a stable order
	md := map[string][]string{}
	for _, name := range names {
		key := strings.ToLower(name)
		if err := config.CheckGRPCMetadata(key, option[name]); err != nil {
			return nil, fmt.Errorf("grpc.metadata: %w", err)
		}
		md[key] = append(md[key], option[name]...)
	}
	return md, nil
}

// grpcMetrics are blackbox_exporter's grpc metrics. The resolve duration,
// probe_grpc_ssl and probe_grpc_status_code exist from the start; the other
// phases and the health check answer appear once the target resolved, as
// in blackbox_exporter, where the check follows any successful lookup.
type grpcMetrics struct {
	durations probemetrics.GaugeVec
	ssl       probemetrics.Gauge
	status    probemetrics.Gauge
	serving   probemetrics.GaugeVec
	sink      *probemetrics.Sink // for the spans of the phases timed here
}

// servingStatuses are the values of probe_grpc_healthcheck_response's
// serving_status label: the health protocol's enum, as blackbox exports it.
var servingStatuses = []healthpb.HealthCheckResponse_ServingStatus{
	healthpb.HealthCheckResponse_UNKNOWN,
	healthpb.HealthCheckResponse_SERVING,
	healthpb.HealthCheckResponse_NOT_SERVING,
	healthpb.HealthCheckResponse_SERVICE_UNKNOWN,
}

func newGRPCMetrics(sink *probemetrics.Sink) grpcMetrics {
	mx := grpcMetrics{
		durations: sink.GaugeVec("probe_grpc_duration_seconds", "Duration of gRPC request by phase", "phase"),
		ssl:       sink.Gauge("probe_grpc_ssl", "Indicates if SSL was used for the connection"),
		status:    sink.Gauge("probe_grpc_status_code", "Response gRPC status code"),
		serving:   sink.GaugeVec("probe_grpc_healthcheck_response", "Response HealthCheck response", "serving_status"),
		sink:      sink,
	}
	mx.durations.With(string(taxonomy.PhaseResolve))
	return mx
}

// phase adds d to phase p's duration: when the call is made a second
// time, on a new connection, connect, tls and check count both.
func (mx grpcMetrics) phase(p taxonomy.Phase, d time.Duration) {
	mx.durations.With(string(p)).Add(d.Seconds())
}

// timed adds to phase p's duration and records its span, from the same
// two clock readings.
func (mx grpcMetrics) timed(p taxonomy.Phase, start, end time.Time) {
	mx.phase(p, end.Sub(start))
	mx.sink.Span(p, 0, start, end)
}

// resolved creates the series that exist once the target resolved: the
// module's other phases and every serving status, all at 0.
func (mx grpcMetrics) resolved(withTLS bool) {
	mx.durations.With(string(taxonomy.PhaseConnect))
	if withTLS {
		mx.durations.With(string(taxonomy.PhaseTLS))
	}
	mx.durations.With(string(taxonomy.PhaseCheck))
	for _, s := range servingStatuses {
		mx.serving.With(s.String())
	}
}

// answered records the serving status the health service answered. A
// number outside the protocol's enum sets no series, which keeps the
// label's values bounded.
func (mx grpcMetrics) answered(s healthpb.HealthCheckResponse_ServingStatus) {
	if _, known := healthpb.HealthCheckResponse_ServingStatus_name[int32(s)]; known {
		mx.serving.With(s.String()).Set(1)
	}
}

// Probe checks the health of a gRPC server with one call of
// grpc.health.v1.Health/Check over a fresh connection.
func (prepared *grpcPrepared) Probe(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	cfg := &m.GRPC
	mx := newGRPCMetrics(sink)
	host, port, err := ParseTarget(target, cfg.TLS)
	if err != nil {
		return err
	}
	// blackbox reads tls_config before resolving, with tls or without.
	if err := prepared.tls.Ready(); err != nil {
		return err
	}
	// The grpc section has no source_ip_address yet: the system chooses.
	e := netdial.Endpoint{Network: "tcp", Host: host, Port: port, Protocol: cfg.PreferredIPProtocol, Fallback: cfg.IPProtocolFallback}
	return prepared.probeEndpoint(ctx, m, e, mx, sink, logger)
}

// probeEndpoint runs the probe's phases once the target is read. A
// call the server went away before processing is made once more on a new
// connection to the same address, as gRPC makes it, within the deadline.
func (p *grpcPrepared) probeEndpoint(ctx context.Context, m *core.Module, e netdial.Endpoint, mx grpcMetrics, sink *probemetrics.Sink, logger *slog.Logger) error {
	if fail := p.unsendable; fail != nil {
		return refuseCall(ctx, m, e, mx, fail, sink, logger)
	}
	conn, err := p.dial(ctx, m, e, mx, sink, logger)
	if err != nil {
		return err
	}
	addr := conn.RemoteAddr().(*net.TCPAddr)
	again, err := p.checkHealth(ctx, m, conn, grpcAuthority(m, e), true, mx, logger)
	if !again {
		return err
	}
	logger.Warn("The server went away before processing the health check; making the call once more on a new connection, as gRPC does", "err", err)
	if conn, err = p.redial(ctx, m, e, addr, mx, sink, logger); err != nil {
		return err
	}
	_, err = p.checkHealth(ctx, m, conn, grpcAuthority(m, e), false, mx, logger)
	return err
}

// refuseCall fails a probe whose call cannot be made as configured. As
// blackbox does, it resolves the target first; then the call fails before
// connecting, with INTERNAL, as grpc-go fails it.
func refuseCall(ctx context.Context, m *core.Module, e netdial.Endpoint, mx grpcMetrics, fail *taxonomy.Error, sink *probemetrics.Sink, logger *slog.Logger) error {
	_, took, err := netdial.ResolveTarget(ctx, m.Resolver, m.Policy, e.Host, e.Protocol, e.Fallback, sink, logger)
	mx.phase(taxonomy.PhaseResolve, took)
	if err != nil {
		return err
	}
	mx.resolved(m.GRPC.TLS)
	mx.status.Set(float64(codes.Internal))
	logger.Error("Health check not made", "err", fail)
	return fail
}

// ParseTarget reads a target as blackbox_exporter does: host:port, or
// a host alone for port 443 with `tls` and 80 without. An http:// or
// https:// prefix is accepted and dropped, with any path: `tls`, not the
// scheme, says whether to use TLS.
func ParseTarget(target string, useTLS bool) (host, port string, err error) {
	defer core.HidePassword(&err, target)
	const how = "write it as host:port, e.g. grpc.example.com:443 or [2001:db8::1]:50051"
	hostport, err := grpcHostPort(target)
	if err != nil {
		return "", "", taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target %q: %v; %s", target, err, how)
	}
	port = "80"
	if useTLS {
		port = "443"
	}
	switch h, p, splitErr := net.SplitHostPort(hostport); {
	case splitErr == nil:
		host, port = h, p
	case net.ParseIP(hostport) != nil: // a bare IPv6 address
		host = hostport
	case strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]"):
		host = hostport[1 : len(hostport)-1]
	case strings.Contains(hostport, ":"):
		return "", "", taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target %q is not host:port (%v); %s", target, splitErr, how)
	default:
		host = hostport
	}
	if host == "" {
		return "", "", taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target %q has no host; %s", target, how)
	}
	if why := netdial.MalformedHost(host); why != "" {
		return "", "", taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target %q has host %q, with %s; %s", target, host, why, how)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target %q has port %q, which is not a number from 1 to 65535", target, port)
	}
	return host, port, nil
}

// grpcHostPort returns the host[:port] part of a target, without an
// http:// or https:// prefix and what follows the host.
func grpcHostPort(target string) (string, error) {
	scheme, rest, found := strings.Cut(target, "://")
	if !found {
		rest = target
	} else if s := strings.ToLower(scheme); s != "http" && s != "https" {
		return "", fmt.Errorf("the scheme %q is not one a grpc target may have (http:// and https:// are accepted and ignored)", scheme)
	}
	if net.ParseIP(rest) != nil {
		return rest, nil // a bare IPv6 address, which a URL cannot hold
	}
	u, err := url.Parse("http://" + rest)
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return "", urlErr.Err // without the URL, which the message names already
	}
	if err != nil {
		return "", err
	}
	return u.Host, nil
}

// grpcAuthority is the call's :authority: the target's host and port, as
// grpc-go sends it for blackbox. Like blackbox, the grpc prober ignores
// the `hostname` URL parameter.
func grpcAuthority(_ *core.Module, e netdial.Endpoint) string {
	return net.JoinHostPort(e.Host, e.Port)
}

// grpcServerName is the name the TLS server is verified as: tls_config's
// server_name, else the target's host. A TLS server name has no port, so
// one written with a port is used without it.
func grpcServerName(m *core.Module, host string) string {
	name := tlsfacts.ServerName(m.GRPC.TLSConfig.ServerName, host)
	if h, _, err := net.SplitHostPort(name); err == nil {
		return h
	}
	return name
}

// dial runs the resolve, connect and, with `tls`, tls phases. When a
// connection cannot be had, probe_grpc_status_code says what grpc-go
// would have answered for the call: UNAVAILABLE, or DEADLINE_EXCEEDED
// when time ran out.
func (p *grpcPrepared) dial(ctx context.Context, m *core.Module, e netdial.Endpoint, mx grpcMetrics, sink *probemetrics.Sink, logger *slog.Logger) (net.Conn, error) {
	d, err := netdial.DialEndpoint(ctx, m.Resolver, m.Policy, e, sink, logger)
	mx.phase(taxonomy.PhaseResolve, d.Resolve)
	if d.IP == nil {
		return nil, err // resolution failed: blackbox stops here too
	}
	mx.resolved(m.GRPC.TLS)
	mx.phase(taxonomy.PhaseConnect, d.Connect)
	if err != nil {
		mx.status.Set(float64(unreachedCode(err)))
		return nil, err
	}
	probelog.Debug(logger, "Connected", "address", d.Addr)
	return p.secure(ctx, m, e, d.Conn, mx, sink, logger)
}

// redial opens the connection a call made once more goes on: a new
// TCP connection to the address the first one reached, without resolving
// the name again, and with `tls` a new handshake.
func (p *grpcPrepared) redial(ctx context.Context, m *core.Module, e netdial.Endpoint, addr *net.TCPAddr, mx grpcMetrics, sink *probemetrics.Sink, logger *slog.Logger) (net.Conn, error) {
	dialer, err := netdial.LocalDialer(e, addr.IP)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	conn, err := dialer.DialContext(ctx, netdial.FamilyOf(addr.IP).Network(e.Network), addr.String())
	mx.timed(taxonomy.PhaseConnect, start, time.Now())
	if err != nil {
		err = netdial.DialError(ctx, e, addr.String(), err)
		mx.status.Set(float64(unreachedCode(err)))
		return nil, err
	}
	probelog.Debug(logger, "Connected", "address", addr.String())
	return p.secure(ctx, m, e, conn, mx, sink, logger)
}

// secure runs the tls phase on conn with `tls`, and closes conn when
// the handshake fails.
func (p *grpcPrepared) secure(ctx context.Context, m *core.Module, e netdial.Endpoint, conn net.Conn, mx grpcMetrics, sink *probemetrics.Sink, logger *slog.Logger) (net.Conn, error) {
	if !m.GRPC.TLS {
		return conn, nil
	}
	tc, took, err := tlsfacts.Handshake(ctx, conn, p.tls, grpcServerName(m, e.Host), sink)
	mx.phase(taxonomy.PhaseTLS, took)
	if err != nil {
		conn.Close()
		mx.status.Set(float64(unreachedCode(err)))
		return nil, err
	}
	mx.ssl.Set(1)
	probelog.Debug(logger, "TLS handshake done", "server_name", tc.ConnectionState().ServerName)
	return tc, nil
}

// unreachedCode is the status grpc-go gives a call whose connection could
// not be made.
func unreachedCode(err error) codes.Code {
	var perr *taxonomy.Error
	switch {
	case !errors.As(err, &perr) || perr.Class != taxonomy.ClassTimeout:
		return codes.Unavailable
	case perr.Reason == taxonomy.ReasonCanceled:
		return codes.Canceled
	}
	return codes.DeadlineExceeded
}

// checkHealth makes the health check call over conn, which it closes:
// the check phase, which begins with the HTTP/2 connection preface and
// settings, as gRPC needs them before any call. While mayRetry, again
// says the server went away before processing the call, which gRPC makes
// once more on a new connection; err is then that first call's failure,
// which is not yet the probe's: it sets no status and logs nothing.
func (p *grpcPrepared) checkHealth(ctx context.Context, m *core.Module, conn net.Conn, authority string, mayRetry bool, mx grpcMetrics, logger *slog.Logger) (again bool, err error) {
	defer conn.Close()
	watched := &watchedConn{Conn: conn}
	service := m.GRPC.Service
	probelog.Debug(logger, "Checking gRPC health", "service", service, "authority", authority)
	start := time.Now()
	resp, fail := p.callHealth(ctx, m, watched, authority, mayRetry, logger)
	mx.timed(taxonomy.PhaseCheck, start, time.Now())
	if fail != nil {
		err := failedCall(ctx, fail, conn, watched.failure(), service)
		if fail.elsewhere {
			return true, err
		}
		mx.status.Set(float64(fail.status.Code()))
		logger.Error("Health check failed", "err", err)
		return false, err
	}
	mx.answered(resp.GetStatus())
	probelog.Debug(logger, "Received health check answer", "serving_status", resp.GetStatus().String())
	return false, servingError(resp.GetStatus(), service)
}

// failedCall gives a failed call the status grpc-go would report, and
// classifies it. connErr is the first error reading or writing conn met.
func failedCall(ctx context.Context, fail *callFailure, conn net.Conn, connErr error, service string) error {
	switch {
	case ctx.Err() != nil:
		// The deadline may break the stream before the call sees it.
		fail.status = status.FromContextError(ctx.Err())
	case fail.status.Code() == codes.Canceled && deadlinePassed(ctx):
		// The server gave up at the deadline the call carried, a moment
		// before ctx's timer ran; grpc-go reads such a reset so too.
		fail.status = status.New(codes.DeadlineExceeded, fail.status.Message())
	}
	if tc, ok := conn.(*tls.Conn); ok {
		fail.noALPN = tc.ConnectionState().NegotiatedProtocol != "h2"
	}
	return callError(ctx, fail, service, connErr)
}

// servingError judges a health check answer: only SERVING passes.
func servingError(s healthpb.HealthCheckResponse_ServingStatus, service string) error {
	switch s {
	case healthpb.HealthCheckResponse_SERVING:
		return nil
	case healthpb.HealthCheckResponse_SERVICE_UNKNOWN:
		return taxonomy.Failf(taxonomy.ClassStatus, taxonomy.ReasonGRPCServiceUnknown, taxonomy.PhaseCheck, "the health service answered SERVICE_UNKNOWN for %s", describeService(service))
	case healthpb.HealthCheckResponse_NOT_SERVING:
		return taxonomy.Failf(taxonomy.ClassStatus, taxonomy.ReasonGRPCNotServing, taxonomy.PhaseCheck, "the health service says %s is NOT_SERVING", describeService(service))
	}
	// UNKNOWN, or a number outside the enum: the server does not say it
	// serves, which is what a health check asks.
	return taxonomy.Failf(taxonomy.ClassStatus, taxonomy.ReasonGRPCNotServing, taxonomy.PhaseCheck, "the health service answered %s for %s, not SERVING", s, describeService(service))
}

// callError classifies a failed health check call. connErr is the first
// error reading or writing the connection met.
func callError(ctx context.Context, fail *callFailure, service string, connErr error) error {
	st := fail.status
	code := codeName(st.Code())
	if ctx.Err() != nil {
		return taxonomy.Classify(ctx, fmt.Errorf("gRPC health check (%s): %w", code, ctx.Err()), taxonomy.PhaseCheck)
	}
	if fail.unsent {
		// Like a 431 answer, which the server announced in its settings:
		// it will not take the call as the module writes it.
		return taxonomy.Failf(taxonomy.ClassStatus, taxonomy.ReasonGRPCStatus, taxonomy.PhaseCheck,
			"%s: %s; gRPC sends no such call, and sonde did not send it: send less metadata", code, st.Message())
	}
	if !fail.fromServer {
		return unreadableError(ctx, fail, connErr)
	}
	switch st.Code() {
	case codes.DeadlineExceeded:
		// The call carries the probe's deadline (grpc-timeout), and the
		// server may give up on it a moment before sonde does.
		return taxonomy.Failf(taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseCheck, "the server answered DEADLINE_EXCEEDED: %s", st.Message())
	case codes.Unimplemented:
		return taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonGRPCUnimplemented, taxonomy.PhaseCheck,
			"the server does not implement grpc.health.v1.Health, so it cannot be health-checked (UNIMPLEMENTED: %s); register the standard health service in the server, or probe it with the tcp prober", st.Message())
	case codes.NotFound:
		return taxonomy.Failf(taxonomy.ClassStatus, taxonomy.ReasonGRPCServiceUnknown, taxonomy.PhaseCheck,
			"the health service does not know %s (NOT_FOUND: %s)", describeService(service), st.Message())
	case codes.Internal, codes.Unknown, codes.DataLoss:
		return taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseCheck, "the server failed the health check with %s: %s", code, st.Message())
	}
	// Any other status the server answered with (PERMISSION_DENIED,
	// UNAUTHENTICATED, RESOURCE_EXHAUSTED, UNAVAILABLE, ...): it refuses
	// the check itself, which says nothing of whether it serves.
	return taxonomy.Failf(taxonomy.ClassStatus, taxonomy.ReasonGRPCStatus, taxonomy.PhaseCheck,
		"the server answered the health check of %s with %s: %s", describeService(service), code, st.Message())
}

// unreadableError classifies a call that got no answer sonde could read:
// by the connection's error when it broke, else as a malformed answer.
func unreadableError(ctx context.Context, fail *callFailure, connErr error) error {
	hint := notGRPCHint(fail.noALPN)
	st := fail.status
	if connErr != nil {
		c := taxonomy.Classify(ctx, fmt.Errorf("gRPC health check (%s: %s): %w", codeName(st.Code()), st.Message(), connErr), taxonomy.PhaseCheck)
		if c.Class != taxonomy.ClassUnknown {
			if !fail.spokeHTTP2 {
				c.Err = fmt.Errorf("%w; %s", c.Err, hint)
			}
			return c
		}
	}
	msg := fmt.Sprintf("no valid gRPC answer over HTTP/2 (%s: %s)", codeName(st.Code()), st.Message())
	if !fail.spokeHTTP2 {
		msg += "; " + hint
	}
	return taxonomy.Fail(taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseCheck, errors.New(msg))
}

// deadlinePassed reports whether ctx's deadline is behind the clock, which
// can be true a moment before ctx says so.
func deadlinePassed(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// notGRPCHint says what to look at when the server spoke no HTTP/2 at all.
func notGRPCHint(noALPN bool) string {
	if noALPN {
		return "the TLS server did not agree to h2 by ALPN, which gRPC needs: is it a gRPC server's port?"
	}
	return "is it a gRPC server's port, and is tls set as the server expects?"
}

func describeService(service string) string {
	if service == "" {
		return "the server (service \"\")"
	}
	return fmt.Sprintf("service %q", service)
}

// codeName writes a status code as the gRPC specification does
// (PERMISSION_DENIED), where grpc-go writes PermissionDenied.
func codeName(c codes.Code) string {
	var b strings.Builder
	lower := false
	for _, r := range c.String() {
		upper := r >= 'A' && r <= 'Z'
		if upper && lower {
			b.WriteByte('_')
		}
		lower = r >= 'a' && r <= 'z'
		b.WriteString(strings.ToUpper(string(r)))
	}
	return b.String()
}

// watchedConn remembers the first error a read or write of the connection
// met. The call reports a broken connection as an UNAVAILABLE status; with the error itself a reset or an early close is classified
// as in the other probers. Errors after Close are sonde's own doing.
type watchedConn struct {
	net.Conn
	mu     sync.Mutex
	first  error
	closed bool
}

func (w *watchedConn) Read(b []byte) (int, error) {
	n, err := w.Conn.Read(b)
	w.note(err)
	return n, err
}

func (w *watchedConn) Write(b []byte) (int, error) {
	n, err := w.Conn.Write(b)
	w.note(err)
	return n, err
}

func (w *watchedConn) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	return w.Conn.Close()
}

func (w *watchedConn) note(err error) {
	if err == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.first == nil && !w.closed {
		w.first = err
	}
}

// failure returns the first error the connection met, if any.
func (w *watchedConn) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first
}
