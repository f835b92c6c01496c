package http

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http/httpguts"

	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
	"github.com/sonde-exporter/sonde/prober/tlsfacts"
)

// HTTP/3 (enable_http3), as blackbox_exporter 0.28 has it: requests go
// over QUIC with quic-go's HTTP/3 client, to https:// URLs only. Unlike
// blackbox, which lets quic-go resolve the host again and keeps a pool,
// every request of a probe (each redirect too) gets a UDP socket and a
// QUIC connection of its own, to the address sonde resolved and the
// target policy allowed, closed when its response is done with.
//
// Phases: QUIC sends nothing before its handshake, so `connect` is the
// set-up of the UDP socket alone, and `tls` the QUIC handshake, which
// carries TLS 1.3 and the transport's own parameters in the same round
// trips. `processing` and `transfer` are as for HTTP/1 and HTTP/2.

// prepareHTTP3 readies a module's TLS client for HTTP/3: QUIC runs on TLS
// 1.3 alone, and offers h3 alone by ALPN. A tls_config.max_version below
// TLS 1.3 then fails every probe, as it does in blackbox.
func prepareHTTP3(c *tlsfacts.Client) {
	c.WithMinVersion(tls.VersionTLS13, "enable_http3, as QUIC runs on TLS 1.3")
	c.WithALPN(http3.NextProtoH3)
}

// upgradeToHTTPS makes an http:// target https://, as blackbox does for
// HTTP/3, which runs only over TLS. The port stays as written: a target
// without one is probed on 443.
func upgradeToHTTPS(u *url.URL, logger *slog.Logger) {
	if u.Scheme != "http" {
		return
	}
	target := u.Redacted()
	u.Scheme = "https"
	logger.Warn("Probing over https, since HTTP/3 runs only over TLS", "target", target, "probed", u.Redacted())
}

// roundTripHTTP3 makes req on a QUIC connection of its own. The
// response's body closes the connection.
func (t *httpTransport) roundTripHTTP3(req *http.Request) (*http.Response, error) {
	if err := t.checkHTTP3(req); err != nil {
		return nil, err
	}
	ctx := req.Context()
	conn, err := t.dialQUIC(ctx, dialAddress(req.URL))
	if err != nil {
		return nil, err
	}
	// No connection outlives its probe, whether or not its body is closed.
	conn.stop = context.AfterFunc(ctx, conn.shut)
	t.timeline.mark(func(r *roundTrip) *time.Time { return &r.gotConn })
	resp, err := conn.roundTrip(req, t.timeline)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return resp, nil
}

// checkHTTP3 refuses, before anything is sent, what HTTP/3 cannot carry:
// a redirect to plain http, and a request the module's proxy would carry
// (HTTP/3 runs over UDP, which proxies do not). It also checks the Host
// header and the header fields, which quic-go's client checks only once
// the request's stream is open, and then waits for an answer to a request
// it never sent.
func (t *httpTransport) checkHTTP3(req *http.Request) error {
	if req.URL.Scheme != "https" {
		return taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseProcessing,
			"redirected to %s, which an HTTP/3 probe cannot follow: HTTP/3 runs only over TLS", req.URL.Redacted())
	}
	if err := t.refuseProxy(req); err != nil {
		return err
	}
	if err := writableHTTP3(req); err != nil {
		return taxonomy.Fail(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, err)
	}
	return nil
}

// refuseProxy fails a request that the module's proxy settings send
// through a proxy. blackbox ignores them with HTTP/3; sonde does not
// bypass a proxy the operator configured.
func (t *httpTransport) refuseProxy(req *http.Request) error {
	if t.proxy == nil {
		return nil
	}
	proxy, err := t.proxy(req)
	switch {
	case err != nil:
		return taxonomy.Fail(taxonomy.ClassProber, taxonomy.ReasonUnsupported, taxonomy.PhaseSetup, fmt.Errorf("choosing a proxy for %s: %w", req.URL.Redacted(), err))
	case proxy != nil:
		return taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonUnsupported, taxonomy.PhaseSetup,
			"the module's proxy %s would carry %s, but HTTP/3 runs over UDP, which proxies do not carry; probe it with a module without enable_http3 or without the proxy",
			proxy.Redacted(), req.URL.Redacted())
	}
	return nil
}

// writableHTTP3 checks that quic-go's client can write req's header.
func writableHTTP3(req *http.Request) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if ascii, err := httpguts.PunycodeHostPort(host); err != nil || !httpguts.ValidHostHeader(ascii) {
		return fmt.Errorf("the Host header %q cannot be sent", host)
	}
	return nil // the other headers: RoundTrip has checked them
}

// dialQUIC opens a UDP socket to addr ("host:port") and runs the QUIC
// handshake on it: the connect phase, then the tls phase.
func (t *httpTransport) dialQUIC(ctx context.Context, addr string) (*http3Conn, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	host, ip, port, err := t.destination(ctx, addr)
	if err != nil {
		return nil, err
	}
	t.timeline.mark(func(r *roundTrip) *time.Time { return &r.connectStart })
	udp, err := netdial.NewDialer().DialContext(ctx, netdial.FamilyOf(ip).Network("udp"), net.JoinHostPort(ip.String(), port))
	t.timeline.mark(func(r *roundTrip) *time.Time { return &r.connectDone })
	if err != nil {
		return nil, taxonomy.Classify(ctx, fmt.Errorf("opening a UDP socket to %s: %w", addr, err), taxonomy.PhaseConnect)
	}
	return t.handshakeQUIC(ctx, udp.(*net.UDPConn), addr, t.serverNameFor(host))
}

// handshakeQUIC runs the QUIC handshake on udp, connected to addr, and
// the ocsp phase after it. The TLS facts are kept whether or not the
// handshake succeeds.
func (t *httpTransport) handshakeQUIC(ctx context.Context, udp *net.UDPConn, addr, serverName string) (*http3Conn, error) {
	c := &http3Conn{udp: udp, transport: &quic.Transport{Conn: connectedUDP{udp}}}
	facts := &tlsfacts.Facts{}
	t.timeline.mark(func(r *roundTrip) *time.Time { return &r.tlsStart })
	qc, err := c.transport.Dial(ctx, udp.RemoteAddr(), t.tls.Config(serverName, facts), quicConfig(ctx))
	t.timeline.mark(func(r *roundTrip) *time.Time { return &r.tlsDone })
	t.keep(facts)
	if err != nil {
		c.Close()
		return nil, handshakeError(ctx, fmt.Errorf("QUIC handshake with %s (%s): %w", addr, serverName, err))
	}
	c.quic = qc
	err = t.tls.QueryOCSP(ctx, c, facts)
	t.timeline.askedOCSP(facts.OCSPAsked())
	if err != nil {
		return nil, err
	}
	c.client = newHTTP3Client(qc, t.http3Gzip)
	return c, nil
}

// handshakeError classifies a failed QUIC handshake. A refused or
// unreachable port is learnt from the ICMP error that answers the first
// packet, during the handshake; it is reported in phase connect, so that
// connect/refused means the same over QUIC as over TCP (and as for dns
// over UDP).
func handshakeError(ctx context.Context, err error) *taxonomy.Error {
	e := classifyHTTP3(ctx, err, taxonomy.PhaseTLS)
	if e.Class == taxonomy.ClassConnect {
		e.Phase = taxonomy.PhaseConnect
	}
	return e
}

// quicConfig is the QUIC configuration of a probe's connection. Its idle
// timeouts are the time the probe has left, so that quic-go gives up on a
// silent peer no sooner than the probe would (its defaults, 5 s for the
// handshake and 30 s after it, may be shorter than a module's timeout).
// A connection for one request needs no path MTU discovery, and the
// server may open no request streams of its own.
func quicConfig(ctx context.Context) *quic.Config {
	c := &quic.Config{DisablePathMTUDiscovery: true, MaxIncomingStreams: -1}
	if deadline, ok := ctx.Deadline(); ok {
		if left := time.Until(deadline); left > 0 {
			c.HandshakeIdleTimeout, c.MaxIdleTimeout = left, left
		}
	}
	return c
}

// newHTTP3Client starts quic-go's HTTP/3 client on qc. With gzip, the
// client does what it does for blackbox, its default: asks for gzip when
// the request names no encoding, and decodes a gzipped answer itself
// (which then has no known length). sonde turns that off when the module
// sets compression, which decodes the body once, where blackbox would
// decode it twice and fail.
func newHTTP3Client(qc *quic.Conn, gzip bool) *http3.ClientConn {
	settings := &http3.Transport{DisableCompression: !gzip, MaxResponseHeaderBytes: core.MaxResponseHeader}
	return settings.NewClientConn(qc)
}

// http3Conn is the connection of one HTTP/3 request: its UDP socket,
// quic-go's transport reading the socket, the QUIC connection, and the
// HTTP/3 client on it. Closing it closes all of them, each waiting for the
// goroutines it runs to end.
type http3Conn struct {
	udp       *net.UDPConn
	transport *quic.Transport
	quic      *quic.Conn // nil until the handshake succeeded
	client    *http3.ClientConn
	stop      func() bool // stops the probe context's hold on the connection
	closing   sync.Once
}

// roundTrip sends req and reads the response's header.
func (c *http3Conn) roundTrip(req *http.Request, tl *timeline) (*http.Response, error) {
	ctx := req.Context()
	trace := &httptrace.ClientTrace{
		GotFirstResponseByte: func() { tl.mark(func(r *roundTrip) *time.Time { return &r.firstByte }) },
	}
	resp, err := c.client.RoundTrip(req.WithContext(httptrace.WithClientTrace(ctx, trace)))
	if err != nil {
		return nil, responseError(ctx, fmt.Errorf("HTTP/3 request: %w", err), tl.failurePhase())
	}
	resp.Body = &http3Body{body: resp.Body, conn: c, ctx: ctx}
	return resp, nil
}

// Close closes the connection. It is called on the probe's goroutine,
// which set stop.
func (c *http3Conn) Close() error {
	if c.stop != nil {
		c.stop()
	}
	c.shut()
	return nil
}

// shut closes the connection once, telling the server with H3_NO_ERROR.
func (c *http3Conn) shut() {
	c.closing.Do(func() {
		if c.quic != nil {
			c.quic.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "")
		}
		c.transport.Close() // the socket is the probe's: the transport leaves it open
		c.udp.Close()
	})
}

// http3Body is a response body read from an http3Conn. Closing it closes
// the connection. Its read errors come classified: readBody knows the
// errors of TCP connections, not those of quic-go.
type http3Body struct {
	body io.ReadCloser
	conn *http3Conn
	ctx  context.Context
}

func (b *http3Body) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if err != nil && err != io.EOF {
		err = responseError(b.ctx, fmt.Errorf("reading the HTTP/3 body: %w", err), taxonomy.PhaseTransfer)
	}
	return n, err
}

func (b *http3Body) Close() error {
	b.body.Close()
	return b.conn.Close()
}

// connectedUDP offers a connected UDP socket to quic-go as the
// net.PacketConn it reads and writes. The socket is connected so that the
// ICMP port unreachable answering a closed port comes back as
// ECONNREFUSED, which an unconnected socket never reports, leaving the
// probe to wait for its deadline; it also hears from no other address.
// Go refuses WriteTo and WriteMsgUDP on a connected socket, so its
// methods write with Write and read with Read, and it does not offer the
// batched OOB methods of *net.UDPConn (ECN, GSO), which a probe's few
// packets do not need.
type connectedUDP struct{ conn *net.UDPConn }

func (c connectedUDP) ReadFrom(p []byte) (int, net.Addr, error) {
	n, err := c.conn.Read(p)
	return n, c.conn.RemoteAddr(), err
}

func (c connectedUDP) WriteTo(p []byte, _ net.Addr) (int, error) { return c.conn.Write(p) }
func (c connectedUDP) Close() error                              { return c.conn.Close() }
func (c connectedUDP) LocalAddr() net.Addr                       { return c.conn.LocalAddr() }
func (c connectedUDP) SetDeadline(t time.Time) error             { return c.conn.SetDeadline(t) }
func (c connectedUDP) SetReadDeadline(t time.Time) error         { return c.conn.SetReadDeadline(t) }
func (c connectedUDP) SetWriteDeadline(t time.Time) error        { return c.conn.SetWriteDeadline(t) }

// SyscallConn, SetReadBuffer and SetWriteBuffer let quic-go set the
// don't-fragment bit and size the socket's buffers, as on a *net.UDPConn.
func (c connectedUDP) SyscallConn() (syscall.RawConn, error) { return c.conn.SyscallConn() }
func (c connectedUDP) SetReadBuffer(n int) error             { return c.conn.SetReadBuffer(n) }
func (c connectedUDP) SetWriteBuffer(n int) error            { return c.conn.SetWriteBuffer(n) }
