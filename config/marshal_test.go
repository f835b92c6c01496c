package config

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// lookup walks a decoded YAML document along keys (map keys, or list
// indexes written as ints).
func lookup(t *testing.T, doc any, path ...any) any {
	t.Helper()
	cur := doc
	for i, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				t.Fatalf("at %v: %T is not a mapping", path[:i], cur)
			}
			v, ok := m[k]
			if !ok {
				t.Fatalf("at %v: no key %q", path[:i], k)
			}
			cur = v
		case int:
			l, ok := cur.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("at %v: no item %d in %v", path[:i], k, cur)
			}
			cur = l[k]
		}
	}
	return cur
}

func hasKey(doc any, path ...string) bool {
	cur := doc
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[k]; !ok {
			return false
		}
	}
	return true
}

func marshalAndParse(t *testing.T, v any) (string, map[string]any) {
	t.Helper()
	out, err := Marshal(v)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("Marshal output is not YAML: %v\n%s", err, out)
	}
	return string(out), doc
}

func TestMarshalHidesSecrets(t *testing.T) {
	cfg, _ := allOptions(t)
	out, doc := marshalAndParse(t, cfg)

	// Not one secret value may appear, in any form.
	for _, secret := range []string{
		"probe-password", "authz-credentials", "oauth2-client-secret", "bearer-token-secret",
		"api-key-secret", "ws-password", "ws-bearer-token", "cHJveHk6c2VjcmV0", "observability",
	} {
		if strings.Contains(out, secret) {
			t.Errorf("Marshal output contains the secret %q:\n%s", secret, out)
		}
	}

	const masked = "<secret>"
	for _, tc := range []struct {
		path []any
		want any
	}{
		{[]any{"modules", "http_all", "http", "basic_auth", "password"}, masked},
		{[]any{"modules", "http_all", "http", "basic_auth", "username"}, "probe-user"}, // not a secret
		{[]any{"modules", "http_all", "http", "http_headers", "X-Api-Key", "secrets", 0}, masked},
		{[]any{"modules", "http_all", "http", "http_headers", "X-Api-Version", "values", 1}, "3"},
		{[]any{"modules", "http_all", "http", "proxy_connect_header", "Proxy-Authorization", 0}, masked},
		{[]any{"modules", "http_authorization", "http", "authorization", "credentials"}, masked},
		{[]any{"modules", "http_authorization", "http", "authorization", "type"}, "Token"},
		{[]any{"modules", "http_oauth2", "http", "oauth2", "client_secret"}, masked},
		{[]any{"modules", "http_oauth2", "http", "oauth2", "client_id"}, "sonde"},
		// bearer_token was moved into authorization by Load.
		{[]any{"modules", "http_bearer_token", "http", "authorization", "credentials"}, masked},
		{[]any{"modules", "http_bearer_token", "http", "authorization", "type"}, "Bearer"},
		{[]any{"modules", "websocket_all", "websocket", "http_config", "basic_auth", "password"}, masked},
		{[]any{"modules", "websocket_all", "websocket", "http_config", "bearer_token"}, masked},
	} {
		assertEqual(t, fmtPath(tc.path), lookup(t, doc, tc.path...), tc.want)
	}
	if hasKey(doc, "modules", "http_bearer_token", "http", "bearer_token") {
		t.Error("bearer_token is shown; Load moves it into authorization")
	}
}

func fmtPath(path []any) string {
	var b strings.Builder
	for i, p := range path {
		switch k := p.(type) {
		case string:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(k)
		case int:
			b.WriteString("[" + strconv.Itoa(k) + "]")
		}
	}
	return b.String()
}

func TestMarshalRendersValuesAsWritten(t *testing.T) {
	cfg, files := allOptions(t)
	out, doc := marshalAndParse(t, cfg)
	for _, tc := range []struct {
		path []any
		want any
	}{
		{[]any{"modules", "http_all", "timeout"}, "7s"},
		{[]any{"modules", "tcp_all", "timeout"}, "3s"},
		{[]any{"modules", "http_all", "http", "fail_if_body_matches_regexp"}, []any{"(?i)internal error", "^maintenance$"}},
		{[]any{"modules", "http_all", "http", "fail_if_body_not_matches_regexp", 0}, `"status":\s*"ok"`},
		{[]any{"modules", "http_all", "http", "fail_if_body_json_matches_cel"}, `body.status == "down"`},
		{[]any{"modules", "http_all", "http", "fail_if_body_json_not_matches_cel"}, `body.ready == true && size(body.items) > 0`},
		{[]any{"modules", "http_all", "http", "fail_if_header_matches", 0}, map[string]any{
			"header": "Set-Cookie", "regexp": "secure=false", "allow_missing": true,
		}},
		{[]any{"modules", "http_all", "http", "body_size_limit"}, "4KiB"},
		{[]any{"modules", "http_all", "http", "body_file"}, files["body"]},
		{[]any{"modules", "http_all", "http", "follow_redirects"}, false},
		{[]any{"modules", "http_all", "http", "enable_http2"}, false},
		{[]any{"modules", "http_all", "http", "proxy_url"}, "http://proxy.example.com:3128"},
		{[]any{"modules", "http_all", "http", "tls_config", "min_version"}, "TLS12"},
		{[]any{"modules", "http_all", "http", "tls_config", "max_version"}, "TLS13"},
		{[]any{"modules", "http_authorization", "http", "follow_redirects"}, false},
		{[]any{"modules", "tcp_all", "tcp", "query_response", 0, "expect"}, "^220 ([^ ]+) ESMTP (.+)$"},
		{[]any{"modules", "tcp_all", "tcp", "query_response", 6, "expect_bytes"}, "\x16\x03"},
		{[]any{"modules", "dns_all", "dns", "validate_authority_rrs", "fail_if_none_matches_regexp", 0}, `ns2\.example\.com`},
		{[]any{"modules", "grpc_all", "grpc", "metadata", "x-shards"}, []any{"one", "two"}},
		{[]any{"modules", "icmp_all", "icmp", "ttl"}, 32},
		// Defaults are shown in every section, as blackbox_exporter does.
		{[]any{"modules", "icmp_all", "http", "follow_redirects"}, true},
		{[]any{"modules", "http_all", "icmp", "ttl"}, 64},
	} {
		assertEqual(t, fmtPath(tc.path), lookup(t, doc, tc.path...), tc.want)
	}
	// A dns section is shown only with its query_name: blackbox_exporter
	// refuses a dns section without one, and /config must load again.
	if _, ok := doc["modules"].(map[string]any)["http_all"].(map[string]any)["dns"]; ok {
		t.Errorf("the http module's /config shows a dns section without query_name")
	}
	// The deprecated spelling is gone once applied.
	if strings.Contains(out, "no_follow_redirects") {
		t.Errorf("no_follow_redirects is shown:\n%s", out)
	}
	// An unset matcher or CEL program is left out rather than shown empty.
	if hasKey(doc, "modules", "tcp_all", "http", "fail_if_body_json_matches_cel") ||
		hasKey(doc, "modules", "tcp_all", "tcp", "query_response", "1", "expect") {
		t.Error("an unset value is shown")
	}
}

func TestMarshalDurations(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"5s", 5 * time.Second, "5s"},
		{"500ms", 500 * time.Millisecond, "500ms"},
		{"90s", 90 * time.Second, "1m30s"},
		{"1m30s", 90 * time.Second, "1m30s"},
		{"2h", 2 * time.Hour, "2h0m0s"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			m := mustModule(t, yml("modules:", "  m:", "    prober: tcp", "    timeout: "+tc.in), "m")
			assertEqual(t, "timeout", m.Timeout, tc.want)
			_, doc := marshalAndParse(t, m)
			assertEqual(t, "marshalled timeout", lookup(t, doc, "timeout"), any(tc.out))
		})
	}
	// No timeout is left out, not shown as 0s.
	_, doc := marshalAndParse(t, mustModule(t, yml("modules:", "  m:", "    prober: tcp"), "m"))
	if hasKey(doc, "timeout") {
		t.Errorf("unset timeout is shown: %v", doc["timeout"])
	}
}

// TestMarshalRoundTrip: what /config shows loads again into the same
// configuration, so that it can be saved and used.
func TestMarshalRoundTrip(t *testing.T) {
	first, err := LoadFile("testdata/no-secrets.yml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(first)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Load(out)
	if err != nil {
		t.Fatalf("Marshal output does not load: %v\n%s", err, out)
	}
	a, b := forCompare(first), forCompare(second)
	if len(a.Modules) != 7 {
		t.Fatalf("loaded %d modules, want 7", len(a.Modules))
	}
	for name := range a.Modules {
		assertEqual(t, "module "+name, b.Modules[name], a.Modules[name])
	}
	assertEqual(t, "module count", len(b.Modules), len(a.Modules))
	// And the output is stable: marshalling again changes nothing.
	again, err := Marshal(second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, again) {
		t.Errorf("second Marshal differs:\n--- first\n%s\n--- second\n%s", out, again)
	}
	// The CEL programs that came back are compiled, not just strings.
	p := second.Modules["http_2xx"].HTTP.FailIfBodyJSONNotMatchesCEL
	if v, _, err := p.Eval(map[string]any{"body": map[string]any{"status": "up"}}); err != nil || v.Value() != true {
		t.Errorf("reloaded CEL program evaluates to %v, %v", v, err)
	}
}

// TestMarshalModule: Marshal takes any value; the probe debug output uses it
// on single modules.
func TestMarshalModule(t *testing.T) {
	m := mustModule(t, yml(
		"modules:",
		"  m:",
		"    prober: http",
		"    http:",
		"      basic_auth: {username: u, password: hunter2}",
		"      fail_if_body_matches_regexp: ['x+']",
	), "m")
	out, doc := marshalAndParse(t, m)
	if strings.Contains(out, "hunter2") {
		t.Errorf("password shown:\n%s", out)
	}
	assertEqual(t, "prober", lookup(t, doc, "prober"), any("http"))
	assertEqual(t, "password", lookup(t, doc, "http", "basic_auth", "password"), any("<secret>"))
	assertEqual(t, "regexp", lookup(t, doc, "http", "fail_if_body_matches_regexp", 0), any("x+"))
	if !strings.HasPrefix(out, "prober: http\n") || strings.Contains(out, "\t") {
		t.Errorf("want two-space indented YAML starting with the prober, got:\n%s", out)
	}
}
