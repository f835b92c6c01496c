package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/common/model"
)

func (c *checker) tcp(t *TCPProbe) {
	c.ipProtocol([]string{"tcp", "preferred_ip_protocol"}, t.IPProtocol)
	c.sourceIP([]string{"tcp", "source_ip_address"}, t.SourceIPAddress)
	c.queryResponse([]string{"tcp", "query_response"}, t.QueryResponse, false)
	c.startTLSPreset(t)
	c.tlsFiles([]string{"tcp", "tls_config"}, &t.TLSConfig)
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

// queryResponse checks a script. blackbox refuses a step with both expect
// and expect_bytes; the rest it loads, so for its tcp and unix probers the
// rest are warnings. websocket is sonde's own prober: there every problem
// is an error.
func (c *checker) queryResponse(path []string, steps []QueryResponse, sondeOnly bool) {
	report := c.warnf
	if sondeOnly {
		report = c.errorf
	}
	first := -1 // the first step with labels
	for i, s := range steps {
		p := append(slices.Clone(path), strconv.Itoa(i))
		if s.Expect.IsSet() && s.ExpectBytes != "" {
			c.errorf(p, "expect and expect_bytes are mutually exclusive in one step; split them into two steps")
		}
		if !s.Expect.IsSet() && s.ExpectBytes == "" && s.Send == "" && !s.StartTLS {
			report(p, "the step does nothing; give it expect, expect_bytes, send or starttls, or remove it")
		}
		if len(s.Labels) > 0 && first >= 0 && !sameLabelNames(steps[first].Labels, s.Labels) {
			report(append(p, "labels"), "label names differ from step %d's; probe_expect_info has one set of labels, so only the last matching step's would show; use the same names in every step", first)
		}
		if len(s.Labels) > 0 && first < 0 {
			first = i
		}
		for j, l := range s.Labels {
			c.labelName(append(p, "labels", strconv.Itoa(j)), l.Name, report)
		}
	}
}

// labelName checks a probe_expect_info label name. blackbox exports any
// name Prometheus 3 accepts; one that no Prometheus accepts (empty, or
// reserved with __) breaks its scrape of the module, and fails sonde's
// probe.
func (c *checker) labelName(path []string, name string, report func([]string, string, ...any)) {
	switch {
	case !model.UTF8Validation.IsValidLabelName(name) || strings.HasPrefix(name, "__"):
		report(path, "%q cannot be a label name (it is empty, or reserved by its leading __), so every probe of this module fails; use letters, digits and underscores", name)
	case !model.LegacyValidation.IsValidLabelName(name):
		report(path, "%q is not a classic label name, so Prometheus servers before 3.0, or set to legacy name validation, refuse probe_expect_info; use letters, digits and underscores, not starting with a digit", name)
	}
}

func (c *checker) icmp(i *ICMPProbe) {
	c.ipProtocol([]string{"icmp", "preferred_ip_protocol"}, i.IPProtocol)
	c.sourceIP([]string{"icmp", "source_ip_address"}, i.SourceIPAddress)
	if i.TTL < 0 || i.TTL > 255 {
		c.errorf([]string{"icmp", "ttl"}, "must be between 0 and 255, got %d", i.TTL)
	}
	switch {
	case i.PayloadSize < 0:
		c.warnf([]string{"icmp", "payload_size"}, "%d is negative, so every probe fails; use 0 (the default payload) to %d", i.PayloadSize, MaxICMPPayload4)
	case i.PayloadSize > MaxICMPPayload6:
		c.warnf([]string{"icmp", "payload_size"}, "%d bytes do not fit an echo request, so every probe fails; use 0 to %d (IPv6 carries up to %d)", i.PayloadSize, MaxICMPPayload4, MaxICMPPayload6)
	case i.PayloadSize > MaxICMPPayload4:
		c.warnf([]string{"icmp", "payload_size"}, "%d bytes do not fit an IPv4 echo request, so probes of IPv4 targets fail; use 0 to %d", i.PayloadSize, MaxICMPPayload4)
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

// MaxICMPPayload4 and MaxICMPPayload6 are the largest echo payloads: 65535
// bytes less the ICMP header, and over IPv4 less the IP header too (IPv6
// does not count its own in the packet's length).
const (
	MaxICMPPayload4 = 65535 - 20 - 8
	MaxICMPPayload6 = 65535 - 8
)

// dns checks the dns section. blackbox_exporter requires query_name and
// checks query_type and query_class (case-sensitively) whenever a dns
// section is written, whatever the prober; a dns module with no section
// loads there and asks for the root, ".", so here it is a warning.
func (c *checker) dns(d *DNSProbe, probesDNS, written bool) {
	at := func(field ...string) []string { return append([]string{"dns"}, field...) }
	switch {
	case written && d.QueryName == "":
		c.errorf(at("query_name"), "must be set: the name to ask the target server about")
	case probesDNS && d.QueryName == "":
		c.warnf(at("query_name"), "not set, so probes ask for the root zone \".\", as blackbox_exporter does; set the name to ask the target server about")
	}
	c.dnsCode(at("query_type"), d.QueryType, dns.StringToType, "a DNS record type (e.g. A, AAAA, MX, SOA, ANY)")
	c.dnsCode(at("query_class"), d.QueryClass, dns.StringToClass, "a DNS class (e.g. IN, CH)")
	c.ipProtocol(at("preferred_ip_protocol"), d.IPProtocol)
	c.sourceIP(at("source_ip_address"), d.SourceIPAddress)
	c.dnsTransport(d)
	c.dohMethod(d)
	for i, rc := range d.ValidRcodes {
		if _, ok := dns.StringToRcode[rc]; !ok {
			c.warnf(at("valid_rcodes", strconv.Itoa(i)), "%q is not a DNS response code, so every probe fails, as in blackbox_exporter%s", rc, upperHint(rc, dns.StringToRcode))
		}
	}
	for _, s := range []struct {
		key string
		v   *DNSRRValidator
	}{{"validate_answer_rrs", &d.ValidateAnswer}, {"validate_authority_rrs", &d.ValidateAuthority}, {"validate_additional_rrs", &d.ValidateAdditional}} {
		c.rrPatterns(at(s.key), s.v)
	}
	c.tlsFiles(at("tls_config"), &d.TLSConfig)
}

// dnsCode checks a name blackbox_exporter looks up, as it does: exactly.
func (c *checker) dnsCode(path []string, v string, codes map[string]uint16, what string) {
	if _, ok := codes[v]; v != "" && !ok {
		c.errorf(path, "%q is not %s%s", v, what, upperHint(v, codes))
	}
}

// upperHint suggests the upper-case spelling when that is the known one.
func upperHint[V any](v string, known map[string]V) string {
	if _, ok := known[strings.ToUpper(v)]; ok && v != strings.ToUpper(v) {
		return fmt.Sprintf("; write it in upper case, %s", strings.ToUpper(v))
	}
	return ""
}

func (c *checker) dnsTransport(d *DNSProbe) {
	at := func(field string) []string { return []string{"dns", field} }
	switch d.TransportProtocol {
	case "", "udp", "tcp":
	case "https":
		if d.DNSOverTLS {
			c.errorf(at("dns_over_tls"), "transport_protocol https is already encrypted; remove dns_over_tls")
		}
	default:
		c.warnf(at("transport_protocol"), "%q is not a transport, so every probe fails, as in blackbox_exporter; use udp, tcp or https (DNS over HTTPS)", d.TransportProtocol)
	}
	if d.DNSOverTLS && d.TransportProtocol == "udp" {
		c.warnf(at("dns_over_tls"), "DNS over TLS runs over TCP, so every probe fails, as in blackbox_exporter; set transport_protocol to tcp or leave it unset")
	}
}

func (c *checker) dohMethod(d *DNSProbe) {
	at := []string{"dns", "doh_method"}
	switch strings.ToUpper(d.DoHMethod) {
	case "", "POST", "GET":
	default:
		c.errorf(at, "%q is not supported; use POST or GET", d.DoHMethod)
	}
	if d.DoHMethod != "" && d.TransportProtocol != "https" {
		c.errorf(at, "only applies to DNS over HTTPS; set transport_protocol: https or remove it")
	}
}

// rrPatterns warns of expressions that do not compile: blackbox compiles
// them only when a record is checked, and fails the probe then.
func (c *checker) rrPatterns(path []string, v *DNSRRValidator) {
	for _, rule := range v.Rules() {
		for i, p := range rule.Patterns {
			if p.Err != nil {
				c.warnf(append(slices.Clone(path), rule.Key, strconv.Itoa(i)), "invalid regular expression %q: %v, so every probe that gets a record in this section fails (Go RE2 syntax: https://github.com/google/re2/wiki/Syntax)", p.String(), p.Err)
			}
		}
	}
}

func (c *checker) grpc(g *GRPCProbe) {
	c.ipProtocol([]string{"grpc", "preferred_ip_protocol"}, g.PreferredIPProtocol)
	c.tlsFiles([]string{"grpc", "tls_config"}, &g.TLSConfig)
	for key, values := range g.Metadata {
		c.grpcMetadata([]string{"grpc", "metadata", key}, key, values)
	}
	if len(g.Service) > maxGRPCService {
		c.warnf([]string{"grpc", "service"}, "is %d bytes long, more than sonde sends in one health check request (%d), so every probe fails", len(g.Service), maxGRPCService)
	}
}

// maxGRPCService is about the longest service name whose health check
// request fits HTTP/2's initial window, which sonde sends it in.
const maxGRPCService = 65535 - 5 - 4

// grpcMetadata warns of a metadata key or value grpc-go refuses to send:
// blackbox's calls then fail with INTERNAL, and so do sonde's probes. A key
// with capitals is sent lowercased by sonde, and warned of, as blackbox
// fails on it.
func (c *checker) grpcMetadata(path []string, key string, values []string) {
	lower := strings.ToLower(key)
	if err := CheckGRPCMetadata(lower, values); err != nil {
		c.warnf(path, "%v, so every probe fails with INTERNAL, as in blackbox_exporter", err)
		return
	}
	if lower != key {
		c.warnf(path, "gRPC metadata keys are lower case: blackbox_exporter fails every probe of this module with INTERNAL; sonde sends it as %q; write it so", lower)
	}
}

// CheckGRPCMetadata applies gRPC's rules for metadata, which grpc-go
// enforces before sending a call: keys of [0-9a-z-_.], values of printable
// ASCII unless the key ends in -bin (binary values, sent base64-encoded).
// Pseudo-headers (":path") pass: they are dropped, as gRPC's own headers
// (content-type, user-agent, te, grpc-timeout, ...) are, without failing,
// as grpc-go does.
func CheckGRPCMetadata(key string, values []string) error {
	if key == "" {
		return fmt.Errorf("a key is empty")
	}
	for _, r := range key {
		if key[0] != ':' && !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("key %q has the character %q; gRPC metadata keys are made of a-z, 0-9, '-', '_' and '.'", key, r)
		}
	}
	if strings.HasSuffix(key, "-bin") {
		return nil
	}
	for _, v := range values {
		if strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
			return fmt.Errorf("key %q: value %q has a character outside printable ASCII; use a key ending in -bin for binary values", key, v)
		}
	}
	return nil
}

func (c *checker) websocket(w *WebsocketProbe) {
	if w.IPProtocol != "" && w.IPProtocol != "ip4" && w.IPProtocol != "ip6" {
		c.errorf([]string{"websocket", "preferred_ip_protocol"}, "%q is not valid; use ip4 or ip6", w.IPProtocol)
	}
	c.queryResponse([]string{"websocket", "query_response"}, w.QueryResponse, true)
	for i, s := range w.QueryResponse {
		if s.StartTLS {
			c.errorf([]string{"websocket", "query_response", strconv.Itoa(i), "starttls"}, "a websocket cannot switch to TLS mid-conversation; use a wss:// target")
		}
	}
	c.tlsFiles([]string{"websocket", "http_config", "tls_config"}, &w.HTTPConfig.TLSConfig)
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

// unix checks the unix section.
func (c *checker) unix(u *UnixProbe) {
	c.queryResponse([]string{"unix", "query_response"}, u.QueryResponse, false)
	c.unixTLS(u)
	c.tlsFiles([]string{"unix", "tls_config"}, &u.TLSConfig)
}

// unixTLS: a socket path is no host name, so TLS over a unix socket needs
// the name to verify the server as; without it the handshake cannot start.
func (c *checker) unixTLS(u *UnixProbe) {
	usesTLS := u.TLS || slices.ContainsFunc(u.QueryResponse, func(q QueryResponse) bool { return q.StartTLS })
	if usesTLS && u.TLSConfig.ServerName == "" && !u.TLSConfig.InsecureSkipVerify {
		c.warnf([]string{"unix", "tls_config"}, "TLS over a unix socket needs server_name (the name on the server's certificate), or insecure_skip_verify; without either every probe fails")
	}
}

func sameLabelNames(a, b []Label) bool {
	return slices.EqualFunc(a, b, func(x, y Label) bool { return x.Name == y.Name })
}
