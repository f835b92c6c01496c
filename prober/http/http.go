// Package http is the http prober: HTTP/1.1 and HTTP/2 through its
// Transport (plain http through a direct path of its own), and HTTP/3.
package http

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	pconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/version"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/regularfile"
	"github.com/sonde-exporter/sonde/prober/check"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/policy"
	"github.com/sonde-exporter/sonde/prober/probelog"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
	"github.com/sonde-exporter/sonde/prober/tlsfacts"
)

// maxRedirects is how many redirects a probe follows, as in blackbox_exporter.
const maxRedirects = 10

var errTooManyRedirects = fmt.Errorf("stopped after %d redirects", maxRedirects)

// httpPrepared is what an http module needs ready before its first probe.
type httpPrepared struct {
	tls *tlsfacts.Client // client TLS settings, CA files parsed once
	// client is the module's http_client_config as prometheus/common
	// builds a probe's round tripper from it: without the TLS files,
	// which tls has parsed, and without OAuth2, which top carries.
	client pconfig.HTTPClientConfig
	// top is what a probe's requests enter: the module's OAuth2 round
	// tripper, built once per module so that a token is fetched once and
	// reused until it expires, ending in the probe's own transport.
	top        http.RoundTripper
	http3Chain http.RoundTripper // the credentials and headers of HTTP/3 requests
	chainErr   error             // why top or http3Chain could not be built; every probe fails with it
	direct     bool              // plain http may skip net/http's Transport: see direct.go
	secrets    []string          // the files prometheus/common reads per request
	proxy      func(*http.Request) (*url.URL, error)
	userAgent  string
	checks     check.Slots // the header, body and CEL checks running
}

// Prepare readies an http module when the configuration loads.
func Prepare(m *config.Module, env *core.Env) (core.Prober, error) {
	cfg := &m.HTTP.HTTPClientConfig
	tlsClient, err := env.TLSClient(m, "http", &cfg.TLSConfig)
	if err != nil {
		return nil, err
	}
	tlsClient.WithALPN("http/1.1")
	if cfg.EnableHTTP2 {
		tlsClient.WithALPN("h2", "http/1.1")
	}
	if m.HTTP.EnableHTTP3 {
		prepareHTTP3(tlsClient)
	}
	tlsClient.OCSP.Proxy = cfg.Proxy() // responders are asked the way the target is
	p := &httpPrepared{
		tls:     tlsClient,
		client:  commonClientConfig(cfg),
		direct:  addsNothingToPlainHTTP(cfg),
		secrets: secretFiles(cfg),
		proxy:   cfg.Proxy(),
		// blackbox_exporter's User-Agent, with sonde's version: servers
		// and their logs may key on it, and sonde is a drop-in.
		userAgent: "Blackbox-Exporter/" + version.Version,
		checks:    check.NewSlots(),
	}
	// A chain that cannot be built (a secret reference, with no secret
	// manager) fails the probes, not the load, as in blackbox_exporter.
	p.top, err = oauth2Chain(cfg)
	if err == nil && m.HTTP.EnableHTTP3 {
		p.http3Chain, err = http3Credentials(cfg)
	}
	if err != nil {
		p.chainErr = taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup, "http: %v", err)
	}
	return p, nil
}

// commonClientConfig is cfg as a probe hands it to prometheus/common.
func commonClientConfig(cfg *pconfig.HTTPClientConfig) pconfig.HTTPClientConfig {
	c := *cfg
	c.OAuth2 = nil
	// The probe's handshakes take their settings from the module's
	// TLSClient (WithNewTLSConfigFunc); left in, the files would be read
	// again on every request.
	c.TLSConfig = pconfig.TLSConfig{}
	return c
}

// addsNothingToPlainHTTP reports whether prometheus/common's round
// tripper would add nothing to a plain http request but its Transport: no
// credentials, headers or proxy. OAuth2 does not count: it sits above.
func addsNothingToPlainHTTP(cfg *pconfig.HTTPClientConfig) bool {
	return cfg.Authorization == nil && cfg.BasicAuth == nil && cfg.BearerToken == "" && cfg.BearerTokenFile == "" &&
		cfg.HTTPHeaders == nil && cfg.Proxy() == nil
}

// secretFiles lists the files prometheus/common reads on every request.
func secretFiles(cfg *pconfig.HTTPClientConfig) []string {
	var files []string
	if a := cfg.Authorization; a != nil {
		files = append(files, a.CredentialsFile)
	}
	if b := cfg.BasicAuth; b != nil {
		files = append(files, b.UsernameFile, b.PasswordFile)
	}
	if h := cfg.HTTPHeaders; h != nil {
		for _, header := range h.Headers {
			files = append(files, header.Files...)
		}
	}
	return slices.DeleteFunc(files, func(f string) bool { return f == "" })
}

// secretFilesReadable refuses a request, before prometheus/common reads
// the module's secret files, when one of them cannot be read or is not a
// regular file: reading a named pipe would hold the probe past its
// deadline.
func (p *httpPrepared) secretFilesReadable() error {
	for _, file := range p.secrets {
		f, _, err := regularfile.Open(file)
		if err != nil {
			return taxonomy.Fail(taxonomy.ClassProber, taxonomy.ReasonCredentials, taxonomy.PhaseSetup, fmt.Errorf("preparing the request's credentials: %w", err))
		}
		f.Close()
	}
	return nil
}

// oauth2Chain is what a module's requests enter: prometheus/common's
// OAuth2 round tripper when the module has one, over the probe's own
// transport.
func oauth2Chain(cfg *pconfig.HTTPClientConfig) (http.RoundTripper, error) {
	o := cfg.OAuth2
	if o == nil {
		return contextTransport{}, nil
	}
	if t := o.TLSConfig; t.CARef != "" || t.CertRef != "" || t.KeyRef != "" {
		return nil, fmt.Errorf("oauth2.tls_config: sonde has no secret manager for *_ref fields; use the inline or _file form")
	}
	creds, err := core.Secret(o.ClientSecret, o.ClientSecretFile, o.ClientSecretRef)
	if o.GrantType == "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		creds, err = core.Secret(o.ClientCertificateKey, o.ClientCertificateKeyFile, o.ClientCertificateKeyRef)
	}
	if err != nil {
		return nil, fmt.Errorf("oauth2: %w", err)
	}
	var rt http.RoundTripper = pconfig.NewOAuth2RoundTripper(creds, o, contextTransport{})
	// prometheus/common reads the token client's TLS files itself, with
	// os.ReadFile: what is not a regular file is refused before that.
	return regularFilesFirst{files: []string{o.TLSConfig.CAFile, o.TLSConfig.CertFile, o.TLSConfig.KeyFile}, next: rt}, nil
}

// http3Credentials wraps HTTP/3 requests in the module's credentials and
// headers. prometheus/common builds its round trippers on net/http's
// Transport, which cannot speak HTTP/3, so they are assembled here from
// its parts, in its order; blackbox sends HTTP/3 requests without them.
func http3Credentials(cfg *pconfig.HTTPClientConfig) (http.RoundTripper, error) {
	var rt http.RoundTripper = http3Transport{}
	if a := cfg.Authorization; a != nil {
		creds, err := core.Secret(a.Credentials, a.CredentialsFile, a.CredentialsRef)
		if err != nil {
			return nil, fmt.Errorf("authorization: %w", err)
		}
		rt = pconfig.NewAuthorizationCredentialsRoundTripper(a.Type, creds, rt)
	}
	if b := cfg.BasicAuth; b != nil {
		user, err := core.Secret(pconfig.Secret(b.Username), b.UsernameFile, b.UsernameRef)
		if err != nil {
			return nil, fmt.Errorf("basic_auth: %w", err)
		}
		pass, err := core.Secret(b.Password, b.PasswordFile, b.PasswordRef)
		if err != nil {
			return nil, fmt.Errorf("basic_auth: %w", err)
		}
		rt = pconfig.NewBasicAuthRoundTripper(user, pass, rt)
	}
	if cfg.HTTPHeaders != nil {
		rt = pconfig.NewHeadersRoundTripper(cfg.HTTPHeaders, rt)
	}
	return rt, nil
}

// regularFilesFirst refuses a request while one of files (empty names
// are skipped) is not a regular file, before next would read it.
type regularFilesFirst struct {
	files []string
	next  http.RoundTripper
}

func (r regularFilesFirst) RoundTrip(req *http.Request) (*http.Response, error) {
	for _, file := range r.files {
		if file == "" {
			continue
		}
		f, _, err := regularfile.Open(file)
		var notRegular *regularfile.NotRegularError
		if errors.As(err, &notRegular) {
			return nil, fmt.Errorf("oauth2.tls_config: %w", err)
		}
		if err == nil {
			f.Close()
		}
	}
	return r.next.RoundTrip(req)
}

// httpMetrics are blackbox_exporter's http metrics. All of them are
// registered before the probe starts, so that a probe failing early still
// exports them, at 0, as blackbox does.
type httpMetrics struct {
	durations                     probemetrics.GaugeVec
	contentLength, uncompressed   probemetrics.Gauge
	redirects, ssl, status, proto probemetrics.Gauge
	failedRegex                   probemetrics.Gauge
	failedCEL                     *probemetrics.Gauge // only with a CEL check configured
}

// phases are the phases of probe_http_duration_seconds, in order.
var phases = []taxonomy.Phase{taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseTLS, taxonomy.PhaseProcessing, taxonomy.PhaseTransfer}

// DurationHelp is the HELP text of probe_http_duration_seconds.
const DurationHelp = "Duration of the http request by phase, summed over all redirects"

func newHTTPMetrics(sink *probemetrics.Sink, h *config.HTTPProbe) httpMetrics {
	m := httpMetrics{
		durations:     sink.GaugeVec("probe_http_duration_seconds", DurationHelp, "phase"),
		contentLength: sink.Gauge("probe_http_content_length", "Length of the http content response, -1 if unknown"),
		uncompressed:  sink.Gauge("probe_http_uncompressed_body_length", "Length of the uncompressed response body"),
		redirects:     sink.Gauge("probe_http_redirects", "The number of redirects"),
		ssl:           sink.Gauge("probe_http_ssl", "Indicates if TLS was used for the final response"),
		status:        sink.Gauge("probe_http_status_code", "Response HTTP status code"),
		proto:         sink.Gauge("probe_http_version", "Returns the version of HTTP of the probe response"),
		failedRegex:   sink.Gauge("probe_failed_due_to_regex", "Indicates if the probe failed due to a regex"),
	}
	if h.FailIfBodyJSONMatchesCEL != nil || h.FailIfBodyJSONNotMatchesCEL != nil {
		g := sink.Gauge("probe_failed_due_to_cel", "Indicates if the probe failed due to a CEL expression")
		m.failedCEL = &g
	}
	return m
}

// httpProbe is one run of the http prober.
type httpProbe struct {
	ctx      context.Context
	module   *core.Module
	cfg      *config.HTTPProbe
	prepared *httpPrepared
	sink     *probemetrics.Sink
	logger   *slog.Logger
	metrics  httpMetrics
	timeline timeline
	resolved time.Duration // the resolve phase of the first request
	looked   bool          // the target was looked up (not left to a proxy)
	sent     bool          // a request was handed to the client
	// unfollowed says the final response is a redirect that was not
	// followed: blackbox's client closes its body unread.
	unfollowed bool
	redirect   int
	tr         *httpTransport // the probe's own, once the request is built
}

func (prepared *httpPrepared) Probe(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) (err error) {
	p := &httpProbe{ctx: ctx, module: m, cfg: &m.HTTP, prepared: prepared, sink: sink, logger: logger}
	p.metrics = newHTTPMetrics(sink, p.cfg)
	defer func() { p.recordDurations() }()

	u, err := ParseTarget(target)
	if err != nil {
		return err
	}
	if p.cfg.EnableHTTP3 {
		upgradeToHTTPS(u, logger) // before the policy sees the scheme: https is what is probed
	}
	if err := m.Policy.RefuseScheme(u.Scheme); err != nil {
		return policy.TargetDenied(taxonomy.PhaseSetup, err)
	}
	ip, err := p.resolve(u)
	if err != nil {
		return err
	}
	if err := p.clientReady(); err != nil {
		return err
	}
	resp, err := p.send(u, ip)
	p.recordTLS(resp, err)
	if resp == nil {
		return err
	}
	defer resp.Body.Close()
	return p.inspect(resp, err)
}

// ParseTarget reads a target as blackbox does: a URL, or a host[:port]
// to which http:// is added.
func ParseTarget(target string) (_ *url.URL, err error) {
	defer core.HidePassword(&err, target)
	if !strings.Contains(target, "://") {
		target = "http://" + target
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target is not a valid URL: %v; write it as http[s]://host[:port][/path]", err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target scheme %q is not supported by the http prober; use http:// or https://", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target %q has no host; write it as http[s]://host[:port][/path]", target)
	}
	if why := netdial.MalformedHost(u.Hostname()); why != "" {
		return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target %q has host %q, with %s; write it as http[s]://host[:port][/path]", target, u.Hostname(), why)
	}
	return u, nil
}

// clientReady checks that the module's HTTP client can be built: its TLS
// settings (read whatever the target's scheme, as blackbox reads them) and
// its credentials chain. blackbox builds its client here, after resolving,
// and fails the probe when it cannot.
func (p *httpProbe) clientReady() error {
	if err := p.prepared.tls.Ready(); err != nil {
		return err
	}
	return p.prepared.chainErr
}

// resolve runs the resolve phase, unless skip_resolve_phase_with_proxy
// leaves resolution to a configured proxy. It returns the address to dial;
// nil means the proxy resolves.
func (p *httpProbe) resolve(u *url.URL) (net.IP, error) {
	if p.cfg.SkipResolvePhaseWithProxy && p.proxied() {
		probelog.Debug(p.logger, "Leaving name resolution to the proxy")
		// No address is learnt: only the name, or an IP literal, can be
		// checked. What the proxy reaches is the proxy's to restrict.
		return nil, p.module.Policy.CheckHost(u.Hostname(), taxonomy.PhaseSetup)
	}
	ip, took, err := netdial.ResolveTarget(p.ctx, p.module.Resolver, p.module.Policy, u.Hostname(), p.cfg.IPProtocol, p.cfg.IPProtocolFallback, p.sink, p.logger)
	p.resolved, p.looked = took, true
	if p.proxied() {
		return nil, err // the proxy connects; the lookup only measures
	}
	return ip, err
}

func (p *httpProbe) proxied() bool {
	c := p.cfg.HTTPClientConfig.ProxyConfig
	return c.ProxyFromEnvironment || c.ProxyURL.URL != nil
}

// send makes the request, following redirects as configured. A response
// may come with an error (too many redirects); both are returned.
func (p *httpProbe) send(u *url.URL, ip net.IP) (*http.Response, error) {
	req, err := p.newRequest(u)
	if err != nil {
		return nil, err
	}
	transport := p.transport(u, req.Host, ip)
	entry := &countingTransport{next: p.prepared.top}
	client := &http.Client{Transport: entry, CheckRedirect: p.checkRedirect}
	client.Jar, _ = cookiejar.New(nil) // cookies set by a redirect are sent back, as a browser would
	req = req.WithContext(context.WithValue(p.ctx, probeTransportKey{}, transport))

	probelog.Debug(p.logger, "Making HTTP request", "url", u.Redacted(), "host", req.Host)
	p.sent = true
	resp, err := client.Do(req)
	if err == nil {
		probelog.Debug(p.logger, "Received HTTP response", "status_code", resp.StatusCode, "proto", resp.Proto)
		return resp, nil
	}
	err = p.requestError(err, entry.requests > p.timeline.len(), resp)
	p.logger.Error("HTTP request failed", "err", err)
	return resp, err
}

// requestError classifies a failed request. beforeTransport says the
// request failed in the module's chain, before reaching the probe's
// transport: authentication (an OAuth2 token, a secret file), not the
// target.
func (p *httpProbe) requestError(err error, beforeTransport bool, resp *http.Response) error {
	var classified *taxonomy.Error
	switch {
	case errors.As(err, &classified):
		return classified
	case resp == nil && p.tr.connectRefused() != nil:
		return p.tr.connectRefused()
	case errors.Is(err, errTooManyRedirects):
		return taxonomy.Fail(taxonomy.ClassProtocol, taxonomy.ReasonTooManyRedirects, taxonomy.PhaseProcessing, err)
	case beforeTransport && p.ctx.Err() == nil:
		return taxonomy.Fail(taxonomy.ClassProber, taxonomy.ReasonCredentials, taxonomy.PhaseSetup, fmt.Errorf("preparing the request's credentials: %w", err))
	case beforeTransport:
		return taxonomy.Classify(p.ctx, err, taxonomy.PhaseSetup)
	}
	return taxonomy.Classify(p.ctx, err, p.timeline.failurePhase())
}

// countingTransport counts the requests a probe hands to its module's
// chain, to tell failures in the chain from failures on the wire.
type countingTransport struct {
	next     http.RoundTripper
	requests int
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.requests++
	return c.next.RoundTrip(req)
}

func (p *httpProbe) checkRedirect(req *http.Request, via []*http.Request) error {
	p.redirect = len(via)
	if !p.cfg.HTTPClientConfig.FollowRedirects {
		p.logger.Warn("Not following redirect", "location", req.URL.Redacted())
		p.unfollowed = true
		return http.ErrUseLastResponse
	}
	if len(via) > maxRedirects {
		return errTooManyRedirects
	}
	if s := req.URL.Scheme; s != "http" && s != "https" {
		return taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseProcessing,
			"redirected to %s, which the http prober cannot follow", req.URL.Redacted())
	}
	if err := p.checkRedirectTarget(req.URL); err != nil {
		return err
	}
	p.logger.Warn("Following redirect", "location", req.URL.Redacted())
	return nil
}

// checkRedirectTarget applies the module's target policy to a redirect
// before it is followed: its scheme and name (phase processing, where
// the redirect was met) and an IP literal's address (phase resolve). The
// address a redirect's name resolves to is checked when it is dialled.
func (p *httpProbe) checkRedirectTarget(u *url.URL) error {
	targets := p.module.Policy
	if err := targets.RefuseScheme(u.Scheme); err != nil {
		return inRedirect(u, policy.TargetDenied(taxonomy.PhaseProcessing, err))
	}
	return inRedirect(u, targets.CheckHost(u.Hostname(), taxonomy.PhaseProcessing))
}

// inRedirect adds to a refusal that it was of a redirect to u. The cause
// inside the *Error carries it: requestError hands on the *Error itself.
func inRedirect(u *url.URL, err error) error {
	var denied *taxonomy.Error
	if errors.As(err, &denied) {
		denied.Err = fmt.Errorf("redirect to %s: %w", u.Redacted(), denied.Err)
	}
	return err
}

// newRequest builds the request: method, body, headers, and the Host header
// that the `hostname` parameter or a configured header may set.
func (p *httpProbe) newRequest(u *url.URL) (*http.Request, error) {
	body, getBody, err := p.requestBody()
	if err != nil {
		return nil, err
	}
	method := p.cfg.Method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequest(method, u.String(), body)
	if err != nil {
		return nil, taxonomy.Fail(taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup, err)
	}
	if getBody != nil {
		req.GetBody = getBody
	}
	for name, value := range p.cfg.Headers {
		if textproto.CanonicalMIMEHeaderKey(name) == "Host" {
			if !core.ValidHost(value) {
				// net/http would refuse it when writing the request, as
				// it does in blackbox: say what is wrong instead.
				return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup,
					"the Host header %q, from the hostname parameter or the module's headers, is not a host name; give a host name or host:port", value)
			}
			req.Host = value
			continue
		}
		req.Header.Set(name, value)
	}
	// A configured User-Agent, even an empty one (which sends none),
	// replaces the default, as in blackbox. Accept-Encoding is sent only
	// when configured: blackbox does not derive it from compression.
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header.Set("User-Agent", p.prepared.userAgent)
	}
	core.InjectTraceContext(p.ctx, p.module, req.Header)
	return req, nil
}

// requestBody returns the configured body. body_file is read on every
// probe, as blackbox does, so edits to it apply without a reload. It goes
// out as blackbox sends a file, chunked, with no Content-Length; it is
// read whole all the same, so that a 307/308 redirect can send it again
// (getBody), which blackbox cannot.
func (p *httpProbe) requestBody() (body io.Reader, getBody func() (io.ReadCloser, error), err error) {
	if p.cfg.BodyFile == "" {
		if p.cfg.Body == "" {
			return nil, nil, nil
		}
		return strings.NewReader(p.cfg.Body), nil, nil
	}
	data, err := regularfile.Read(p.cfg.BodyFile)
	if err != nil {
		return nil, nil, taxonomy.Fail(taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup, fmt.Errorf("reading http.body_file: %w", err))
	}
	getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	body, _ = getBody() // a reader of no known length, which is sent chunked
	return body, getBody, nil
}

// probeBufferSize is the size of the read and write buffers of a probe's
// HTTP connection.
const probeBufferSize = 1 << 10

// transport returns the probe's own transport.
func (p *httpProbe) transport(u *url.URL, hostHeader string, ip net.IP) *httpTransport {
	p.tr = &httpTransport{
		probeCtx:   p.ctx,
		timeline:   &p.timeline,
		resolver:   p.module.Resolver,
		family:     netdial.PreferredFamily(p.cfg.IPProtocol),
		fallback:   p.cfg.IPProtocolFallback,
		pinnedHost: u.Hostname(),
		pinnedIP:   ip,
		serverName: p.serverName(u, hostHeader),
		tls:        p.prepared.tls,
		policy:     p.module.Policy,
		proxy:      p.prepared.proxy,
		prepared:   p.prepared,
		http3:      p.cfg.EnableHTTP3,
		http3Gzip:  p.cfg.Compression == "",
	}
	return p.tr
}

// serverName is the TLS server name for the target: tls_config.server_name,
// else the Host header (so an IP target with a Host header verifies), else
// the target's host.
func (p *httpProbe) serverName(u *url.URL, hostHeader string) string {
	if n := p.cfg.HTTPClientConfig.TLSConfig.ServerName; n != "" {
		return n
	}
	if h, ok := p.cfg.HostHeader(); ok && h != "" {
		if host, _, err := net.SplitHostPort(h); err == nil {
			return host
		}
		return h
	}
	return u.Hostname()
}

// inspect records what the response says and checks it against the module.
// reqErr is an error that came with the response; the first failure wins.
func (p *httpProbe) inspect(resp *http.Response, reqErr error) error {
	p.recordResponse(resp)
	failure := reqErr
	if failure == nil {
		failure = p.checkResponse(resp)
	}
	if reqErr != nil {
		return failure // the body was closed with the error
	}
	if p.unfollowed {
		p.timeline.mark(func(r *roundTrip) *time.Time { return &r.end })
		return p.unreadRedirect(failure)
	}
	body, err := p.readBody(resp, failure == nil && p.checksBody())
	p.timeline.mark(func(r *roundTrip) *time.Time { return &r.end })
	if failure == nil {
		failure = err
	}
	if failure == nil {
		failure = p.checkBody(body)
	}
	if failure != nil {
		p.logger.Error("Probe check failed", "err", failure)
	}
	return failure
}

// recordResponse exports the facts of the final response.
func (p *httpProbe) recordResponse(resp *http.Response) {
	p.metrics.status.Set(float64(resp.StatusCode))
	p.metrics.contentLength.Set(float64(resp.ContentLength))
	p.metrics.redirects.Set(float64(p.redirect))
	if v, err := strconv.ParseFloat(strings.TrimPrefix(resp.Proto, "HTTP/"), 64); err == nil {
		p.metrics.proto.Set(v)
	}
	if lm := resp.Header.Get("Last-Modified"); lm == "" {
		// Absent: nothing to parse (ParseTime would try three layouts).
	} else if t, err := http.ParseTime(lm); err == nil {
		p.sink.Set("probe_http_last_modified_timestamp_seconds", "Returns the Last-Modified HTTP response header in unixtime", float64(t.Unix()))
	}
	if resp.TLS != nil {
		p.metrics.ssl.Set(1)
	}
}

// checkResponse applies the checks that need no body, most basic first.
func (p *httpProbe) checkResponse(resp *http.Response) error {
	if !p.cfg.StatusOK(resp.StatusCode) {
		want := "2xx"
		if len(p.cfg.ValidStatusCodes) > 0 {
			want = fmt.Sprint(p.cfg.ValidStatusCodes)
		}
		return taxonomy.Failf(taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus, taxonomy.PhaseValidate, "status code %d is not one of valid_status_codes %s", resp.StatusCode, want)
	}
	if resp.TLS != nil && p.cfg.FailIfSSL {
		return taxonomy.Failf(taxonomy.ClassAssertion, taxonomy.ReasonSSLForbidden, taxonomy.PhaseValidate, "the final response came over TLS and fail_if_ssl is set")
	}
	if resp.TLS == nil && p.cfg.FailIfNotSSL {
		return taxonomy.Failf(taxonomy.ClassAssertion, taxonomy.ReasonSSLRequired, taxonomy.PhaseValidate, "the final response did not come over TLS and fail_if_not_ssl is set")
	}
	if v := p.cfg.ValidHTTPVersions; len(v) > 0 && !slices.Contains(v, resp.Proto) {
		return taxonomy.Failf(taxonomy.ClassAssertion, taxonomy.ReasonHTTPVersion, taxonomy.PhaseValidate, "the response is %s, not one of valid_http_versions %v", resp.Proto, v)
	}
	if len(p.cfg.FailIfHeaderMatchesRegexp)+len(p.cfg.FailIfHeaderNotMatchesRegexp) == 0 {
		return nil
	}
	if err := p.prepared.checks.Run(p.ctx, taxonomy.PhaseValidate, "the header regexps", func() *taxonomy.Error { return check.Headers(p.cfg, resp.Header) }); err != nil {
		p.metrics.failedRegex.Set(1)
		return err
	}
	return nil
}

// unreadRedirect ends a probe whose final response is a redirect it did
// not follow. blackbox's client closes such a body before it is read, so
// its length is 0 and a body check fails, as here.
func (p *httpProbe) unreadRedirect(failure error) error {
	if failure != nil || !p.checksBody() {
		return failure
	}
	p.bodyUnreadable()
	reason := taxonomy.ReasonBodyRegex
	if len(p.cfg.FailIfBodyMatchesRegexp)+len(p.cfg.FailIfBodyNotMatchesRegexp) == 0 {
		reason = taxonomy.ReasonBodyCEL
	}
	return taxonomy.Failf(taxonomy.ClassAssertion, reason, taxonomy.PhaseValidate, "the response is a redirect that follow_redirects: false leaves unread, as blackbox_exporter does, so the body checks cannot run")
}

// bodyUnreadable marks, as blackbox does, the body check that was to read
// a body that could not be read: the regexps when there are any, else CEL.
func (p *httpProbe) bodyUnreadable() {
	switch {
	case len(p.cfg.FailIfBodyMatchesRegexp)+len(p.cfg.FailIfBodyNotMatchesRegexp) > 0:
		p.metrics.failedRegex.Set(1)
	case p.metrics.failedCEL != nil:
		p.metrics.failedCEL.Set(1)
	}
}

func (p *httpProbe) checksBody() bool {
	return len(p.cfg.FailIfBodyMatchesRegexp) > 0 || len(p.cfg.FailIfBodyNotMatchesRegexp) > 0 || p.metrics.failedCEL != nil
}

// checkBody applies the body regexps and the CEL expressions. Either
// stops at the deadline, and then counts as failed, as a check whose body
// could not be read does.
func (p *httpProbe) checkBody(body []byte) error {
	checks := p.prepared.checks
	if len(p.cfg.FailIfBodyMatchesRegexp)+len(p.cfg.FailIfBodyNotMatchesRegexp) > 0 {
		if err := checks.Run(p.ctx, taxonomy.PhaseValidate, "the body regexps", func() *taxonomy.Error { return check.Body(p.cfg, body) }); err != nil {
			p.metrics.failedRegex.Set(1)
			return err
		}
	}
	if p.metrics.failedCEL == nil {
		return nil
	}
	if err := checks.Run(p.ctx, taxonomy.PhaseValidate, "the CEL checks", func() *taxonomy.Error { return check.CEL(p.ctx, p.cfg, body) }); err != nil {
		p.metrics.failedCEL.Set(1)
		return err
	}
	return nil
}

// recordTLS exports the TLS facts of the final response's connection, or
// of the handshake that failed the probe, as blackbox would (the
// former) and could not (the latter: its metrics vanished exactly when a
// certificate expired).
func (p *httpProbe) recordTLS(resp *http.Response, err error) {
	if p.tr == nil {
		return
	}
	facts := p.tr.lastHandshake()
	var failure *taxonomy.Error
	if facts != nil && ((resp != nil && resp.TLS != nil) || (errors.As(err, &failure) && failure.Class == taxonomy.ClassTLS)) {
		facts.Record(p.sink)
	}
}

// recordDurations exports the phase timings: the resolve phase measured
// before the first request, and every phase of every round trip. The
// round trips' spans end where their durations do, at the same stop; the
// first resolve phase recorded its own.
//
// As in blackbox, a phase's series exists once the probe got that far: the
// resolve phase once the target was looked up (or a redirect's host), the
// others once a request was handed to the client.
func (p *httpProbe) recordDurations() {
	stop := time.Now()
	d := p.timeline.phaseDurations(stop)
	d[taxonomy.PhaseResolve] += p.resolved
	for _, phase := range phases {
		if p.reached(phase) {
			p.metrics.durations.With(string(phase)).Set(d[phase].Seconds())
		}
	}
	p.timeline.recordSpans(p.sink, stop)
}

func (p *httpProbe) reached(phase taxonomy.Phase) bool {
	if phase == taxonomy.PhaseResolve {
		return p.looked || p.redirect > 0
	}
	return p.sent
}

// Phases returns the phases of probe_http_duration_seconds, in order.
func Phases() []taxonomy.Phase { return slices.Clone(phases) }
