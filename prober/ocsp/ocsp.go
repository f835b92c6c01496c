// Package ocsp is sonde's OCSP client. The response a server staples is
// read on every handshake (ocsp.check: stapled, the default); with check:
// query, the responder the leaf names is asked when nothing is stapled,
// through a cache the module's probes share, and under the module's
// target policy. An unreachable responder does not fail the probe unless
// fail_on_unknown says so: the status is then unknown, and
// probe_tls_ocsp_error says why. It works on certificates: prober/tlsfacts
// calls it during and after each handshake, and exports what it learnt.
package ocsp

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

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/policy"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// Result is what OCSP said of one handshake's leaf.
type Result struct {
	checked bool // ocsp.check is not none
	stapled bool
	queried bool
	resp    *xocsp.Response // nil when no answer could be read
	problem string          // why there is no answer: a bounded reason
	start   time.Time       // when the query began, cache included
	end     time.Time       // when it ended
}

// The reasons of probe_tls_ocsp_error.
const (
	NoResponder = "no_responder" // the leaf names no OCSP responder
	noIssuer    = "no_issuer"    // the issuer is unknown, so the answer cannot be checked
	Unreachable = "unreachable"  // the responder could not be reached
	Timeout     = "timeout"      // the probe's deadline passed while asking
	HTTPStatus  = "http_status"  // the responder answered with an HTTP error
	Malformed   = "malformed"    // the answer is not a valid OCSP response for the leaf
	Denied      = "denied"       // the module's target policy refuses the responder
)

// Client is a module's OCSP policy, with its cache.
type Client struct {
	policy   config.OCSP
	cache    *cache
	Proxy    func(*http.Request) (*url.URL, error) // the module's proxy, for http modules
	Targets  *policy.Target                        // the module's target policy, nil when all is allowed
	Resolver netdial.Resolver                      // the module's resolver, nil for the system's
}

// NewClient returns the client of a module's ocsp section, with a cache of
// its own.
func NewClient(p config.OCSP) *Client {
	return &Client{policy: p, cache: newCache(cacheSize)}
}

// CheckStapled reads the response stapled to a handshake (raw, empty when
// none) for leaf, signed by issuer (nil when unknown), during the
// handshake, and fails it when the policy says so and enforce lets it
// (the chain verified, and is not taken on insecure_skip_verify). It
// returns what OCSP said either way, for the metrics.
func (c *Client) CheckStapled(raw []byte, leaf, issuer *x509.Certificate, enforce bool) (Result, error) {
	if c.policy.Check == config.OCSPNone {
		return Result{}, nil
	}
	r := Result{checked: true}
	if len(raw) > 0 {
		r.stapled = true
		r.resp, r.problem = parse(raw, leaf, issuer)
	}
	if !enforce {
		return r, nil
	}
	if c.policy.RequireStapled && !r.stapled {
		return r, taxonomy.Failf(taxonomy.ClassTLS, taxonomy.ReasonOCSPNotStapled, taxonomy.PhaseTLS, "the server stapled no OCSP response and ocsp.require_stapled is set")
	}
	if !r.stapled && c.policy.Check == config.OCSPQuery {
		return r, nil // asked after the handshake, see CheckQueried
	}
	return r, c.verdict(r, taxonomy.PhaseTLS)
}

// Queries reports whether the responder is to be asked after a handshake
// whose stapled response gave stapled: with ocsp.check: query, when
// nothing was stapled.
func (c *Client) Queries(stapled Result) bool {
	return c.policy.Check == config.OCSPQuery && !stapled.stapled
}

// CheckQueried asks leaf's responder after the handshake, when Queries
// says so, and fails the probe when the policy says so (enforce, as for
// CheckStapled). It returns what OCSP said either way.
func (c *Client) CheckQueried(ctx context.Context, leaf, issuer *x509.Certificate, enforce bool) (Result, error) {
	r := c.query(ctx, leaf, issuer)
	if !enforce {
		return r, nil
	}
	return r, c.verdict(r, taxonomy.PhaseOCSP)
}

// Asked returns when the responder was asked: zero times when it was not.
func (r *Result) Asked() (start, end time.Time) {
	return r.start, r.end
}

// verdict fails a revoked certificate, and an unknown status when
// fail_on_unknown is set.
func (c *Client) verdict(r Result, phase taxonomy.Phase) error {
	if r.resp != nil && r.resp.Status == xocsp.Revoked {
		return taxonomy.Failf(taxonomy.ClassTLS, taxonomy.ReasonCertRevoked, phase, "OCSP says the certificate was revoked at %s (reason %d)",
			r.resp.RevokedAt.UTC().Format(time.RFC3339), r.resp.RevocationReason)
	}
	if !c.policy.FailOnUnknown || (r.resp != nil && r.resp.Status == xocsp.Good) {
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

// parse reads a response for leaf signed by issuer (or a responder
// issuer delegated to).
func parse(raw []byte, leaf, issuer *x509.Certificate) (*xocsp.Response, string) {
	if issuer == nil {
		return nil, noIssuer
	}
	resp, err := xocsp.ParseResponseForCert(raw, leaf, issuer)
	if err != nil {
		return nil, Malformed
	}
	return resp, ""
}

// maxResponse bounds an OCSP answer read from a responder.
const maxResponse = 1 << 20

// query asks the leaf's responder, once per certificate for as long as the
// answer is fresh, however many probes want it.
func (c *Client) query(ctx context.Context, leaf, issuer *x509.Certificate) (r Result) {
	r = Result{checked: true, queried: true, start: time.Now()}
	// r is the named result, so that the deferred reading reaches the
	// caller: set on a local copy, it would be lost at return.
	defer func() { r.end = time.Now() }()
	switch {
	case len(leaf.OCSPServer) == 0:
		r.problem = NoResponder
		return r
	case issuer == nil:
		r.problem = noIssuer
		return r
	}
	ctx, cancel := budget(ctx)
	defer cancel()
	r.resp, r.problem = c.cache.get(ctx, cacheKey(leaf, issuer), func() (*xocsp.Response, string) {
		return c.ask(ctx, leaf, issuer)
	}, c.policy.CacheTTL)
	return r
}

// budget gives the responder half of what is left of the probe's
// deadline: a slow responder then leaves its status unknown, rather than
// failing the probe by timeout when fail_on_unknown is off.
func budget(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Until(deadline)/2)
}

func (c *Client) ask(ctx context.Context, leaf, issuer *x509.Certificate) (*xocsp.Response, string) {
	req, err := xocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		return nil, Malformed
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, leaf.OCSPServer[0], bytes.NewReader(req))
	if err != nil {
		return nil, NoResponder
	}
	httpReq.Header.Set("Content-Type", "application/ocsp-request")
	transport, err := c.transportFor(httpReq)
	if err != nil {
		return nil, Denied
	}
	resp, err := (&http.Client{Transport: transport}).Do(httpReq)
	if err != nil {
		var denied responderDenied
		switch {
		case errors.As(err, &denied):
			return nil, Denied
		case ctx.Err() != nil:
			return nil, Timeout
		}
		return nil, Unreachable
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, HTTPStatus
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, Unreachable
	}
	return parse(raw, leaf, issuer)
}

// Record exports what OCSP said. The ocsp phase's span is recorded where
// the query ran: a redirected http probe exports one handshake's OCSP
// metrics, but asked for every handshake's.
func (r *Result) Record(sink *probemetrics.Sink) {
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
		status = statusName(r.resp.Status)
	}
	sink.GaugeVec("probe_tls_ocsp_status", "The certificate's OCSP status: good, revoked or unknown", "status").With(status).Set(1)
	if r.resp == nil {
		return
	}
	sink.Set("probe_tls_ocsp_this_update_timestamp_seconds", "When the OCSP response was produced, in unixtime", probemetrics.UnixSeconds(r.resp.ThisUpdate))
	if !r.resp.NextUpdate.IsZero() {
		sink.Set("probe_tls_ocsp_next_update_timestamp_seconds", "When a newer OCSP response will be available, in unixtime", probemetrics.UnixSeconds(r.resp.NextUpdate))
	}
	if r.resp.Status == xocsp.Revoked {
		sink.Set("probe_tls_ocsp_revoked_at_timestamp_seconds", "When the certificate was revoked, in unixtime", probemetrics.UnixSeconds(r.resp.RevokedAt))
	}
}

func statusName(s int) string {
	switch s {
	case xocsp.Good:
		return "good"
	case xocsp.Revoked:
		return "revoked"
	}
	return "unknown"
}

// cacheSize bounds the answers a module keeps.
const cacheSize = 4096

// cache keeps responders' answers until their next update (at most
// cache_ttl), and lets concurrent probes wanting the same answer share one
// request. Failures are not kept: the next probe asks again.
type cache struct {
	mu       sync.Mutex
	max      int
	entries  map[string]entry
	inflight map[string]*call
}

type entry struct {
	resp    *xocsp.Response
	expires time.Time
}

type call struct {
	done    chan struct{}
	resp    *xocsp.Response
	problem string
}

func newCache(max int) *cache {
	return &cache{max: max, entries: map[string]entry{}, inflight: map[string]*call{}}
}

func cacheKey(leaf, issuer *x509.Certificate) string {
	sum := sha256.Sum256(issuer.RawSubjectPublicKeyInfo)
	return string(sum[:]) + leaf.SerialNumber.String()
}

// get returns the cached answer for key, or asks for it.
func (c *cache) get(ctx context.Context, key string, ask func() (*xocsp.Response, string), ttl time.Duration) (*xocsp.Response, string) {
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && time.Now().Before(e.expires) {
		c.mu.Unlock()
		return e.resp, ""
	}
	if waiting, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		return waiting.wait(ctx)
	}
	asking := &call{done: make(chan struct{})}
	c.inflight[key] = asking
	c.mu.Unlock()

	asking.resp, asking.problem = ask()
	c.mu.Lock()
	delete(c.inflight, key)
	if asking.resp != nil {
		c.store(key, asking.resp, ttl)
	}
	c.mu.Unlock()
	close(asking.done)
	return asking.resp, asking.problem
}

func (a *call) wait(ctx context.Context) (*xocsp.Response, string) {
	select {
	case <-a.done:
		return a.resp, a.problem
	case <-ctx.Done():
		return nil, Timeout
	}
}

// store keeps an answer until its next update, or ttl if that is sooner
// or unset. A full cache first drops what has expired, then anything.
func (c *cache) store(key string, resp *xocsp.Response, ttl time.Duration) {
	expires := time.Now().Add(ttl)
	if !resp.NextUpdate.IsZero() && resp.NextUpdate.Before(expires) {
		expires = resp.NextUpdate
	}
	if len(c.entries) >= c.max {
		c.evict()
	}
	c.entries[key] = entry{resp: resp, expires: expires}
}

func (c *cache) evict() {
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
