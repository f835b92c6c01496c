package config

import (
	"errors"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// errorCase is one configuration with one problem. want is the start of the
// single message Load must produce: "line N: module "M": field.path: ",
// then the explanation; more lists further fragments the message must hold.
type errorCase struct {
	name string
	src  string
	want string
	more []string
	// warn says the problem is a warning: the file loads, as in
	// blackbox_exporter, and the message is its one warning.
	warn bool
}

// module wraps the lines of one module called m, so that the module's own
// lines start on line 3 ("modules:" is 1, "  m:" is 2).
func module(lines ...string) string {
	return yml(append([]string{"modules:", "  m:"}, lines...)...)
}

// httpModule is module() with "prober: http" (line 3) and "http:" (line 4),
// so that the lines given start on line 5.
func httpModule(lines ...string) string {
	return module(append([]string{"    prober: http", "    http:"}, lines...)...)
}

func runErrorCases(t *testing.T, cases []errorCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.warn {
				checkWarning(t, tc)
				return
			}
			cfg, err := Load([]byte(tc.src))
			if err == nil {
				t.Fatalf("Load succeeded with %d modules; want an error starting %q\nconfig:\n%s", len(cfg.Modules), tc.want, tc.src)
			}
			if cfg != nil {
				t.Errorf("Load returned a config along with the error")
			}
			got := problems(err)
			if len(got) != 1 {
				t.Fatalf("got %d problems, want 1:\n%s", len(got), strings.Join(got, "\n"))
			}
			if !strings.HasPrefix(got[0], tc.want) {
				t.Errorf("message:\n  %s\nwant it to start with:\n  %s", got[0], tc.want)
			}
			for _, m := range tc.more {
				if !strings.Contains(got[0], m) {
					t.Errorf("message:\n  %s\nwant it to contain:\n  %s", got[0], m)
				}
			}
		})
	}
}

// checkWarning loads a case that must load with one warning, and checks
// that strict checking refuses it.
func checkWarning(t *testing.T, tc errorCase) {
	t.Helper()
	cfg, err := Load([]byte(tc.src))
	if err != nil {
		t.Fatalf("Load failed; want it to load with a warning starting %q:\n%v", tc.want, err)
	}
	if len(cfg.Warnings) != 1 {
		t.Fatalf("got %d warnings, want 1:\n%v", len(cfg.Warnings), errors.Join(cfg.Warnings...))
	}
	got := cfg.Warnings[0].Error()
	if !strings.HasPrefix(got, tc.want) {
		t.Errorf("warning:\n  %s\nwant it to start with:\n  %s", got, tc.want)
	}
	for _, m := range tc.more {
		if !strings.Contains(got, m) {
			t.Errorf("warning:\n  %s\nwant it to contain:\n  %s", got, m)
		}
	}
	if err := cfg.Strict(); err == nil || !strings.Contains(err.Error(), got) {
		t.Errorf("Strict() = %v; want it to refuse the file with the warning", err)
	}
}

func TestStructureErrors(t *testing.T) {
	runErrorCases(t, []errorCase{
		{
			name: "not YAML",
			src:  yml("modules:", "\tm:", "    prober: http"),
			want: "not valid YAML: yaml: line 2: found character that cannot start any token",
		},
		{
			name: "file is a list",
			src:  yml("- prober: http"),
			want: "line 1: the file must be a mapping with a `modules:` key, found a list",
		},
		{
			name: "file is a scalar",
			src:  yml("http_2xx"),
			want: "line 1: the file must be a mapping with a `modules:` key, found the value \"http_2xx\"",
		},
		{
			name: "modules is a list",
			src:  yml("modules:", "  - http_2xx"),
			want: "line 2: modules: must be a mapping of module name to module, found a list",
		},
		{
			name: "modules is a scalar",
			src:  yml("modules: http_2xx"),
			want: "line 1: modules: must be a mapping of module name to module, found the value \"http_2xx\"",
		},
		{
			name: "module is a scalar",
			src:  yml("modules:", "  m: http"),
			want: "line 2: module \"m\": must be a mapping with at least `prober:`, found the value \"http\"",
		},
		{
			name: "module is empty",
			src:  yml("modules:", "  m:"),
			want: `line 2: module "m": prober: missing, so every scrape of this module is answered 400 Unknown prober`,
			warn: true,
		},
		{
			name: "module is a list",
			src:  yml("modules:", "  m: [http]"),
			want: "line 2: module \"m\": must be a mapping with at least `prober:`, found a list",
		},
	})
}

func TestUnknownAndRepeatedKeys(t *testing.T) {
	runErrorCases(t, []errorCase{
		{
			name: "top level, with suggestion",
			src:  yml("module:", "  m:", "    prober: http"),
			want: `line 1: top level: unknown field "module" (did you mean "modules"?)`,
		},
		{
			name: "module level, with suggestion",
			src:  module("    prober: http", "    timout: 5s"),
			want: `line 4: module "m": unknown field "timout" (did you mean "timeout"?)`,
		},
		{
			name: "section, with suggestion",
			src:  httpModule("      metod: GET"),
			want: `line 5: module "m": http: unknown field "metod" (did you mean "method"?)`,
		},
		{
			name: "suggestion ignores case",
			src:  httpModule("      Method: GET"),
			want: `line 5: module "m": http: unknown field "Method" (did you mean "method"?)`,
		},
		{
			name: "inline http client config key, with suggestion",
			src:  httpModule("      basic_auht: {username: u}"),
			want: `line 5: module "m": http: unknown field "basic_auht" (did you mean "basic_auth"?)`,
		},
		{
			name: "nested in tls_config",
			src:  httpModule("      tls_config:", "        ca_flie: /ca.pem"),
			want: `line 6: module "m": http.tls_config: unknown field "ca_flie" (did you mean "ca_file"?)`,
		},
		{
			name: "inside a list item",
			src: module("    prober: tcp", "    tcp:", "      query_response:",
				"        - send: x", "        - expct: y", "          send: z"),
			want: `line 7: module "m": tcp.query_response[1]: unknown field "expct" (did you mean "expect"?)`,
		},
		{
			name: "section without suggestion lists the known fields",
			src:  module("    prober: icmp", "    icmp:", "      frobnicate_everything: true"),
			want: `line 5: module "m": icmp: unknown field "frobnicate_everything"; known fields are: `,
			more: []string{"dont_fragment, ip_protocol_fallback, min_success_ratio, packet_interval, packets, payload_size, preferred_ip_protocol, source_ip_address, ttl"},
		},
		{
			name: "a section blackbox does not have",
			src:  module("    prober: http", "    frobnicate: {}"),
			want: `line 4: module "m": unknown field "frobnicate"; known fields are: `,
			more: []string{"dns, dns_resolver, grpc, http, icmp, max_concurrent, ocsp, prober, propagate_trace_context, retry, targets, tcp, timeout, unix, websocket"},
		},
		{
			name: "module name repeated",
			src:  yml("modules:", "  m:", "    prober: http", "  m:", "    prober: tcp"),
			want: `line 4: modules: key "m" is given twice (first on line 2); keep one`,
		},
	})
}

// TestRepeatedKeyInSection: a key written twice inside a module is reported
// once, by the strict walker, naming the line of the repeat and the module;
// yaml.v3's decoder, which finds it too, is not allowed to repeat it.
func TestRepeatedKeyInSection(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "field",
			src:  httpModule("      method: GET", "      method: POST"),
			want: []string{
				`line 6: module "m": http: key "method" is given twice (first on line 5); keep one`,
			},
		},
		{
			name: "map key",
			src:  httpModule("      headers:", "        X-A: 1", "        X-A: 2"),
			want: []string{
				`line 7: module "m": http.headers: key "X-A" is given twice (first on line 6); keep one`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]byte(tc.src))
			assertEqual(t, "problems", problems(err), tc.want)
		})
	}
}

func TestModuleErrors(t *testing.T) {
	runErrorCases(t, []errorCase{
		{
			name: "missing prober points at the module",
			src:  module("    timeout: 5s"),
			want: `line 2: module "m": prober: missing, so every scrape of this module is answered 400 Unknown prober; set it to one of http, tcp, icmp, dns, grpc, unix, websocket`,
			warn: true,
		},
		{
			name: "unknown prober, with suggestion",
			src:  module("    prober: htp"),
			want: `line 3: module "m": prober: "htp" is not a prober (did you mean "http"?), so every scrape of this module is answered 400 Unknown prober; use one of http, tcp, icmp, dns, grpc, unix, websocket`,
			warn: true,
		},
		{
			name: "unknown prober, close to websocket",
			src:  module("    prober: websockets"),
			want: `line 3: module "m": prober: "websockets" is not a prober (did you mean "websocket"?)`,
			warn: true,
		},
		{
			name: "unknown prober without suggestion",
			src:  module("    prober: smtp-over-carrier-pigeon"),
			want: `line 3: module "m": prober: "smtp-over-carrier-pigeon" is not a prober, so every scrape`,
			warn: true,
		},
		{
			name: "negative timeout",
			src:  module("    prober: http", "    timeout: -5s"),
			want: `line 4: module "m": timeout: -5s is negative, so it is ignored`,
			warn: true,
		},
		{
			name: "bad duration",
			src:  module("    prober: http", "    timeout: 5 seconds"),
			want: `line 4: module "m": timeout: "5 seconds" is not a duration (e.g. 500ms, 5s, 1m30s)`,
		},
		{
			name: "duration without unit",
			src:  module("    prober: http", "    timeout: 5"),
			want: `line 4: module "m": timeout: "5" is not a duration`,
		},
	})
}

func TestTypeErrors(t *testing.T) {
	runErrorCases(t, []errorCase{
		{
			name: "string for an int list",
			src:  httpModule(`      valid_status_codes: "200"`),
			want: `line 5: module "m": http.valid_status_codes: "200" is not a list`,
		},
		{
			name: "word in an int list",
			src:  httpModule("      valid_status_codes:", "        - 200", "        - ok"),
			want: `line 7: module "m": http.valid_status_codes[1]: "ok" is not a whole number`,
		},
		{
			name: "word for a bool",
			src:  httpModule("      ip_protocol_fallback: maybe"),
			want: `line 5: module "m": http.ip_protocol_fallback: "maybe" is not true or false`,
		},
		{
			name: "word for an int",
			src:  module("    prober: icmp", "    icmp:", "      ttl: high"),
			want: `line 5: module "m": icmp.ttl: "high" is not a whole number`,
		},
		{
			name: "scalar for a string map",
			src:  httpModule("      headers: X-A=1"),
			want: `line 5: module "m": http.headers: "X-A=1" is not a mapping`,
		},
		{
			// yaml.v3 names no value for a mapping or a list, and the field
			// is taken from the first key on the line, so the path runs one
			// step too deep; the line and module are right.
			name: "mapping for a string",
			src:  httpModule("      method: {verb: GET}"),
			want: `line 5: module "m": http.method.verb: cannot unmarshal !!map into string`,
		},
		{
			name: "scalar for a section",
			src:  module("    prober: tcp", "    tcp: yes"),
			want: `line 4: module "m": tcp: "yes" is not a section of options (a mapping)`,
		},
		{
			name: "list for a string inside a list item",
			src: module("    prober: tcp", "    tcp:", "      query_response:",
				"        - send: [a, b]"),
			want: `line 6: module "m": tcp.query_response[0].send[0]: cannot unmarshal !!seq into string`,
		},
	})
}

func TestMatcherErrors(t *testing.T) {
	runErrorCases(t, []errorCase{
		{
			name: "invalid body regexp",
			src:  httpModule("      fail_if_body_matches_regexp:", "        - ok", `        - "(unclosed"`),
			want: `line 7: module "m": http.fail_if_body_matches_regexp[1]: invalid regular expression "(unclosed": `,
			more: []string{"missing closing )", "RE2 syntax"},
		},
		{
			name: "invalid header matcher regexp",
			src:  httpModule("      fail_if_header_matches:", "        - header: X", `          regexp: "a**"`),
			want: `line 7: module "m": http.fail_if_header_matches[0].regexp: invalid regular expression "a**"`,
		},
		{
			name: "invalid tcp expect",
			src:  module("    prober: tcp", "    tcp:", "      query_response:", `        - expect: "[z-a]"`),
			want: `line 6: module "m": tcp.query_response[0].expect: invalid regular expression "[z-a]"`,
		},
		{
			name: "invalid dns rr regexp",
			src: module("    prober: dns", "    dns:", "      query_name: example.com",
				"      validate_answer_rrs:", "        fail_if_none_matches_regexp: ['\\']"),
			want: `line 7: module "m": dns.validate_answer_rrs.fail_if_none_matches_regexp[0]: invalid regular expression`,
			warn: true,
		},
		{
			// CEL's message runs over several lines; the line and field
			// must still come from the first.
			name: "invalid CEL",
			src:  httpModule("      fail_if_body_json_matches_cel: 'body.('"),
			want: `line 5: module "m": http.fail_if_body_json_matches_cel: invalid CEL expression "body.(": `,
			more: []string{"Syntax error"},
		},
		{
			name: "CEL with an undeclared variable",
			src:  httpModule("      fail_if_body_json_not_matches_cel: 'response.ok'"),
			want: `line 5: module "m": http.fail_if_body_json_not_matches_cel: invalid CEL expression "response.ok": `,
			more: []string{"undeclared reference to 'response'"},
		},
		{
			name: "CEL not yielding a bool",
			src:  httpModule("      fail_if_body_json_matches_cel: 'size(body)'"),
			want: `line 5: module "m": http.fail_if_body_json_matches_cel: the expression yields int, not a bool, so every probe that evaluates it fails`,
			warn: true,
		},
		{
			name: "CEL yielding a string",
			src:  httpModule(`      fail_if_body_json_not_matches_cel: '"ok"'`),
			want: `line 5: module "m": http.fail_if_body_json_not_matches_cel: the expression yields string, not a bool`,
			warn: true,
		},
	})
}

func TestHTTPErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing-body.json")
	runErrorCases(t, []errorCase{
		{
			name: "bad preferred_ip_protocol",
			src:  httpModule("      preferred_ip_protocol: ipv4"),
			want: `line 5: module "m": http.preferred_ip_protocol: "ipv4" is read as ip4, as blackbox_exporter reads anything but ip6; write ip4 or ip6`,
			warn: true,
		},
		{
			name: "status code too large",
			src:  httpModule("      valid_status_codes:", "        - 200", "        - 999"),
			want: `line 7: module "m": http.valid_status_codes[1]: 999 is not an HTTP status code (100-599), so it never matches`,
			warn: true,
		},
		{
			name: "status code too small",
			src:  httpModule("      valid_status_codes: [99]"),
			want: `line 5: module "m": http.valid_status_codes[0]: 99 is not an HTTP status code (100-599)`,
			warn: true,
		},
		{
			name: "bad valid_http_versions",
			src:  httpModule("      valid_http_versions:", "        - HTTP/1.1", "        - HTTP/2"),
			want: `line 7: module "m": http.valid_http_versions[1]: "HTTP/2" never matches; use one of HTTP/1.0, HTTP/1.1, HTTP/2.0, HTTP/3.0`,
			warn: true,
		},
		{
			name: "bad method",
			src:  httpModule(`      method: "GET /"`),
			want: `line 5: module "m": http.method: "GET /" is not a valid HTTP method, so every probe fails`,
			warn: true,
		},
		{
			name: "bad header name",
			src:  httpModule("      headers:", `        "X Bad": 1`),
			want: `line 6: module "m": http.headers.X Bad: "X Bad" is not a valid header name, so every probe fails`,
			warn: true,
		},
		{
			name: "bad header value",
			src:  httpModule("      headers:", `        X-Evil: "a\r\nInjected: yes"`),
			want: `line 6: module "m": http.headers.X-Evil: the value contains a line break or NUL byte, so every probe fails`,
			warn: true,
		},
		{
			name: "Accept-Encoding that refuses the compression",
			src:  httpModule("      compression: gzip", "      headers:", "        accept-encoding: br, deflate"),
			want: `line 7: module "m": http.headers.accept-encoding: "br, deflate" does not accept the configured compression "gzip"`,
		},
		{
			name: "Accept-Encoding with q=0 for the compression",
			src:  httpModule("      compression: br", "      headers:", "        Accept-Encoding: gzip, br;q=0"),
			want: `line 7: module "m": http.headers.Accept-Encoding: "gzip, br;q=0" does not accept the configured compression "br"`,
		},
		{
			name: "body and body_file",
			src:  httpModule("      body: '{}'", "      body_file: /dev/null"),
			want: `line 6: module "m": http.body_file: body and body_file are mutually exclusive; keep one`,
		},
		{
			name: "unreadable body_file",
			src:  httpModule("      body_file: " + missing),
			want: `line 5: module "m": http.body_file: cannot be read (` + missing + `: no such file or directory), so probes fail until it can`,
			warn: true,
		},
		{
			name: "bad compression",
			src:  httpModule("      compression: zip"),
			want: `line 5: module "m": http.compression: "zip" is not supported, so every probe fails; use one of gzip, br, deflate, identity`,
			warn: true,
		},
		{
			name: "fail_if_ssl and fail_if_not_ssl",
			src:  httpModule("      fail_if_not_ssl: true", "      fail_if_ssl: true"),
			want: `line 6: module "m": http.fail_if_ssl: fail_if_ssl and fail_if_not_ssl together fail every probe; keep one`,
			warn: true,
		},
		{
			name: "header matcher without header",
			src:  httpModule("      fail_if_header_matches:", "        - regexp: x"),
			want: `line 6: module "m": http.fail_if_header_matches[0]: header must be set`,
		},
		{
			name: "header matcher without regexp",
			src:  httpModule("      fail_if_header_not_matches:", "        - header: X-A", "        - header: X-B", "          regexp: b"),
			want: `line 6: module "m": http.fail_if_header_not_matches[0]: regexp must be set`,
		},
		{
			name: "enable_http3 with HTTP/2 left on",
			src:  httpModule("      enable_http3: true"),
			want: `line 5: module "m": http.enable_http3: enable_http3 needs enable_http2: false`,
		},
		{
			name: "enable_http3 with TLS 1.2 at most",
			src:  httpModule("      enable_http3: true", "      enable_http2: false", "      tls_config: {max_version: TLS12}"),
			want: `line 7: module "m": http.tls_config.max_version: is below TLS13, which HTTP/3 runs on, so every probe fails`,
			warn: true,
		},
		{
			name: "HTTP/3.0 valid without enable_http3",
			src:  httpModule("      valid_http_versions: [HTTP/3.0]"),
			want: `line 5: module "m": http.valid_http_versions[0]: HTTP/3.0 can only be valid with enable_http3: true`,
		},
		{
			name: "HTTP/1.1 valid with enable_http3",
			src:  httpModule("      enable_http3: true", "      enable_http2: false", "      valid_http_versions: [HTTP/3.0, HTTP/1.1]"),
			want: `line 7: module "m": http.valid_http_versions[1]: HTTP/1.1 is never valid with enable_http3: true`,
		},
		{
			name: "bad proxy scheme",
			src:  httpModule("      proxy_url: ftp://proxy.example.com"),
			want: `line 5: module "m": http.proxy_url: scheme "ftp" is not supported, so every probe fails; use http, https or socks5`,
			warn: true,
		},
		{
			name: "rules apply when the prober is http and the section is absent elsewhere",
			src:  yml("modules:", "  m:", "    prober: tcp", "    http:", "      method: 'G T'"),
			want: `line 5: module "m": http.method: "G T" is not a valid HTTP method`,
			warn: true,
		},
	})
}

// TestHTTPClientConfigErrors: prometheus/common's own rules, reported on the
// line of the `http:` key, since they concern several keys at once.
func TestHTTPClientConfigErrors(t *testing.T) {
	runErrorCases(t, []errorCase{
		{
			name: "basic_auth and bearer_token",
			src:  httpModule("      basic_auth: {username: u, password: p}", "      bearer_token: t"),
			want: `line 4: module "m": http: at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured`,
		},
		{
			name: "bearer_token and bearer_token_file",
			src:  httpModule("      bearer_token: t", "      bearer_token_file: /t"),
			want: `line 4: module "m": http: at most one of bearer_token & bearer_token_file must be configured`,
		},
		{
			name: "authorization and bearer_token",
			src:  httpModule("      authorization: {credentials: c}", "      bearer_token: t"),
			want: `line 4: module "m": http: authorization is not compatible with bearer_token & bearer_token_file`,
		},
		{
			name: "authorization type basic",
			src:  httpModule("      authorization: {type: Basic, credentials: c}"),
			want: `line 4: module "m": http: authorization type cannot be set to "basic", use "basic_auth" instead`,
		},
		{
			name: "oauth2 without client_id",
			src:  httpModule("      oauth2: {token_url: https://t}"),
			want: `line 4: module "m": http: oauth2 client_id must be configured`,
		},
		{
			name: "no_proxy without proxy_url",
			src:  httpModule("      no_proxy: localhost"),
			want: `line 4: module "m": http: if no_proxy is configured, proxy_url must also be configured`,
		},
		{
			name: "proxy_from_environment and proxy_url",
			src:  httpModule("      proxy_from_environment: true", "      proxy_url: http://p"),
			want: `line 4: module "m": http: if proxy_from_environment is configured, proxy_url must not be configured`,
		},
		{
			name: "proxy_connect_header without a proxy",
			src:  httpModule("      proxy_connect_header: {X-A: [b]}"),
			want: `line 4: module "m": http: if proxy_connect_header is configured, proxy_url or proxy_from_environment must also be configured`,
		},
		{
			name: "reserved http_headers",
			src:  httpModule("      http_headers:", "        host: {values: [x]}"),
			want: `line 4: module "m": http: setting header "Host" is not allowed`,
		},
	})
}

// TestTLSConfigErrors: prometheus/common checks tls_config while it is being
// decoded and its errors carry no position, so the best Load can do is the
// module's line and name.
func TestTLSConfigErrors(t *testing.T) {
	runErrorCases(t, []errorCase{
		{
			name: "cert without key",
			src:  httpModule("      tls_config:", "        cert_file: /c.pem"),
			want: `line 2: module "m": exactly one of key or key_file must be configured when a client certificate is configured`,
		},
		{
			name: "unknown TLS version",
			src:  module("    prober: tcp", "    tcp:", "      tls_config:", "        min_version: TLS14"),
			want: `line 2: module "m": unknown TLS version: TLS14`,
		},
		{
			name: "bad body_size_limit",
			src:  httpModule("      body_size_limit: lots"),
			want: `line 5: module "m": http.body_size_limit: "lots" is not a size; write a number with a unit, e.g. 512KB, 10MB or 100B`,
		},
		{
			name: "body_size_limit without a unit",
			src:  httpModule("      body_size_limit: 1024"),
			want: `line 5: module "m": http.body_size_limit: "1024" is not a size`,
		},
	})
}

func TestQueryResponseErrors(t *testing.T) {
	var cases []errorCase
	// The same rules hold for the three probers that run scripts.
	for _, prober := range []string{"tcp", "unix", "websocket"} {
		steps := func(lines ...string) string {
			return module(append([]string{"    prober: " + prober, "    " + prober + ":", "      query_response:"}, lines...)...)
		}
		at := func(line int, path string) string {
			return "line " + strconv.Itoa(line) + `: module "m": ` + prober + ".query_response" + path + ": "
		}
		// blackbox loads these scripts and runs them as written; only
		// websocket, sonde's own prober, refuses them.
		warn := prober != "websocket"
		cases = append(cases,
			errorCase{
				name: prober + ": expect and expect_bytes",
				src:  steps("        - send: hi", "        - expect: ok", "          expect_bytes: ok"),
				want: at(7, "[1]") + "expect and expect_bytes are mutually exclusive in one step",
			},
			errorCase{
				name: prober + ": empty step",
				src:  steps("        - send: hi", "        - {}"),
				want: at(7, "[1]") + "the step does nothing; give it expect, expect_bytes, send or starttls",
				warn: warn,
			},
			errorCase{
				name: prober + ": labels only",
				src:  steps("        - labels: [{name: a, value: b}]"),
				want: at(6, "[0]") + "the step does nothing",
				warn: warn,
			},
			errorCase{
				name: prober + ": label without a name",
				src:  steps("        - expect: ok", "          labels:", "            - name: good", "            - value: orphan"),
				want: at(9, "[0].labels[1]") + `"" cannot be a label name`,
				warn: warn,
			},
			errorCase{
				name: prober + ": reserved label name",
				src:  steps("        - expect: ok", "          labels:", "            - name: __name__"),
				want: at(8, "[0].labels[0]") + `"__name__" cannot be a label name`,
				warn: warn,
			},
		)
	}
	runErrorCases(t, cases)

	// Classic Prometheus names load without a word; others that
	// Prometheus 3 accepts load with a warning, as blackbox exports them.
	for _, name := range []string{"server", "_x", "Server_2"} {
		mustLoad(t, module("    prober: tcp", "    tcp:", "      query_response:",
			"        - expect: ok", "          labels: [{name: "+strconv.Quote(name)+", value: v}]"))
	}
	for _, name := range []string{"1st", "http.status", "ünïcode", "a-b"} {
		checkWarning(t, errorCase{
			src: module("    prober: tcp", "    tcp:", "      query_response:",
				"        - expect: ok", "          labels: [{name: "+strconv.Quote(name)+", value: v}]"),
			want: `line 7: module "m": tcp.query_response[0].labels[0]: ` + strconv.Quote(name) + ` is not a classic label name`,
		})
	}
}

func TestSourceAndProtocolErrors(t *testing.T) {
	var cases []errorCase
	for _, prober := range []string{"http", "tcp", "icmp", "dns", "grpc", "websocket"} {
		extra := []string{}
		if prober == "dns" {
			extra = []string{"      query_name: example.com"}
		}
		cases = append(cases, errorCase{
			name: prober + ": bad preferred_ip_protocol",
			src:  module(append([]string{"    prober: " + prober, "    " + prober + ":", "      preferred_ip_protocol: ip5"}, extra...)...),
			want: `line 5: module "m": ` + prober + `.preferred_ip_protocol: "ip5" is read as ip4`,
			warn: prober != "websocket",
		})
		if prober == "websocket" {
			cases[len(cases)-1].want = `line 5: module "m": websocket.preferred_ip_protocol: "ip5" is not valid; use ip4 or ip6`
		}
	}
	for _, prober := range []string{"tcp", "icmp", "dns"} {
		extra := []string{}
		if prober == "dns" {
			extra = []string{"      query_name: example.com"}
		}
		cases = append(cases, errorCase{
			name: prober + ": bad source_ip_address",
			src:  module(append([]string{"    prober: " + prober, "    " + prober + ":", "      source_ip_address: 10.0.0.256"}, extra...)...),
			want: `line 5: module "m": ` + prober + `.source_ip_address: "10.0.0.256" is not an IP address, so every probe fails`,
			warn: true,
		})
	}
	runErrorCases(t, cases)
}

func TestICMPErrors(t *testing.T) {
	icmp := func(line string) string { return module("    prober: icmp", "    icmp:", line) }
	runErrorCases(t, []errorCase{
		{name: "ttl too large", src: icmp("      ttl: 256"), want: `line 5: module "m": icmp.ttl: must be between 0 and 255, got 256`},
		{name: "ttl negative", src: icmp("      ttl: -1"), want: `line 5: module "m": icmp.ttl: must be between 0 and 255, got -1`},
		{name: "payload too large for IPv4", src: icmp("      payload_size: 65508"), want: `line 5: module "m": icmp.payload_size: 65508 bytes do not fit an IPv4 echo request, so probes of IPv4 targets fail; use 0 to 65507`, warn: true},
		{name: "payload too large", src: icmp("      payload_size: 65528"), want: `line 5: module "m": icmp.payload_size: 65528 bytes do not fit an echo request, so every probe fails`, warn: true},
		{name: "payload negative", src: icmp("      payload_size: -8"), want: `line 5: module "m": icmp.payload_size: -8 is negative, so every probe fails`, warn: true},
	})
	// The limits themselves are valid.
	for _, line := range []string{"      ttl: 0", "      ttl: 255", "      payload_size: 0", "      payload_size: 65507"} {
		mustLoad(t, icmp(line))
	}
}

func TestDNSErrors(t *testing.T) {
	dns := func(lines ...string) string {
		return module(append([]string{"    prober: dns", "    dns:"}, lines...)...)
	}
	const name = "      query_name: example.com"
	runErrorCases(t, []errorCase{
		{
			name: "query_name missing",
			src:  dns("      query_type: A"),
			want: `line 4: module "m": dns.query_name: must be set: the name to ask the target server about`,
		},
		{
			name: "query_name missing with no dns section points at the module",
			src:  module("    prober: dns"),
			want: `line 2: module "m": dns.query_name: not set, so probes ask for the root zone "."`,
			warn: true,
		},
		{
			name: "query_name missing from a null dns section",
			src:  module("    prober: dns", "    dns: ~"),
			want: `line 4: module "m": dns.query_name: not set, so probes ask for the root zone "."`,
			warn: true,
		},
		{
			name: "query_type in lower case",
			src:  dns(name, "      query_type: soa"),
			want: `line 6: module "m": dns.query_type: "soa" is not a DNS record type (e.g. A, AAAA, MX, SOA, ANY); write it in upper case, SOA`,
		},
		{
			name: "query_class in lower case",
			src:  dns(name, "      query_class: ch"),
			want: `line 6: module "m": dns.query_class: "ch" is not a DNS class (e.g. IN, CH); write it in upper case, CH`,
		},
		{
			name: "valid_rcodes in lower case",
			src:  dns(name, "      valid_rcodes: [nxdomain]"),
			want: `line 6: module "m": dns.valid_rcodes[0]: "nxdomain" is not a DNS response code, so every probe fails, as in blackbox_exporter; write it in upper case, NXDOMAIN`,
			warn: true,
		},
		{name: "bad query_type", src: dns(name, "      query_type: AAAAA"), want: `line 6: module "m": dns.query_type: "AAAAA" is not a DNS record type (e.g. A, AAAA, MX, SOA, ANY)`},
		{name: "bad query_class", src: dns(name, "      query_class: XX"), want: `line 6: module "m": dns.query_class: "XX" is not a DNS class (e.g. IN, CH)`},
		{name: "bad transport_protocol", src: dns(name, "      transport_protocol: tcp4"), want: `line 6: module "m": dns.transport_protocol: "tcp4" is not a transport, so every probe fails, as in blackbox_exporter; use udp, tcp or https (DNS over HTTPS)`, warn: true},
		{
			name: "bad valid_rcodes",
			src:  dns(name, "      valid_rcodes:", "        - NOERROR", "        - NOPE"),
			want: `line 8: module "m": dns.valid_rcodes[1]: "NOPE" is not a DNS response code, so every probe fails`,
			warn: true,
		},
		{
			name: "dns_over_tls with udp",
			src:  dns(name, "      transport_protocol: udp", "      dns_over_tls: true"),
			want: `line 7: module "m": dns.dns_over_tls: DNS over TLS runs over TCP, so every probe fails, as in blackbox_exporter; set transport_protocol to tcp or leave it unset`,
			warn: true,
		},
	})
	for _, lines := range [][]string{
		{name, "      query_type: SOA", "      query_class: CH", "      valid_rcodes: [NXDOMAIN, SERVFAIL]"},
		{name, "      dns_over_tls: true"},
		{name, "      dns_over_tls: true", "      transport_protocol: tcp"},
	} {
		mustLoad(t, dns(lines...))
	}
}

// TestSectionRulesApplyWhenWritten: a section is checked when the module's
// prober reads it or when it is written, so that a typo in a section that is
// not used yet does not wait for the day it is.
func TestSectionRulesApplyWhenWritten(t *testing.T) {
	runErrorCases(t, []errorCase{
		{
			name: "icmp section of an http module",
			src:  module("    prober: http", "    icmp:", "      ttl: 300"),
			want: `line 5: module "m": icmp.ttl: must be between 0 and 255, got 300`,
		},
		{
			name: "dns section of a tcp module",
			src:  module("    prober: tcp", "    dns:", "      query_name: example.com", "      query_type: NOPE"),
			want: `line 6: module "m": dns.query_type: "NOPE" is not a DNS record type`,
		},
		{
			// As blackbox_exporter: a written dns section needs
			// query_name, whichever prober the module uses.
			name: "dns section without query_name in an http module",
			src:  module("    prober: http", "    dns:", "      recursion_desired: true"),
			want: `line 4: module "m": dns.query_name: must be set`,
		},
	})
	mustLoad(t, module("    prober: http", "    dns: ~"))
}

// TestManyProblems: every problem in a file is reported, each once, ordered
// by line, across modules, whatever found it (the strict walker, the
// decoder, or the rules).
func TestManyProblems(t *testing.T) {
	src := yml(
		"modules:",
		"  a:",
		"    prober: http",
		"    http:",
		"      method: 'G T'",             // line 5: a warning only
		"      valid_status_codes: [999]", // line 6: a warning only
		"  b:",
		"    prober: tcp",
		"    timout: 1s", // line 9: an unknown key
		"  c:",
		"    prober: icmp",
		"    icmp:",
		"      ttl: lots", // line 13: a type
		"  d:",
		"    prober: dns",
		"    dns: {query_type: A}", // line 16: no query_name
		"  e:",
		"    prober: http",
		"    http:",
		"      body: x",
		"      body_file: /dev/null", // line 21: a rule
	)
	_, err := Load([]byte(src))
	got := problems(err)
	want := []struct {
		line int
		text string
	}{
		{9, `module "b": unknown field "timout" (did you mean "timeout"?)`},
		{13, `module "c": icmp.ttl: "lots" is not a whole number`},
		{16, `module "d": dns.query_name: must be set`},
		{21, `module "e": http.body_file: body and body_file are mutually exclusive`},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i, w := range want {
		prefix := "line " + strconv.Itoa(w.line) + ": " + w.text
		if !strings.HasPrefix(got[i], prefix) {
			t.Errorf("problem %d = %q, want it to start with %q", i, got[i], prefix)
		}
	}
	// The joined message lists them one per line too.
	lineRE := regexp.MustCompile(`(?m)^line (\d+): `)
	prev := 0
	for _, m := range lineRE.FindAllStringSubmatch(err.Error(), -1) {
		n, _ := strconv.Atoi(m[1])
		if n < prev {
			t.Errorf("line %d reported after line %d:\n%v", n, prev, err)
		}
		prev = n
	}
}

// TestManyWarnings: a file with only warnings loads, and lists every
// warning once, ordered by line across modules.
func TestManyWarnings(t *testing.T) {
	src := yml(
		"modules:",
		"  a:",
		"    prober: http",
		"    http:",
		"      method: 'G T'",             // line 5
		"      valid_status_codes: [999]", // line 6
		"  b:",
		"    prober: htp", // line 8
		"  c:",            // line 9: the null module has no prober
		"  d:",
		"    prober: tcp",
		"    tcp:",
		"      preferred_ip_protocol: ipv6", // line 13
	)
	cfg, err := Load([]byte(src))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []string{
		`line 5: module "a": http.method: "G T" is not a valid HTTP method`,
		`line 6: module "a": http.valid_status_codes[0]: 999 is not an HTTP status code`,
		`line 8: module "b": prober: "htp" is not a prober (did you mean "http"?)`,
		`line 9: module "c": prober: missing`,
		`line 13: module "d": tcp.preferred_ip_protocol: "ipv6" is read as ip4`,
	}
	if len(cfg.Warnings) != len(want) {
		t.Fatalf("got %d warnings, want %d:\n%v", len(cfg.Warnings), len(want), errors.Join(cfg.Warnings...))
	}
	for i, w := range want {
		if got := cfg.Warnings[i].Error(); !strings.HasPrefix(got, w) {
			t.Errorf("warning %d = %q, want it to start with %q", i, got, w)
		}
	}
	if len(cfg.Modules) != 4 {
		t.Errorf("loaded %d modules, want all 4", len(cfg.Modules))
	}
}

func TestGRPCWarnings(t *testing.T) {
	grpc := func(lines ...string) string {
		return module(append([]string{"    prober: grpc", "    grpc:"}, lines...)...)
	}
	runErrorCases(t, []errorCase{
		{
			name: "metadata key gRPC cannot send",
			src:  grpc("      metadata:", `        "bad key": [x]`),
			want: `line 6: module "m": grpc.metadata.bad key: key "bad key" has the character ' '; gRPC metadata keys are made of a-z, 0-9, '-', '_' and '.', so every probe fails with INTERNAL, as in blackbox_exporter`,
			warn: true,
		},
		{
			name: "metadata key in capitals",
			src:  grpc("      metadata:", "        X-Tenant: [blue]"),
			want: `line 6: module "m": grpc.metadata.X-Tenant: gRPC metadata keys are lower case: blackbox_exporter fails every probe of this module with INTERNAL; sonde sends it as "x-tenant"`,
			warn: true,
		},
		{
			name: "metadata value not printable",
			src:  grpc("      metadata:", `        x-a: ["a\x01"]`),
			want: `line 6: module "m": grpc.metadata.x-a: key "x-a": value "a\x01" has a character outside printable ASCII; use a key ending in -bin for binary values, so every probe fails with INTERNAL`,
			warn: true,
		},
		{
			name: "metadata value a scalar",
			src:  grpc("      metadata:", "        x-a: one"),
			want: `line 6: module "m": grpc.metadata.x-a: "one" is not a list`,
		},
	})
	mustLoad(t, grpc("      metadata:", `        trace-bin: ["\x00"]`, "        x-a: [one, two]"))
}
