package compat

import (
	"net/url"
	"strconv"
	"strings"
)

// allScenarios is every scenario of the suite, by prober.
func allScenarios(p *peers) []scenario {
	var all []scenario
	for _, group := range [][]scenario{
		httpScenarios(p),
		httpTLSScenarios(p),
		http3Scenarios(p),
		tcpScenarios(p),
		dnsScenarios(p),
		icmpScenarios(p),
		grpcScenarios(p),
		unixScenarios(p),
		endpointScenarios(p),
	} {
		all = append(all, group...)
	}
	return all
}

// probe builds a scenario of a prober; module is the module's YAML less
// its prober line, indented as the Go code likes (dedent takes it off).
func probe(prober, name, target, module string) scenario {
	return scenario{name: name, prober: prober, target: target, module: module}
}

// sub replaces every {key} in s by its value, so that module YAML can name
// the run's files and addresses without breaking its indentation.
func sub(s string, kv ...string) string {
	return strings.NewReplacer(kv...).Replace(s)
}

func (s scenario) with(f func(*scenario)) scenario {
	f(&s)
	return s
}

func httpScenarios(p *peers) []scenario {
	h, plain := p.http, p.http.plain
	f := p.files
	refused := "http://" + p.stream.refused + "/"
	http := func(name, target, module string) scenario { return probe("http", name, target, module) }
	return []scenario{
		// Status codes and versions.
		http("http_2xx", plain+"/", ""),
		http("http_ip4", plain+"/", `
			http:
			  preferred_ip_protocol: ip4`),
		http("http_status_404_fails", plain+"/status/404", ""),
		http("http_status_404_valid", plain+"/status/404", `
			http:
			  valid_status_codes: [404]`),
		http("http_status_500", plain+"/status/500", ""),
		http("http_status_list", plain+"/status/201", `
			http:
			  valid_status_codes: [200, 201]`),
		http("http_status_204", plain+"/no-content", ""),
		http("http_status_100_invalid", plain+"/status/299", `
			http:
			  valid_status_codes: [200]`),
		http("http_versions_11_ok", plain+"/", `
			http:
			  valid_http_versions: ["HTTP/1.1"]`),
		http("http_versions_only_2_fails", plain+"/", `
			http:
			  valid_http_versions: ["HTTP/2.0"]`),
		http("http_versions_10_fails", plain+"/", `
			http:
			  valid_http_versions: ["HTTP/1.0"]`),
		http("http_chunked", plain+"/chunked", ""),
		http("http_big_body", plain+"/big", ""),

		// Methods and bodies.
		http("http_method_post", plain+"/post-only", `
			http:
			  method: POST`),
		http("http_method_get_on_post_only", plain+"/post-only", ""),
		http("http_method_head", plain+"/", `
			http:
			  method: HEAD`),
		http("http_body_post", plain+"/echo", `
			http:
			  method: POST
			  body: "hello=compat"
			  fail_if_body_not_matches_regexp: ["body=hello=compat", "method=POST"]`),
		http("http_body_file", plain+"/echo", sub(`
			http:
			  method: PUT
			  body_file: {body}
			  fail_if_body_not_matches_regexp: ["body=from=body_file", "method=PUT"]`, "{body}", f.body)),
		http("http_body_framing", plain+"/framing", `
			http:
			  method: POST
			  body: "twelve bytes"
			  fail_if_body_not_matches_regexp: ["framing=length 12"]`),
		http("http_body_file_framing", plain+"/framing", sub(`
			http:
			  method: POST
			  body_file: {body}
			  fail_if_body_not_matches_regexp: ["framing=chunked"]`, "{body}", f.body)),
		http("http_post_redirect_307", plain+"/moved-post", `
			http:
			  method: POST
			  body: "kept"
			  fail_if_body_not_matches_regexp: ["body=kept"]`),

		// Headers sent.
		http("http_headers_sent", plain+"/echo", `
			http:
			  headers:
			    X-Custom: "yes"
			    X-Second: two words
			  fail_if_body_not_matches_regexp: ["header X-Custom: yes", "header X-Second: two words"]`),
		http("http_default_user_agent", plain+"/user-agent", `
			http:
			  fail_if_body_not_matches_regexp: ["user-agent=Blackbox-Exporter/"]`),
		http("http_user_agent_set", plain+"/user-agent", `
			http:
			  headers:
			    User-Agent: "Blackbox-Exporter/0.28.0"
			  fail_if_body_not_matches_regexp: ["user-agent=Blackbox-Exporter/0.28.0"]`),
		http("http_header_host", plain+"/echo", `
			http:
			  headers:
			    Host: sonde.test
			  fail_if_body_not_matches_regexp: ["host=sonde.test"]`),

		// Redirects.
		http("http_redirect_3", plain+"/redirect/3", ""),
		http("http_redirect_no_follow", plain+"/redirect/1", `
			http:
			  follow_redirects: false`),
		http("http_redirect_no_follow_302_valid", plain+"/redirect/1", `
			http:
			  follow_redirects: false
			  valid_status_codes: [302]`),
		http("http_redirect_no_follow_legacy", plain+"/redirect/2", `
			http:
			  no_follow_redirects: true
			  valid_status_codes: [302]`),
		http("http_redirect_loop", plain+"/loop", ""),
		http("http_redirect_10", plain+"/redirect/10", ""),
		http("http_redirect_11", plain+"/redirect/11", ""),
		http("http_redirect_keeps_cookies", plain+"/set-cookie", ""),
		http("http_redirect_303_post", plain+"/see-other", `
			http:
			  method: POST
			  body: "dropped"
			  fail_if_body_not_matches_regexp: ["method=GET"]`),
		http("http_short_body", plain+"/short", ""),
		http("http_hangup", plain+"/hangup", ""),
		http("http_slow_body", plain+"/slow-body", `
			timeout: 400ms`),
		http("http_10_server", "http://"+p.stream.http10+"/", `
			http:
			  valid_http_versions: ["HTTP/1.0"]`),
		http("http_not_http_server", "http://"+p.stream.garbage+"/", ""),
		http("http_redirect_to_https", plain+"/to-https", sub(`
			http:
			  tls_config:
			    ca_file: {ca}`, "{ca}", p.pki.caFile)),

		// SSL requirements.
		http("http_fail_if_not_ssl_redirected", plain+"/to-https", sub(`
			http:
			  fail_if_not_ssl: true
			  tls_config:
			    ca_file: {ca}`, "{ca}", p.pki.caFile)),
		http("http_fail_if_not_ssl_plain", plain+"/", `
			http:
			  fail_if_not_ssl: true`),
		http("http_fail_if_ssl_tls", h.tls+"/", sub(`
			http:
			  fail_if_ssl: true
			  tls_config:
			    ca_file: {ca}`, "{ca}", p.pki.caFile)),
		http("http_fail_if_ssl_plain", plain+"/", `
			http:
			  fail_if_ssl: true`),

		// Compression.
		http("http_gzip", plain+"/encoded/gzip", `
			http:
			  compression: gzip`),
		http("http_br", plain+"/encoded/br", `
			http:
			  compression: br`),
		http("http_deflate", plain+"/encoded/deflate", `
			http:
			  compression: deflate`),
		http("http_gzip_negotiated", plain+"/negotiate", `
			http:
			  compression: gzip
			  fail_if_body_not_matches_regexp: ["quick brown fox"]`),
		http("http_br_negotiated", plain+"/negotiate", `
			http:
			  compression: br
			  fail_if_body_not_matches_regexp: ["quick brown fox"]`),
		http("http_gzip_with_accept_header", plain+"/negotiate", `
			http:
			  compression: gzip
			  headers:
			    Accept-Encoding: gzip
			  fail_if_body_not_matches_regexp: ["quick brown fox"]`),
		http("http_gzip_but_br_sent", plain+"/encoded/br", `
			http:
			  compression: gzip`),
		http("http_gzip_but_identity_sent", plain+"/", `
			http:
			  compression: gzip`),
		http("http_no_compression_gzip_sent", plain+"/encoded/gzip", ""),
		http("http_accept_encoding_only", plain+"/negotiate", `
			http:
			  headers:
			    Accept-Encoding: br
			  fail_if_body_matches_regexp: ["quick brown fox"]`),
		http("http_accept_encoding_gzip_only", plain+"/negotiate", `
			http:
			  headers:
			    Accept-Encoding: gzip`),

		// Body size limit.
		http("http_body_size_limit_exceeded", plain+"/big", `
			http:
			  body_size_limit: 1KiB`),
		http("http_body_size_limit_ok", plain+"/big", `
			http:
			  body_size_limit: 1MiB`),
		http("http_body_size_limit_gzip", plain+"/encoded/gzip", `
			http:
			  compression: gzip
			  body_size_limit: 100B`),
		http("http_body_size_limit_with_regexp", plain+"/big", `
			http:
			  body_size_limit: 64B
			  fail_if_body_not_matches_regexp: ["fedcba"]`),

		// Body regexps.
		http("http_body_matches_fails", plain+"/", `
			http:
			  fail_if_body_matches_regexp: ["quick brown"]`),
		http("http_body_matches_ok", plain+"/", `
			http:
			  fail_if_body_matches_regexp: ["nothing like this"]`),
		http("http_body_not_matches_fails", plain+"/", `
			http:
			  fail_if_body_not_matches_regexp: ["absent text"]`),
		http("http_body_not_matches_ok", plain+"/", `
			http:
			  fail_if_body_not_matches_regexp: ["^compat page", "(?m)lazy dog$"]`),
		http("http_body_regexps_second_fails", plain+"/", `
			http:
			  fail_if_body_not_matches_regexp: ["quick", "slow"]`),
		http("http_body_regexp_on_404", plain+"/status/404", `
			http:
			  fail_if_body_matches_regexp: ["status"]`),

		// Header regexps.
		http("http_header_matches_fails", plain+"/headers", `
			http:
			  fail_if_header_matches:
			    - header: Server
			      regexp: "^compat/"`),
		http("http_header_matches_missing", plain+"/headers", `
			http:
			  fail_if_header_matches:
			    - header: X-Absent
			      regexp: ".*"`),
		http("http_header_matches_allow_missing", plain+"/headers", `
			http:
			  fail_if_header_matches:
			    - header: X-Absent
			      regexp: ".*"
			      allow_missing: true`),
		http("http_header_not_matches_ok", plain+"/headers", `
			http:
			  fail_if_header_not_matches:
			    - header: X-Compat
			      regexp: "^version=1\\."`),
		http("http_header_not_matches_fails", plain+"/headers", `
			http:
			  fail_if_header_not_matches:
			    - header: X-Compat
			      regexp: "^version=2\\."`),
		http("http_header_not_matches_missing", plain+"/headers", `
			http:
			  fail_if_header_not_matches:
			    - header: X-Absent
			      regexp: ".*"`),
		http("http_header_not_matches_allow_missing", plain+"/headers", `
			http:
			  fail_if_header_not_matches:
			    - header: X-Absent
			      regexp: ".*"
			      allow_missing: true`),
		http("http_header_matches_second_value", plain+"/echo", `
			http:
			  fail_if_header_matches:
			    - header: X-Multi
			      regexp: "^two$"`),
		http("http_header_case_insensitive_name", plain+"/headers", `
			http:
			  fail_if_header_not_matches:
			    - header: cache-control
			      regexp: "no-store"`),

		// CEL.
		http("http_cel_matches_fails", plain+"/json", `
			http:
			  fail_if_body_json_matches_cel: 'body.status == "up"'`),
		http("http_cel_matches_ok", plain+"/json", `
			http:
			  fail_if_body_json_matches_cel: 'body.count > 5'`),
		http("http_cel_not_matches_ok", plain+"/json", `
			http:
			  fail_if_body_json_not_matches_cel: 'body.count == 3 && size(body.tags) == 2'`),
		http("http_cel_not_matches_fails", plain+"/json", `
			http:
			  fail_if_body_json_not_matches_cel: 'body.status == "down"'`),
		http("http_cel_not_json", plain+"/not-json", `
			http:
			  fail_if_body_json_not_matches_cel: 'body.status == "up"'`),
		http("http_cel_missing_key", plain+"/json", `
			http:
			  fail_if_body_json_matches_cel: 'body.absent == 1'`),

		// Credentials.
		http("http_basic_auth_ok", plain+"/basic", `
			http:
			  basic_auth:
			    username: compat
			    password: s3cret`),
		http("http_basic_auth_password_file", plain+"/basic", sub(`
			http:
			  basic_auth:
			    username: compat
			    password_file: {file}`, "{file}", f.password)),
		http("http_basic_auth_wrong", plain+"/basic", `
			http:
			  basic_auth:
			    username: compat
			    password: wrong`),
		http("http_basic_auth_missing", plain+"/basic", ""),
		http("http_bearer_ok", plain+"/bearer", `
			http:
			  bearer_token: compat-token`),
		http("http_bearer_file", plain+"/bearer", sub(`
			http:
			  bearer_token_file: {file}`, "{file}", f.token)),
		http("http_bearer_wrong", plain+"/bearer", `
			http:
			  bearer_token: not-it`),
		http("http_authorization_custom", plain+"/custom-auth", `
			http:
			  authorization:
			    type: Compat
			    credentials: abc123`),
		http("http_oauth2_client_credentials", plain+"/oauth", sub(`
			http:
			  oauth2:
			    client_id: compat
			    client_secret: s3cret
			    token_url: {plain}/token`, "{plain}", plain)),
		http("http_oauth2_wrong_secret", plain+"/oauth", sub(`
			http:
			  oauth2:
			    client_id: compat
			    client_secret: wrong
			    token_url: {plain}/token`, "{plain}", plain)),
		http("http_common_http_headers", plain+"/echo", `
			http:
			  http_headers:
			    X-From-Common:
			      values: ["one", "two"]
			  fail_if_body_not_matches_regexp: ["header X-From-Common: one, two"]`),
		http("http_gzip_body_regexp", plain+"/encoded/gzip", `
			http:
			  compression: gzip
			  fail_if_body_not_matches_regexp: ["lazy dog"]`),
		http("http_gzip_cel", plain+"/encoded-json/gzip", `
			http:
			  compression: gzip
			  fail_if_body_json_not_matches_cel: 'body.status == "up"'`),
		http("http_authorization_default_type", plain+"/bearer", `
			http:
			  authorization:
			    credentials: compat-token`),

		// Proxies.
		http("http_proxy", plain+"/headers", sub(`
			http:
			  proxy_url: {proxy}
			  fail_if_header_not_matches:
			    - header: X-Proxied
			      regexp: compat`, "{proxy}", h.proxy)),
		http("http_proxy_connect_tls", h.tls+"/", sub(`
			http:
			  proxy_url: {proxy}
			  tls_config:
			    ca_file: {ca}`, "{proxy}", h.proxy, "{ca}", p.pki.caFile)),
		http("http_proxy_skip_resolve", plain+"/", sub(`
			http:
			  proxy_url: {proxy}
			  skip_resolve_phase_with_proxy: true`, "{proxy}", h.proxy)),
		http("http_proxy_refused", plain+"/", sub(`
			http:
			  proxy_url: {proxy}`, "{proxy}", refused)),
		http("http_proxy_no_proxy", plain+"/headers", sub(`
			http:
			  proxy_url: {proxy}
			  no_proxy: 127.0.0.1
			  fail_if_header_matches:
			    - header: X-Proxied
			      regexp: compat
			      allow_missing: true`, "{proxy}", h.proxy)),

		// Addresses.
		http("http_refused", refused, ""),
		http("http_localhost_ip4", strings.Replace(plain, "127.0.0.1", "localhost", 1)+"/", `
			http:
			  preferred_ip_protocol: ip4`),
		http("http_localhost_ip6_preferred", strings.Replace(plain, "127.0.0.1", "localhost", 1)+"/", `
			http:
			  preferred_ip_protocol: ip6`),
		http("http_ip6_no_fallback_on_ip4", plain+"/", `
			http:
			  preferred_ip_protocol: ip6
			  ip_protocol_fallback: false`),
		http("http_ipv6", h.plainV6+"/", `
			http:
			  preferred_ip_protocol: ip6`).with(needs("ipv6")),
		http("http_ipv6_ip4_preferred", h.plainV6+"/", `
			http:
			  preferred_ip_protocol: ip4`).with(needs("ipv6")),
		http("http_ipv6_tls", h.tlsV6+"/", sub(`
			http:
			  tls_config:
			    ca_file: {ca}`, "{ca}", p.pki.caFile)).with(needs("ipv6")),

		// Last-Modified.
		http("http_last_modified", plain+"/lastmod", ""),
		http("http_last_modified_bad", plain+"/lastmod-bad", ""),

		// Deadlines.
		http("http_timeout", plain+"/slow", `
			timeout: 400ms`),

		// Targets the prober cannot use.
		http("http_unparsable_url", "http://[::1", ""),
		http("http_ftp_scheme", "ftp://127.0.0.1/", ""),
		http("http_no_scheme", strings.TrimPrefix(plain, "http://")+"/", ""),
		http("http_empty_host", "http:///path", ""),
	}
}

func httpTLSScenarios(p *peers) []scenario {
	h := p.http
	ca := p.pki.caFile
	http := func(name, target, module string) scenario {
		return probe("http", name, target, sub(module, "{ca}", ca, "{cert}", p.pki.clientCertFile, "{key}", p.pki.clientKeyFile))
	}
	return []scenario{
		http("http_tls_ok", h.tls+"/", `
			http:
			  tls_config:
			    ca_file: {ca}`),
		http("http_tls_chain", h.chained+"/", `
			http:
			  tls_config:
			    ca_file: {ca}`),
		http("http_tls_chain_insecure", h.chained+"/", `
			http:
			  tls_config:
			    insecure_skip_verify: true`),
		http("http_tls_tricky_subject", h.tricky+"/", `
			http:
			  tls_config:
			    ca_file: {ca}`),
		http("http_tls_untrusted", h.tls+"/", ""),
		http("http_tls_inline_ca", h.tls+"/", sub(`
			http:
			  tls_config:
			    ca: {pem}`, "{pem}", strconv.Quote(p.pki.caPEM))),
		http("http_tls_host_header_server_name", h.named+"/echo", `
			http:
			  headers:
			    Host: sonde.test
			  fail_if_body_not_matches_regexp: ["host=sonde.test"]
			  tls_config:
			    ca_file: {ca}`),
		http("http_tls_insecure", h.tls+"/", `
			http:
			  tls_config:
			    insecure_skip_verify: true`),
		http("http_tls_h2_required", h.tls+"/", `
			http:
			  valid_http_versions: ["HTTP/2.0"]
			  tls_config:
			    ca_file: {ca}`),
		http("http_tls_http2_disabled", h.tls+"/", `
			http:
			  enable_http2: false
			  valid_http_versions: ["HTTP/1.1"]
			  tls_config:
			    ca_file: {ca}`),
		http("http_tls_http11_server", h.http11TLS+"/", `
			http:
			  tls_config:
			    ca_file: {ca}`),
		http("http_tls_expired", h.expired+"/", `
			http:
			  tls_config:
			    ca_file: {ca}`),
		http("http_tls_expired_insecure", h.expired+"/", `
			http:
			  tls_config:
			    ca_file: {ca}
			    insecure_skip_verify: true`),
		http("http_tls_wrong_host", h.wrongHost+"/", `
			http:
			  tls_config:
			    ca_file: {ca}`),
		http("http_tls_wrong_host_server_name", h.wrongHost+"/", `
			http:
			  tls_config:
			    ca_file: {ca}
			    server_name: other.example`),
		http("http_tls_named_server_name", h.named+"/", `
			http:
			  tls_config:
			    ca_file: {ca}
			    server_name: sonde.test`),
		http("http_tls_named_hostname_param", h.named+"/echo", `
			http:
			  fail_if_body_not_matches_regexp: ["host=sonde.test"]
			  tls_config:
			    ca_file: {ca}`).with(param("hostname", "sonde.test")),
		http("http_tls_mtls", h.mtls+"/", `
			http:
			  tls_config:
			    ca_file: {ca}
			    cert_file: {cert}
			    key_file: {key}`),
		http("http_tls_mtls_no_cert", h.mtls+"/", `
			http:
			  tls_config:
			    ca_file: {ca}`),
		http("http_tls_max_12", h.tls+"/", `
			http:
			  tls_config:
			    ca_file: {ca}
			    max_version: TLS12`),
		http("http_tls_min_13", h.tls+"/", `
			http:
			  tls_config:
			    ca_file: {ca}
			    min_version: TLS13`),
		http("http_tls_redirect_to_plain", h.tls+"/redirect/1", `
			http:
			  tls_config:
			    ca_file: {ca}`),
		http("http_tls_gzip_h2", h.tls+"/encoded/gzip", `
			http:
			  compression: gzip
			  tls_config:
			    ca_file: {ca}`),
		http("http_tls_localhost", strings.Replace(h.tls, "127.0.0.1", "localhost", 1)+"/", `
			http:
			  preferred_ip_protocol: ip4
			  tls_config:
			    ca_file: {ca}`),
		http("http_tls_plain_server", "https://"+strings.TrimPrefix(h.plain, "http://")+"/", `
			http:
			  tls_config:
			    ca_file: {ca}`),
		http("http_plain_to_tls_server", "http://"+strings.TrimPrefix(h.tls, "https://")+"/", ""),
	}
}

// http3Scenarios probe with enable_http3. sonde's HTTP/3 client is being
// written; until it lands their deltas are in the pending table.
func http3Scenarios(p *peers) []scenario {
	h := p.http
	http := func(name, target, module string) scenario {
		return probe("http", name, target, sub(module, "{ca}", p.pki.caFile))
	}
	return []scenario{
		http("http3_ok", h.h3+"/", `
			http:
			  enable_http3: true
			  enable_http2: false
			  tls_config:
			    ca_file: {ca}`),
		http("http3_valid_version", h.h3+"/", `
			http:
			  enable_http3: true
			  enable_http2: false
			  valid_http_versions: ["HTTP/3.0"]
			  tls_config:
			    ca_file: {ca}`),
		http("http3_http_scheme", "http://"+strings.TrimPrefix(h.h3, "https://")+"/", `
			http:
			  enable_http3: true
			  enable_http2: false
			  tls_config:
			    ca_file: {ca}`),
		http("http3_status_404", h.h3+"/status/404", `
			http:
			  enable_http3: true
			  enable_http2: false
			  tls_config:
			    ca_file: {ca}`),
		http("http3_body_regexp", h.h3+"/echo", `
			http:
			  enable_http3: true
			  enable_http2: false
			  method: POST
			  body: over-quic
			  fail_if_body_not_matches_regexp: ["proto=HTTP/3.0", "body=over-quic"]
			  tls_config:
			    ca_file: {ca}`),
		http("http3_accept_encoding", h.h3+"/echo", `
			http:
			  enable_http3: true
			  enable_http2: false
			  fail_if_body_not_matches_regexp: ["header Accept-Encoding: gzip"]
			  tls_config:
			    ca_file: {ca}`),
		http("http3_redirect", h.h3+"/redirect/2", `
			http:
			  enable_http3: true
			  enable_http2: false
			  tls_config:
			    ca_file: {ca}`),
		http("http3_gzip", h.h3+"/encoded/gzip", `
			http:
			  enable_http3: true
			  enable_http2: false
			  compression: gzip
			  tls_config:
			    ca_file: {ca}`),
		http("http3_untrusted", h.h3+"/", `
			http:
			  enable_http3: true
			  enable_http2: false`),
		http("http3_insecure", h.h3+"/", `
			http:
			  enable_http3: true
			  enable_http2: false
			  tls_config:
			    insecure_skip_verify: true`),
		http("http3_expired", h.h3Expired+"/", `
			http:
			  enable_http3: true
			  enable_http2: false
			  tls_config:
			    ca_file: {ca}`),
		http("http3_no_server", "https://"+p.dns.refused+"/", `
			timeout: 500ms
			http:
			  enable_http3: true
			  enable_http2: false
			  tls_config:
			    ca_file: {ca}`),
		http("http3_tcp_only_server", h.tls+"/", `
			timeout: 500ms
			http:
			  enable_http3: true
			  enable_http2: false
			  tls_config:
			    ca_file: {ca}`),
	}
}

func tcpScenarios(p *peers) []scenario {
	s := p.stream
	ca := p.pki.caFile
	tcp := func(name, target, module string) scenario {
		return probe("tcp", name, target, sub(module, "{ca}", ca, "{cert}", p.pki.clientCertFile, "{key}", p.pki.clientKeyFile))
	}
	return []scenario{
		tcp("tcp_connect", s.line, ""),
		tcp("tcp_connect_ip4", s.line, `
			tcp:
			  preferred_ip_protocol: ip4`),
		tcp("tcp_refused", s.refused, ""),
		tcp("tcp_no_port", "127.0.0.1", ""),
		tcp("tcp_url_target", "tcp://"+s.line, ""),
		tcp("tcp_localhost_ip4", strings.Replace(s.line, "127.0.0.1", "localhost", 1), `
			tcp:
			  preferred_ip_protocol: ip4`),
		tcp("tcp_ip6_no_fallback_on_ip4", s.line, `
			tcp:
			  preferred_ip_protocol: ip6
			  ip_protocol_fallback: false`),
		tcp("tcp_ipv6", s.lineV6, `
			tcp:
			  preferred_ip_protocol: ip6`).with(needs("ipv6")),
		tcp("tcp_source_ip", s.line, `
			tcp:
			  preferred_ip_protocol: ip4
			  source_ip_address: 127.0.0.1`),
		tcp("tcp_banner", s.line, `
			tcp:
			  query_response:
			    - expect: "^220 compat"`),
		tcp("tcp_banner_mismatch", s.line, `
			timeout: 500ms
			tcp:
			  query_response:
			    - expect: "^421"`),
		tcp("tcp_conversation", s.line, `
			tcp:
			  query_response:
			    - expect: "^220"
			    - send: "PING"
			    - expect: "^PONG"
			    - send: "QUIT"
			    - expect: "^221 bye"`),
		tcp("tcp_send_expanded", s.line, `
			tcp:
			  query_response:
			    - expect: "^220 (compat)"
			      send: "EHLO ${1}"
			    - expect: "^250 STARTTLS"`),
		tcp("tcp_labels", s.line, `
			tcp:
			  query_response:
			    - expect: "^220"
			    - send: "VERSION"
			    - expect: "^VERSION compat (\\S+) build (\\d+)"
			      labels:
			        - name: version
			          value: "${1}"
			        - name: build
			          value: "b${2}"`),
		tcp("tcp_labels_no_match", s.line, `
			timeout: 500ms
			tcp:
			  query_response:
			    - expect: "^220"
			    - send: "PING"
			    - expect: "^VERSION (\\S+)"
			      labels:
			        - name: version
			          value: "${1}"`),
		tcp("tcp_multiline_expect", s.line, `
			tcp:
			  query_response:
			    - expect: "^220"
			    - send: "EHLO probe"
			    - expect: "^250-SIZE"
			    - expect: "^250 STARTTLS"`),
		tcp("tcp_send_only", s.line, `
			tcp:
			  query_response:
			    - send: "QUIT"`),
		tcp("tcp_starttls", s.line, `
			tcp:
			  query_response:
			    - expect: "^220"
			    - send: "EHLO probe"
			    - expect: "^250 STARTTLS"
			    - send: "STARTTLS"
			    - expect: "^220 go ahead"
			    - starttls: true
			    - send: "PING"
			    - expect: "^PONG"
			  tls_config:
			    ca_file: {ca}`),
		tcp("tcp_starttls_untrusted", s.line, `
			tcp:
			  query_response:
			    - expect: "^220"
			    - send: "STARTTLS"
			    - expect: "^220 go ahead"
			    - starttls: true
			    - send: "PING"
			    - expect: "^PONG"`),
		tcp("tcp_tls", s.tls, `
			tcp:
			  tls: true
			  tls_config:
			    ca_file: {ca}
			  query_response:
			    - expect: "^220"`),
		tcp("tcp_tls_connect_only", s.tls, `
			tcp:
			  tls: true
			  tls_config:
			    ca_file: {ca}`),
		tcp("tcp_tls_chain", s.chained, `
			tcp:
			  tls: true
			  tls_config:
			    ca_file: {ca}`),
		tcp("tcp_tls_untrusted", s.tls, `
			tcp:
			  tls: true`),
		tcp("tcp_tls_insecure", s.tls, `
			tcp:
			  tls: true
			  tls_config:
			    insecure_skip_verify: true`),
		tcp("tcp_tls_expired", s.expired, `
			tcp:
			  tls: true
			  tls_config:
			    ca_file: {ca}`),
		tcp("tcp_tls_on_plain", s.line, `
			timeout: 500ms
			tcp:
			  tls: true
			  tls_config:
			    ca_file: {ca}`),
		tcp("tcp_tls_mtls", s.mtls, `
			tcp:
			  tls: true
			  tls_config:
			    ca_file: {ca}
			    cert_file: {cert}
			    key_file: {key}
			  query_response:
			    - expect: "^220"`),
		tcp("tcp_tls_mtls_no_cert", s.mtls, `
			tcp:
			  tls: true
			  tls_config:
			    ca_file: {ca}
			  query_response:
			    - expect: "^220"`),
		tcp("tcp_tls_server_name", s.tlsNamed, `
			tcp:
			  tls: true
			  tls_config:
			    ca_file: {ca}
			    server_name: sonde.test`),
		tcp("tcp_tls_hostname_param", s.tlsNamed, `
			tcp:
			  tls: true
			  tls_config:
			    ca_file: {ca}`).with(param("hostname", "sonde.test")),
		tcp("tcp_tls_wrong_name", s.tlsNamed, `
			tcp:
			  tls: true
			  tls_config:
			    ca_file: {ca}`),
		tcp("tcp_tls_max_12", s.tls, `
			tcp:
			  tls: true
			  tls_config:
			    ca_file: {ca}
			    max_version: TLS12`),
		tcp("tcp_expect_bytes", s.bytes, `
			tcp:
			  query_response:
			    - expect_bytes: "\x00\x01compat\x7f"`),
		tcp("tcp_expect_bytes_mismatch", s.bytes, `
			tcp:
			  query_response:
			    - expect_bytes: "\x00\x02compat"`),
		tcp("tcp_hangup_expect", s.hangup, `
			tcp:
			  query_response:
			    - expect: "^220"`),
		tcp("tcp_silent_expect", s.silent, `
			timeout: 400ms
			tcp:
			  query_response:
			    - expect: "^220"`),
	}
}

func dnsScenarios(p *peers) []scenario {
	d := p.dns
	dns := func(name, target, module string) scenario {
		return probe("dns", name, target, sub(module, "{ca}", p.pki.caFile))
	}
	return []scenario{
		dns("dns_udp_a", d.addr, `
			dns:
			  query_name: compat.test
			  query_type: A
			  preferred_ip_protocol: ip4`),
		dns("dns_tcp_a", d.addr, `
			dns:
			  transport_protocol: tcp
			  query_name: compat.test
			  query_type: A`),
		dns("dns_aaaa", d.addr, `
			dns:
			  query_name: compat.test
			  query_type: AAAA`),
		dns("dns_mx", d.addr, `
			dns:
			  query_name: compat.test
			  query_type: MX`),
		dns("dns_txt", d.addr, `
			dns:
			  query_name: compat.test
			  query_type: TXT`),
		dns("dns_ns", d.addr, `
			dns:
			  query_name: compat.test
			  query_type: NS`),
		dns("dns_soa", d.addr, `
			dns:
			  query_name: compat.test
			  query_type: SOA`),
		dns("dns_soa_nxdomain", d.addr, `
			dns:
			  query_name: nx.compat.test
			  query_type: SOA
			  valid_rcodes: [NXDOMAIN]`),
		dns("dns_soa_empty", d.addr, `
			dns:
			  query_name: www.compat.test
			  query_type: SOA`),
		dns("dns_any_default_type", d.addr, `
			dns:
			  query_name: compat.test`),
		dns("dns_cname", d.addr, `
			dns:
			  query_name: www.compat.test
			  query_type: A`),
		dns("dns_no_data", d.addr, `
			dns:
			  query_name: compat.test
			  query_type: SRV`),
		dns("dns_nxdomain_fails", d.addr, `
			dns:
			  query_name: nx.compat.test
			  query_type: A`),
		dns("dns_nxdomain_valid", d.addr, `
			dns:
			  query_name: nx.compat.test
			  query_type: A
			  valid_rcodes: [NXDOMAIN]`),
		dns("dns_servfail", d.addr, `
			dns:
			  query_name: servfail.compat.test
			  query_type: A`),
		dns("dns_servfail_valid", d.addr, `
			dns:
			  query_name: servfail.compat.test
			  query_type: A
			  valid_rcodes: [NOERROR, SERVFAIL]`),
		dns("dns_formerr", d.addr, `
			dns:
			  query_name: formerr.compat.test
			  query_type: A
			  valid_rcodes: [NOERROR, FORMERR]`),
		dns("dns_refused_rcode", d.addr, `
			dns:
			  query_name: refused.compat.test
			  query_type: A`),
		dns("dns_silent_udp", d.addr, `
			timeout: 400ms
			dns:
			  query_name: silent.compat.test
			  query_type: A`),
		dns("dns_silent_tcp", d.addr, `
			timeout: 400ms
			dns:
			  transport_protocol: tcp
			  query_name: silent.compat.test
			  query_type: A`),
		dns("dns_port_refused_udp", d.refused, `
			timeout: 500ms
			dns:
			  query_name: compat.test
			  query_type: A`),
		dns("dns_port_refused_tcp", d.refused, `
			dns:
			  transport_protocol: tcp
			  query_name: compat.test
			  query_type: A`),
		dns("dns_no_port", "127.0.0.1", `
			timeout: 500ms
			dns:
			  query_name: compat.test
			  query_type: A`),
		dns("dns_dot", d.dot, `
			dns:
			  transport_protocol: tcp
			  dns_over_tls: true
			  tls_config:
			    ca_file: {ca}
			  query_name: compat.test
			  query_type: A`),
		dns("dns_dot_no_port", "127.0.0.1", `
			timeout: 500ms
			dns:
			  transport_protocol: tcp
			  dns_over_tls: true
			  tls_config:
			    ca_file: {ca}
			  query_name: compat.test
			  query_type: A`),
		dns("dns_dot_server_name_mismatch", d.dot, `
			dns:
			  transport_protocol: tcp
			  dns_over_tls: true
			  tls_config:
			    ca_file: {ca}
			    server_name: sonde.test
			  query_name: compat.test
			  query_type: A`),
		dns("dns_source_ip", d.addr, `
			dns:
			  preferred_ip_protocol: ip4
			  source_ip_address: 127.0.0.1
			  query_name: compat.test
			  query_type: A`),
		dns("dns_source_ip_tcp", d.addr, `
			dns:
			  transport_protocol: tcp
			  preferred_ip_protocol: ip4
			  source_ip_address: 127.0.0.1
			  query_name: compat.test
			  query_type: A`),
		dns("dns_dot_untrusted", d.dot, `
			dns:
			  transport_protocol: tcp
			  dns_over_tls: true
			  query_name: compat.test
			  query_type: A`),
		dns("dns_dot_insecure", d.dot, `
			dns:
			  transport_protocol: tcp
			  dns_over_tls: true
			  tls_config:
			    insecure_skip_verify: true
			  query_name: compat.test
			  query_type: A`),
		dns("dns_answer_matches_fails", d.addr, `
			dns:
			  query_name: compat.test
			  query_type: A
			  validate_answer_rrs:
			    fail_if_matches_regexp: [".*127\\.0\\.0\\.10$"]`),
		dns("dns_answer_not_matches_ok", d.addr, `
			dns:
			  query_name: compat.test
			  query_type: A
			  validate_answer_rrs:
			    fail_if_not_matches_regexp: ["compat\\.test\\.\\t300\\tIN\\tA\\t127\\.0\\.0\\.1[01]"]`),
		dns("dns_answer_not_matches_fails", d.addr, `
			dns:
			  query_name: compat.test
			  query_type: A
			  validate_answer_rrs:
			    fail_if_not_matches_regexp: [".*127\\.0\\.0\\.10$"]`),
		dns("dns_answer_all_match_fails", d.addr, `
			dns:
			  query_name: compat.test
			  query_type: A
			  validate_answer_rrs:
			    fail_if_all_match_regexp: [".*\\tIN\\tA\\t.*"]`),
		dns("dns_answer_all_match_ok", d.addr, `
			dns:
			  query_name: compat.test
			  query_type: A
			  validate_answer_rrs:
			    fail_if_all_match_regexp: [".*127\\.0\\.0\\.10$"]`),
		dns("dns_answer_none_matches_fails", d.addr, `
			dns:
			  query_name: compat.test
			  query_type: A
			  validate_answer_rrs:
			    fail_if_none_matches_regexp: [".*127\\.0\\.0\\.99$"]`),
		dns("dns_answer_none_matches_ok", d.addr, `
			dns:
			  query_name: compat.test
			  query_type: A
			  validate_answer_rrs:
			    fail_if_none_matches_regexp: [".*127\\.0\\.0\\.11$"]`),
		dns("dns_answer_rules_on_empty", d.addr, `
			dns:
			  query_name: compat.test
			  query_type: SRV
			  validate_answer_rrs:
			    fail_if_none_matches_regexp: [".*"]`),
		dns("dns_authority_not_matches_ok", d.addr, `
			dns:
			  query_name: compat.test
			  query_type: A
			  validate_authority_rrs:
			    fail_if_not_matches_regexp: [".*\\tNS\\tns[12]\\.compat\\.test\\.$"]`),
		dns("dns_authority_matches_fails", d.addr, `
			dns:
			  query_name: compat.test
			  query_type: A
			  validate_authority_rrs:
			    fail_if_matches_regexp: ["ns2"]`),
		dns("dns_additional_matches_fails", d.addr, `
			dns:
			  query_name: compat.test
			  query_type: A
			  validate_additional_rrs:
			    fail_if_matches_regexp: [".*127\\.0\\.0\\.53$"]`),
		dns("dns_additional_all_match_fails", d.addr, `
			dns:
			  query_name: compat.test
			  query_type: A
			  validate_additional_rrs:
			    fail_if_all_match_regexp: ["^ns"]`),
		dns("dns_chaos", d.addr, `
			dns:
			  query_name: version.bind
			  query_type: TXT
			  query_class: CH`),
		dns("dns_no_recursion", d.addr, `
			dns:
			  query_name: compat.test
			  query_type: A
			  recursion_desired: false`),
		dns("dns_ipv6", d.addrV6, `
			dns:
			  query_name: compat.test
			  query_type: A
			  preferred_ip_protocol: ip6`).with(needs("ipv6")),
		dns("dns_big_udp", d.addr, `
			dns:
			  query_name: big.compat.test
			  query_type: TXT`),
		dns("dns_big_tcp", d.addr, `
			dns:
			  transport_protocol: tcp
			  query_name: big.compat.test
			  query_type: TXT`),
		dns("dns_localhost_target", strings.Replace(d.addr, "127.0.0.1", "localhost", 1), `
			dns:
			  query_name: compat.test
			  query_type: A
			  preferred_ip_protocol: ip4`),
	}
}

func icmpScenarios(p *peers) []scenario {
	icmp := func(name, target, module string) scenario {
		return probe("icmp", name, target, module).with(needs("icmp"))
	}
	return []scenario{
		icmp("icmp_v4", "127.0.0.1", `
			icmp:
			  preferred_ip_protocol: ip4`),
		icmp("icmp_default_protocol", "127.0.0.1", ""),
		icmp("icmp_v6", "::1", `
			icmp:
			  preferred_ip_protocol: ip6`).with(needs("ipv6")),
		icmp("icmp_localhost_ip4", "localhost", `
			icmp:
			  preferred_ip_protocol: ip4`),
		icmp("icmp_ttl", "127.0.0.1", `
			icmp:
			  preferred_ip_protocol: ip4
			  ttl: 5`),
		icmp("icmp_payload_size", "127.0.0.1", `
			icmp:
			  preferred_ip_protocol: ip4
			  payload_size: 1000`),
		icmp("icmp_dont_fragment", "127.0.0.1", `
			icmp:
			  preferred_ip_protocol: ip4
			  dont_fragment: true
			  payload_size: 1200`),
		icmp("icmp_source_ip", "127.0.0.1", `
			icmp:
			  preferred_ip_protocol: ip4
			  source_ip_address: 127.0.0.1`),
		icmp("icmp_v6_payload", "::1", `
			icmp:
			  preferred_ip_protocol: ip6
			  payload_size: 200`).with(needs("ipv6")),
		icmp("icmp_ttl_zero", "127.0.0.1", `
			icmp:
			  preferred_ip_protocol: ip4
			  ttl: 0`),
		icmp("icmp_ttl_one", "127.0.0.1", `
			icmp:
			  preferred_ip_protocol: ip4
			  ttl: 1`),
		// Larger than an Ethernet frame, but not much: every raw ICMP socket
		// open on the machine gets a copy of each packet, and a 65 KB echo
		// overflowed the receive buffer of BBE's other probes running
		// alongside, which then missed their own replies.
		icmp("icmp_payload_large", "127.0.0.1", `
			icmp:
			  preferred_ip_protocol: ip4
			  payload_size: 9000`),
		icmp("icmp_payload_too_large_df", "127.0.0.1", `
			timeout: 500ms
			icmp:
			  preferred_ip_protocol: ip4
			  payload_size: 70000
			  dont_fragment: true`),
		icmp("icmp_v6_ttl", "::1", `
			icmp:
			  preferred_ip_protocol: ip6
			  ttl: 3`).with(needs("ipv6")),
		icmp("icmp_localhost_default", "localhost", ""),
		icmp("icmp_with_port", "127.0.0.1:80", `
			icmp:
			  preferred_ip_protocol: ip4`),
		icmp("icmp_ip6_no_fallback_on_ip4", "127.0.0.1", `
			icmp:
			  preferred_ip_protocol: ip6
			  ip_protocol_fallback: false`),
	}
}

func grpcScenarios(p *peers) []scenario {
	g := p.grpc
	grpc := func(name, target, module string) scenario {
		return probe("grpc", name, target, sub(module, "{ca}", p.pki.caFile))
	}
	return []scenario{
		grpc("grpc_plain", g.plain, `
			grpc:
			  preferred_ip_protocol: ip4`),
		grpc("grpc_default_protocol", g.plain, ""),
		grpc("grpc_url_target", "grpc://"+g.plain, `
			grpc:
			  preferred_ip_protocol: ip4`),
		grpc("grpc_http_url_target", "http://"+g.plain, `
			grpc:
			  preferred_ip_protocol: ip4`),
		grpc("grpc_service_serving", g.plain, `
			grpc:
			  service: `+grpcServing),
		grpc("grpc_service_not_serving", g.plain, `
			grpc:
			  service: `+grpcNotServing),
		grpc("grpc_service_unknown", g.plain, `
			grpc:
			  service: `+grpcUnknown),
		grpc("grpc_service_status_unknown", g.plain, `
			grpc:
			  preferred_ip_protocol: ip4
			  service: `+grpcStatusUnknown),
		grpc("grpc_metadata", g.plain, `
			grpc:
			  service: `+grpcGuarded+`
			  metadata:
			    x-compat-key: [letmein]`),
		grpc("grpc_metadata_missing", g.plain, `
			grpc:
			  service: `+grpcGuarded),
		grpc("grpc_tls", g.tls, `
			grpc:
			  tls: true
			  tls_config:
			    ca_file: {ca}`),
		grpc("grpc_tls_service_not_serving", g.tls, `
			grpc:
			  tls: true
			  service: `+grpcNotServing+`
			  tls_config:
			    ca_file: {ca}`),
		grpc("grpc_tls_untrusted", g.tls, `
			grpc:
			  tls: true`),
		grpc("grpc_tls_insecure", g.tls, `
			grpc:
			  tls: true
			  tls_config:
			    insecure_skip_verify: true`),
		grpc("grpc_tls_expired", g.expired, `
			grpc:
			  tls: true
			  tls_config:
			    ca_file: {ca}`),
		grpc("grpc_tls_server_name", g.named, `
			grpc:
			  tls: true
			  tls_config:
			    ca_file: {ca}
			    server_name: sonde.test`),
		grpc("grpc_tls_wrong_name", g.named, `
			grpc:
			  tls: true
			  tls_config:
			    ca_file: {ca}`),
		grpc("grpc_tls_on_plain", g.plain, `
			grpc:
			  tls: true
			  tls_config:
			    ca_file: {ca}`),
		grpc("grpc_plain_on_tls", g.tls, `
			timeout: 1s
			grpc:
			  tls: false`),
		grpc("grpc_refused", p.stream.refused, `
			grpc:
			  preferred_ip_protocol: ip4`),
		grpc("grpc_no_health_service", g.noHealth, `
			grpc:
			  preferred_ip_protocol: ip4`),
		grpc("grpc_ipv6", g.plainV6, `
			grpc:
			  preferred_ip_protocol: ip6`).with(needs("ipv6")),
		grpc("grpc_no_port", "127.0.0.1", `
			grpc:
			  preferred_ip_protocol: ip4`),
		grpc("grpc_no_port_tls", "127.0.0.1", `
			grpc:
			  preferred_ip_protocol: ip4
			  tls: true`),
	}
}

func unixScenarios(p *peers) []scenario {
	s := p.stream
	unix := func(name, target, module string) scenario {
		return probe("unix", name, target, sub(module, "{ca}", p.pki.caFile))
	}
	return []scenario{
		unix("unix_connect", s.unixLine, ""),
		unix("unix_conversation", s.unixLine, `
			unix:
			  query_response:
			    - expect: "^220"
			    - send: "PING"
			    - expect: "^PONG"`),
		unix("unix_labels", s.unixLine, `
			unix:
			  query_response:
			    - expect: "^220"
			    - send: "VERSION"
			    - expect: "^VERSION compat (\\S+)"
			      labels:
			        - name: version
			          value: "${1}"`),
		unix("unix_expect_mismatch", s.unixLine, `
			timeout: 400ms
			unix:
			  query_response:
			    - expect: "^421"`),
		unix("unix_starttls", s.unixLine, `
			unix:
			  query_response:
			    - expect: "^220"
			    - send: "STARTTLS"
			    - expect: "^220 go ahead"
			    - starttls: true
			    - send: "PING"
			    - expect: "^PONG"
			  tls_config:
			    ca_file: {ca}
			    server_name: localhost`),
		unix("unix_tls_server_name", s.unixTLS, `
			unix:
			  tls: true
			  tls_config:
			    ca_file: {ca}
			    server_name: sonde.test
			  query_response:
			    - expect: "^220"`),
		unix("unix_tls_no_server_name", s.unixTLS, `
			unix:
			  tls: true
			  tls_config:
			    ca_file: {ca}`),
		unix("unix_tls_insecure", s.unixTLS, `
			unix:
			  tls: true
			  tls_config:
			    insecure_skip_verify: true`),
		unix("unix_absent", s.unixNoSck, ""),
	}
}

// endpointScenarios are the edge cases of /probe itself.
func endpointScenarios(p *peers) []scenario {
	plain := p.http.plain + "/"
	return []scenario{
		{name: "probe_unknown_module", useModule: "no_such_module", target: plain},
		{name: "probe_missing_target", useModule: "http_2xx", noTarget: true},
		{name: "probe_empty_target", useModule: "http_2xx", noTarget: true, params: url.Values{"target": {""}}},
		{name: "probe_no_module_param", useModule: "-", target: plain},
		{name: "probe_timeout_header_absent", prober: "http", target: plain, timeout: "-"},
		{name: "probe_timeout_header_absent_module", prober: "http", target: plain, timeout: "-", module: `
			timeout: 2s`},
		// Modules BBE loads and fails only when probed: sonde must load
		// them too (they are in BBE's testdata and example.yml).
		{name: "probe_unknown_prober", prober: "grpc_probe", target: plain, module: `
			grpc:
			  service: example`},
		{name: "probe_body_file_missing", prober: "http", target: plain, module: `
			http:
			  method: POST
			  body_file: /nonexistent/compat/body.txt`},
		{name: "probe_http_version_never_matches", prober: "http", target: plain, module: `
			http:
			  valid_http_versions: ["HTTP/1.1", "HTTP/2"]`},
		{name: "probe_http_version_never_matches_only", prober: "http", target: plain, module: `
			http:
			  valid_http_versions: ["HTTP/2"]`},
		{name: "probe_bad_method", prober: "http", target: plain, module: `
			http:
			  method: "GET /"`},
		{name: "probe_header_value_newline", prober: "http", target: plain, module: `
			http:
			  headers:
			    X-Broken: "a\r\nX-Injected: b"`},
		{name: "probe_header_name_invalid", prober: "http", target: plain, module: `
			http:
			  headers:
			    "Bad Header": "x"`},
		{name: "probe_dns_rcode_unknown", prober: "dns", target: p.dns.addr, module: `
			dns:
			  query_name: compat.test
			  query_type: A
			  valid_rcodes: [NOPE]`},
		{name: "probe_dns_rr_regexp_invalid", prober: "dns", target: p.dns.addr, module: `
			dns:
			  query_name: compat.test
			  query_type: A
			  validate_answer_rrs:
			    fail_if_matches_regexp: ["["]`},
		{name: "probe_dns_transport_unknown", prober: "dns", target: p.dns.addr, module: `
			dns:
			  query_name: compat.test
			  transport_protocol: sctp`},
		{name: "probe_dns_dot_over_udp", prober: "dns", target: p.dns.dot, module: `
			dns:
			  query_name: compat.test
			  dns_over_tls: true`},
		{name: "probe_tcp_source_ip_invalid", prober: "tcp", target: p.stream.line, module: `
			tcp:
			  source_ip_address: not-an-ip`},
		{name: "probe_dns_source_ip_invalid", prober: "dns", target: p.dns.addr, module: `
			dns:
			  query_name: compat.test
			  source_ip_address: not-an-ip`},
		{name: "probe_icmp_source_ip_invalid", prober: "icmp", target: "127.0.0.1", needs: []string{"icmp"}, module: `
			icmp:
			  source_ip_address: not-an-ip`},
		{name: "probe_grpc_metadata_uppercase", prober: "grpc", target: p.grpc.plain, module: `
			grpc:
			  preferred_ip_protocol: ip4
			  metadata:
			    X-Upper: [v]`},
		{name: "probe_grpc_metadata_invalid_key", prober: "grpc", target: p.grpc.plain, module: `
			grpc:
			  preferred_ip_protocol: ip4
			  metadata:
			    "bad key": [v]`},
		{name: "probe_tcp_tls_ca_missing", prober: "tcp", target: p.stream.tls, module: `
			tcp:
			  tls: true
			  tls_config:
			    ca_file: /nonexistent/compat/ca.pem`},
		{name: "probe_http_ca_missing", prober: "http", target: p.http.tls + "/", module: `
			http:
			  tls_config:
			    ca_file: /nonexistent/compat/ca.pem`},
		{name: "probe_two_targets", useModule: "http_2xx", target: plain, params: url.Values{"target": {plain, "http://" + p.stream.refused + "/"}}},
		{name: "probe_empty_module_param", useModule: "", target: plain, params: url.Values{"module": {""}}},
		{name: "probe_debug", useModule: "http_2xx", target: plain, params: url.Values{"debug": {"true"}}, statusOnly: true},
		{name: "probe_debug_unknown_module", useModule: "no_such_module", target: plain, params: url.Values{"debug": {"true"}}, statusOnly: true},
		{name: "probe_timeout_header_zero", useModule: "http_2xx", target: plain, timeout: "0"},
		{name: "probe_timeout_header_negative", useModule: "http_2xx", target: plain, timeout: "-1"},
		{name: "probe_timeout_header_bad", useModule: "http_2xx", target: plain, timeout: "soon"},
		{name: "probe_timeout_header_small", useModule: "http_2xx", target: plain, timeout: "1.5"},
		{name: "probe_timeout_header_under_offset", useModule: "http_2xx", target: plain, timeout: "0.3"},
		{name: "probe_timeout_header_under_offset_module", prober: "http", target: plain, timeout: "0.3", module: `
			timeout: 1s`},
		{name: "probe_timeout_module_shorter", prober: "http", target: plain, module: `
			timeout: 1s`},
		{name: "probe_timeout_module_longer", prober: "http", target: plain, module: `
			timeout: 10s`},
		{name: "probe_hostname_http", prober: "http", target: p.http.plain + "/echo", module: `
			http:
			  fail_if_body_not_matches_regexp: ["host=sonde.test"]`, params: url.Values{"hostname": {"sonde.test"}}},
		{name: "probe_hostname_conflict", prober: "http", target: plain, module: `
			http:
			  headers:
			    Host: other.test`, params: url.Values{"hostname": {"sonde.test"}}},
		{name: "probe_hostname_same_as_header", prober: "http", target: plain, module: `
			http:
			  headers:
			    Host: sonde.test`, params: url.Values{"hostname": {"sonde.test"}}},
		{name: "probe_hostname_grpc", prober: "grpc", target: p.grpc.named, params: url.Values{"hostname": {"sonde.test"}}, module: sub(`
			grpc:
			  tls: true
			  tls_config:
			    ca_file: {ca}`, "{ca}", p.pki.caFile)},
		{name: "probe_hostname_dot", prober: "dns", target: p.dns.dot, params: url.Values{"hostname": {"sonde.test"}}, module: sub(`
			dns:
			  transport_protocol: tcp
			  dns_over_tls: true
			  query_name: compat.test
			  tls_config:
			    ca_file: {ca}`, "{ca}", p.pki.caFile)},
		{name: "probe_hostname_unix_tls", prober: "unix", target: p.stream.unixTLS, params: url.Values{"hostname": {"sonde.test"}}, module: sub(`
			unix:
			  tls: true
			  tls_config:
			    ca_file: {ca}`, "{ca}", p.pki.caFile)},
		{name: "probe_hostname_tcp_plain", prober: "tcp", target: p.stream.line, params: url.Values{"hostname": {"sonde.test"}}, module: `
			tcp:
			  query_response:
			    - expect: "^220"`},
		{name: "probe_hostname_icmp_ignored", useModule: "icmp_v4", target: "127.0.0.1", params: url.Values{"hostname": {"sonde.test"}}, needs: []string{"icmp"}},
	}
}

func needs(what ...string) func(*scenario) {
	return func(s *scenario) { s.needs = append(s.needs, what...) }
}

func param(key, value string) func(*scenario) {
	return func(s *scenario) {
		if s.params == nil {
			s.params = url.Values{}
		}
		s.params.Add(key, value)
	}
}
