package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"

	pconfig "github.com/prometheus/common/config"
	"go.yaml.in/yaml/v3"

	"github.com/sonde-exporter/sonde/internal/acceptencoding"
	"github.com/sonde-exporter/sonde/internal/regularfile"
	"github.com/sonde-exporter/sonde/internal/tlsfiles"
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

// checker collects the problems of one module. Errors refuse the file;
// warnings do not. The split follows blackbox_exporter 0.28: what it
// refuses at load (a bad regexp, body with body_file, a dns section
// without query_name...) is an error here too, and what it loads and only
// trips over at probe time, or never notices, is a warning, so that every
// file blackbox loads, sonde loads. A module with a warning probes as
// blackbox would probe it. Options blackbox does not have (retry, targets,
// ocsp...) are sonde's own, and their mistakes are errors.
type checker struct {
	module string
	loc    locator
	files  *tlsfiles.Cache // modules often name one CA bundle: it is parsed once
	errs   []error
	warns  []error
}

// errorf records an error about the field at path, e.g. ("http", "body").
func (c *checker) errorf(path []string, format string, args ...any) {
	c.errs = append(c.errs, c.problem(path, format, args...))
}

// warnf records a warning about the field at path.
func (c *checker) warnf(path []string, format string, args ...any) {
	c.warns = append(c.warns, c.problem(path, format, args...))
}

func (c *checker) problem(path []string, format string, args ...any) *Error {
	line, _ := c.loc.find(path...)
	field := ""
	for _, p := range path {
		if _, err := strconv.Atoi(p); err == nil {
			p = "[" + p + "]"
		}
		field = joinPath(field, p)
	}
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + ": " + msg
	}
	return &Error{Line: line, Msg: fmt.Sprintf("module %q: %s", c.module, msg)}
}

func (c *checker) present(path ...string) bool {
	_, ok := c.loc.find(path...)
	return ok
}

// written reports whether a section is in the file with something in it:
// blackbox_exporter checks a section only then (`dns: ~` is as good as no
// dns section at all).
func (c *checker) written(section string) bool {
	n, _, ok := child(resolveAlias(c.loc.value), section)
	return ok && !(n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func validateModule(name string, m *Module, loc locator, files *tlsfiles.Cache) (errs, warns []error) {
	c := &checker{module: name, loc: loc, files: files}
	c.prober(m.Prober)
	if m.Timeout < 0 {
		c.warnf([]string{"timeout"}, "%s is negative, so it is ignored and the scrape timeout alone sets the deadline, as in blackbox_exporter; remove it or make it positive", m.Timeout)
	}
	c.additions(m)
	// A section is checked when it is written or when the module's prober
	// reads it, so that `prober: dns` without `dns.query_name` is reported
	// now rather than on the first scrape.
	for _, s := range proberSections {
		if m.Prober == s.Name || c.present(s.Name) {
			s.check(c, m)
		}
	}
	return c.errs, c.warns
}

// additions checks the module-level options sonde adds to blackbox's.
func (c *checker) additions(m *Module) {
	if m.MaxConcurrent < 0 {
		c.errorf([]string{"max_concurrent"}, "must not be negative (0 means no limit), got %d", m.MaxConcurrent)
	}
	if s, _ := sectionOf(m.Prober); m.PropagateTraceContext && !s.PropagatesTrace {
		c.errorf([]string{"propagate_trace_context"}, "applies to the %s probers, which send a request that can carry a traceparent; this module's prober is %s",
			tracePropagating(), m.Prober)
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
}

// prober warns of a prober blackbox_exporter would not run: it loads such a
// module and answers its scrapes 400 "Unknown prober", and so does sonde.
func (c *checker) prober(p string) {
	switch {
	case p == "":
		c.warnf([]string{"prober"}, "missing, so every scrape of this module is answered 400 Unknown prober; set it to one of %s", strings.Join(Probers(), ", "))
	case !slices.Contains(Probers(), p):
		hint := ""
		if s := closest(p, Probers()); s != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", s)
		}
		c.warnf([]string{"prober"}, "%q is not a prober%s, so every scrape of this module is answered 400 Unknown prober; use one of %s", p, hint, strings.Join(Probers(), ", "))
	}
}

// ipProtocol: blackbox_exporter reads anything but ip6 (or nothing) as
// ip4, so ipv6 or IP6 quietly prefer IPv4.
func (c *checker) ipProtocol(path []string, v string) {
	if v != "" && v != "ip4" && v != "ip6" {
		c.warnf(path, "%q is read as ip4, as blackbox_exporter reads anything but ip6; write ip4 or ip6", v)
	}
}

// sourceIP: blackbox fails every probe of a module whose source address
// does not parse.
func (c *checker) sourceIP(path []string, v string) {
	if v != "" && net.ParseIP(v) == nil {
		c.warnf(path, "%q is not an IP address, so every probe fails; write an address of this host, e.g. 192.0.2.10", v)
	}
}

// tlsFiles warns of a tls_config that cannot be used now: a file that
// cannot be read, content that does not parse, a secret reference.
// blackbox reads the files on every probe, so one that appears later is
// used from then on; so does sonde, without a reload.
func (c *checker) tlsFiles(path []string, t *pconfig.TLSConfig) {
	at := func(field string) []string { return append(slices.Clone(path), field) }
	before := len(c.warns)
	c.readable(at("ca_file"), t.CAFile)
	c.readable(at("cert_file"), t.CertFile)
	c.readable(at("key_file"), t.KeyFile)
	c.secretRef(at("ca_ref"), t.CARef)
	c.secretRef(at("cert_ref"), t.CertRef)
	c.secretRef(at("key_ref"), t.KeyRef)
	if len(c.warns) > before {
		return // the content cannot be checked without the files
	}
	if err := c.tlsUsable(t); err != nil {
		c.warnf(path, "cannot be used (%v), so probes fail until it can; sonde tries it again on each probe until then", err)
	}
}

// tlsUsable reports whether t can be built as prometheus/common would
// build it. Each file is parsed once per load, however many modules name
// it, and the prober uses what was parsed.
func (c *checker) tlsUsable(t *pconfig.TLSConfig) error {
	if t.CA == "" && t.CAFile == "" && t.Cert == "" && t.CertFile == "" && t.Key == "" && t.KeyFile == "" {
		return nil // nothing to read or parse
	}
	_, err := c.files.TLSConfig(t)
	return err
}

// secretRef warns of a secret named in a secret manager: neither
// blackbox_exporter nor sonde has one, so every probe fails.
func (c *checker) secretRef(path []string, ref string) {
	if ref != "" {
		c.warnf(path, "%q names a secret in a secret manager, which neither blackbox_exporter nor sonde has, so every probe fails; give the secret inline or in a file", ref)
	}
}

// readable warns when a file a probe reads cannot be read now. What is
// not a regular file counts as unreadable: a named pipe would hold the
// load, and then every probe, until something wrote to it.
func (c *checker) readable(path []string, file string) {
	if file == "" {
		return
	}
	f, _, err := regularfile.Open(file)
	if err != nil {
		c.warnf(path, "cannot be read (%v), so probes fail until it can; sonde reads it again on each probe until then", unwrapPathError(err))
		return
	}
	f.Close()
}

// unwrapPathError drops the "open <path>:" that os adds, as the message
// already says which option names the file.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

// ValidHTTPVersions are the values valid_http_versions can match, as Go
// reports them in a response's Proto.
var ValidHTTPVersions = []string{"HTTP/1.0", "HTTP/1.1", "HTTP/2.0", "HTTP/3.0"}

// Compressions are the values of http.compression.
var Compressions = []string{"", "identity", "gzip", "br", "deflate"}

// http checks the http section. written says the section is in the file,
// which is when blackbox_exporter applies its own rules to it.
func (c *checker) http(h *HTTPProbe, written bool) {
	if h.NoFollowRedirects != nil {
		// The deprecated spelling wins, as in blackbox_exporter, and is then
		// hidden so /config shows only follow_redirects.
		h.HTTPClientConfig.FollowRedirects = !*h.NoFollowRedirects
		h.NoFollowRedirects = nil
	}
	if h.BodySizeLimit < 0 || h.BodySizeLimit == math.MaxInt64 {
		h.BodySizeLimit = 0 // blackbox treats these as "no limit"
	}
	if written {
		c.httpRules(h)
	}
	c.httpWarnings(h)
}

// httpRules are blackbox_exporter's own checks of an http section.
func (c *checker) httpRules(h *HTTPProbe) {
	at := func(field ...string) []string { return append([]string{"http"}, field...) }
	if err := h.HTTPClientConfig.Validate(); err != nil {
		c.errorf([]string{"http"}, "%v", err)
	}
	if h.Body != "" && h.BodyFile != "" {
		c.errorf(at("body_file"), "body and body_file are mutually exclusive; keep one")
	}
	for name, value := range h.Headers {
		if textproto.CanonicalMIMEHeaderKey(name) == "Accept-Encoding" && !acceptencoding.Listed(value, h.Compression) {
			c.errorf(at("headers", name), "%q does not accept the configured compression %q, so the response could not be decoded; add %s to it (blackbox_exporter compares the names case-sensitively)", value, h.Compression, h.Compression)
		}
	}
	c.http3(h)
	c.headerMatches(at("fail_if_header_matches"), h.FailIfHeaderMatchesRegexp)
	c.headerMatches(at("fail_if_header_not_matches"), h.FailIfHeaderNotMatchesRegexp)
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

// http3Warnings: HTTP/3 runs on TLS 1.3, which a lower max_version rules
// out; blackbox loads such a module and fails its handshakes.
func (c *checker) http3Warnings(h *HTTPProbe) {
	if v := h.HTTPClientConfig.TLSConfig.MaxVersion; h.EnableHTTP3 && v != 0 && v < tls.VersionTLS13 {
		c.warnf([]string{"http", "tls_config", "max_version"}, "is below TLS13, which HTTP/3 runs on, so every probe fails; remove it or set TLS13")
	}
}

// headerMatches: blackbox refuses a header matcher without a header name
// or with an empty expression.
func (c *checker) headerMatches(path []string, matches []HeaderMatch) {
	for i, m := range matches {
		p := append(slices.Clone(path), strconv.Itoa(i))
		if m.Header == "" {
			c.errorf(p, "header must be set")
		}
		if !m.Regexp.IsSet() || m.Regexp.String() == "" {
			c.errorf(p, "regexp must be set")
		}
	}
}

// httpWarnings are sonde's checks of what blackbox loads and then fails on
// at probe time, or never notices.
func (c *checker) httpWarnings(h *HTTPProbe) {
	at := func(field ...string) []string { return append([]string{"http"}, field...) }
	c.ipProtocol(at("preferred_ip_protocol"), h.IPProtocol)
	for i, code := range h.ValidStatusCodes {
		if code < 100 || code > 599 {
			c.warnf(at("valid_status_codes", strconv.Itoa(i)), "%d is not an HTTP status code (100-599), so it never matches", code)
		}
	}
	for i, v := range h.ValidHTTPVersions {
		if !slices.Contains(ValidHTTPVersions, v) {
			c.warnf(at("valid_http_versions", strconv.Itoa(i)), "%q never matches; use one of %s", v, strings.Join(ValidHTTPVersions, ", "))
		}
	}
	if h.Method != "" && !validToken(h.Method) {
		c.warnf(at("method"), "%q is not a valid HTTP method, so every probe fails", h.Method)
	}
	c.httpHeaders(h)
	c.readable(at("body_file"), h.BodyFile)
	if !slices.Contains(Compressions, strings.ToLower(h.Compression)) {
		c.warnf(at("compression"), "%q is not supported, so every probe fails; use one of gzip, br, deflate, identity", h.Compression)
	}
	if h.FailIfSSL && h.FailIfNotSSL {
		c.warnf(at("fail_if_ssl"), "fail_if_ssl and fail_if_not_ssl together fail every probe; keep one")
	}
	if u := h.HTTPClientConfig.ProxyURL.URL; u != nil && u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5" {
		c.warnf(at("proxy_url"), "scheme %q is not supported, so every probe fails; use http, https or socks5", u.Scheme)
	}
	c.celPrograms(h)
	c.http3Warnings(h)
	c.tlsFiles(at("tls_config"), &h.HTTPClientConfig.TLSConfig)
	c.secretFiles(h)
}

func (c *checker) httpHeaders(h *HTTPProbe) {
	for name, value := range h.Headers {
		if !validToken(name) {
			c.warnf([]string{"http", "headers", name}, "%q is not a valid header name, so every probe fails", name)
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			c.warnf([]string{"http", "headers", name}, "the value contains a line break or NUL byte, so every probe fails")
		}
		if textproto.CanonicalMIMEHeaderKey(name) == "Accept-Encoding" && acceptencoding.Listed(value, h.Compression) && !acceptencoding.Admits(value, h.Compression) {
			c.warnf([]string{"http", "headers", name}, "%q refuses the configured compression %q (an entry naming it decides, whatever \"*\" says), so a server following RFC 9110 will not send it; add %s to it", value, h.Compression, h.Compression)
		}
	}
}

// celPrograms warns of an expression that yields no bool: blackbox loads it
// and fails every probe that evaluates it.
func (c *checker) celPrograms(h *HTTPProbe) {
	for _, e := range []struct {
		field string
		p     *CELProgram
	}{{"fail_if_body_json_matches_cel", h.FailIfBodyJSONMatchesCEL}, {"fail_if_body_json_not_matches_cel", h.FailIfBodyJSONNotMatchesCEL}} {
		if e.p != nil && !e.p.YieldsBool() {
			c.warnf([]string{"http", e.field}, "the expression yields %s, not a bool, so every probe that evaluates it fails", e.p.OutputType())
		}
	}
}

// secretFiles warns of credential files that cannot be read now; they are
// read for every request, so one that appears later is used from then on.
func (c *checker) secretFiles(h *HTTPProbe) {
	cfg := &h.HTTPClientConfig
	at := func(field ...string) []string { return append([]string{"http"}, field...) }
	c.readable(at("bearer_token_file"), cfg.BearerTokenFile)
	if b := cfg.BasicAuth; b != nil {
		c.readable(at("basic_auth", "username_file"), b.UsernameFile)
		c.readable(at("basic_auth", "password_file"), b.PasswordFile)
		c.secretRef(at("basic_auth", "username_ref"), b.UsernameRef)
		c.secretRef(at("basic_auth", "password_ref"), b.PasswordRef)
	}
	if a := cfg.Authorization; a != nil {
		c.readable(at("authorization", "credentials_file"), a.CredentialsFile)
		c.secretRef(at("authorization", "credentials_ref"), a.CredentialsRef)
	}
	if o := cfg.OAuth2; o != nil {
		c.readable(at("oauth2", "client_secret_file"), o.ClientSecretFile)
		c.readable(at("oauth2", "client_certificate_key_file"), o.ClientCertificateKeyFile)
		c.secretRef(at("oauth2", "client_secret_ref"), o.ClientSecretRef)
		c.secretRef(at("oauth2", "client_certificate_key_ref"), o.ClientCertificateKeyRef)
		c.tlsFiles(at("oauth2", "tls_config"), &o.TLSConfig)
	}
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
// were called hostname: the Host header and TLS server name for http (and
// websocket, sonde's own), the TLS server name for tcp. blackbox uses it
// for these alone, and so does sonde: the grpc and dns probers ignore it. It fails when the module already sets
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
