package http

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"time"

	pconfig "github.com/prometheus/common/config"

	"github.com/sonde-exporter/sonde/prober/idn"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/policy"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
	"github.com/sonde-exporter/sonde/prober/tlsfacts"
)

// roundTrip holds the timings of one request of a probe; each redirect adds
// one. Zero times are phases the request never reached.
type roundTrip struct {
	resolveStart, resolveDone time.Time
	connectStart, connectDone time.Time
	tlsStart, tlsDone         time.Time
	gotConn, firstByte, end   time.Time
	ocspStart, ocspEnd        time.Time // when the OCSP responder was asked, after the handshake
	literal                   bool      // the host was an IP literal: its "resolve" was a parse, no phase
}

// timeline records the round trips of one probe. The transport's dialing
// goroutines and the probe's own goroutine both write to it.
type timeline struct {
	mu    sync.Mutex
	trips []*roundTrip
}

// len returns how many round trips have begun.
func (t *timeline) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.trips)
}

func (t *timeline) begin() {
	t.mu.Lock()
	t.trips = append(t.trips, &roundTrip{})
	t.mu.Unlock()
}

// mark sets one time of the current round trip.
func (t *timeline) mark(field func(*roundTrip) *time.Time) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.trips) > 0 {
		*field(t.trips[len(t.trips)-1]) = now
	}
}

// askedOCSP keeps when the current round trip's handshake asked its
// certificate's OCSP responder, if it did, for the ocsp span.
func (t *timeline) askedOCSP(start, end time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.trips) > 0 {
		rt := t.trips[len(t.trips)-1]
		rt.ocspStart, rt.ocspEnd = start, end
	}
}

// parsedLiteral notes that the current round trip dialled an IP literal,
// so that its resolve marks, kept for the metric, make no span.
func (t *timeline) parsedLiteral() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.trips) > 0 {
		t.trips[len(t.trips)-1].literal = true
	}
}

// failurePhase says which phase the current round trip was in when it
// stopped, for errors that do not carry a phase of their own: the latest
// phase that started. A phase that just ended still counts, because the
// transport may give up on a dial (the request's context is done) in the
// instant between the dial's handshake ending and the transport taking
// the connection.
func (t *timeline) failurePhase() taxonomy.Phase {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.trips) == 0 {
		return taxonomy.PhaseConnect
	}
	rt := t.trips[len(t.trips)-1]
	switch {
	case !rt.firstByte.IsZero():
		return taxonomy.PhaseTransfer
	case !rt.gotConn.IsZero():
		return taxonomy.PhaseProcessing
	case !rt.tlsStart.IsZero():
		return taxonomy.PhaseTLS
	case !rt.connectStart.IsZero():
		return taxonomy.PhaseConnect
	case !rt.resolveStart.IsZero():
		return taxonomy.PhaseResolve
	}
	return taxonomy.PhaseConnect
}

// phaseDurations sums each phase over the round trips, as
// probe_http_duration_seconds does. A phase of the last round trip cut
// short by a failure counts up to stop, so the time spent before a deadline
// shows where it went. Earlier round trips were redirects: their bodies are
// never read, so their transfer phase, like blackbox's, counts 0.
func (t *timeline) phaseDurations(stop time.Time) map[taxonomy.Phase]time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := map[taxonomy.Phase]time.Duration{}
	for i, rt := range t.trips {
		cut := time.Time{}
		if i == len(t.trips)-1 {
			cut = stop
		}
		d[taxonomy.PhaseResolve] += span(rt.resolveStart, rt.resolveDone, cut)
		d[taxonomy.PhaseConnect] += span(rt.connectStart, rt.connectDone, cut)
		d[taxonomy.PhaseTLS] += span(rt.tlsStart, rt.tlsDone, cut) - rt.ocspInHandshake()
		d[taxonomy.PhaseProcessing] += span(rt.gotConn, rt.firstByte, cut)
		d[taxonomy.PhaseTransfer] += span(rt.firstByte, rt.end, cut)
	}
	return d
}

// recordSpans records every phase of every round trip as it happened, its
// hop being the request's index in the redirect chain. The phases and
// their ends are those phaseDurations sums, given the same stop: a phase
// never reached has no span.
func (t *timeline) recordSpans(sink *probemetrics.Sink, stop time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, rt := range t.trips {
		cut := time.Time{}
		if i == len(t.trips)-1 {
			cut = stop
		}
		record := func(phase taxonomy.Phase, start, end time.Time) {
			if end, ok := phaseEnd(start, end, cut); ok {
				sink.Span(phase, i, start, end)
			}
		}
		if !rt.literal {
			record(taxonomy.PhaseResolve, rt.resolveStart, rt.resolveDone)
		}
		record(taxonomy.PhaseConnect, rt.connectStart, rt.connectDone)
		if rt.ocspInHandshake() > 0 {
			// The query split the handshake: its tls phase is what came
			// before and after.
			record(taxonomy.PhaseTLS, rt.tlsStart, rt.ocspStart)
			record(taxonomy.PhaseTLS, rt.ocspEnd, rt.tlsDone)
		} else {
			record(taxonomy.PhaseTLS, rt.tlsStart, rt.tlsDone)
		}
		record(taxonomy.PhaseOCSP, rt.ocspStart, rt.ocspEnd)
		record(taxonomy.PhaseProcessing, rt.gotConn, rt.firstByte)
		record(taxonomy.PhaseTransfer, rt.firstByte, rt.end)
	}
}

// ocspInHandshake is the time the OCSP responder took during the
// handshake, which net/http's Transport makes with the query inside it:
// that time is the ocsp phase's alone, as when the query follows the
// handshake (HTTP/3).
func (rt *roundTrip) ocspInHandshake() time.Duration {
	if rt.ocspStart.IsZero() || rt.tlsDone.IsZero() || rt.ocspStart.Before(rt.tlsStart) || rt.ocspEnd.After(rt.tlsDone) {
		return 0
	}
	return rt.ocspEnd.Sub(rt.ocspStart)
}

// span is end - start; an unfinished phase counts up to cut, or not at all
// when cut is zero.
func span(start, end, cut time.Time) time.Duration {
	if end, ok := phaseEnd(start, end, cut); ok {
		return end.Sub(start)
	}
	return 0
}

// phaseEnd is when a phase that began at start ended: end, or cut for an
// unfinished one. ok is false for a phase never reached, or unfinished
// with no cut.
func phaseEnd(start, end, cut time.Time) (time.Time, bool) {
	switch {
	case start.IsZero():
		return time.Time{}, false
	case !end.IsZero():
		return end, true
	case !cut.IsZero():
		return cut, true
	}
	return time.Time{}, false
}

// httpTransport is the transport of one probe. It opens a fresh connection
// for every request, so connect and TLS times are real; it dials the address
// found in the resolve phase for the target's own host and resolves the
// hosts of redirects itself, timing every step into the timeline.
//
// A request takes one of three ways: HTTP/3 (http3.go), the direct path
// for plain http (direct.go), or prometheus/common's round tripper, as
// blackbox_exporter builds it from the module's http_client_config, with
// the probe's own dialing and TLS handshakes beneath it.
type httpTransport struct {
	probeCtx   context.Context // bounds every dial by the probe deadline
	timeline   *timeline
	resolver   netdial.Resolver
	family     netdial.IPFamily
	fallback   bool
	pinnedHost string // the target's host, dialled at pinnedIP
	pinnedIP   net.IP
	serverName string // the TLS server name for pinnedHost
	tls        *tlsfacts.Client
	policy     *policy.Target                        // the module's; nil allows every address
	proxy      func(*http.Request) (*url.URL, error) // the module's proxy function, if any
	prepared   *httpPrepared
	http3      bool // requests go over QUIC (enable_http3), see http3.go
	http3Gzip  bool // quic-go asks for gzip and decodes it, as it does for blackbox

	mu        sync.Mutex
	chains    map[string]http.RoundTripper // prometheus/common's, by TLS server name
	facts     *tlsfacts.Facts              // of the last handshake
	handshake *tlsfacts.Facts              // of the handshake the Transport is making
	proxies   map[string]*url.URL          // the proxies chosen so far, by "host:port"
	lastProxy *proxyConn                   // the last connection opened to a proxy
	lastHTTPS bool                         // the last request through prometheus/common was to https
}

func (t *httpTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.timeline.begin()
	if err := validHeader(req.Header); err != nil {
		return nil, err
	}
	switch {
	case t.http3:
		return t.prepared.http3Chain.RoundTrip(req)
	case t.direct(req):
		return t.roundTripDirect(req)
	}
	return t.roundTripCommon(req)
}

// roundTripCommon makes req through prometheus/common's round tripper,
// timing what the Transport does through the request's trace.
func (t *httpTransport) roundTripCommon(req *http.Request) (*http.Response, error) {
	if err := t.prepared.secretFilesReadable(); err != nil {
		return nil, err
	}
	rt, err := t.chain(t.serverNameFor(req.URL.Hostname()))
	if err != nil {
		return nil, err
	}
	t.noteProxy(req)
	t.mu.Lock()
	t.lastHTTPS, t.lastProxy = req.URL.Scheme == "https", nil
	t.mu.Unlock()
	trace := &httptrace.ClientTrace{
		GotConn:              func(httptrace.GotConnInfo) { t.timeline.mark(func(r *roundTrip) *time.Time { return &r.gotConn }) },
		GotFirstResponseByte: func() { t.timeline.mark(func(r *roundTrip) *time.Time { return &r.firstByte }) },
		TLSHandshakeStart:    t.handshakeStarts,
		TLSHandshakeDone:     func(tls.ConnectionState, error) { t.handshakeDone() },
	}
	return rt.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
}

// chain returns prometheus/common's round tripper for handshakes under
// serverName, built on first use: one for the target's host and one for
// each other host a redirect leads to, as blackbox builds one for each.
func (t *httpTransport) chain(serverName string) (http.RoundTripper, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if rt, ok := t.chains[serverName]; ok {
		return rt, nil
	}
	rt, err := pconfig.NewRoundTripperFromConfigWithContext(t.probeCtx, t.prepared.client, "http_probe",
		pconfig.WithKeepAlivesDisabled(),
		pconfig.WithDialContextFunc(t.dial),
		pconfig.WithNewTLSConfigFunc(func(context.Context, *pconfig.TLSConfig, ...pconfig.TLSConfigOption) (*tls.Config, error) {
			return t.tlsConfig(serverName), nil
		}))
	if err != nil {
		// Only the module's settings can make it fail: a secret reference,
		// which needs a secret manager that sonde, like blackbox, lacks.
		return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup, "http: %v", err)
	}
	if t.chains == nil {
		t.chains = map[string]http.RoundTripper{}
	}
	t.chains[serverName] = rt
	return rt, nil
}

// tlsConfig is the configuration of the Transport's handshakes under
// serverName: the module's TLS settings, parsed once per module, each
// handshake capturing what it shows, and asking the certificate's OCSP
// responder when the module says so.
func (t *httpTransport) tlsConfig(serverName string) *tls.Config {
	cfg := t.tls.ConfigFor(serverName, t.currentHandshake)
	verify := cfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := verify(cs); err != nil {
			return err
		}
		return t.queryOCSP()
	}
	return cfg
}

// queryOCSP runs the ocsp phase of a handshake whose chain verified, if
// the module asks the responder. A failure fails the handshake, which the
// Transport then closes, before any request is sent on it.
func (t *httpTransport) queryOCSP() error {
	facts := t.currentHandshake()
	err := t.tls.QueryOCSP(t.probeCtx, io.NopCloser(nil), facts)
	t.timeline.askedOCSP(facts.OCSPAsked())
	return err
}

// handshakeStarts begins the facts of a handshake the Transport makes.
func (t *httpTransport) handshakeStarts() {
	t.timeline.mark(func(r *roundTrip) *time.Time { return &r.tlsStart })
	t.mu.Lock()
	t.handshake = &tlsfacts.Facts{}
	t.mu.Unlock()
}

// handshakeDone keeps the facts of the handshake that ended, failed or not.
func (t *httpTransport) handshakeDone() {
	t.timeline.mark(func(r *roundTrip) *time.Time { return &r.tlsDone })
	t.keep(t.currentHandshake())
}

func (t *httpTransport) currentHandshake() *tlsfacts.Facts {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.handshake == nil {
		t.handshake = &tlsfacts.Facts{}
	}
	return t.handshake
}

// dial opens a TCP connection to addr ("host:port").
func (t *httpTransport) dial(ctx context.Context, _, addr string) (net.Conn, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	_, ip, port, err := t.destination(ctx, addr)
	if err != nil {
		return nil, err
	}
	t.timeline.mark(func(r *roundTrip) *time.Time { return &r.connectStart })
	conn, err := netdial.NewDialer().DialContext(ctx, netdial.FamilyOf(ip).Network("tcp"), net.JoinHostPort(ip.String(), port))
	t.timeline.mark(func(r *roundTrip) *time.Time { return &r.connectDone })
	if err != nil {
		return nil, taxonomy.Classify(ctx, fmt.Errorf("connecting to %s: %w", addr, err), taxonomy.PhaseConnect)
	}
	if proxy := t.proxyAt(addr); proxy != nil {
		return t.openedToProxy(conn, proxy), nil
	}
	return conn, nil
}

// destination splits addr ("host:port") and returns the IP to dial for
// its host, once the module's target policy has allowed it.
func (t *httpTransport) destination(ctx context.Context, addr string) (host string, ip net.IP, port string, err error) {
	host, port, err = net.SplitHostPort(addr)
	if err != nil {
		return "", nil, "", taxonomy.Fail(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseConnect, err)
	}
	if ip, err = t.address(ctx, host); err != nil {
		return "", nil, "", err
	}
	if err := t.allowed(addr, host, ip); err != nil {
		return "", nil, "", err
	}
	return host, ip, port, nil
}

// address returns the IP to dial for host: the one resolved in the resolve
// phase for the target's host, a fresh lookup for any other (redirects).
func (t *httpTransport) address(ctx context.Context, host string) (net.IP, error) {
	if host == t.pinnedHost && t.pinnedIP != nil {
		return t.pinnedIP, nil
	}
	if net.ParseIP(host) != nil {
		t.timeline.parsedLiteral()
	}
	t.timeline.mark(func(r *roundTrip) *time.Time { return &r.resolveStart })
	ip, err := netdial.LookupAddress(ctx, t.resolver, host, t.family, t.fallback)
	t.timeline.mark(func(r *roundTrip) *time.Time { return &r.resolveDone })
	return ip, err
}

// allowed applies the module's target policy to the address about to be
// dialled for addr: a redirect's, whose name was looked up just now (the
// target's own was checked in the resolve phase, and passes again). The
// proxy is exempt: the operator chose it, and what it reaches is the
// proxy's to restrict.
func (t *httpTransport) allowed(addr, host string, ip net.IP) error {
	if t.policy == nil || t.isProxy(addr) {
		return nil
	}
	if err := t.policy.RefuseAddress(host, ip); err != nil {
		return policy.TargetDenied(taxonomy.PhaseResolve, err)
	}
	return nil
}

// noteProxy remembers the proxy the module chooses for req, if any, in
// the form the Transport dials it, so that the dial can tell the proxy
// from a target. A proxy is chosen per request (no_proxy may exempt a
// host); an error is left for the Transport to report.
func (t *httpTransport) noteProxy(req *http.Request) {
	if t.proxy == nil {
		return
	}
	u, err := t.proxy(req)
	if err != nil || u == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.proxies == nil {
		t.proxies = map[string]*url.URL{}
	}
	t.proxies[dialAddress(u)] = u
}

func (t *httpTransport) isProxy(addr string) bool { return t.proxyAt(addr) != nil }

// proxyAt returns the proxy dialled at addr, nil when addr is no proxy's.
func (t *httpTransport) proxyAt(addr string) *url.URL {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.proxies[addr]
}

// dialAddress is the "host:port" net/http dials for a URL, a target's or
// a proxy's: the host in ASCII, and the scheme's port when the URL names
// none.
func dialAddress(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443", "socks5": "1080", "socks5h": "1080"}[u.Scheme]
	}
	return net.JoinHostPort(idn.ASCII(u.Hostname()), port)
}

// serverNameFor is the name a handshake with host verifies: for the
// target's own host the configured server name (or the Host header); any
// other host, reached by a redirect, under its own name.
func (t *httpTransport) serverNameFor(host string) string {
	if host == t.pinnedHost {
		return t.serverName
	}
	return host
}

// keep remembers a handshake's facts: the last one's are exported.
func (t *httpTransport) keep(facts *tlsfacts.Facts) {
	t.mu.Lock()
	t.facts = facts
	t.mu.Unlock()
}

// lastHandshake returns the facts of the last handshake, nil if none.
func (t *httpTransport) lastHandshake() *tlsfacts.Facts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.facts
}

// bound limits ctx to the probe's deadline: the transport may hand dials a
// context that outlives the request, and no probe may outlive its deadline.
func (t *httpTransport) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if deadline, ok := t.probeCtx.Deadline(); ok {
		return context.WithDeadline(ctx, deadline)
	}
	return context.WithCancel(ctx)
}

// probeTransportKey carries a probe's transport in its request context, so
// that the module's shared chain (authentication, OAuth2 token cache,
// headers) ends in a transport of the probe's own.
type probeTransportKey struct{}

// contextTransport is the innermost RoundTripper of a module's chain.
type contextTransport struct{}

func (contextTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t, ok := req.Context().Value(probeTransportKey{}).(http.RoundTripper)
	if !ok {
		return nil, taxonomy.Fail(taxonomy.ClassProber, taxonomy.ReasonInternal, taxonomy.PhaseSetup, errors.New("request without a probe transport"))
	}
	return t.RoundTrip(req)
}

// http3Transport is the innermost RoundTripper of a module's HTTP/3
// credentials: the probe's own transport, from the request's context.
type http3Transport struct{}

func (http3Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t, ok := req.Context().Value(probeTransportKey{}).(*httpTransport)
	if !ok {
		return nil, taxonomy.Fail(taxonomy.ClassProber, taxonomy.ReasonInternal, taxonomy.PhaseSetup, errors.New("request without a probe transport"))
	}
	return t.roundTripHTTP3(req)
}
