package config

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pconfig "github.com/prometheus/common/config"
)

// allOptions renders testdata/blackbox-all-options.yml with the files it
// names created in a temporary directory, and loads it through LoadFile.
func allOptions(t *testing.T) (*Config, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	data := struct {
		TLS                 tlsFiles
		BodyFile, TokenFile string
	}{
		TLS:       writeTLSFiles(t, dir),
		BodyFile:  writeFile(t, dir, "body.json", `{"query": "status"}`),
		TokenFile: writeFile(t, dir, "token", "file-token\n"),
	}
	path := renderTemplate(t, "blackbox-all-options.yml", dir, data)
	cfg, err := LoadFile(path)
	if err != nil {
		t.Fatalf("LoadFile(%s): %v", path, err)
	}
	return cfg, map[string]string{
		"ca": data.TLS.CAFile, "cert": data.TLS.CertFile, "key": data.TLS.KeyFile,
		"capem": data.TLS.CAPEM, "body": data.BodyFile, "token": data.TokenFile,
	}
}

func TestLoadFileAllBlackboxOptions(t *testing.T) {
	cfg, files := allOptions(t)
	wantModules := []string{
		"http_all", "http_authorization", "http_oauth2", "http_bearer_token", "http_bearer_token_file",
		"tcp_all", "icmp_all", "dns_all", "grpc_all", "unix_all", "websocket_all",
	}
	if len(cfg.Modules) != len(wantModules) {
		t.Errorf("loaded %d modules %v, want %d", len(cfg.Modules), moduleNames(cfg), len(wantModules))
	}
	for _, name := range wantModules {
		if _, ok := cfg.Modules[name]; !ok {
			t.Errorf("module %q missing", name)
		}
	}

	t.Run("http", func(t *testing.T) {
		m := cfg.Modules["http_all"]
		h := m.HTTP
		assertEqual(t, "prober", m.Prober, "http")
		assertEqual(t, "timeout", m.Timeout, 7*time.Second)
		assertEqual(t, "valid_status_codes", h.ValidStatusCodes, []int{200, 204, 301})
		assertEqual(t, "valid_http_versions", h.ValidHTTPVersions, []string{"HTTP/1.1", "HTTP/2.0"})
		assertEqual(t, "preferred_ip_protocol", h.IPProtocol, "ip4")
		assertEqual(t, "ip_protocol_fallback", h.IPProtocolFallback, false)
		assertEqual(t, "skip_resolve_phase_with_proxy", h.SkipResolvePhaseWithProxy, true)
		assertEqual(t, "fail_if_ssl", h.FailIfSSL, false)
		assertEqual(t, "fail_if_not_ssl", h.FailIfNotSSL, true)
		assertEqual(t, "method", h.Method, "POST")
		assertEqual(t, "headers", h.Headers, map[string]string{
			"Content-Type": "application/json", "Accept-Encoding": "gzip, br;q=0.5", "X-Trace": "on",
		})
		assertRegexps(t, "fail_if_body_matches_regexp", h.FailIfBodyMatchesRegexp, "(?i)internal error", "^maintenance$")
		if re := h.FailIfBodyMatchesRegexp[0]; !re.MatchString("an INTERNAL ERROR occurred") {
			t.Errorf("%q should match case-insensitively anywhere in the body", re)
		}
		assertRegexps(t, "fail_if_body_not_matches_regexp", h.FailIfBodyNotMatchesRegexp, `"status":\s*"ok"`)
		assertCEL(t, "fail_if_body_json_matches_cel", h.FailIfBodyJSONMatchesCEL, `body.status == "down"`,
			map[string]any{"status": "down"}, true)
		assertCEL(t, "fail_if_body_json_not_matches_cel", h.FailIfBodyJSONNotMatchesCEL, `body.ready == true && size(body.items) > 0`,
			map[string]any{"ready": true, "items": []any{1}}, true)
		if got := len(h.FailIfHeaderMatchesRegexp); got != 1 {
			t.Fatalf("fail_if_header_matches has %d entries, want 1", got)
		}
		hm := h.FailIfHeaderMatchesRegexp[0]
		assertEqual(t, "fail_if_header_matches[0].header", hm.Header, "Set-Cookie")
		assertEqual(t, "fail_if_header_matches[0].regexp", hm.Regexp.String(), "secure=false")
		assertEqual(t, "fail_if_header_matches[0].allow_missing", hm.AllowMissing, true)
		hn := h.FailIfHeaderNotMatchesRegexp
		if len(hn) != 1 || hn[0].Header != "Content-Type" || hn[0].Regexp.String() != "^application/json" || hn[0].AllowMissing {
			t.Errorf("fail_if_header_not_matches = %+v", hn)
		}
		assertEqual(t, "body_file", h.BodyFile, files["body"])
		assertEqual(t, "body", h.Body, "")
		assertEqual(t, "compression", h.Compression, "gzip")
		// blackbox's units: "KB" is the old spelling of KiB.
		assertEqual(t, "body_size_limit", int64(h.BodySizeLimit), int64(4096))
		assertEqual(t, "enable_http3", h.EnableHTTP3, false)

		c := h.HTTPClientConfig
		if c.BasicAuth == nil {
			t.Fatal("basic_auth not decoded")
		}
		assertEqual(t, "basic_auth.username", c.BasicAuth.Username, "probe-user")
		assertEqual(t, "basic_auth.password", c.BasicAuth.Password, pconfig.Secret("probe-password"))
		assertEqual(t, "authorization", c.Authorization, (*pconfig.Authorization)(nil))
		assertEqual(t, "proxy_url", c.ProxyURL.String(), "http://proxy.example.com:3128")
		assertEqual(t, "no_proxy", c.NoProxy, "localhost,127.0.0.1,.internal")
		assertEqual(t, "proxy_connect_header", c.ProxyConnectHeader,
			pconfig.ProxyHeader{"Proxy-Authorization": {"Basic cHJveHk6c2VjcmV0"}})
		assertEqual(t, "tls_config", c.TLSConfig, pconfig.TLSConfig{
			CAFile:             files["ca"],
			CertFile:           files["cert"],
			KeyFile:            files["key"],
			ServerName:         "api.example.com",
			InsecureSkipVerify: true,
			MinVersion:         pconfig.TLSVersion(tls.VersionTLS12),
			MaxVersion:         pconfig.TLSVersion(tls.VersionTLS13),
		})
		assertEqual(t, "follow_redirects", c.FollowRedirects, false)
		assertEqual(t, "enable_http2", c.EnableHTTP2, false)
		if c.HTTPHeaders == nil {
			t.Fatal("http_headers not decoded")
		}
		assertEqual(t, "http_headers", c.HTTPHeaders.Headers, map[string]pconfig.Header{
			"X-Api-Version": {Values: []string{"2", "3"}},
			"X-Api-Key":     {Secrets: []pconfig.Secret{"api-key-secret"}},
		})
	})

	t.Run("http authorization, proxy_from_environment, body, inline ca", func(t *testing.T) {
		h := cfg.Modules["http_authorization"].HTTP
		c := h.HTTPClientConfig
		assertEqual(t, "authorization", c.Authorization, &pconfig.Authorization{Type: "Token", Credentials: "authz-credentials"})
		assertEqual(t, "proxy_from_environment", c.ProxyFromEnvironment, true)
		assertEqual(t, "proxy_connect_header", c.ProxyConnectHeader, pconfig.ProxyHeader{"X-Proxy-Team": {"observability"}})
		assertEqual(t, "body", h.Body, `{"ping": true}`)
		assertEqual(t, "fail_if_ssl", h.FailIfSSL, true)
		// no_follow_redirects is blackbox's deprecated spelling: it wins, and
		// is hidden once applied.
		assertEqual(t, "follow_redirects", c.FollowRedirects, false)
		assertEqual(t, "no_follow_redirects", h.NoFollowRedirects, (*bool)(nil))
		assertEqual(t, "tls_config.ca", c.TLSConfig.CA, files["capem"])
	})

	t.Run("http oauth2", func(t *testing.T) {
		o := cfg.Modules["http_oauth2"].HTTP.HTTPClientConfig.OAuth2
		if o == nil {
			t.Fatal("oauth2 not decoded")
		}
		assertEqual(t, "client_id", o.ClientID, "sonde")
		assertEqual(t, "client_secret", o.ClientSecret, pconfig.Secret("oauth2-client-secret"))
		assertEqual(t, "scopes", o.Scopes, []string{"read", "probe"})
		assertEqual(t, "token_url", o.TokenURL, "https://auth.example.com/token")
		assertEqual(t, "endpoint_params", o.EndpointParams, map[string]string{"audience": "monitoring"})
	})

	t.Run("http bearer_token and bearer_token_file become authorization", func(t *testing.T) {
		// prometheus/common's Validate moves the legacy fields into
		// authorization, which is what the round tripper reads.
		c := cfg.Modules["http_bearer_token"].HTTP.HTTPClientConfig
		assertEqual(t, "bearer_token", c.BearerToken, pconfig.Secret(""))
		assertEqual(t, "authorization", c.Authorization, &pconfig.Authorization{Type: "Bearer", Credentials: "bearer-token-secret"})
		c = cfg.Modules["http_bearer_token_file"].HTTP.HTTPClientConfig
		assertEqual(t, "bearer_token_file", c.BearerTokenFile, "")
		assertEqual(t, "authorization", c.Authorization, &pconfig.Authorization{Type: "Bearer", CredentialsFile: files["token"]})
	})

	t.Run("tcp", func(t *testing.T) {
		m := cfg.Modules["tcp_all"]
		tc := m.TCP
		assertEqual(t, "timeout", m.Timeout, 3*time.Second)
		assertEqual(t, "preferred_ip_protocol", tc.IPProtocol, "ip6")
		assertEqual(t, "ip_protocol_fallback", tc.IPProtocolFallback, false)
		assertEqual(t, "source_ip_address", tc.SourceIPAddress, "192.0.2.10")
		assertEqual(t, "tls", tc.TLS, true)
		assertEqual(t, "tls_config", tc.TLSConfig, pconfig.TLSConfig{
			CAFile: files["ca"], ServerName: "smtp.example.com", MinVersion: pconfig.TLSVersion(tls.VersionTLS12),
		})
		qr := tc.QueryResponse
		if len(qr) != 8 {
			t.Fatalf("query_response has %d steps, want 8", len(qr))
		}
		assertEqual(t, "[0].expect", qr[0].Expect.String(), "^220 ([^ ]+) ESMTP (.+)$")
		if got := qr[0].Expect.FindStringSubmatch("220 mx.example.com ESMTP Postfix"); len(got) != 3 || got[1] != "mx.example.com" {
			t.Errorf("[0].expect groups = %q", got)
		}
		assertEqual(t, "[0].labels", qr[0].Labels, []Label{{Name: "server", Value: "${1}"}, {Name: "software", Value: "${2}"}})
		assertEqual(t, "[1].send", qr[1].Send, "EHLO ${1}\r")
		assertEqual(t, "[1].expect set", qr[1].Expect.IsSet(), false)
		assertEqual(t, "[5].starttls", qr[5].StartTLS, true)
		assertEqual(t, "[6].expect_bytes", qr[6].ExpectBytes, "\x16\x03")
		assertEqual(t, "[7].send", qr[7].Send, "QUIT\r")
	})

	t.Run("icmp", func(t *testing.T) {
		assertEqual(t, "icmp", cfg.Modules["icmp_all"].ICMP, ICMPProbe{
			IPProtocol: "ip4", SourceIPAddress: "2001:db8::1", PayloadSize: 1200, DontFragment: true, TTL: 32,
			// sonde's additions keep their defaults in a blackbox file
			Packets: DefaultICMPPackets, PacketInterval: DefaultICMPPacketInterval,
		})
	})

	t.Run("dns", func(t *testing.T) {
		d := cfg.Modules["dns_all"].DNS
		assertEqual(t, "preferred_ip_protocol", d.IPProtocol, "ip4")
		assertEqual(t, "ip_protocol_fallback", d.IPProtocolFallback, false)
		assertEqual(t, "dns_over_tls", d.DNSOverTLS, true)
		assertEqual(t, "tls_config", d.TLSConfig, pconfig.TLSConfig{CAFile: files["ca"], ServerName: "dns.example.com"})
		assertEqual(t, "source_ip_address", d.SourceIPAddress, "192.0.2.53")
		assertEqual(t, "transport_protocol", d.TransportProtocol, "tcp")
		assertEqual(t, "query_class", d.QueryClass, "CH")
		assertEqual(t, "query_name", d.QueryName, "example.com")
		assertEqual(t, "query_type", d.QueryType, "MX")
		assertEqual(t, "recursion_desired", d.Recursion, false)
		assertEqual(t, "valid_rcodes", d.ValidRcodes, []string{"NOERROR", "NXDOMAIN"})
		for _, v := range []struct {
			name string
			got  DNSRRValidator
			want [4]string // matches, all match, not matches, none matches
		}{
			{"validate_answer_rrs", d.ValidateAnswer, [4]string{`.*127\.0\.0\.1`, `.*10\..*`, `example\.com\.\s+\d+\s+IN\s+MX`, `mail\.example\.com`}},
			{"validate_authority_rrs", d.ValidateAuthority, [4]string{`ns0\.`, `ns9\.`, `ns1\.example\.com`, `ns2\.example\.com`}},
			{"validate_additional_rrs", d.ValidateAdditional, [4]string{`bogus`, `AAAA`, `\sA\s`, `glue`}},
		} {
			assertRRPatterns(t, v.name+".fail_if_matches_regexp", v.got.FailIfMatchesRegexp, v.want[0])
			assertRRPatterns(t, v.name+".fail_if_all_match_regexp", v.got.FailIfAllMatchRegexp, v.want[1])
			assertRRPatterns(t, v.name+".fail_if_not_matches_regexp", v.got.FailIfNotMatchesRegexp, v.want[2])
			assertRRPatterns(t, v.name+".fail_if_none_matches_regexp", v.got.FailIfNoneMatchesRegexp, v.want[3])
		}
		if !d.ValidateAnswer.FailIfNotMatchesRegexp[0].MatchString("example.com.\t300\tIN\tMX\t10 mail.example.com.") {
			t.Error("validate_answer_rrs regexp should match an MX record's text form")
		}
	})

	t.Run("grpc", func(t *testing.T) {
		assertEqual(t, "grpc", cfg.Modules["grpc_all"].GRPC, GRPCProbe{
			Service: "grpc.health.v1.Health",
			TLS:     true,
			TLSConfig: pconfig.TLSConfig{
				CAFile: files["ca"], CertFile: files["cert"], KeyFile: files["key"], ServerName: "grpc.example.com",
			},
			PreferredIPProtocol: "ip4",
			Metadata:            map[string][]string{"x-tenant": {"blue"}, "x-shards": {"one", "two"}},
		})
	})

	t.Run("unix", func(t *testing.T) {
		u := cfg.Modules["unix_all"].Unix
		assertEqual(t, "tls", u.TLS, true)
		assertEqual(t, "tls_config", u.TLSConfig, pconfig.TLSConfig{ServerName: "socket.example.com", InsecureSkipVerify: true})
		if len(u.QueryResponse) != 2 {
			t.Fatalf("query_response has %d steps, want 2", len(u.QueryResponse))
		}
		assertEqual(t, "[0].send", u.QueryResponse[0].Send, "PING\n")
		assertEqual(t, "[1].expect", u.QueryResponse[1].Expect.String(), `^PONG (\d+)`)
		assertEqual(t, "[1].labels", u.QueryResponse[1].Labels, []Label{{Name: "version", Value: "${1}"}})
	})

	t.Run("websocket", func(t *testing.T) {
		w := cfg.Modules["websocket_all"].Websocket
		assertEqual(t, "preferred_ip_protocol", w.IPProtocol, "ip6")
		assertEqual(t, "ip_protocol_fallback", w.IPProtocolFallback, false)
		assertEqual(t, "http_config.basic_auth", w.HTTPConfig.BasicAuth, &pconfig.BasicAuth{Username: "ws-user", Password: "ws-password"})
		assertEqual(t, "http_config.bearer_token", w.HTTPConfig.BearerToken, pconfig.Secret("ws-bearer-token"))
		assertEqual(t, "http_config.tls_config", w.HTTPConfig.TLSConfig, pconfig.TLSConfig{InsecureSkipVerify: true, ServerName: "ws.example.com"})
		assertEqual(t, "http_config.headers", w.HTTPConfig.Headers, map[string]Strings{"Origin": {"https://example.com"}, "X-Multi": {"a", "b"}})
		assertEqual(t, "headers", w.Headers, map[string]string{"Sec-WebSocket-Protocol": "chat"})
		if len(w.QueryResponse) != 2 || w.QueryResponse[0].Send != `{"op": "ping"}` || w.QueryResponse[1].Expect.String() != `"op":\s*"pong"` {
			t.Errorf("query_response = %+v", w.QueryResponse)
		}
	})
}

func assertRRPatterns(t *testing.T, what string, got []RRPattern, want ...string) {
	t.Helper()
	re := make([]Regexp, len(got))
	for i, p := range got {
		if p.Err != nil {
			t.Errorf("%s[%d]: %v", what, i, p.Err)
		}
		re[i] = p.Regexp
	}
	assertRegexps(t, what, re, want...)
}

func assertRegexps(t *testing.T, what string, got []Regexp, want ...string) {
	t.Helper()
	var s []string
	for _, re := range got {
		if !re.IsSet() {
			t.Errorf("%s: a regexp was decoded but not compiled", what)
		}
		s = append(s, re.String())
	}
	assertEqual(t, what, s, want)
}

// assertCEL checks that an expression was kept as written and compiled into
// a program that evaluates body as expected.
func assertCEL(t *testing.T, what string, p *CELProgram, expr string, body any, want bool) {
	t.Helper()
	if p == nil {
		t.Errorf("%s not decoded", what)
		return
	}
	assertEqual(t, what, p.String(), expr)
	out, _, err := p.Eval(map[string]any{"body": body})
	if err != nil {
		t.Errorf("%s: evaluating: %v", what, err)
		return
	}
	assertEqual(t, what+" result", out.Value(), any(want))
}

// TestDefaults checks blackbox's defaults, in a section that is written and
// in one that is not: a probe reads its section whether or not the file had
// one.
func TestDefaults(t *testing.T) {
	cfg := mustLoad(t, yml(
		"modules:",
		"  bare_http:",
		"    prober: http",
		"  empty_sections:",
		"    prober: http",
		"    http: {}",
		"    tcp: {}",
		"    icmp: {}",
		"    dns: {query_name: example.com}",
		"    grpc: {}",
		"    unix: {}",
		"    websocket: {}",
		"  tcp_only:",
		"    prober: tcp",
	))
	for name, m := range cfg.Modules {
		t.Run(name, func(t *testing.T) {
			h := m.HTTP
			assertEqual(t, "http.ip_protocol_fallback", h.IPProtocolFallback, true)
			assertEqual(t, "http.follow_redirects", h.HTTPClientConfig.FollowRedirects, true)
			assertEqual(t, "http.enable_http2", h.HTTPClientConfig.EnableHTTP2, true)
			// GET is applied by the prober, so /config shows what was written.
			assertEqual(t, "http.method", h.Method, "")
			assertEqual(t, "http.preferred_ip_protocol", h.IPProtocol, "")
			assertEqual(t, "http.no_follow_redirects", h.NoFollowRedirects, (*bool)(nil))
			assertEqual(t, "http.valid_status_codes", h.ValidStatusCodes, []int(nil))
			assertEqual(t, "http.body_size_limit", int64(h.BodySizeLimit), int64(0))
			assertEqual(t, "tcp.ip_protocol_fallback", m.TCP.IPProtocolFallback, true)
			assertEqual(t, "icmp.ip_protocol_fallback", m.ICMP.IPProtocolFallback, true)
			assertEqual(t, "icmp.ttl", m.ICMP.TTL, 64)
			assertEqual(t, "dns.ip_protocol_fallback", m.DNS.IPProtocolFallback, true)
			assertEqual(t, "dns.recursion_desired", m.DNS.Recursion, true)
			assertEqual(t, "dns.query_type", m.DNS.QueryType, "")
			assertEqual(t, "dns.transport_protocol", m.DNS.TransportProtocol, "")
			assertEqual(t, "grpc.ip_protocol_fallback", m.GRPC.IPProtocolFallback, true)
			assertEqual(t, "websocket.ip_protocol_fallback", m.Websocket.IPProtocolFallback, true)
			assertEqual(t, "timeout", m.Timeout, time.Duration(0))
		})
	}
	// DefaultModule is what a module starts from; it must agree with what
	// Load produced for a module with no sections.
	def := DefaultModule()
	def.Prober = "tcp"
	assertEqual(t, "DefaultModule with prober tcp", forCompare(&Config{Modules: map[string]Module{"m": def}}).Modules["m"], cfg.Modules["tcp_only"])
}

func TestFollowRedirects(t *testing.T) {
	for _, tc := range []struct {
		http string
		want bool
	}{
		{"{}", true},
		{"{follow_redirects: false}", false},
		{"{follow_redirects: true}", true},
		{"{no_follow_redirects: true}", false},
		{"{no_follow_redirects: false}", true},
		// The deprecated option wins, as in blackbox_exporter.
		{"{no_follow_redirects: true, follow_redirects: true}", false},
		{"{no_follow_redirects: false, follow_redirects: false}", true},
	} {
		t.Run(tc.http, func(t *testing.T) {
			h := mustModule(t, yml("modules:", "  m:", "    prober: http", "    http: "+tc.http), "m").HTTP
			assertEqual(t, "follow_redirects", h.HTTPClientConfig.FollowRedirects, tc.want)
			assertEqual(t, "no_follow_redirects", h.NoFollowRedirects, (*bool)(nil))
		})
	}
}

// TestEmptyConfigs: like blackbox_exporter, a file that says it has no
// modules is valid and probes nothing, and a file with nothing in it at all
// is refused: on a reload it is more likely a file caught mid-copy than
// a wish to remove every module.
func TestEmptyConfigs(t *testing.T) {
	for name, src := range map[string]string{
		"empty file":    "",
		"blank lines":   "\n\n  \n",
		"comments only": "# nothing here yet\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Load([]byte(src)); err == nil || !strings.Contains(err.Error(), "the file is empty or holds only comments") {
				t.Errorf("Load = %v, want the empty file refused", err)
			}
		})
	}
	for name, src := range map[string]string{
		"document marker":   "---\n",
		"explicit null":     "~\n",
		"modules: nothing":  "modules:\n",
		"modules: {}":       "modules: {}\n",
		"modules: null":     "modules: null\n",
		"modules: comments": "modules:\n  # http_2xx:\n  #   prober: http\n",
	} {
		t.Run(name, func(t *testing.T) {
			cfg := mustLoad(t, src)
			if cfg.Modules == nil || len(cfg.Modules) != 0 {
				t.Errorf("Modules = %#v, want an empty, non-nil map", cfg.Modules)
			}
		})
	}
	t.Run("LoadFile of an empty file", func(t *testing.T) {
		path := writeFile(t, t.TempDir(), "empty.yml", "")
		if _, err := LoadFile(path); err == nil || !strings.Contains(err.Error(), "config file "+path+": the file is empty") {
			t.Errorf("LoadFile = %v; want the empty file refused, naming it", err)
		}
	})
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	t.Run("missing file", func(t *testing.T) {
		_, err := LoadFile(filepath.Join(dir, "nope.yml"))
		if err == nil || !strings.Contains(err.Error(), "reading config file") || !os.IsNotExist(unwrapAll(err)) {
			t.Errorf("err = %v, want a wrapped not-exist error", err)
		}
	})
	t.Run("bad content names the file", func(t *testing.T) {
		path := writeFile(t, dir, "bad.yml", yml("modules:", "  m:", "    prober: http", "    timout: 5s"))
		_, err := LoadFile(path)
		want := "config file " + path + ": line 4: module \"m\": unknown field"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to contain %q", err, want)
		}
	})
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// TestAnchorsAndMergeKeys: YAML's ways of sharing settings work inside
// modules, as they do with blackbox_exporter's yaml.v3 decoder.
func TestAnchorsAndMergeKeys(t *testing.T) {
	src := yml(
		"modules:",
		"  http_base: &http_base",
		"    prober: http",
		"    timeout: 5s",
		"    http: &http_section",
		"      method: GET",
		"      valid_status_codes: [200]",
		"      headers: &headers",
		"        User-Agent: sonde",
		"  http_post:",
		"    <<: *http_base",
		"    timeout: 10s", // overrides the merged value
		"    http:",
		"      <<: *http_section",
		"      method: POST", // overrides inside a merged section
		"      headers: *headers",
		"  http_alias: *http_base",
		"  http_section_alias:",
		"    prober: http",
		"    http: *http_section",
		"  override_before_merge:",
		"    prober: tcp", // written before the merge, still wins
		"    <<: *http_base",
		"  merge_list:",
		"    <<: [{prober: icmp, timeout: 1s}, *http_base]", // the first mapping listed wins
	)
	cfg := mustLoad(t, src)
	for _, tc := range []struct {
		module, prober, method string
		timeout                time.Duration
		codes                  []int
	}{
		{"http_base", "http", "GET", 5 * time.Second, []int{200}},
		{"http_post", "http", "POST", 10 * time.Second, []int{200}},
		{"http_alias", "http", "GET", 5 * time.Second, []int{200}},
		{"http_section_alias", "http", "GET", 0, []int{200}},
		{"override_before_merge", "tcp", "GET", 5 * time.Second, []int{200}},
		{"merge_list", "icmp", "GET", time.Second, []int{200}},
	} {
		t.Run(tc.module, func(t *testing.T) {
			m, ok := cfg.Modules[tc.module]
			if !ok {
				t.Fatalf("module missing")
			}
			assertEqual(t, "prober", m.Prober, tc.prober)
			assertEqual(t, "timeout", m.Timeout, tc.timeout)
			assertEqual(t, "http.method", m.HTTP.Method, tc.method)
			assertEqual(t, "http.valid_status_codes", m.HTTP.ValidStatusCodes, tc.codes)
			assertEqual(t, "http.headers", m.HTTP.Headers, map[string]string{"User-Agent": "sonde"})
			// Defaults still apply under a merge.
			assertEqual(t, "http.follow_redirects", m.HTTP.HTTPClientConfig.FollowRedirects, true)
			assertEqual(t, "icmp.ttl", m.ICMP.TTL, 64)
		})
	}
}

func TestMergedMappingsAreStillChecked(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want []string // one per reported problem, in order
	}{
		{
			name: "unknown key inside a merged module",
			src: yml(
				"modules:",
				"  base: &base",
				"    prober: http",
				"    timout: 5s",
				"  derived:",
				"    <<: *base",
			),
			// Reported once for each module that uses the mapping.
			want: []string{
				`line 4: module "base": unknown field "timout" (did you mean "timeout"?)`,
				`line 4: module "derived": unknown field "timout" (did you mean "timeout"?)`,
			},
		},
		{
			name: "unknown key inside a merged section",
			src: yml(
				"modules:",
				"  a:",
				"    prober: http",
				"    http: &h",
				"      metod: GET",
				"  b:",
				"    prober: http",
				"    http:",
				"      <<: *h",
				"      method: POST",
			),
			want: []string{
				`line 5: module "a": http: unknown field "metod" (did you mean "method"?)`,
				`line 5: module "b": http: unknown field "metod" (did you mean "method"?)`,
			},
		},
		{
			name: "a key written twice next to a merge is still a duplicate",
			src: yml(
				"modules:",
				"  base: &base",
				"    prober: http",
				"  m:",
				"    <<: *base",
				"    timeout: 1s",
				"    timeout: 2s",
			),
			// yaml.v3's decoder finds the repeat too; it is reported once.
			want: []string{
				`line 7: module "m": key "timeout" is given twice (first on line 6); keep one`,
			},
		},
		{
			name: "a rule broken by merged values is reported",
			src: yml(
				"modules:",
				"  base: &base",
				"    prober: http",
				"    http:",
				"      method: GET",
				"      valid_status_codes: [200]",
				"  m:",
				"    <<: *base",
				"    http:",
				"      valid_status_codes: [999]",
			),
			want: []string{`line 10: module "m": http.valid_status_codes[0]: 999 is not an HTTP status code (100-599), so it never matches`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load([]byte(tc.src))
			got := problems(err)
			if cfg != nil {
				got = problems(errors.Join(cfg.Warnings...))
			}
			assertEqual(t, "problems", got, tc.want)
		})
	}
}

func TestInlineHTTPHeaders(t *testing.T) {
	// prometheus/common's http_headers is an inline map of header name to
	// {values, secrets, files}: any header name is a valid key, but the keys
	// inside each header are still checked.
	h := mustModule(t, yml(
		"modules:",
		"  m:",
		"    prober: http",
		"    http:",
		"      http_headers:",
		"        X-One: {values: [a]}",
		"        X-Two: {files: [/dev/null]}",
	), "m").HTTP.HTTPClientConfig.HTTPHeaders
	assertEqual(t, "http_headers", h.Headers, map[string]pconfig.Header{
		"X-One": {Values: []string{"a"}}, "X-Two": {Files: []string{"/dev/null"}},
	})

	_, err := Load([]byte(yml(
		"modules:",
		"  m:",
		"    prober: http",
		"    http:",
		"      http_headers:",
		"        X-One: {valuez: [a]}",
		"        Authorization: {values: [x]}",
	)))
	assertEqual(t, "problems", problems(err), []string{
		`line 4: module "m": http: setting header "Authorization" is not allowed`,
		`line 6: module "m": http.http_headers.X-One: unknown field "valuez" (did you mean "values"?)`,
	})
}
