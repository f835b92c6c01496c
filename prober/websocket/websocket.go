// Package websocket is the websocket prober, a sonde addition: it upgrades
// an HTTP request to a websocket and runs the module's query_response
// script over its messages.
package websocket

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	pconfig "github.com/prometheus/common/config"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/check"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/policy"
	"github.com/sonde-exporter/sonde/prober/probelog"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
	"github.com/sonde-exporter/sonde/prober/tlsfacts"
)

// The websocket prober resolves the target's host, opens a fresh TCP
// connection to that address (and completes a TLS handshake on it for
// wss://), then hands the open connection to gorilla/websocket, which
// sends the upgrade request and reads the answer. Dialing before the
// library gets the connection keeps every phase separately timed and
// classified exactly as the other probers do it.

// maxMessage bounds one message the prober reads: large enough for the
// snapshot a streaming API sends first, small enough that a peer cannot
// make sonde hold an unbounded message.
const maxMessage = 16 << 20

// wsHandshakeHeaders are set by the websocket handshake itself; gorilla
// refuses a request that sets them again.
var wsHandshakeHeaders = []string{"Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions"}

// wsPrepared is what a websocket module needs ready before its first probe.
type wsPrepared struct {
	tls            *tlsfacts.Client
	header         http.Header          // http_config.headers and headers, without Host
	host           string               // a Host header the module sets, if any
	user, password pconfig.SecretReader // http_config.basic_auth; nil without it
	bearer         string               // http_config.bearer_token
	checks         check.Slots          // the expect regexps running
}

// Prepare readies a websocket module when the configuration loads.
func Prepare(m *config.Module, env *core.Env) (core.Prober, error) {
	cfg := &m.Websocket
	tlsConfig, err := env.TLSClient(m, "websocket.http_config", &cfg.HTTPConfig.TLSConfig)
	if err != nil {
		return nil, err
	}
	p := &wsPrepared{tls: tlsConfig, header: http.Header{}, bearer: string(cfg.HTTPConfig.BearerToken), checks: check.NewSlots()}
	if err := p.addHeaders(cfg); err != nil {
		return nil, err
	}
	if b := cfg.HTTPConfig.BasicAuth; b != nil {
		if p.user, err = core.Secret(pconfig.Secret(b.Username), b.UsernameFile, b.UsernameRef); err != nil {
			return nil, fmt.Errorf("websocket.http_config.basic_auth: %w", err)
		}
		if p.password, err = core.Secret(b.Password, b.PasswordFile, b.PasswordRef); err != nil {
			return nil, fmt.Errorf("websocket.http_config.basic_auth: %w", err)
		}
	}
	return p, nil
}

// addHeaders collects both header options once. A header the handshake
// sets itself would make every probe fail, so it is refused at load.
func (p *wsPrepared) addHeaders(cfg *config.WebsocketProbe) error {
	add := func(section, name string, values []string) error {
		key := http.CanonicalHeaderKey(name)
		for _, h := range wsHandshakeHeaders {
			if key == h {
				return fmt.Errorf("websocket.%s: %s is set by the websocket handshake itself; remove it", section, name)
			}
		}
		if key != "Host" {
			p.header[key] = append(p.header[key], values...)
			return nil
		}
		if len(values) != 1 {
			return fmt.Errorf("websocket.%s: the Host header takes one value, got %q", section, values)
		}
		if p.host != "" && p.host != values[0] {
			return fmt.Errorf("websocket.%s: sets the Host header to %q, and http_config.headers to %q; drop one of them", section, values[0], p.host)
		}
		p.host = values[0]
		return nil
	}
	for name, values := range cfg.HTTPConfig.Headers {
		if err := add("http_config.headers", name, values); err != nil {
			return err
		}
	}
	for name, value := range cfg.Headers {
		if err := add("headers", name, []string{value}); err != nil {
			return err
		}
	}
	return nil
}

// requestHeader is the header of the upgrade request: the configured
// headers, the Host header and the credentials, fetched now so that a
// rotated password file applies without a reload.
func (p *wsPrepared) requestHeader(ctx context.Context, host string) (http.Header, error) {
	h := p.header.Clone()
	if host != "" {
		h.Set("Host", host)
	}
	auth, err := p.authorization(ctx)
	if err != nil {
		return nil, taxonomy.Fail(taxonomy.ClassProber, taxonomy.ReasonCredentials, taxonomy.PhaseSetup, fmt.Errorf("websocket.http_config: %w", err))
	}
	if auth != "" {
		// The credentials options win over an Authorization header, as
		// they are the more specific setting.
		h.Set("Authorization", auth)
	}
	return h, nil
}

// authorization is the Authorization header value: basic_auth if set,
// else bearer_token, as blackbox_exporter chooses.
func (p *wsPrepared) authorization(ctx context.Context) (string, error) {
	if p.user != nil {
		user, err := p.user.Fetch(ctx)
		if err != nil {
			return "", fmt.Errorf("basic_auth username: %w", err)
		}
		password, err := p.password.Fetch(ctx)
		if err != nil {
			return "", fmt.Errorf("basic_auth password: %w", err)
		}
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password)), nil
	}
	if p.bearer != "" {
		return "Bearer " + p.bearer, nil
	}
	return "", nil
}

// hostHeader is the Host header to send: the module's own, else the one
// the `hostname` URL parameter asks for, else none, and the URL's host is
// sent. Module.WithHostname has refused a parameter that disagrees with
// the module's own.
func (p *wsPrepared) hostHeader(m *core.Module) string {
	if p.host != "" {
		return p.host
	}
	return m.Hostname
}

// websocketMetrics are blackbox_exporter's websocket metrics. The status
// and upgrade gauges exist from the start, so a probe failing early still
// exports them at 0; a phase duration appears once the probe reaches it.
type websocketMetrics struct {
	status, upgraded probemetrics.Gauge
	durations        probemetrics.GaugeVec
	sink             *probemetrics.Sink // for the spans of the phases timed here
}

func newWebsocketMetrics(sink *probemetrics.Sink) websocketMetrics {
	return websocketMetrics{
		status:    sink.Gauge("probe_websocket_status_code", "Response HTTP status code"),
		upgraded:  sink.Gauge("probe_websocket_connection_upgraded", "Indicates if the websocket connection was successfully upgraded"),
		durations: sink.GaugeVec("probe_websocket_duration_seconds", "Duration of websocket request by phase", "phase"),
		sink:      sink,
	}
}

func (mx websocketMetrics) phase(p taxonomy.Phase, d time.Duration) {
	mx.durations.With(string(p)).Set(d.Seconds())
}

// timed sets phase p's duration and records its span, from the same two
// clock readings.
func (mx websocketMetrics) timed(p taxonomy.Phase, start, end time.Time) {
	mx.phase(p, end.Sub(start))
	mx.sink.Span(p, 0, start, end)
}

// Probe upgrades a fresh connection to the target to a websocket
// and runs the module's query_response script over it.
func (p *wsPrepared) Probe(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	mx := newWebsocketMetrics(sink)
	u, err := ParseTarget(target)
	if err != nil {
		return err
	}
	if err := m.Policy.RefuseScheme(u.Scheme); err != nil {
		return policy.TargetDenied(taxonomy.PhaseSetup, err)
	}
	host := p.hostHeader(m)
	header, err := p.requestHeader(ctx, host)
	if err != nil {
		return err
	}
	core.InjectTraceContext(ctx, m, header)
	conn, err := p.dial(ctx, m, u, p.serverName(&m.Websocket, host, u), mx, sink, logger)
	if err != nil {
		return err
	}
	defer conn.Close()
	release := netdial.BindDeadline(ctx, conn)
	ws, err := upgrade(ctx, u, conn, header, mx, logger)
	release()
	if err != nil {
		return err
	}
	defer closeWebsocket(ctx, ws)
	// gorilla clears the connection's deadline once upgraded.
	defer netdial.BindDeadline(ctx, ws.NetConn())()
	return converse(ctx, &wsConversation{conn: ws, ctx: ctx, checks: p.checks}, m.Websocket.QueryResponse, mx, sink, logger)
}

// ParseTarget reads a ws:// or wss:// URL; http:// and https://
// stand for them, as a websocket starts as an HTTP request.
func ParseTarget(target string) (*url.URL, error) {
	const how = "write it as ws://host[:port][/path] or wss://host[:port][/path]"
	u, err := url.Parse(target)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // without the URL, which may hold a password
		}
		return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target is not a valid URL (%v); %s", err, how)
	}
	shown := u.Redacted()
	switch strings.ToLower(u.Scheme) {
	case "ws", "http":
		u.Scheme = "ws"
	case "wss", "https":
		u.Scheme = "wss"
	default:
		return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target %q is not a websocket URL; %s", shown, how)
	}
	if u.Hostname() == "" {
		return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target %q has no host; %s", shown, how)
	}
	if why := netdial.MalformedHost(u.Hostname()); why != "" {
		return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target %q has host %q, with %s; %s", shown, u.Hostname(), why, how)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target %q has port %q, which is not from 1 to 65535", shown, p)
		}
	}
	if u.User != nil {
		// RFC 6455 URLs carry no credentials, and gorilla refuses them.
		return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup,
			"target %q carries credentials, which a websocket URL cannot; remove them and use http_config.basic_auth", shown)
	}
	return u, nil
}

// DefaultPort is the URL's port, or the scheme's.
func DefaultPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "wss" {
		return "443"
	}
	return "80"
}

// serverName is the name the TLS server is verified as: tls_config's
// server_name, else the Host header's host (so an IP target with a Host
// header verifies), else the URL's host.
func (p *wsPrepared) serverName(cfg *config.WebsocketProbe, host string, u *url.URL) string {
	if n := cfg.HTTPConfig.TLSConfig.ServerName; n != "" {
		return n
	}
	if host != "" {
		if h, _, err := net.SplitHostPort(host); err == nil {
			return h
		}
		return host
	}
	return u.Hostname()
}

// dial runs the resolve and connect phases: a fresh connection to
// the resolved address and, for wss, a TLS handshake on it. The handshake
// counts in the connect phase; blackbox_exporter has no tls phase for
// websockets. The spans keep the two apart (connect, then tls), which
// together last as long as the connect phase.
func (p *wsPrepared) dial(ctx context.Context, m *core.Module, u *url.URL, serverName string, mx websocketMetrics, sink *probemetrics.Sink, logger *slog.Logger) (net.Conn, error) {
	cfg := &m.Websocket
	d, err := netdial.DialEndpoint(ctx, m.Resolver, m.Policy, netdial.Endpoint{Network: "tcp", Host: u.Hostname(), Port: DefaultPort(u),
		Protocol: cfg.IPProtocol, Fallback: cfg.IPProtocolFallback}, sink, logger)
	mx.phase(taxonomy.PhaseResolve, d.Resolve)
	if d.IP == nil {
		return nil, err // resolution failed: the connect phase never began
	}
	connect := d.Connect
	defer func() { mx.phase(taxonomy.PhaseConnect, connect) }()
	if err != nil {
		return nil, err
	}
	if u.Scheme != "wss" {
		return d.Conn, nil
	}
	tc, took, err := tlsfacts.Handshake(ctx, d.Conn, p.tls, serverName, sink)
	connect += took
	if err != nil {
		d.Conn.Close()
		return nil, err
	}
	return tc, nil
}

// upgrade sends the upgrade request over conn and reads the answer: the
// processing phase.
func upgrade(ctx context.Context, u *url.URL, conn net.Conn, header http.Header, mx websocketMetrics, logger *slog.Logger) (*websocket.Conn, error) {
	// The library "dials" by taking the connection already open; for
	// wss the TLS handshake is done too, so it skips its own. It reads
	// the answer with no limit of its own, so the connection it gets
	// stops reading at the limit the http prober has.
	bounded := &handshakeConn{Conn: conn, left: core.MaxResponseHeader}
	handOver := func(ctx context.Context, _, _ string) (net.Conn, error) { return bounded, ctx.Err() }
	dialer := websocket.Dialer{NetDialContext: handOver, NetDialTLSContext: handOver}
	probelog.Debug(logger, "Making websocket upgrade request", "url", u.Redacted(), "host", header.Get("Host"))
	start := time.Now()
	ws, resp, err := dialer.DialContext(ctx, u.String(), header)
	overLimit := err != nil && bounded.exhausted()
	bounded.upgraded() // from here on, SetReadLimit bounds what is read
	mx.timed(taxonomy.PhaseProcessing, start, time.Now())
	if resp != nil {
		mx.status.Set(float64(resp.StatusCode))
		probelog.Debug(logger, "Received upgrade response", "status_code", resp.StatusCode)
	}
	if overLimit {
		err = taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseProcessing,
			"the answer to the upgrade request has a header longer than %s, the most sonde reads", check.DescribeSize(core.MaxResponseHeader))
		logger.Error("Websocket upgrade failed", "err", err)
		return nil, err
	}
	if err != nil {
		err = upgradeError(ctx, resp, err)
		logger.Error("Websocket upgrade failed", "err", err)
		return nil, err
	}
	mx.upgraded.Set(1)
	ws.SetReadLimit(maxMessage)
	return ws, nil
}

// upgradeError classifies a failed upgrade. A status other than 101 is a
// check of the response, like the http prober's valid_status_codes, so it
// fails in the validate phase; a 101 without a valid handshake is the
// server not speaking the protocol.
func upgradeError(ctx context.Context, resp *http.Response, err error) error {
	switch {
	case errors.Is(err, websocket.ErrBadHandshake) && resp != nil && resp.StatusCode != http.StatusSwitchingProtocols:
		return taxonomy.Failf(taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus, taxonomy.PhaseValidate,
			"the server answered the upgrade request with status %s, not 101 Switching Protocols", resp.Status)
	case errors.Is(err, websocket.ErrBadHandshake) && resp != nil:
		return taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseProcessing,
			"the server answered 101 without a valid websocket handshake (Upgrade %q, Connection %q, Sec-WebSocket-Accept %q)",
			resp.Header.Get("Upgrade"), resp.Header.Get("Connection"), resp.Header.Get("Sec-WebSocket-Accept"))
	case resp != nil: // a 101 with an extension sonde did not ask for
		return taxonomy.Fail(taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseProcessing, fmt.Errorf("upgrade response: %w", err))
	}
	c := taxonomy.Classify(ctx, fmt.Errorf("websocket upgrade: %w", err), taxonomy.PhaseProcessing)
	if c.Class == taxonomy.ClassUnknown {
		// The connection is up and nothing but reading the answer is
		// going on: what the reader rejects is a malformed response.
		c.Class, c.Reason = taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse
	}
	return c
}

// handshakeConn is the connection the upgrade is read from: until the
// upgrade is done it reads at most left bytes, then fails every read.
// Only the goroutine running the upgrade reads it meanwhile.
type handshakeConn struct {
	net.Conn
	left int64 // bytes the upgrade may still read; -1 once upgraded
}

func (c *handshakeConn) Read(p []byte) (int, error) {
	if c.left < 0 {
		return c.Conn.Read(p)
	}
	if c.left == 0 {
		return 0, core.ErrHeaderTooLarge
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	c.left -= int64(n)
	return n, err
}

// upgraded lifts the limit, which is the handshake's alone.
func (c *handshakeConn) upgraded() { c.left = -1 }

// exhausted reports whether the upgrade stopped at the limit.
func (c *handshakeConn) exhausted() bool { return c.left == 0 }

// converse runs the query_response script, timed as the transfer phase.
// Like blackbox_exporter, probe_websocket_failed_due_to_regex and the
// transfer phase exist only for modules with a script, once upgraded.
func converse(ctx context.Context, ws *wsConversation, steps []config.QueryResponse, mx websocketMetrics, sink *probemetrics.Sink, logger *slog.Logger) error {
	if len(steps) == 0 {
		return nil
	}
	regex := sink.Gauge("probe_websocket_failed_due_to_regex", "Indicates if probe failed due to regex")
	start := time.Now()
	err := check.RunScript(ctx, steps, ws, check.ScriptMetrics{Sink: sink, Regex: &regex}, logger)
	mx.timed(taxonomy.PhaseTransfer, start, time.Now())
	return err
}

// closeWebsocket ends the conversation with a close frame, so the server
// sees a probe that finished rather than an abnormal closure, then closes
// the connection. The frame is not waited for beyond the probe deadline.
func closeWebsocket(ctx context.Context, ws *websocket.Conn) {
	deadline := time.Now().Add(100 * time.Millisecond)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline)
	ws.Close()
}

// wsConversation is a script's conversation over a websocket: every
// expect and expect_bytes reads exactly one message, as blackbox_exporter
// does, and every send writes one text message.
type wsConversation struct {
	conn   *websocket.Conn
	ctx    context.Context // the probe's
	checks check.Slots
}

// Expect matches the next message, which may be as large as maxMessage,
// under the probe's deadline.
func (w *wsConversation) Expect(re *regexp.Regexp) ([]byte, []int, error) {
	msg, err := w.next()
	if err != nil {
		return nil, nil, err
	}
	var match []int
	find := func() *taxonomy.Error { match = re.FindSubmatchIndex(msg); return nil }
	if err := w.checks.Run(w.ctx, "", "matching expect", find); err != nil {
		return msg, nil, err
	}
	return msg, match, nil
}

// ExpectBytes returns the next message whole, whatever n: runScript then
// compares it with expect_bytes exactly, so a longer or shorter message
// does not match.
func (w *wsConversation) ExpectBytes(int) ([]byte, error) {
	return w.next()
}

func (w *wsConversation) Send(s string) error {
	return w.conn.WriteMessage(websocket.TextMessage, []byte(s))
}

func (w *wsConversation) StartTLS(context.Context) error {
	return taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonUnsupported, taxonomy.PhaseStartTLS, "a websocket cannot switch to TLS mid-conversation; use a wss:// target")
}

// next reads one message. A close frame, or the connection ending without
// one, while the script waits is the peer hanging up; it is reported as an
// early EOF so that it is classified as one.
func (w *wsConversation) next() ([]byte, error) {
	_, msg, err := w.conn.ReadMessage()
	var closed *websocket.CloseError
	switch {
	case errors.As(err, &closed):
		return nil, fmt.Errorf("the peer closed the websocket (%v): %w", closed, io.ErrUnexpectedEOF)
	case errors.Is(err, websocket.ErrReadLimit):
		return nil, taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, "", "a message longer than %s arrived", check.DescribeSize(maxMessage))
	case err != nil && taxonomy.Classify(nil, err, "").Class == taxonomy.ClassUnknown:
		// Not the connection failing: gorilla rejected a frame (a bad
		// opcode, reserved bits, a masked or oversized control frame).
		return nil, taxonomy.Fail(taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, "", fmt.Errorf("reading a message: %w", err))
	}
	return msg, err
}
