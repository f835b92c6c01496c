package core

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/policy"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// OCSP: the stapled response is read on every handshake (ocsp.check:
// stapled, the default); with check: query, the responder named in the
// leaf is asked when nothing is stapled, through a cache shared by the
// module's probes. An unreachable responder does not fail the probe
// unless fail_on_unknown says so: the status is then unknown, and
// probe_tls_ocsp_error says why.

// ocspResult is what OCSP said of one handshake's leaf.
type ocspResult struct {
	checked bool // ocsp.check is not none
	stapled bool
	queried bool
	resp    *ocsp.Response // nil when no answer could be read
	problem string         // why there is no answer: a bounded reason
	start   time.Time      // when the query began, cache included
	end     time.Time      // when it ended
}

// The reasons of probe_tls_ocsp_error.
const (
	OCSPNoResponder = "no_responder" // the leaf names no OCSP responder
	ocspNoIssuer    = "no_issuer"    // the issuer is unknown, so the answer cannot be checked
	OCSPUnreachable = "unreachable"  // the responder could not be reached
	OCSPTimeout     = "timeout"      // the probe's deadline passed while asking
	OCSPHTTPStatus  = "http_status"  // the responder answered with an HTTP error
	OCSPMalformed   = "malformed"    // the answer is not a valid OCSP response for the leaf
	OCSPDenied      = "denied"       // the module's target policy refuses the responder
)

// ocspClient is a module's OCSP policy, with its cache.
type ocspClient struct {
	policy   config.OCSP
	cache    *ocspCache
	Proxy    func(*http.Request) (*url.URL, error) // the module's proxy, for http modules
	targets  *policy.Target                        // the module's target policy, nil when all is allowed
	resolver netdial.Resolver                      // the module's resolver, nil for the system's
}

func newOCSPClient(policy config.OCSP) *ocspClient {
	return &ocspClient{policy: policy, cache: newOCSPCache(ocspCacheSize)}
}

// checkStapled reads the stapled response of a handshake, during the
// handshake, and fails it when the policy says so.
func (c *ocspClient) checkStapled(facts *TLSFacts, enforce bool) error {
	if c.policy.Check == config.OCSPNone {
		return nil
	}
	facts.mu.Lock()
	defer facts.mu.Unlock()
	r := ocspResult{checked: true}
	if raw := facts.state.OCSPResponse; len(raw) > 0 {
		r.stapled = true
		r.resp, r.problem = parseOCSP(raw, facts.state.PeerCertificates[0], facts.issuer())
	}
	facts.ocsp = r
	if !enforce {
		return nil
	}
	if c.policy.RequireStapled && !r.stapled {
		return taxonomy.Failf(taxonomy.ClassTLS, taxonomy.ReasonOCSPNotStapled, taxonomy.PhaseTLS, "the server stapled no OCSP response and ocsp.require_stapled is set")
	}
	if !r.stapled && c.policy.Check == config.OCSPQuery {
		return nil // asked after the handshake, see checkQueried
	}
	return c.verdict(r, taxonomy.PhaseTLS)
}

// checkQueried asks the responder after the handshake, when nothing was
// stapled and the policy is query.
func (c *ocspClient) checkQueried(ctx context.Context, facts *TLSFacts, enforce bool) error {
	facts.mu.Lock()
	needed := c.policy.Check == config.OCSPQuery && !facts.ocsp.stapled && facts.captured && len(facts.state.PeerCertificates) > 0
	var leaf, issuer *x509.Certificate
	if needed {
		leaf, issuer = facts.state.PeerCertificates[0], facts.issuer()
	}
	facts.mu.Unlock()
	if !needed {
		return nil
	}
	r := c.query(ctx, leaf, issuer)
	facts.mu.Lock()
	facts.ocsp = r
	facts.mu.Unlock()
	if !enforce {
		return nil
	}
	return c.verdict(r, taxonomy.PhaseOCSP)
}

// verdict fails a revoked certificate, and an unknown status when
// fail_on_unknown is set.
func (c *ocspClient) verdict(r ocspResult, phase taxonomy.Phase) error {
	if r.resp != nil && r.resp.Status == ocsp.Revoked {
		return taxonomy.Failf(taxonomy.ClassTLS, taxonomy.ReasonCertRevoked, phase, "OCSP says the certificate was revoked at %s (reason %d)",
			r.resp.RevokedAt.UTC().Format(time.RFC3339), r.resp.RevocationReason)
	}
	if !c.policy.FailOnUnknown || (r.resp != nil && r.resp.Status == ocsp.Good) {
		return nil
	}
	why := r.problem
	if why == "" && r.resp == nil {
		why = "no response"
	}
	if why == "" {
		why = "the responder does not know the certificate"
	}
	return taxonomy.Failf(taxonomy.ClassTLS, taxonomy.ReasonOCSPUnknown, phase, "the certificate's OCSP status is unknown (%s) and ocsp.fail_on_unknown is set", why)
}

// parseOCSP reads a response for leaf signed by issuer (or a responder
// issuer delegated to).
func parseOCSP(raw []byte, leaf, issuer *x509.Certificate) (*ocsp.Response, string) {
	if issuer == nil {
		return nil, ocspNoIssuer
	}
	resp, err := ocsp.ParseResponseForCert(raw, leaf, issuer)
	if err != nil {
		return nil, OCSPMalformed
	}
	return resp, ""
}

// maxOCSPResponse bounds an OCSP answer read from a responder.
const maxOCSPResponse = 1 << 20

// query asks the leaf's responder, once per certificate for as long as the
// answer is fresh, however many probes want it.
func (c *ocspClient) query(ctx context.Context, leaf, issuer *x509.Certificate) (r ocspResult) {
	r = ocspResult{checked: true, queried: true, start: time.Now()}
	// r is the named result, so that the deferred reading reaches the
	// caller: set on a local copy, it would be lost at return.
	defer func() { r.end = time.Now() }()
	switch {
	case len(leaf.OCSPServer) == 0:
		r.problem = OCSPNoResponder
		return r
	case issuer == nil:
		r.problem = ocspNoIssuer
		return r
	}
	ctx, cancel := ocspBudget(ctx)
	defer cancel()
	r.resp, r.problem = c.cache.get(ctx, cacheKey(leaf, issuer), func() (*ocsp.Response, string) {
		return c.ask(ctx, leaf, issuer)
	}, c.policy.CacheTTL)
	return r
}

// ocspBudget gives the responder half of what is left of the probe's
// deadline: a slow responder then leaves its status unknown, rather than
// failing the probe by timeout when fail_on_unknown is off.
func ocspBudget(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Until(deadline)/2)
}

func (c *ocspClient) ask(ctx context.Context, leaf, issuer *x509.Certificate) (*ocsp.Response, string) {
	req, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		return nil, OCSPMalformed
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, leaf.OCSPServer[0], bytes.NewReader(req))
	if err != nil {
		return nil, OCSPNoResponder
	}
	httpReq.Header.Set("Content-Type", "application/ocsp-request")
	transport, err := c.transportFor(httpReq)
	if err != nil {
		return nil, OCSPDenied
	}
	resp, err := (&http.Client{Transport: transport}).Do(httpReq)
	if err != nil {
		var denied responderDenied
		switch {
		case errors.As(err, &denied):
			return nil, OCSPDenied
		case ctx.Err() != nil:
			return nil, OCSPTimeout
		}
		return nil, OCSPUnreachable
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, OCSPHTTPStatus
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxOCSPResponse))
	if err != nil {
		return nil, OCSPUnreachable
	}
	return parseOCSP(raw, leaf, issuer)
}

// record exports what OCSP said. The ocsp phase's span is recorded where
// the query ran: a redirected http probe exports one handshake's OCSP
// metrics, but asked for every handshake's.
func (r *ocspResult) record(sink *probemetrics.Sink) {
	if !r.checked {
		return
	}
	stapled := 0.0
	if r.stapled {
		stapled = 1
	}
	sink.Set("probe_tls_ocsp_stapled", "Whether the server stapled an OCSP response (1) or not (0)", stapled)
	if r.queried {
		sink.Set("probe_tls_ocsp_duration_seconds", "Time spent asking the OCSP responder, cache included (the ocsp phase)", r.end.Sub(r.start).Seconds())
	}
	if r.problem != "" {
		sink.GaugeVec("probe_tls_ocsp_error", "Why the OCSP status could not be learnt", "reason").With(r.problem).Set(1)
	}
	if !r.stapled && !r.queried {
		return
	}
	status := "unknown"
	if r.resp != nil {
		status = ocspStatusName(r.resp.Status)
	}
	sink.GaugeVec("probe_tls_ocsp_status", "The certificate's OCSP status: good, revoked or unknown", "status").With(status).Set(1)
	if r.resp == nil {
		return
	}
	sink.Set("probe_tls_ocsp_this_update_timestamp_seconds", "When the OCSP response was produced, in unixtime", UnixSeconds(r.resp.ThisUpdate))
	if !r.resp.NextUpdate.IsZero() {
		sink.Set("probe_tls_ocsp_next_update_timestamp_seconds", "When a newer OCSP response will be available, in unixtime", UnixSeconds(r.resp.NextUpdate))
	}
	if r.resp.Status == ocsp.Revoked {
		sink.Set("probe_tls_ocsp_revoked_at_timestamp_seconds", "When the certificate was revoked, in unixtime", UnixSeconds(r.resp.RevokedAt))
	}
}

func ocspStatusName(s int) string {
	switch s {
	case ocsp.Good:
		return "good"
	case ocsp.Revoked:
		return "revoked"
	}
	return "unknown"
}

// ocspCacheSize bounds the answers a module keeps.
const ocspCacheSize = 4096

// ocspCache keeps responders' answers until their next update (at most
// cache_ttl), and lets concurrent probes wanting the same answer share one
// request. Failures are not kept: the next probe asks again.
type ocspCache struct {
	mu       sync.Mutex
	max      int
	entries  map[string]ocspEntry
	inflight map[string]*ocspCall
}

type ocspEntry struct {
	resp    *ocsp.Response
	expires time.Time
}

type ocspCall struct {
	done    chan struct{}
	resp    *ocsp.Response
	problem string
}

func newOCSPCache(max int) *ocspCache {
	return &ocspCache{max: max, entries: map[string]ocspEntry{}, inflight: map[string]*ocspCall{}}
}

func cacheKey(leaf, issuer *x509.Certificate) string {
	sum := sha256.Sum256(issuer.RawSubjectPublicKeyInfo)
	return string(sum[:]) + leaf.SerialNumber.String()
}

// get returns the cached answer for key, or asks for it.
func (c *ocspCache) get(ctx context.Context, key string, ask func() (*ocsp.Response, string), ttl time.Duration) (*ocsp.Response, string) {
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && time.Now().Before(e.expires) {
		c.mu.Unlock()
		return e.resp, ""
	}
	if call, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		return call.wait(ctx)
	}
	call := &ocspCall{done: make(chan struct{})}
	c.inflight[key] = call
	c.mu.Unlock()

	call.resp, call.problem = ask()
	c.mu.Lock()
	delete(c.inflight, key)
	if call.resp != nil {
		c.store(key, call.resp, ttl)
	}
	c.mu.Unlock()
	close(call.done)
	return call.resp, call.problem
}

func (call *ocspCall) wait(ctx context.Context) (*ocsp.Response, string) {
	select {
	case <-call.done:
		return call.resp, call.problem
	case <-ctx.Done():
		return nil, OCSPTimeout
	}
}

// store keeps an answer until its next update, or ttl if that is sooner
// or unset. A full cache first drops what has expired, then anything.
func (c *ocspCache) store(key string, resp *ocsp.Response, ttl time.Duration) {
	expires := time.Now().Add(ttl)
	if !resp.NextUpdate.IsZero() && resp.NextUpdate.Before(expires) {
		expires = resp.NextUpdate
	}
	if len(c.entries) >= c.max {
		c.evict()
	}
	c.entries[key] = ocspEntry{resp: resp, expires: expires}
}

func (c *ocspCache) evict() {
	now := time.Now()
	for k, e := range c.entries {
		if now.After(e.expires) {
			delete(c.entries, k)
		}
	}
	for k := range c.entries {
		if len(c.entries) < c.max {
			return
		}
		delete(c.entries, k) // map order: an arbitrary victim
	}
}
