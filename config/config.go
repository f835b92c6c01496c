// Package config holds sonde's configuration schema: the blackbox_exporter
// module format, decoded strictly, with blackbox's defaults, and validated so
// that every error names the module, the field and the line.
package config

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/alecthomas/units"
	pconfig "github.com/prometheus/common/config"
	"go.yaml.in/yaml/v3"

	"github.com/sonde-exporter/sonde/internal/tlsfiles"
)

// Config is a whole configuration file.
type Config struct {
	Modules map[string]Module `yaml:"modules"`
	// Warnings are the problems found in modules that blackbox_exporter
	// would load all the same (its own checks are errors): each an *Error
	// naming the line, module and field. The modules load and probe as
	// blackbox would probe them; Strict turns warnings into errors.
	Warnings []error `yaml:"-"`

	// tlsFiles are the CA pools and client key pairs the tls_configs
	// name, parsed once while the file loaded, for the prober to share.
	tlsFiles *tlsfiles.Cache
}

// TLSFiles returns what the configuration's tls_configs parsed while it
// loaded: nil for a Config not made by Load.
func (c *Config) TLSFiles() *tlsfiles.Cache { return c.tlsFiles }

// Strict returns the warnings as one error, for --config.strict: nil when
// there are none.
func (c *Config) Strict() error {
	if len(c.Warnings) == 0 {
		return nil
	}
	return fmt.Errorf("%d warnings, which strict checking refuses:\n%w", len(c.Warnings), errors.Join(c.Warnings...))
}

// Module is one named probe configuration.
type Module struct {
	Prober  string        `yaml:"prober,omitempty"`
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// DNSResolver, a sonde addition, is the DNS server every prober's
	// resolve phase asks instead of the system resolver: "ip[:port]", or
	// "udp://ip[:port]" / "tcp://ip[:port]" (port 53).
	DNSResolver string `yaml:"dns_resolver,omitempty"`
	// Retry, a sonde addition, lets a failed attempt be tried again
	// within the same probe deadline.
	Retry Retry `yaml:"retry,omitempty"`
	// Targets, a sonde addition, limits what the module may probe: allow
	// and deny rules checked against the target's name and the address
	// actually dialled, and the URL schemes allowed.
	Targets Targets `yaml:"targets,omitempty"`
	// MaxConcurrent, a sonde addition, caps the module's probes running
	// at once; excess probes wait for a slot within their deadline. 0
	// means no limit of the module's own (--probe.max-concurrent still
	// applies).
	MaxConcurrent int `yaml:"max_concurrent,omitempty"`
	// PropagateTraceContext, a sonde addition, sends the probe's trace
	// context (a W3C traceparent) with the request of an http, websocket
	// or grpc probe, so that the target's own traces join the probe's.
	PropagateTraceContext bool `yaml:"propagate_trace_context,omitempty"`
	// OCSP, a sonde addition, is how certificate revocation is checked
	// after a TLS handshake, whichever prober made it.
	OCSP      OCSP           `yaml:"ocsp,omitempty"`
	HTTP      HTTPProbe      `yaml:"http,omitempty"`
	TCP       TCPProbe       `yaml:"tcp,omitempty"`
	ICMP      ICMPProbe      `yaml:"icmp,omitempty"`
	DNS       DNSProbe       `yaml:"dns,omitempty"`
	GRPC      GRPCProbe      `yaml:"grpc,omitempty"`
	Unix      UnixProbe      `yaml:"unix,omitempty"`
	Websocket WebsocketProbe `yaml:"websocket,omitempty"`
}

// HTTPProbe is the `http:` section.
type HTTPProbe struct {
	ValidStatusCodes             []int                    `yaml:"valid_status_codes,omitempty"`
	ValidHTTPVersions            []string                 `yaml:"valid_http_versions,omitempty"`
	IPProtocol                   string                   `yaml:"preferred_ip_protocol,omitempty"`
	IPProtocolFallback           bool                     `yaml:"ip_protocol_fallback"`
	SkipResolvePhaseWithProxy    bool                     `yaml:"skip_resolve_phase_with_proxy,omitempty"`
	NoFollowRedirects            *bool                    `yaml:"no_follow_redirects,omitempty"`
	FailIfSSL                    bool                     `yaml:"fail_if_ssl,omitempty"`
	FailIfNotSSL                 bool                     `yaml:"fail_if_not_ssl,omitempty"`
	Method                       string                   `yaml:"method,omitempty"`
	Headers                      map[string]string        `yaml:"headers,omitempty"`
	FailIfBodyMatchesRegexp      []Regexp                 `yaml:"fail_if_body_matches_regexp,omitempty"`
	FailIfBodyNotMatchesRegexp   []Regexp                 `yaml:"fail_if_body_not_matches_regexp,omitempty"`
	FailIfBodyJSONMatchesCEL     *CELProgram              `yaml:"fail_if_body_json_matches_cel,omitempty"`
	FailIfBodyJSONNotMatchesCEL  *CELProgram              `yaml:"fail_if_body_json_not_matches_cel,omitempty"`
	FailIfHeaderMatchesRegexp    []HeaderMatch            `yaml:"fail_if_header_matches,omitempty"`
	FailIfHeaderNotMatchesRegexp []HeaderMatch            `yaml:"fail_if_header_not_matches,omitempty"`
	Body                         string                   `yaml:"body,omitempty"`
	BodyFile                     string                   `yaml:"body_file,omitempty"`
	HTTPClientConfig             pconfig.HTTPClientConfig `yaml:"http_client_config,inline"`
	Compression                  string                   `yaml:"compression,omitempty"`
	BodySizeLimit                ByteSize                 `yaml:"body_size_limit,omitempty"`
	EnableHTTP3                  bool                     `yaml:"enable_http3,omitempty"`
}

// HeaderMatch is one entry of fail_if_header_matches / _not_matches.
type HeaderMatch struct {
	Header       string `yaml:"header,omitempty"`
	Regexp       Regexp `yaml:"regexp,omitempty"`
	AllowMissing bool   `yaml:"allow_missing,omitempty"`
}

// Label is a name/value pair a query_response step adds to probe_expect_info.
type Label struct {
	Name  string `yaml:"name,omitempty"`
	Value string `yaml:"value,omitempty"`
}

// QueryResponse is one step of a tcp, unix or websocket script.
type QueryResponse struct {
	Expect      Regexp  `yaml:"expect,omitempty"`
	ExpectBytes string  `yaml:"expect_bytes,omitempty"`
	Labels      []Label `yaml:"labels,omitempty"`
	Send        string  `yaml:"send,omitempty"`
	StartTLS    bool    `yaml:"starttls,omitempty"`
}

// TCPProbe is the `tcp:` section.
type TCPProbe struct {
	IPProtocol         string            `yaml:"preferred_ip_protocol,omitempty"`
	IPProtocolFallback bool              `yaml:"ip_protocol_fallback"`
	SourceIPAddress    string            `yaml:"source_ip_address,omitempty"`
	QueryResponse      []QueryResponse   `yaml:"query_response,omitempty"`
	TLS                bool              `yaml:"tls,omitempty"`
	TLSConfig          pconfig.TLSConfig `yaml:"tls_config,omitempty"`
	// StartTLSPreset, a sonde addition, runs a protocol's STARTTLS
	// exchange (StartTLSPresets) before query_response.
	StartTLSPreset string `yaml:"starttls_preset,omitempty"`
}

// Retry is the module-level `retry:` block. Attempts 1 (the default) is
// blackbox's behaviour: no retry.
type Retry struct {
	Attempts       int           `yaml:"attempts,omitempty"`
	InitialBackoff time.Duration `yaml:"initial_backoff,omitempty"`
	MaxBackoff     time.Duration `yaml:"max_backoff,omitempty"`
	Multiplier     float64       `yaml:"multiplier,omitempty"`
	Jitter         float64       `yaml:"jitter,omitempty"`
	// On lists the failure classes worth another attempt.
	On []string `yaml:"on,omitempty"`
}

// DefaultRetry returns the retry defaults: one attempt, and the policy
// that applies once attempts is raised.
func DefaultRetry() Retry {
	return Retry{
		Attempts:       1,
		InitialBackoff: 100 * time.Millisecond,
		MaxBackoff:     2 * time.Second,
		Multiplier:     2,
		Jitter:         0.2,
		On:             slices.Clone(DefaultRetryOn),
	}
}

// DefaultRetryOn are the classes retried unless `on` says otherwise: the
// ones a second attempt can plausibly change.
var DefaultRetryOn = []string{"dns", "connect", "timeout", "protocol"}

// RetryableClasses may be listed in retry.on. assertion and prober are
// not: a failed check or sonde's own inability do not change on retry.
var RetryableClasses = []string{"dns", "connect", "timeout", "tls", "protocol", "status"}

// OCSP is the module-level `ocsp:` block.
type OCSP struct {
	// Check is none, stapled (read the response the server staples; the
	// default) or query (also ask the leaf's OCSP responder when nothing
	// is stapled).
	Check          string        `yaml:"check,omitempty"`
	RequireStapled bool          `yaml:"require_stapled,omitempty"`
	FailOnUnknown  bool          `yaml:"fail_on_unknown,omitempty"`
	CacheTTL       time.Duration `yaml:"cache_ttl,omitempty"`
}

// OCSP checks.
const (
	OCSPNone    = "none"
	OCSPStapled = "stapled"
	OCSPQuery   = "query"
)

// OCSPChecks are the values of ocsp.check.
var OCSPChecks = []string{OCSPNone, OCSPStapled, OCSPQuery}

// DefaultOCSP reads stapled responses, and would cache queried answers for
// at most an hour.
func DefaultOCSP() OCSP { return OCSP{Check: OCSPStapled, CacheTTL: time.Hour} }

// StartTLSPresets are the protocols starttls_preset knows.
var StartTLSPresets = []string{"smtp", "imap", "pop3", "ftp", "postgres"}

// ICMPProbe is the `icmp:` section.
type ICMPProbe struct {
	IPProtocol         string `yaml:"preferred_ip_protocol,omitempty"`
	IPProtocolFallback bool   `yaml:"ip_protocol_fallback"`
	SourceIPAddress    string `yaml:"source_ip_address,omitempty"`
	PayloadSize        int    `yaml:"payload_size,omitempty"`
	DontFragment       bool   `yaml:"dont_fragment,omitempty"`
	TTL                int    `yaml:"ttl,omitempty"`
	// Packets, PacketInterval and MinSuccessRatio are sonde additions:
	// how many echo requests a probe sends, how far apart, and the share
	// of replies the probe needs to succeed (0: any reply will do).
	Packets         int           `yaml:"packets,omitempty"`
	PacketInterval  time.Duration `yaml:"packet_interval,omitempty"`
	MinSuccessRatio float64       `yaml:"min_success_ratio,omitempty"`
}

// Defaults of the icmp additions.
const (
	DefaultICMPPackets        = 1
	DefaultICMPPacketInterval = time.Second
)

// DNSProbe is the `dns:` section.
type DNSProbe struct {
	IPProtocol         string            `yaml:"preferred_ip_protocol,omitempty"`
	IPProtocolFallback bool              `yaml:"ip_protocol_fallback"`
	DNSOverTLS         bool              `yaml:"dns_over_tls,omitempty"`
	TLSConfig          pconfig.TLSConfig `yaml:"tls_config,omitempty"`
	SourceIPAddress    string            `yaml:"source_ip_address,omitempty"`
	TransportProtocol  string            `yaml:"transport_protocol,omitempty"`
	QueryClass         string            `yaml:"query_class,omitempty"`
	QueryName          string            `yaml:"query_name,omitempty"`
	QueryType          string            `yaml:"query_type,omitempty"`
	Recursion          bool              `yaml:"recursion_desired"`
	ValidRcodes        []string          `yaml:"valid_rcodes,omitempty"`
	ValidateAnswer     DNSRRValidator    `yaml:"validate_answer_rrs,omitempty"`
	ValidateAuthority  DNSRRValidator    `yaml:"validate_authority_rrs,omitempty"`
	ValidateAdditional DNSRRValidator    `yaml:"validate_additional_rrs,omitempty"`
	// DoHMethod, a sonde addition, is the HTTP method of DNS over HTTPS
	// (transport_protocol: https): POST (the default) or GET.
	DoHMethod string `yaml:"doh_method,omitempty"`
}

// IsZero reports whether the section holds nothing of its own, for the
// YAML encoder's omitempty: a loaded dns section without query_name was not
// written (a written one must have it), so it only holds the defaults, and
// leaving it out keeps /config loadable, as blackbox requires query_name
// in every dns section written.
func (d DNSProbe) IsZero() bool { return d.QueryName == "" }

// DNSRRValidator holds the regexp rules applied to one section of a DNS
// answer, each record in its text form.
type DNSRRValidator struct {
	FailIfMatchesRegexp     []RRPattern `yaml:"fail_if_matches_regexp,omitempty"`
	FailIfAllMatchRegexp    []RRPattern `yaml:"fail_if_all_match_regexp,omitempty"`
	FailIfNotMatchesRegexp  []RRPattern `yaml:"fail_if_not_matches_regexp,omitempty"`
	FailIfNoneMatchesRegexp []RRPattern `yaml:"fail_if_none_matches_regexp,omitempty"`
}

// RRRule is one rule of a DNSRRValidator: its key and its expressions.
type RRRule struct {
	Key      string // e.g. fail_if_matches_regexp
	Patterns []RRPattern
}

// Rules returns the validator's rules in the order blackbox applies them.
func (v *DNSRRValidator) Rules() []RRRule {
	return []RRRule{
		{"fail_if_matches_regexp", v.FailIfMatchesRegexp},
		{"fail_if_all_match_regexp", v.FailIfAllMatchRegexp},
		{"fail_if_not_matches_regexp", v.FailIfNotMatchesRegexp},
		{"fail_if_none_matches_regexp", v.FailIfNoneMatchesRegexp},
	}
}

// GRPCProbe is the `grpc:` section.
type GRPCProbe struct {
	Service             string              `yaml:"service,omitempty"`
	TLS                 bool                `yaml:"tls,omitempty"`
	TLSConfig           pconfig.TLSConfig   `yaml:"tls_config,omitempty"`
	IPProtocolFallback  bool                `yaml:"ip_protocol_fallback"`
	PreferredIPProtocol string              `yaml:"preferred_ip_protocol,omitempty"`
	Metadata            map[string][]string `yaml:"metadata,omitempty"`
}

// UnixProbe is the `unix:` section.
type UnixProbe struct {
	QueryResponse []QueryResponse   `yaml:"query_response,omitempty"`
	TLS           bool              `yaml:"tls,omitempty"`
	TLSConfig     pconfig.TLSConfig `yaml:"tls_config,omitempty"`
}

// WebsocketProbe is the `websocket:` section.
type WebsocketProbe struct {
	IPProtocol         string            `yaml:"preferred_ip_protocol,omitempty"`
	IPProtocolFallback bool              `yaml:"ip_protocol_fallback"`
	HTTPConfig         WebsocketHTTP     `yaml:"http_config,omitempty"`
	Headers            map[string]string `yaml:"headers,omitempty"`
	QueryResponse      []QueryResponse   `yaml:"query_response,omitempty"`
}

// WebsocketHTTP is the HTTP part of a websocket handshake.
type WebsocketHTTP struct {
	BasicAuth   *pconfig.BasicAuth `yaml:"basic_auth,omitempty"`
	BearerToken pconfig.Secret     `yaml:"bearer_token,omitempty"`
	TLSConfig   pconfig.TLSConfig  `yaml:"tls_config,omitempty"`
	Headers     map[string]Strings `yaml:"headers,omitempty"`
}

// ByteSize is a number of bytes written with a unit, as blackbox_exporter
// reads them ("512KB", "10MiB", "100B"; KB means KiB). A number without a
// unit is refused, as blackbox refuses it.
type ByteSize int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(node *yaml.Node) error {
	v, err := units.ParseBase2Bytes(node.Value)
	if err != nil || node.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a size; write a number with a unit, e.g. 512KB, 10MB or 100B", node.Line, node.Value)
	}
	*b = ByteSize(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (b ByteSize) MarshalYAML() (any, error) { return units.Base2Bytes(b).String(), nil }

// Strings is a list of strings that may also be written as one string.
type Strings []string

// UnmarshalYAML accepts a scalar or a sequence of scalars.
func (s *Strings) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind == yaml.ScalarNode {
		*s = Strings{node.Value}
		return nil
	}
	var list []string
	if err := node.Decode(&list); err != nil {
		return err
	}
	*s = list
	return nil
}

// DefaultICMPTTL is blackbox's default ttl for ICMP probes.
const DefaultICMPTTL = 64

// DefaultModule returns a module with blackbox's defaults in every section,
// so that a module without, say, an `http:` section still probes with
// ip_protocol_fallback on and redirects followed.
func DefaultModule() Module {
	return Module{
		Retry:     DefaultRetry(),
		OCSP:      DefaultOCSP(),
		HTTP:      DefaultHTTPProbe(),
		TCP:       TCPProbe{IPProtocolFallback: true},
		ICMP:      ICMPProbe{IPProtocolFallback: true, TTL: DefaultICMPTTL, Packets: DefaultICMPPackets, PacketInterval: DefaultICMPPacketInterval},
		DNS:       DNSProbe{IPProtocolFallback: true, Recursion: true},
		GRPC:      GRPCProbe{IPProtocolFallback: true},
		Websocket: WebsocketProbe{IPProtocolFallback: true},
	}
}

// DefaultHTTPProbe returns blackbox's http defaults: fallback to the other IP
// family, follow redirects, HTTP/2 allowed.
func DefaultHTTPProbe() HTTPProbe {
	return HTTPProbe{IPProtocolFallback: true, HTTPClientConfig: pconfig.DefaultHTTPClientConfig}
}

// UnmarshalYAML lays down blackbox's defaults in every section before the
// module's fields are decoded over them; yaml.v3 keeps the fields of a
// section that the file does not set. Unknown keys are caught beforehand by
// checkKnownFields and every rule is checked afterwards by validateModule,
// which knows the module's name.
func (m *Module) UnmarshalYAML(node *yaml.Node) error {
	*m = DefaultModule()
	type plain Module
	return node.Decode((*plain)(m))
}
