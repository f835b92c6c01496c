package http

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"time"

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
	t.set(field, false)
}

// markOnce sets one time of the current round trip unless it is set.
func (t *timeline) markOnce(field func(*roundTrip) *time.Time) {
	t.set(field, true)
}

func (t *timeline) set(field func(*roundTrip) *time.Time, once bool) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.trips) == 0 {
		return
	}
	if f := field(t.trips[len(t.trips)-1]); !once || f.IsZero() {
		*f = now
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
		d[taxonomy.PhaseTLS] += span(rt.tlsStart, rt.tlsDone, cut)
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
		record(taxonomy.PhaseTLS, rt.tlsStart, rt.tlsDone)
		record(taxonomy.PhaseOCSP, rt.ocspStart, rt.ocspEnd)
		record(taxonomy.PhaseProcessing, rt.gotConn, rt.firstByte)
		record(taxonomy.PhaseTransfer, rt.firstByte, rt.end)
	}
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
type httpTransport struct {
	newTransport func() *http.Transport // makes std when a request needs it
	std          *http.Transport
	probeCtx     context.Context // bounds every dial by the probe deadline
	timeline     *timeline
	resolver     netdial.Resolver
	family       netdial.IPFamily
	fallback     bool
	pinnedHost   string // the target's host, dialled at pinnedIP
	pinnedIP     net.IP
	serverName   string // the TLS server name for pinnedHost
	tls          *tlsfacts.Client
	policy       *policy.Target                        // the module's; nil allows every address
	proxy        func(*http.Request) (*url.URL, error) // the module's proxy function, if any
	http3        bool                                  // requests go over QUIC (enable_http3), see http3.go
	http3Gzip    bool                                  // quic-go asks for gzip and decodes it, as it does for blackbox

	mu         sync.Mutex
	facts      *tlsfacts.Facts // of the last handshake
	proxyFacts *tlsfacts.Facts // of handshakes the transport does itself, through a proxy
	proxies    map[string]bool // "host:port" of the proxies chosen so far
}

func (t *httpTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.timeline.begin()
	if err := validHeader(req.Header); err != nil {
		return nil, err
	}
	if t.http3 {
		return t.roundTripHTTP3(req)
	}
	if t.direct(req) {
		return t.roundTripDirect(req)
	}
	trace := &httptrace.ClientTrace{
		GotConn:              func(httptrace.GotConnInfo) { t.timeline.mark(func(r *roundTrip) *time.Time { return &r.gotConn }) },
		GotFirstResponseByte: func() { t.timeline.mark(func(r *roundTrip) *time.Time { return &r.firstByte }) },
		// These two time the handshake when the transport does it itself,
		// through a proxy. For direct connections dialTLS has done it and
		// timed it already; the transport then calls them around a
		// handshake that is a no-op, which must not overwrite the times.
		TLSHandshakeStart: func() { t.timeline.markOnce(func(r *roundTrip) *time.Time { return &r.tlsStart }) },
		TLSHandshakeDone: func(tls.ConnectionState, error) {
			t.timeline.markOnce(func(r *roundTrip) *time.Time { return &r.tlsDone })
			// For direct connections this fires around a handshake dialTLS
			// did; only a handshake through a proxy captures proxyFacts.
			if t.proxyFacts.WasCaptured() {
				t.keep(t.proxyFacts)
			}
		},
	}
	if t.std == nil {
		t.std = t.newTransport()
	}
	return t.std.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
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

// proxyFor is the transport's Proxy function when a policy applies: the
// module's, remembering the address of each proxy it chooses, in the
// form the transport dials it, so that allowed can tell the proxy from a
// target. A proxy is chosen per request (no_proxy may exempt a host).
func (t *httpTransport) proxyFor(req *http.Request) (*url.URL, error) {
	u, err := t.proxy(req)
	if u != nil {
		t.mu.Lock()
		if t.proxies == nil {
			t.proxies = map[string]bool{}
		}
		t.proxies[dialAddress(u)] = true
		t.mu.Unlock()
	}
	return u, err
}

func (t *httpTransport) isProxy(addr string) bool {
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

// dialTLS opens a TCP connection and completes a TLS handshake on it.
func (t *httpTransport) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := t.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := t.bound(ctx)
	defer cancel()
	host, _, _ := net.SplitHostPort(addr)
	t.timeline.mark(func(r *roundTrip) *time.Time { return &r.tlsStart })
	tc, facts, _, err := tlsfacts.HandshakeOnly(ctx, conn, t.tls, t.serverNameFor(host))
	t.timeline.mark(func(r *roundTrip) *time.Time { return &r.tlsDone })
	t.keep(facts)
	if err == nil {
		err = t.tls.QueryOCSP(ctx, tc, facts)
		t.timeline.askedOCSP(facts.OCSPAsked())
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
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
