package config

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// locator finds the line of a field inside one module, following aliases
// and merge keys, so that a rule broken anywhere can point at its line.
type locator struct{ key, value *yaml.Node }

func newLocator(key, value *yaml.Node) locator { return locator{key: key, value: value} }

// find returns the line of the deepest key of path present in the file and
// whether the whole path is present.
func (l locator) find(path ...string) (int, bool) {
	n, line := resolveAlias(l.value), l.key.Line
	for _, p := range path {
		next, nextLine, ok := child(n, p)
		if !ok {
			return line, false
		}
		n, line = next, nextLine
	}
	return line, true
}

func child(n *yaml.Node, key string) (*yaml.Node, int, bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for _, kv := range mappingPairs(n) {
			if kv[0].Value == key {
				return resolveAlias(kv[1]), kv[0].Line, true
			}
		}
	case yaml.SequenceNode:
		if i, err := strconv.Atoi(key); err == nil && i >= 0 && i < len(n.Content) {
			c := resolveAlias(n.Content[i])
			return c, c.Line, true
		}
	}
	return nil, 0, false
}

// checker collects the errors of one module.
type checker struct {
	module string
	loc    locator
	errs   []error
}

// errorf records a problem with the field at path, e.g. ("http", "body").
func (c *checker) errorf(path []string, format string, args ...any) {
	line, _ := c.loc.find(path...)
	field := ""
	for _, p := range path {
		if _, err := strconv.Atoi(p); err == nil {
			p = "[" + p + "]"
		}
		field = joinPath(field, p)
	}
	c.errs = append(c.errs, &Error{
		Line: line,
		Msg:  fmt.Sprintf("module %q: %s: %s", c.module, field, fmt.Sprintf(format, args...)),
	})
}

func (c *checker) present(path ...string) bool {
	_, ok := c.loc.find(path...)
	return ok
}

// TracePropagatingProbers are those whose probe sends a request with
// headers or metadata to carry the trace context.
var TracePropagatingProbers = []string{"http", "websocket", "grpc"}

func validateModule(name string, m *Module, loc locator) []error {
	c := &checker{module: name, loc: loc}
	c.prober(m.Prober)
	if m.Timeout < 0 {
		c.errorf([]string{"timeout"}, "must not be negative, got %s", m.Timeout)
	}
	if m.MaxConcurrent < 0 {
		c.errorf([]string{"max_concurrent"}, "must not be negative (0 means no limit), got %d", m.MaxConcurrent)
	}
	if m.PropagateTraceContext && !slices.Contains(TracePropagatingProbers, m.Prober) {
		c.errorf([]string{"propagate_trace_context"}, "applies to the %s probers, which send a request that can carry a traceparent; this module's prober is %s",
			strings.Join(TracePropagatingProbers, ", "), m.Prober)
	}
	if c.present("retry") {
		c.retry(&m.Retry)
	}
	if c.present("ocsp") {
		c.ocsp(&m.OCSP)
	}
	if c.present("targets") {
		c.targets(m.Prober, &m.Targets)
	}
	if m.DNSResolver != "" {
		if _, _, err := ParseDNSResolver(m.DNSResolver); err != nil {
			c.errorf([]string{"dns_resolver"}, "%v", err)
		}
	}
	// A section is checked when it is written or when the module's prober
	// reads it, so that `prober: dns` without `dns.query_name` is caught now
	// rather than on the first scrape.
	if m.Prober == "http" || c.present("http") {
		c.http(&m.HTTP)
	}
	if m.Prober == "tcp" || c.present("tcp") {
		c.tcp(&m.TCP)
	}
	if m.Prober == "icmp" || c.present("icmp") {
		c.icmp(&m.ICMP)
	}
	if m.Prober == "dns" || c.present("dns") {
		c.dns(&m.DNS, m.Prober == "dns")
	}
	if m.Prober == "grpc" || c.present("grpc") {
		c.ipProtocol([]string{"grpc", "preferred_ip_protocol"}, m.GRPC.PreferredIPProtocol)
	}
	if m.Prober == "unix" || c.present("unix") {
		c.queryResponse([]string{"unix", "query_response"}, m.Unix.QueryResponse)
		c.unixTLS(&m.Unix)
	}
	if m.Prober == "websocket" || c.present("websocket") {
		c.ipProtocol([]string{"websocket", "preferred_ip_protocol"}, m.Websocket.IPProtocol)
		c.queryResponse([]string{"websocket", "query_response"}, m.Websocket.QueryResponse)
		for i, s := range m.Websocket.QueryResponse {
			if s.StartTLS {
				c.errorf([]string{"websocket", "query_response", strconv.Itoa(i), "starttls"}, "a websocket cannot switch to TLS mid-conversation; use a wss:// target")
			}
		}
	}
	return c.errs
}

func (c *checker) prober(p string) {
	switch {
	case p == "":
		c.errorf([]string{"prober"}, "missing; set it to one of %s", strings.Join(Probers, ", "))
	case !slices.Contains(Probers, p):
		hint := ""
		if s := closest(p, Probers); s != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", s)
		}
		c.errorf([]string{"prober"}, "%q is not a prober%s; use one of %s", p, hint, strings.Join(Probers, ", "))
	}
}

func (c *checker) ipProtocol(path []string, v string) {
	if v != "" && v != "ip4" && v != "ip6" {
		c.errorf(path, "%q is not valid; use ip4 or ip6", v)
	}
}

func (c *checker) sourceIP(path []string, v string) {
	if v != "" && net.ParseIP(v) == nil {
		c.errorf(path, "%q is not an IP address", v)
	}
}

// ValidHTTPVersions are the values valid_http_versions can match, as Go
// reports them in a response's Proto.
var ValidHTTPVersions = []string{"HTTP/1.0", "HTTP/1.1", "HTTP/2.0", "HTTP/3.0"}

// Compressions are the values of http.compression.
var Compressions = []string{"", "identity", "gzip", "br", "deflate"}

func (c *checker) http(h *HTTPProbe) {
	at := func(field ...string) []string { return append([]string{"http"}, field...) }
	c.ipProtocol(at("preferred_ip_protocol"), h.IPProtocol)
	if h.NoFollowRedirects != nil {
		// The deprecated spelling wins, as in blackbox_exporter, and is then
		// hidden so /config shows only follow_redirects.
		h.HTTPClientConfig.FollowRedirects = !*h.NoFollowRedirects
		h.NoFollowRedirects = nil
	}
	for i, code := range h.ValidStatusCodes {
		if code < 100 || code > 599 {
			c.errorf(at("valid_status_codes", strconv.Itoa(i)), "%d is not an HTTP status code (100-599)", code)
		}
	}
	for i, v := range h.ValidHTTPVersions {
		if !slices.Contains(ValidHTTPVersions, v) {
			c.errorf(at("valid_http_versions", strconv.Itoa(i)), "%q never matches; use one of %s", v, strings.Join(ValidHTTPVersions, ", "))
		}
	}
	if h.Method != "" && !validToken(h.Method) {
		c.errorf(at("method"), "%q is not a valid HTTP method", h.Method)
	}
	c.httpHeaders(h)
	c.httpBody(h)
	if !slices.Contains(Compressions, strings.ToLower(h.Compression)) {
		c.errorf(at("compression"), "%q is not supported; use one of gzip, br, deflate, identity", h.Compression)
	}
	if h.BodySizeLimit < 0 || h.BodySizeLimit == math.MaxInt64 {
		h.BodySizeLimit = 0 // blackbox treats these as "no limit"
	}
	if h.FailIfSSL && h.FailIfNotSSL {
		c.errorf(at("fail_if_ssl"), "fail_if_ssl and fail_if_not_ssl together fail every probe; keep one")
	}
	c.headerMatches(at("fail_if_header_matches"), h.FailIfHeaderMatchesRegexp)
	c.headerMatches(at("fail_if_header_not_matches"), h.FailIfHeaderNotMatchesRegexp)
	c.http3(h)
	if err := h.HTTPClientConfig.Validate(); err != nil {
		c.errorf([]string{"http"}, "%v", err)
	}
	if u := h.HTTPClientConfig.ProxyURL.URL; u != nil && u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5" {
		c.errorf(at("proxy_url"), "scheme %q is not supported; use http, https or socks5", u.Scheme)
	}
}

// http3 applies blackbox_exporter's rules for enable_http3: an HTTP/3
// probe speaks only HTTP/3, so HTTP/2 must be off and no other version
// can be valid, and HTTP/3.0 is valid only when HTTP/3 is on.
func (c *checker) http3(h *HTTPProbe) {
	at := func(field ...string) []string { return append([]string{"http"}, field...) }
	for i, v := range h.ValidHTTPVersions {
		switch {
		case v == "HTTP/3.0" && !h.EnableHTTP3:
			c.errorf(at("valid_http_versions", strconv.Itoa(i)), "HTTP/3.0 can only be valid with enable_http3: true")
		case (v == "HTTP/2.0" || v == "HTTP/1.1") && h.EnableHTTP3:
			c.errorf(at("valid_http_versions", strconv.Itoa(i)), "%s is never valid with enable_http3: true, which speaks only HTTP/3; list HTTP/3.0 alone", v)
		}
	}
	if h.EnableHTTP3 && h.HTTPClientConfig.EnableHTTP2 {
		c.errorf(at("enable_http3"), "enable_http3 needs enable_http2: false (HTTP/2 is on by default); add enable_http2: false")
	}
}

func (c *checker) httpHeaders(h *HTTPProbe) {
	for name, value := range h.Headers {
		if !validToken(name) {
			c.errorf([]string{"http", "headers", name}, "%q is not a valid header name", name)
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			c.errorf([]string{"http", "headers", name}, "the value contains a line break or NUL byte")
		}
		if textproto.CanonicalMIMEHeaderKey(name) == "Accept-Encoding" && !AcceptsEncoding(value, h.Compression) {
			c.errorf([]string{"http", "headers", name}, "%q does not accept the configured compression %q, so the response could not be decoded; add %s to it", value, h.Compression, h.Compression)
		}
	}
}

func (c *checker) httpBody(h *HTTPProbe) {
	if h.Body != "" && h.BodyFile != "" {
		c.errorf([]string{"http", "body_file"}, "body and body_file are mutually exclusive; keep one")
		return
	}
	if h.BodyFile == "" {
		return
	}
	f, err := os.Open(h.BodyFile)
	if err != nil {
		c.errorf([]string{"http", "body_file"}, "cannot be read: %v", err)
		return
	}
	f.Close()
}

func (c *checker) headerMatches(path []string, matches []HeaderMatch) {
	for i, m := range matches {
		p := append(slices.Clone(path), strconv.Itoa(i))
		if m.Header == "" {
			c.errorf(p, "header must be set")
		}
		if !m.Regexp.IsSet() {
			c.errorf(p, "regexp must be set")
		}
	}
}

// AcceptsEncoding reports whether an Accept-Encoding value admits an
// encoding: listed, or covered by "*", with a quality above 0. An entry
// naming the encoding decides wherever it stands; "*" only covers encodings
// not listed (RFC 9110, section 12.5.3), so "*;q=0, gzip" admits gzip, as
// blackbox_exporter's check (which sorts entries by quality) also finds.
// An empty encoding or header admits anything, which is what the
// compression option needs.
func AcceptsEncoding(acceptEncoding, compression string) bool {
	if compression == "" || acceptEncoding == "" {
		return true
	}
	wildcard := -1.0 // the quality given to "*"; -1 when it is absent
	for _, part := range strings.Split(acceptEncoding, ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		enc = strings.TrimSpace(enc)
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		switch {
		case strings.EqualFold(enc, compression):
			return q > 0
		case enc == "*" && wildcard < 0:
			wildcard = q
		}
	}
	return wildcard > 0
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

func (c *checker) tcp(t *TCPProbe) {
	c.ipProtocol([]string{"tcp", "preferred_ip_protocol"}, t.IPProtocol)
	c.sourceIP([]string{"tcp", "source_ip_address"}, t.SourceIPAddress)
	c.queryResponse([]string{"tcp", "query_response"}, t.QueryResponse)
	c.startTLSPreset(t)
}

func (c *checker) startTLSPreset(t *TCPProbe) {
	at := []string{"tcp", "starttls_preset"}
	switch {
	case t.StartTLSPreset == "":
	case !slices.Contains(StartTLSPresets, t.StartTLSPreset):
		c.errorf(at, "%q is not a preset; use one of %s", t.StartTLSPreset, strings.Join(StartTLSPresets, ", "))
	case t.TLS:
		c.errorf(at, "a preset upgrades a plain connection to TLS, so it cannot be combined with tls: true; remove one")
	case slices.ContainsFunc(t.QueryResponse, func(q QueryResponse) bool { return q.StartTLS }):
		c.errorf(at, "the preset already upgrades to TLS; remove the starttls step from query_response")
	}
}

func (c *checker) queryResponse(path []string, steps []QueryResponse) {
	first := -1 // the first step with labels
	for i, s := range steps {
		p := append(slices.Clone(path), strconv.Itoa(i))
		if s.Expect.IsSet() && s.ExpectBytes != "" {
			c.errorf(p, "expect and expect_bytes are mutually exclusive in one step; split them into two steps")
		}
		if !s.Expect.IsSet() && s.ExpectBytes == "" && s.Send == "" && !s.StartTLS {
			c.errorf(p, "the step does nothing; give it expect, expect_bytes, send or starttls")
		}
		if len(s.Labels) > 0 && first >= 0 && !sameLabelNames(steps[first].Labels, s.Labels) {
			c.errorf(append(p, "labels"), "label names differ from step %d's; probe_expect_info has one set of labels, so every step must use the same names", first)
		}
		if len(s.Labels) > 0 && first < 0 {
			first = i
		}
		for j, l := range s.Labels {
			// Legacy names, so that every Prometheus version can read
			// the probe_expect_info series they label.
			if !model.LegacyValidation.IsValidLabelName(l.Name) || strings.HasPrefix(l.Name, "__") {
				c.errorf(append(p, "labels", strconv.Itoa(j)), "%q is not a valid label name; use letters, digits and underscores, not starting with a digit or __", l.Name)
			}
		}
	}
}

func (c *checker) retry(r *Retry) {
	at := func(field string) []string { return []string{"retry", field} }
	if r.Attempts < 1 || r.Attempts > 10 {
		c.errorf(at("attempts"), "must be between 1 (no retry) and 10, got %d", r.Attempts)
	}
	if r.InitialBackoff <= 0 {
		c.errorf(at("initial_backoff"), "must be positive, got %s", r.InitialBackoff)
	}
	if r.MaxBackoff < r.InitialBackoff {
		c.errorf(at("max_backoff"), "%s is shorter than initial_backoff %s", r.MaxBackoff, r.InitialBackoff)
	}
	if r.Multiplier < 1 {
		c.errorf(at("multiplier"), "must be at least 1, got %v", r.Multiplier)
	}
	if r.Jitter < 0 || r.Jitter > 1 {
		c.errorf(at("jitter"), "must be between 0 and 1 (a fraction of the backoff), got %v", r.Jitter)
	}
	for i, class := range r.On {
		if !slices.Contains(RetryableClasses, class) {
			c.errorf([]string{"retry", "on", strconv.Itoa(i)}, "%q cannot be retried; use some of %s (assertion and prober failures do not change on a retry)", class, strings.Join(RetryableClasses, ", "))
		}
	}
}

func (c *checker) ocsp(o *OCSP) {
	if !slices.Contains(OCSPChecks, o.Check) {
		c.errorf([]string{"ocsp", "check"}, "%q is not a check; use one of %s", o.Check, strings.Join(OCSPChecks, ", "))
	}
	if o.CacheTTL <= 0 {
		c.errorf([]string{"ocsp", "cache_ttl"}, "must be positive, got %s", o.CacheTTL)
	}
	if o.Check == OCSPNone && (o.RequireStapled || o.FailOnUnknown) {
		c.errorf([]string{"ocsp", "check"}, "none turns OCSP off, so require_stapled and fail_on_unknown would never apply; use stapled or query")
	}
}

// targets checks every rule of the targets block, so that a rule that
// would never match, or match something else than meant, is refused at
// load rather than found out when a probe is refused or let through.
func (c *checker) targets(prober string, t *Targets) {
	for _, list := range []struct {
		key     string
		entries []string
	}{{"allow", t.Allow}, {"deny", t.Deny}} {
		for i, entry := range list.entries {
			if _, err := ParseTargetRule(prober, entry); err != nil {
				c.errorf([]string{"targets", list.key, strconv.Itoa(i)}, "%v", err)
			}
		}
	}
	for i, scheme := range t.Schemes {
		if err := CheckTargetScheme(prober, scheme); err != nil {
			c.errorf([]string{"targets", "schemes", strconv.Itoa(i)}, "%v", err)
		}
	}
}

// unixTLS: a socket path is no host name, so TLS over a unix socket needs
// the name to verify the server as.
func (c *checker) unixTLS(u *UnixProbe) {
	usesTLS := u.TLS || slices.ContainsFunc(u.QueryResponse, func(q QueryResponse) bool { return q.StartTLS })
	if usesTLS && u.TLSConfig.ServerName == "" && !u.TLSConfig.InsecureSkipVerify {
		c.errorf([]string{"unix", "tls_config"}, "TLS over a unix socket needs server_name (the name on the server's certificate), or insecure_skip_verify")
	}
}

func sameLabelNames(a, b []Label) bool {
	return slices.EqualFunc(a, b, func(x, y Label) bool { return x.Name == y.Name })
}

func (c *checker) icmp(i *ICMPProbe) {
	c.ipProtocol([]string{"icmp", "preferred_ip_protocol"}, i.IPProtocol)
	c.sourceIP([]string{"icmp", "source_ip_address"}, i.SourceIPAddress)
	if i.TTL < 0 || i.TTL > 255 {
		c.errorf([]string{"icmp", "ttl"}, "must be between 0 and 255, got %d", i.TTL)
	}
	if i.PayloadSize < 0 || i.PayloadSize > 65500 {
		c.errorf([]string{"icmp", "payload_size"}, "must be between 0 and 65500 bytes, got %d", i.PayloadSize)
	}
	if i.Packets < 1 || i.Packets > 1000 {
		c.errorf([]string{"icmp", "packets"}, "must be between 1 and 1000, got %d", i.Packets)
	}
	if i.PacketInterval < time.Millisecond {
		c.errorf([]string{"icmp", "packet_interval"}, "must be at least 1ms, got %s", i.PacketInterval)
	}
	if i.MinSuccessRatio < 0 || i.MinSuccessRatio > 1 {
		c.errorf([]string{"icmp", "min_success_ratio"}, "must be between 0 and 1 (a share of the packets), got %v", i.MinSuccessRatio)
	}
}

// dns checks the dns section. query_name is required only when the module
// probes DNS: Marshal writes every section with its defaults (an http
// module's /config shows `dns: {recursion_desired: true, ...}`), and that
// output must load again.
func (c *checker) dns(d *DNSProbe, probesDNS bool) {
	at := func(field ...string) []string { return append([]string{"dns"}, field...) }
	c.ipProtocol(at("preferred_ip_protocol"), d.IPProtocol)
	c.sourceIP(at("source_ip_address"), d.SourceIPAddress)
	if probesDNS && d.QueryName == "" {
		c.errorf(at("query_name"), "must be set: the name to ask the target server about")
	}
	if d.QueryType != "" {
		if _, ok := dns.StringToType[strings.ToUpper(d.QueryType)]; !ok {
			c.errorf(at("query_type"), "%q is not a DNS record type (e.g. A, AAAA, MX, SOA, ANY)", d.QueryType)
		}
	}
	if d.QueryClass != "" {
		if _, ok := dns.StringToClass[strings.ToUpper(d.QueryClass)]; !ok {
			c.errorf(at("query_class"), "%q is not a DNS class (e.g. IN, CH)", d.QueryClass)
		}
	}
	switch d.TransportProtocol {
	case "", "udp", "tcp", "https":
	default:
		c.errorf(at("transport_protocol"), "%q is not supported; use udp, tcp or https (DNS over HTTPS)", d.TransportProtocol)
	}
	if d.DNSOverTLS && d.TransportProtocol == "udp" {
		c.errorf(at("dns_over_tls"), "DNS over TLS runs over TCP; set transport_protocol to tcp or leave it unset")
	}
	if d.DNSOverTLS && d.TransportProtocol == "https" {
		c.errorf(at("dns_over_tls"), "transport_protocol https is already encrypted; remove dns_over_tls")
	}
	switch strings.ToUpper(d.DoHMethod) {
	case "", "POST", "GET":
	default:
		c.errorf(at("doh_method"), "%q is not supported; use POST or GET", d.DoHMethod)
	}
	if d.DoHMethod != "" && d.TransportProtocol != "https" {
		c.errorf(at("doh_method"), "only applies to DNS over HTTPS; set transport_protocol: https or remove it")
	}
	for i, rc := range d.ValidRcodes {
		if _, ok := dns.StringToRcode[strings.ToUpper(rc)]; !ok {
			c.errorf(at("valid_rcodes", strconv.Itoa(i)), "%q is not a DNS response code (e.g. NOERROR, NXDOMAIN, SERVFAIL)", rc)
		}
	}
}

// ParseDNSResolver reads the dns_resolver option: an IP address with an
// optional port (53) and an optional udp:// or tcp:// scheme (udp).
func ParseDNSResolver(s string) (network, addr string, err error) {
	network = "udp"
	rest := s
	if scheme, after, ok := strings.Cut(s, "://"); ok {
		if scheme != "udp" && scheme != "tcp" {
			return "", "", fmt.Errorf("scheme %q is not supported; use udp:// or tcp://", scheme)
		}
		network, rest = scheme, after
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		host, port = strings.Trim(rest, "[]"), "53"
	}
	if net.ParseIP(host) == nil {
		return "", "", fmt.Errorf("%q is not an IP address: the resolver's own name could not be resolved; write e.g. 10.0.0.53 or tcp://[fd00::53]:5353", host)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", "", fmt.Errorf("port %q is not a port number", port)
	}
	return network, net.JoinHostPort(host, port), nil
}

// The HTTP header name "Host" is special in Go: it lives in Request.Host,
// not in Request.Header. HostHeader returns the module's Host header, if any.
func (h *HTTPProbe) HostHeader() (string, bool) {
	for name, value := range h.Headers {
		if textproto.CanonicalMIMEHeaderKey(name) == "Host" {
			return value, true
		}
	}
	return "", false
}

// WithHostname returns a copy of the module that probes as if the target
// were called hostname: the Host header and TLS server name for http, the
// TLS server name for tcp and grpc. It fails when the module already sets
// another Host header, as blackbox_exporter does; the value itself is taken
// as given, and a prober that cannot send it fails the probe, as in
// blackbox (a scrape is not refused for it). Without a hostname it
// returns m itself. The copy is made on the heap: a Module is a few KiB,
// and copies of it by value made this function's stack frame large enough
// to double the stack of every probe that called it.
func (m *Module) WithHostname(hostname string) (*Module, error) {
	if hostname == "" {
		return m, nil
	}
	for _, old := range m.hostHeaders() {
		if old != hostname {
			return nil, fmt.Errorf("the module sets the Host header to %q and the hostname parameter asks for %q; drop one of them", old, hostname)
		}
	}
	c := new(Module)
	*c = *m
	headers := make(map[string]string, len(m.HTTP.Headers)+1)
	for k, v := range m.HTTP.Headers {
		if textproto.CanonicalMIMEHeaderKey(k) != "Host" {
			headers[k] = v
		}
	}
	headers["Host"] = hostname
	c.HTTP.Headers = headers
	if c.TCP.TLSConfig.ServerName == "" {
		c.TCP.TLSConfig.ServerName = hostname
	}
	if c.GRPC.TLSConfig.ServerName == "" {
		c.GRPC.TLSConfig.ServerName = hostname
	}
	if c.DNS.TLSConfig.ServerName == "" {
		c.DNS.TLSConfig.ServerName = hostname // DNS over TLS or HTTPS
	}
	return c, nil
}

// hostHeaders returns the Host headers the module sets, in any section.
func (m *Module) hostHeaders() []string {
	var hosts []string
	if h, ok := m.HTTP.HostHeader(); ok {
		hosts = append(hosts, h)
	}
	for name, v := range m.Websocket.Headers {
		if textproto.CanonicalMIMEHeaderKey(name) == "Host" {
			hosts = append(hosts, v)
		}
	}
	for name, vs := range m.Websocket.HTTPConfig.Headers {
		if textproto.CanonicalMIMEHeaderKey(name) == "Host" {
			hosts = append(hosts, vs...)
		}
	}
	return hosts
}

// StatusOK reports whether an HTTP status code is valid for the module:
// one of valid_status_codes, or any 2xx when none is listed.
func (h *HTTPProbe) StatusOK(code int) bool {
	if len(h.ValidStatusCodes) == 0 {
		return code >= http.StatusOK && code < http.StatusMultipleChoices
	}
	return slices.Contains(h.ValidStatusCodes, code)
}
