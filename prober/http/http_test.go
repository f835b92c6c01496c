package http

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/andybalholm/brotli"
	pconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/version"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// env is what a table case can see of its test: its CA and server.
type env struct {
	t   *testing.T
	ca  *testcert.CA
	srv *httptest.Server
}

// httpCase is one probe against one test server.
type httpCase struct {
	name    string
	server  probertest.ServerOpts
	handler func(e *env) http.Handler                        // okHandler when nil
	target  func(e *env) string                              // the server's URL when nil
	module  func(h *config.HTTPProbe, e *env)                // changes to the default module
	yaml    func(e *env) string                              // an http section to load instead of the default module
	want    failure                                          // zero: the probe must succeed
	message []string                                         // substrings of the error message
	metrics map[string]float64                               // unlabelled gauges and their values
	absent  []string                                         // families that must not be exported
	check   func(t *testing.T, e *env, s *probemetrics.Sink) // anything else
}

// runHTTPCases runs every case, and once more through net/http's Transport
// (prometheus/common's round tripper) when the probe went the direct way:
// both must meet the case, and export the same series with the same
// values but for timings.
func runHTTPCases(t *testing.T, cases []httpCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			direct, wentDirect := runHTTPCase(t, tc, false)
			if !wentDirect {
				return
			}
			t.Run("through the Transport", func(t *testing.T) {
				transport, _ := runHTTPCase(t, tc, true)
				sameSeries(t, direct, transport)
			})
		})
	}
}

// runHTTPCase runs tc, keeping plain http off the direct path when
// noDirect is set; it returns the probe's series and whether it may have
// gone the direct way.
func runHTTPCase(t *testing.T, tc httpCase, noDirect bool) (map[string]string, bool) {
	t.Helper()
	e := &env{t: t, ca: testcert.NewCA(t, testcert.Spec{})}
	opts := tc.server
	if opts.CA == nil {
		opts.CA = e.ca
	}
	var handler http.Handler = probertest.OKHandler
	if tc.handler != nil {
		handler = tc.handler(e)
	}
	e.srv = probertest.NewServer(t, handler, opts)
	var m *core.Module
	if tc.yaml != nil {
		m = yamlModule(t, tc.yaml(e))
	} else {
		m = newModule(t, func(h *config.HTTPProbe) {
			if opts.TLS {
				h.HTTPClientConfig.TLSConfig.CAFile = e.ca.File(t)
			}
			if tc.module != nil {
				tc.module(h, e)
			}
		})
	}
	prepared := m.Prepared.(*httpPrepared)
	if noDirect {
		prepared.direct = false
	}
	target := e.srv.URL
	if tc.target != nil {
		target = tc.target(e)
	}
	sink, err := probertest.Run(t, m, target)
	perr := checkOutcome(t, err, tc.want)
	for _, sub := range tc.message {
		if perr == nil || !strings.Contains(perr.Error(), sub) {
			t.Errorf("error %v does not mention %q", err, sub)
		}
	}
	for name, want := range tc.metrics {
		probertest.Metric(t, sink, want, name)
	}
	probertest.Absent(t, sink, tc.absent...)
	if tc.check != nil {
		tc.check(t, e, sink)
	}
	return untimedSeries(t, sink), prepared.direct && !m.HTTP.EnableHTTP3 && !strings.HasPrefix(target, "https://")
}

// untimedSeries is the sink's exposition, series by series, with the
// values of timings and of what changes between two runs left out.
func untimedSeries(t *testing.T, sink *probemetrics.Sink) map[string]string {
	t.Helper()
	text, ok := sink.AppendText(nil, false)
	if !ok {
		t.Fatal("the sink could not be written")
	}
	series := map[string]string{}
	for _, line := range strings.Split(string(text), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		name, value := line[:i], line[i+1:]
		if strings.Contains(name, "seconds") || strings.Contains(name, "duration") || strings.HasPrefix(name, "probe_ip_addr_hash") {
			value = "(varies)"
		}
		series[name] = value
	}
	return series
}

func sameSeries(t *testing.T, direct, transport map[string]string) {
	t.Helper()
	for name, v := range direct {
		if w, ok := transport[name]; !ok {
			t.Errorf("%s: exported on the direct way only", name)
		} else if w != v {
			t.Errorf("%s = %s on the direct way, %s through the Transport", name, v, w)
		}
	}
	for name := range transport {
		if _, ok := direct[name]; !ok {
			t.Errorf("%s: exported through the Transport only", name)
		}
	}
}

func handlerFunc(f func(e *env, w http.ResponseWriter, r *http.Request)) func(e *env) http.Handler {
	return func(e *env) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f(e, w, r) })
	}
}

func TestHTTPTransports(t *testing.T) {
	base := map[string]float64{
		"probe_http_status_code":              200,
		"probe_http_redirects":                0,
		"probe_http_content_length":           2,
		"probe_http_uncompressed_body_length": 2,
		"probe_failed_due_to_regex":           0,
	}
	with := func(extra map[string]float64) map[string]float64 {
		m := map[string]float64{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	// The handler reports what the probe looked like from the server.
	seen := func(wantProto string, wantTLS bool) func(e *env) http.Handler {
		return handlerFunc(func(e *env, w http.ResponseWriter, r *http.Request) {
			if r.Proto != wantProto {
				e.t.Errorf("server saw %s, want %s", r.Proto, wantProto)
			}
			if (r.TLS != nil) != wantTLS {
				e.t.Errorf("server saw TLS %v, want %v", r.TLS != nil, wantTLS)
			}
			if ua, want := r.UserAgent(), "Blackbox-Exporter/"+version.Version; ua != want {
				e.t.Errorf("User-Agent = %q, want blackbox's %q", ua, want)
			}
			fmt.Fprint(w, "ok")
		})
	}
	runHTTPCases(t, []httpCase{
		{
			name:    "http over IPv4",
			handler: seen("HTTP/1.1", false),
			metrics: with(map[string]float64{"probe_http_version": 1.1, "probe_http_ssl": 0, "probe_ip_protocol": 4}),
			absent:  []string{"probe_ssl_earliest_cert_expiry", "probe_tls_version_info", "probe_failed_due_to_cel", "probe_http_last_modified_timestamp_seconds"},
		},
		{
			name:    "http over IPv6",
			server:  probertest.ServerOpts{Network: "tcp6"},
			handler: seen("HTTP/1.1", false),
			metrics: with(map[string]float64{"probe_http_version": 1.1, "probe_ip_protocol": 6}),
			check: func(t *testing.T, e *env, s *probemetrics.Sink) {
				if !strings.HasPrefix(e.srv.URL, "http://[::1]:") {
					t.Fatalf("server URL %s is not on [::1]", e.srv.URL)
				}
			},
		},
		{
			name:    "target without a scheme gets http",
			handler: seen("HTTP/1.1", false),
			target:  func(e *env) string { return strings.TrimPrefix(e.srv.URL, "http://") },
			metrics: with(map[string]float64{"probe_http_version": 1.1, "probe_http_ssl": 0}),
		},
		{
			name:    "https HTTP/1.1",
			server:  probertest.ServerOpts{TLS: true},
			handler: seen("HTTP/1.1", true),
			metrics: with(map[string]float64{"probe_http_version": 1.1, "probe_http_ssl": 1, "probe_ip_protocol": 4}),
		},
		{
			name:    "https HTTP/2",
			server:  probertest.ServerOpts{TLS: true, HTTP2: true},
			handler: seen("HTTP/2.0", true),
			metrics: with(map[string]float64{"probe_http_version": 2, "probe_http_ssl": 1}),
		},
		{
			name:    "https HTTP/2 over IPv6",
			server:  probertest.ServerOpts{TLS: true, HTTP2: true, Network: "tcp6"},
			handler: seen("HTTP/2.0", true),
			metrics: with(map[string]float64{"probe_http_version": 2, "probe_http_ssl": 1, "probe_ip_protocol": 6}),
		},
		{
			name:    "enable_http2 false speaks HTTP/1.1 to an h2 server",
			server:  probertest.ServerOpts{TLS: true, HTTP2: true},
			handler: seen("HTTP/1.1", true),
			module:  func(h *config.HTTPProbe, _ *env) { h.HTTPClientConfig.EnableHTTP2 = false },
			metrics: with(map[string]float64{"probe_http_version": 1.1, "probe_http_ssl": 1}),
		},
		{
			name:    "valid_http_versions accepts HTTP/2.0",
			server:  probertest.ServerOpts{TLS: true, HTTP2: true},
			module:  func(h *config.HTTPProbe, _ *env) { h.ValidHTTPVersions = []string{"HTTP/1.1", "HTTP/2.0"} },
			metrics: map[string]float64{"probe_http_version": 2},
		},
		{
			name:    "valid_http_versions rejects HTTP/2.0",
			server:  probertest.ServerOpts{TLS: true, HTTP2: true},
			module:  func(h *config.HTTPProbe, _ *env) { h.ValidHTTPVersions = []string{"HTTP/1.1"} },
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonHTTPVersion, taxonomy.PhaseValidate},
			message: []string{"HTTP/2.0", "valid_http_versions"},
			metrics: map[string]float64{"probe_http_version": 2, "probe_http_status_code": 200},
		},
		{
			name:    "valid_http_versions rejects HTTP/1.1",
			module:  func(h *config.HTTPProbe, _ *env) { h.ValidHTTPVersions = []string{"HTTP/2.0"} },
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonHTTPVersion, taxonomy.PhaseValidate},
			metrics: map[string]float64{"probe_http_version": 1.1},
		},
	})
}

func statusHandler(code int) func(e *env) http.Handler {
	return handlerFunc(func(_ *env, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
	})
}

// expect returns a handler that answers 200 when check passes and 400
// otherwise, reporting the mismatch on the test.
func expect(check func(r *http.Request) string) func(e *env) http.Handler {
	return handlerFunc(func(e *env, w http.ResponseWriter, r *http.Request) {
		if msg := check(r); msg != "" {
			e.t.Error("server: " + msg)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, "ok")
	})
}

func TestHTTPRequestOptions(t *testing.T) {
	runHTTPCases(t, []httpCase{
		{
			name:    "2xx other than 200 is valid by default",
			handler: statusHandler(http.StatusNoContent),
			metrics: map[string]float64{"probe_http_status_code": 204},
		},
		{
			name:    "valid_status_codes accepts a 404",
			handler: statusHandler(http.StatusNotFound),
			module:  func(h *config.HTTPProbe, _ *env) { h.ValidStatusCodes = []int{200, 404} },
			metrics: map[string]float64{"probe_http_status_code": 404},
		},
		{
			name:    "valid_status_codes rejects a 2xx not listed",
			handler: statusHandler(http.StatusCreated),
			module:  func(h *config.HTTPProbe, _ *env) { h.ValidStatusCodes = []int{200} },
			want:    failure{taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus, taxonomy.PhaseValidate},
			message: []string{"201", "[200]"},
			metrics: map[string]float64{"probe_http_status_code": 201},
		},
		{
			name: "method",
			handler: expect(func(r *http.Request) string {
				if r.Method != http.MethodDelete {
					return "method " + r.Method
				}
				return ""
			}),
			module: func(h *config.HTTPProbe, _ *env) { h.Method = http.MethodDelete },
		},
		{
			name: "headers, User-Agent included",
			handler: expect(func(r *http.Request) string {
				if r.Header.Get("X-Probe") != "sonde" || r.UserAgent() != "custom-agent" {
					return fmt.Sprintf("headers %v", r.Header)
				}
				return ""
			}),
			module: func(h *config.HTTPProbe, _ *env) {
				h.Headers = map[string]string{"X-Probe": "sonde", "user-agent": "custom-agent"}
			},
		},
		{
			name: "Host header",
			handler: expect(func(r *http.Request) string {
				if r.Host != "probe.example:8080" {
					return "Host " + r.Host
				}
				if _, found := r.Header["Host"]; found {
					return "Host duplicated into the header map"
				}
				return ""
			}),
			module: func(h *config.HTTPProbe, _ *env) { h.Headers = map[string]string{"host": "probe.example:8080"} },
		},
		{
			name: "body",
			handler: expect(func(r *http.Request) string {
				b, _ := io.ReadAll(r.Body)
				if r.Method != http.MethodPost || string(b) != `{"q":1}` {
					return fmt.Sprintf("%s with body %q", r.Method, b)
				}
				return ""
			}),
			module: func(h *config.HTTPProbe, _ *env) { h.Method = http.MethodPost; h.Body = `{"q":1}` },
		},
		{
			name: "body_file",
			handler: expect(func(r *http.Request) string {
				b, _ := io.ReadAll(r.Body)
				if string(b) != "from a file\n" {
					return fmt.Sprintf("body %q", b)
				}
				return ""
			}),
			module: func(h *config.HTTPProbe, e *env) {
				h.Method = http.MethodPut
				h.BodyFile = filepath.Join(e.t.TempDir(), "body")
				if err := os.WriteFile(h.BodyFile, []byte("from a file\n"), 0o600); err != nil {
					e.t.Fatal(err)
				}
			},
		},
		{
			name: "basic_auth",
			handler: expect(func(r *http.Request) string {
				if u, p, found := r.BasicAuth(); !found || u != "alice" || p != "s3cret" {
					return "Authorization " + r.Header.Get("Authorization")
				}
				return ""
			}),
			yaml: func(*env) string { return "basic_auth:\n  username: alice\n  password: s3cret" },
		},
		{
			name: "authorization",
			handler: expect(func(r *http.Request) string {
				if got := r.Header.Get("Authorization"); got != "Token abc" {
					return "Authorization " + got
				}
				return ""
			}),
			yaml: func(*env) string { return "authorization:\n  type: Token\n  credentials: abc" },
		},
		{
			name: "authorization defaults to Bearer",
			handler: expect(func(r *http.Request) string {
				if got := r.Header.Get("Authorization"); got != "Bearer abc" {
					return "Authorization " + got
				}
				return ""
			}),
			yaml: func(*env) string { return "authorization:\n  credentials: abc" },
		},
		{
			name: "bearer_token",
			handler: expect(func(r *http.Request) string {
				if got := r.Header.Get("Authorization"); got != "Bearer tok3n" {
					return "Authorization " + got
				}
				return ""
			}),
			yaml: func(*env) string { return "bearer_token: tok3n" },
		},
		{
			name: "bearer_token_file",
			handler: expect(func(r *http.Request) string {
				if got := r.Header.Get("Authorization"); got != "Bearer from-file" {
					return "Authorization " + got
				}
				return ""
			}),
			yaml: func(e *env) string {
				f := filepath.Join(e.t.TempDir(), "token")
				if err := os.WriteFile(f, []byte("from-file\n"), 0o600); err != nil {
					e.t.Fatal(err)
				}
				return "bearer_token_file: " + f
			},
		},
		{
			name: "http_headers",
			handler: expect(func(r *http.Request) string {
				if got := r.Header.Values("X-Multi"); len(got) != 2 || got[0] != "one" || got[1] != "two" {
					return fmt.Sprintf("X-Multi %q", got)
				}
				if got := r.Header.Get("X-Secret"); got != "hidden" {
					return "X-Secret " + got
				}
				return ""
			}),
			yaml: func(*env) string {
				return "http_headers:\n  X-Multi:\n    values: [one, two]\n  X-Secret:\n    secrets: [hidden]"
			},
		},
	})
}

// The request headers sonde sets itself are blackbox_exporter's: its
// User-Agent unless one is configured (an empty one sends none), and no
// Accept-Encoding unless configured, compression or not. Checked against
// the blackbox_exporter 0.28 binary with a server printing what it got.
func TestHTTPRequestHeadersAsBlackbox(t *testing.T) {
	absent := "(absent)"
	tests := []struct {
		name          string
		compression   string
		headers       map[string]string
		ua, encodings string
	}{
		{name: "defaults", ua: "Blackbox-Exporter/" + version.Version, encodings: absent},
		{name: "compression asks for nothing", compression: "gzip", ua: "Blackbox-Exporter/" + version.Version, encodings: absent},
		{name: "configured Accept-Encoding is sent", compression: "gzip", headers: map[string]string{"Accept-Encoding": "gzip, br"},
			ua: "Blackbox-Exporter/" + version.Version, encodings: "gzip, br"},
		{name: "configured User-Agent", headers: map[string]string{"user-agent": "probe/1"}, ua: "probe/1", encodings: absent},
		{name: "empty User-Agent sends none", headers: map[string]string{"User-Agent": ""}, ua: absent, encodings: absent},
	}
	var cases []httpCase
	for _, tc := range tests {
		cases = append(cases, httpCase{
			name: tc.name,
			handler: handlerFunc(func(e *env, w http.ResponseWriter, r *http.Request) {
				for name, want := range map[string]string{"User-Agent": tc.ua, "Accept-Encoding": tc.encodings} {
					got := absent
					if v, ok := r.Header[name]; ok {
						got = strings.Join(v, ", ")
					}
					if got != want {
						e.t.Errorf("%s = %q, want %q", name, got, want)
					}
				}
			}),
			module: func(h *config.HTTPProbe, _ *env) {
				h.Compression = tc.compression
				h.Headers = tc.headers
			},
		})
	}
	runHTTPCases(t, cases)
}

func encode(t *testing.T, algorithm string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch algorithm {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "br":
		w = brotli.NewWriter(&buf)
	case "deflate":
		fw, err := flate.NewWriter(&buf, flate.BestCompression)
		if err != nil {
			t.Fatal(err)
		}
		w = fw
	case "identity":
		return data
	default:
		t.Fatalf("no encoder for %q", algorithm)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestHTTPCompression(t *testing.T) {
	plain := []byte(strings.Repeat("hello sonde ", 200))
	var cases []httpCase
	for _, alg := range []string{"gzip", "br", "deflate", "identity"} {
		wire := encode(t, alg, plain)
		if alg != "identity" && len(wire) >= len(plain) {
			t.Fatalf("%s did not compress", alg)
		}
		cases = append(cases, httpCase{
			name: alg,
			handler: handlerFunc(func(e *env, w http.ResponseWriter, r *http.Request) {
				// compression decodes the answer; it does not ask for
				// an encoding, as in blackbox.
				if got, ok := r.Header["Accept-Encoding"]; ok {
					e.t.Errorf("Accept-Encoding %q sent, want none", got)
				}
				if alg != "identity" {
					w.Header().Set("Content-Encoding", alg)
				}
				w.Header().Set("Content-Length", fmt.Sprint(len(wire)))
				_, _ = w.Write(wire)
			}),
			module: func(h *config.HTTPProbe, _ *env) {
				h.Compression = alg
				// Only the decoded body matches; the check proves decoding.
				h.FailIfBodyNotMatchesRegexp = []config.Regexp{config.MustNewRegexp(`^(hello sonde )+$`)}
			},
			metrics: map[string]float64{
				"probe_http_content_length":           float64(len(wire)),
				"probe_http_uncompressed_body_length": float64(len(plain)),
				"probe_failed_due_to_regex":           0,
			},
		})
	}
	cases = append(cases, httpCase{
		name: "a body that is not what compression says is malformed",
		handler: handlerFunc(func(_ *env, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			fmt.Fprint(w, "not gzip at all")
		}),
		module: func(h *config.HTTPProbe, _ *env) { h.Compression = "gzip" },
		want:   failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseTransfer},
	})
	runHTTPCases(t, cases)
}

func TestHTTPRedirects(t *testing.T) {
	// /0 -> /1 -> /2 -> /final
	chain := handlerFunc(func(_ *env, w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/0", "/1", "/2":
			next := "/final"
			if r.URL.Path != "/2" {
				next = fmt.Sprintf("/%d", r.URL.Path[1]-'0'+1)
			}
			http.Redirect(w, r, next, http.StatusFound)
		case "/final":
			fmt.Fprint(w, "final")
		default:
			http.NotFound(w, r)
		}
	})
	runHTTPCases(t, []httpCase{
		{
			name:    "followed",
			handler: chain,
			target:  func(e *env) string { return e.srv.URL + "/0" },
			module: func(h *config.HTTPProbe, _ *env) {
				h.FailIfBodyNotMatchesRegexp = []config.Regexp{config.MustNewRegexp("^final$")}
			},
			metrics: map[string]float64{"probe_http_redirects": 3, "probe_http_status_code": 200},
		},
		{
			name:    "followed over https",
			server:  probertest.ServerOpts{TLS: true, HTTP2: true},
			handler: chain,
			target:  func(e *env) string { return e.srv.URL + "/1" },
			metrics: map[string]float64{"probe_http_redirects": 2, "probe_http_status_code": 200, "probe_http_ssl": 1},
		},
		{
			name:    "not followed, the redirect status accepted",
			handler: chain,
			target:  func(e *env) string { return e.srv.URL + "/0" },
			module: func(h *config.HTTPProbe, _ *env) {
				h.HTTPClientConfig.FollowRedirects = false
				h.ValidStatusCodes = []int{302}
			},
			metrics: map[string]float64{"probe_http_redirects": 1, "probe_http_status_code": 302},
		},
		{
			name:    "not followed, the redirect status is not 2xx",
			handler: chain,
			target:  func(e *env) string { return e.srv.URL + "/0" },
			module:  func(h *config.HTTPProbe, _ *env) { h.HTTPClientConfig.FollowRedirects = false },
			want:    failure{taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus, taxonomy.PhaseValidate},
			metrics: map[string]float64{"probe_http_status_code": 302},
		},
		{
			name:    "no_follow_redirects (deprecated) from YAML",
			yaml:    func(*env) string { return "no_follow_redirects: true\nvalid_status_codes: [302]" },
			handler: chain,
			target:  func(e *env) string { return e.srv.URL + "/0" },
			metrics: map[string]float64{"probe_http_redirects": 1, "probe_http_status_code": 302},
		},
		{
			name: "cookies set by a redirect are sent back",
			handler: handlerFunc(func(e *env, w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/login":
					http.SetCookie(w, &http.Cookie{Name: "session", Value: "s1", Path: "/"})
					http.Redirect(w, r, "/home", http.StatusFound)
				case "/home":
					c, err := r.Cookie("session")
					if err != nil || c.Value != "s1" {
						e.t.Errorf("/home got cookies %v", r.Cookies())
						w.WriteHeader(http.StatusForbidden)
						return
					}
					fmt.Fprint(w, "welcome")
				}
			}),
			target:  func(e *env) string { return e.srv.URL + "/login" },
			metrics: map[string]float64{"probe_http_redirects": 1, "probe_http_status_code": 200},
		},
		{
			name: "redirect loop",
			handler: handlerFunc(func(_ *env, w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/loop", http.StatusFound)
			}),
			want:    failure{taxonomy.ClassProtocol, taxonomy.ReasonTooManyRedirects, taxonomy.PhaseProcessing},
			metrics: map[string]float64{"probe_http_status_code": 302, "probe_http_redirects": 11},
		},
	})
}

// A 307 redirect sends the body again, and body_file is read on every probe.
func TestHTTPBodyFileResentAndReread(t *testing.T) {
	var (
		mu       sync.Mutex
		received []string
	)
	srv := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		received = append(received, r.Method+" "+r.URL.Path+" "+string(b))
		mu.Unlock()
		if r.URL.Path == "/first" {
			http.Redirect(w, r, "/second", http.StatusTemporaryRedirect)
			return
		}
		fmt.Fprint(w, "ok")
	}), probertest.ServerOpts{})
	file := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(file, []byte("v1"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := newModule(t, func(h *config.HTTPProbe) {
		h.Method = http.MethodPost
		h.BodyFile = file
	})
	sink, err := probertest.Run(t, m, srv.URL+"/first")
	checkOutcome(t, err, failure{})
	probertest.Metric(t, sink, 1, "probe_http_redirects")
	if err := os.WriteFile(file, []byte("v2"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = probertest.Run(t, m, srv.URL+"/first")
	checkOutcome(t, err, failure{})

	want := []string{"POST /first v1", "POST /second v1", "POST /first v2", "POST /second v2"}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(received, "|") != strings.Join(want, "|") {
		t.Errorf("server received %q, want %q", received, want)
	}

	// A body_file that vanished fails the probe before any request.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	_, err = probertest.Run(t, m, srv.URL+"/first")
	perr := checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup})
	if !strings.Contains(perr.Error(), "body_file") {
		t.Errorf("error %v does not name body_file", perr)
	}
}

func TestHTTPSSLRequirements(t *testing.T) {
	runHTTPCases(t, []httpCase{
		{
			name:    "fail_if_ssl over https",
			server:  probertest.ServerOpts{TLS: true},
			module:  func(h *config.HTTPProbe, _ *env) { h.FailIfSSL = true },
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonSSLForbidden, taxonomy.PhaseValidate},
			metrics: map[string]float64{"probe_http_ssl": 1},
		},
		{
			name:    "fail_if_ssl over http",
			module:  func(h *config.HTTPProbe, _ *env) { h.FailIfSSL = true },
			metrics: map[string]float64{"probe_http_ssl": 0},
		},
		{
			name:    "fail_if_not_ssl over http",
			module:  func(h *config.HTTPProbe, _ *env) { h.FailIfNotSSL = true },
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonSSLRequired, taxonomy.PhaseValidate},
			metrics: map[string]float64{"probe_http_ssl": 0},
		},
		{
			name:    "fail_if_not_ssl over https",
			server:  probertest.ServerOpts{TLS: true},
			module:  func(h *config.HTTPProbe, _ *env) { h.FailIfNotSSL = true },
			metrics: map[string]float64{"probe_http_ssl": 1},
		},
		{
			name:   "fail_if_not_ssl judges the final response of a redirect to http",
			server: probertest.ServerOpts{TLS: true},
			handler: func(e *env) http.Handler {
				// Redirect to a plain-http server on another port.
				plain := probertest.NewServer(e.t, probertest.OKHandler, probertest.ServerOpts{})
				return http.RedirectHandler(plain.URL, http.StatusFound)
			},
			module:  func(h *config.HTTPProbe, _ *env) { h.FailIfNotSSL = true },
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonSSLRequired, taxonomy.PhaseValidate},
			metrics: map[string]float64{"probe_http_ssl": 0, "probe_http_redirects": 1},
		},
	})
}

func body(s string) func(e *env) http.Handler {
	return handlerFunc(func(_ *env, w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, s) })
}

func res(patterns ...string) []config.Regexp {
	out := make([]config.Regexp, len(patterns))
	for i, p := range patterns {
		out[i] = config.MustNewRegexp(p)
	}
	return out
}

func TestHTTPBodyChecks(t *testing.T) {
	runHTTPCases(t, []httpCase{
		{
			name:    "fail_if_body_matches_regexp, no match",
			handler: body("all is well"),
			module:  func(h *config.HTTPProbe, _ *env) { h.FailIfBodyMatchesRegexp = res("error", "fatal") },
			metrics: map[string]float64{"probe_failed_due_to_regex": 0},
			absent:  []string{"probe_failed_due_to_cel"},
		},
		{
			name:    "fail_if_body_matches_regexp, second pattern matches",
			handler: body("status: baaad"),
			module:  func(h *config.HTTPProbe, _ *env) { h.FailIfBodyMatchesRegexp = res("error", "ba+d") },
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonBodyRegex, taxonomy.PhaseValidate},
			message: []string{`fail_if_body_matches_regexp[1] "ba+d"`},
			metrics: map[string]float64{"probe_failed_due_to_regex": 1, "probe_http_status_code": 200},
		},
		{
			name:    "fail_if_body_not_matches_regexp, all match",
			handler: body("service healthy\nversion 2"),
			module: func(h *config.HTTPProbe, _ *env) {
				h.FailIfBodyNotMatchesRegexp = res("healthy", `(?m)^version \d+$`)
			},
			metrics: map[string]float64{"probe_failed_due_to_regex": 0},
		},
		{
			name:    "fail_if_body_not_matches_regexp, second pattern misses",
			handler: body("service healthy"),
			module:  func(h *config.HTTPProbe, _ *env) { h.FailIfBodyNotMatchesRegexp = res("healthy", `version \d+`) },
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonBodyRegex, taxonomy.PhaseValidate},
			message: []string{`fail_if_body_not_matches_regexp[1] "version \\d+"`},
			metrics: map[string]float64{"probe_failed_due_to_regex": 1},
		},
		{
			name:    "fail_if_body_json_matches_cel, no match",
			handler: body(`{"status":"up","checks":[1,2]}`),
			module: func(h *config.HTTPProbe, e *env) {
				h.FailIfBodyJSONMatchesCEL = probertest.CEL(e.t, `body.status == "down"`)
			},
			metrics: map[string]float64{"probe_failed_due_to_cel": 0, "probe_failed_due_to_regex": 0},
		},
		{
			name:    "fail_if_body_json_matches_cel, match",
			handler: body(`{"status":"down"}`),
			module: func(h *config.HTTPProbe, e *env) {
				h.FailIfBodyJSONMatchesCEL = probertest.CEL(e.t, `body.status == "down"`)
			},
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonBodyCEL, taxonomy.PhaseValidate},
			message: []string{"fail_if_body_json_matches_cel", `body.status == \"down\"`},
			metrics: map[string]float64{"probe_failed_due_to_cel": 1, "probe_failed_due_to_regex": 0},
		},
		{
			name:    "fail_if_body_json_not_matches_cel, match",
			handler: body(`[{"up":true},{"up":true}]`),
			module: func(h *config.HTTPProbe, e *env) {
				h.FailIfBodyJSONNotMatchesCEL = probertest.CEL(e.t, `body.all(c, c.up)`)
			},
			metrics: map[string]float64{"probe_failed_due_to_cel": 0},
		},
		{
			name:    "fail_if_body_json_not_matches_cel, no match",
			handler: body(`[{"up":true},{"up":false}]`),
			module: func(h *config.HTTPProbe, e *env) {
				h.FailIfBodyJSONNotMatchesCEL = probertest.CEL(e.t, `body.all(c, c.up)`)
			},
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonBodyCEL, taxonomy.PhaseValidate},
			message: []string{"fail_if_body_json_not_matches_cel"},
			metrics: map[string]float64{"probe_failed_due_to_cel": 1},
		},
		{
			name:    "CEL on a body that is not JSON",
			handler: body(`<html>up</html>`),
			module: func(h *config.HTTPProbe, e *env) {
				h.FailIfBodyJSONNotMatchesCEL = probertest.CEL(e.t, `body.status == "up"`)
			},
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonBodyCEL, taxonomy.PhaseValidate},
			message: []string{"not JSON"},
			metrics: map[string]float64{"probe_failed_due_to_cel": 1},
		},
		{
			name:    "CEL from YAML",
			handler: body(`{"status":"up"}`),
			yaml:    func(*env) string { return `fail_if_body_json_not_matches_cel: 'body.status == "up"'` },
			metrics: map[string]float64{"probe_failed_due_to_cel": 0},
		},
		{
			name:    "body_size_limit exceeded",
			handler: body(strings.Repeat("x", 100)),
			module:  func(h *config.HTTPProbe, _ *env) { h.BodySizeLimit = 10 },
			want:    failure{taxonomy.ClassProtocol, taxonomy.ReasonBodyTooLarge, taxonomy.PhaseTransfer},
			message: []string{"body_size_limit"},
			metrics: map[string]float64{"probe_http_status_code": 200, "probe_http_content_length": 100},
		},
		{
			name:    "body_size_limit exceeded by the decoded body",
			handler: compressedBody("gzip", strings.Repeat("x", 5000)),
			module: func(h *config.HTTPProbe, _ *env) {
				h.Compression = "gzip"
				h.BodySizeLimit = 1024
			},
			want:    failure{taxonomy.ClassProtocol, taxonomy.ReasonBodyTooLarge, taxonomy.PhaseTransfer},
			message: []string{"1KiB"},
		},
		{
			name:    "body_size_limit met exactly",
			handler: body(strings.Repeat("x", 100)),
			module: func(h *config.HTTPProbe, _ *env) {
				h.BodySizeLimit = 100
				h.FailIfBodyNotMatchesRegexp = res("^x{100}$")
			},
			metrics: map[string]float64{"probe_http_uncompressed_body_length": 100},
		},
		{
			name:    "body_size_limit from YAML with units",
			handler: body(strings.Repeat("x", 3000)),
			yaml:    func(*env) string { return "body_size_limit: 2KB" },
			want:    failure{taxonomy.ClassProtocol, taxonomy.ReasonBodyTooLarge, taxonomy.PhaseTransfer},
			message: []string{"2KiB"},
		},
	})
}

func compressedBody(alg, s string) func(e *env) http.Handler {
	return handlerFunc(func(e *env, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Encoding", alg)
		_, _ = w.Write(encode(e.t, alg, []byte(s)))
	})
}

func TestHTTPHeaderChecks(t *testing.T) {
	headers := handlerFunc(func(_ *env, w http.ResponseWriter, _ *http.Request) {
		w.Header().Add("X-Env", "prod")
		w.Header().Add("X-Env", "canary")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, "{}")
	})
	match := func(header, re string, allowMissing bool) config.HeaderMatch {
		return config.HeaderMatch{Header: header, Regexp: config.MustNewRegexp(re), AllowMissing: allowMissing}
	}
	runHTTPCases(t, []httpCase{
		{
			name:    "fail_if_header_matches, no value matches",
			handler: headers,
			module: func(h *config.HTTPProbe, _ *env) {
				h.FailIfHeaderMatchesRegexp = []config.HeaderMatch{match("X-Env", "^staging$", false)}
			},
			metrics: map[string]float64{"probe_failed_due_to_regex": 0},
		},
		{
			name:    "fail_if_header_matches, one of several values matches",
			handler: headers,
			module: func(h *config.HTTPProbe, _ *env) {
				h.FailIfHeaderMatchesRegexp = []config.HeaderMatch{
					match("Content-Type", "text/html", false),
					match("x-env", "^canary$", false),
				}
			},
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonHeaderRegex, taxonomy.PhaseValidate},
			message: []string{`fail_if_header_matches[1] "^canary$"`, "X-Env"},
			metrics: map[string]float64{"probe_failed_due_to_regex": 1},
		},
		{
			name:    "fail_if_header_matches, missing header",
			handler: headers,
			module: func(h *config.HTTPProbe, _ *env) {
				h.FailIfHeaderMatchesRegexp = []config.HeaderMatch{match("X-Missing", ".", false)}
			},
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonHeaderRegex, taxonomy.PhaseValidate},
			message: []string{"fail_if_header_matches[0]", "X-Missing", "allow_missing"},
			metrics: map[string]float64{"probe_failed_due_to_regex": 1},
		},
		{
			name:    "fail_if_header_matches, missing header allowed",
			handler: headers,
			module: func(h *config.HTTPProbe, _ *env) {
				h.FailIfHeaderMatchesRegexp = []config.HeaderMatch{match("X-Missing", ".", true)}
			},
			metrics: map[string]float64{"probe_failed_due_to_regex": 0},
		},
		{
			name:    "fail_if_header_not_matches, one of several values matches",
			handler: headers,
			module: func(h *config.HTTPProbe, _ *env) {
				h.FailIfHeaderNotMatchesRegexp = []config.HeaderMatch{match("X-Env", "^prod$", false)}
			},
			metrics: map[string]float64{"probe_failed_due_to_regex": 0},
		},
		{
			name:    "fail_if_header_not_matches, no value matches",
			handler: headers,
			module: func(h *config.HTTPProbe, _ *env) {
				h.FailIfHeaderNotMatchesRegexp = []config.HeaderMatch{
					match("Content-Type", "json", false),
					match("X-Env", "^staging$", false),
				}
			},
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonHeaderRegex, taxonomy.PhaseValidate},
			message: []string{`fail_if_header_not_matches[1] "^staging$"`},
			metrics: map[string]float64{"probe_failed_due_to_regex": 1},
		},
		{
			name:    "fail_if_header_not_matches, missing header",
			handler: headers,
			module: func(h *config.HTTPProbe, _ *env) {
				h.FailIfHeaderNotMatchesRegexp = []config.HeaderMatch{match("X-Missing", ".", false)}
			},
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonHeaderRegex, taxonomy.PhaseValidate},
			metrics: map[string]float64{"probe_failed_due_to_regex": 1},
		},
		{
			name:    "fail_if_header_not_matches, missing header allowed",
			handler: headers,
			module: func(h *config.HTTPProbe, _ *env) {
				h.FailIfHeaderNotMatchesRegexp = []config.HeaderMatch{match("X-Missing", ".", true)}
			},
			metrics: map[string]float64{"probe_failed_due_to_regex": 0},
		},
		{
			name:    "header checks come after the status check",
			handler: statusHandler(http.StatusServiceUnavailable),
			module: func(h *config.HTTPProbe, _ *env) {
				h.FailIfHeaderNotMatchesRegexp = []config.HeaderMatch{match("X-Missing", ".", false)}
			},
			want:    failure{taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus, taxonomy.PhaseValidate},
			metrics: map[string]float64{"probe_failed_due_to_regex": 0, "probe_http_status_code": 503},
		},
	})
}

func TestHTTPLastModified(t *testing.T) {
	const lm = "Wed, 21 Oct 2015 07:28:00 GMT"
	withHeader := func(v string) func(e *env) http.Handler {
		return handlerFunc(func(_ *env, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Last-Modified", v)
		})
	}
	runHTTPCases(t, []httpCase{
		{
			name:    "present",
			handler: withHeader(lm),
			metrics: map[string]float64{"probe_http_last_modified_timestamp_seconds": 1445412480},
		},
		{
			name:   "absent",
			absent: []string{"probe_http_last_modified_timestamp_seconds"},
		},
		{
			name:    "unparseable",
			handler: withHeader("yesterday"),
			absent:  []string{"probe_http_last_modified_timestamp_seconds"},
		},
	})
}

// The OAuth2 token is fetched once per module, not once per probe.
func TestHTTPOAuth2TokenCachedPerModule(t *testing.T) {
	var tokenRequests atomic.Int32
	tokens := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenRequests.Add(1)
		if err := r.ParseForm(); err != nil {
			t.Errorf("token request: %v", err)
		}
		id, secret, found := r.BasicAuth()
		if r.Form.Get("grant_type") != "client_credentials" || !found || id != "sonde" || secret != "oauth-secret" {
			t.Errorf("token request form %v, basic auth %q:%q", r.Form, id, secret)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"T0K","token_type":"Bearer","expires_in":3600}`)
	}), probertest.ServerOpts{})
	var probes atomic.Int32
	target := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probes.Add(1)
		if got := r.Header.Get("Authorization"); got != "Bearer T0K" {
			t.Errorf("Authorization = %q", got)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}), probertest.ServerOpts{})

	m := yamlModule(t, fmt.Sprintf("oauth2:\n  client_id: sonde\n  client_secret: oauth-secret\n  token_url: %s/token", tokens.URL))
	for i := range 2 {
		_, err := probertest.Run(t, m, target.URL)
		checkOutcome(t, err, failure{})
		if i == 0 && tokenRequests.Load() != 1 {
			t.Fatalf("token requests after the first probe = %d, want 1", tokenRequests.Load())
		}
	}
	if got := tokenRequests.Load(); got != 1 {
		t.Errorf("token requests after two probes = %d, want 1", got)
	}
	if got := probes.Load(); got != 2 {
		t.Errorf("target saw %d probes, want 2", got)
	}
}

// A test forward proxy: it answers for any absolute-URI request by
// forwarding it to backend, recording what it was asked for.
func newForwardProxy(t *testing.T, backend string) (*httptest.Server, func() []string) {
	t.Helper()
	var (
		mu   sync.Mutex
		seen []string
	)
	b, err := url.Parse(backend)
	if err != nil {
		t.Fatal(err)
	}
	srv := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.RequestURI)
		mu.Unlock()
		if !r.URL.IsAbs() {
			t.Errorf("proxy got a request for %q, not an absolute URI", r.RequestURI)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		out, _ := http.NewRequestWithContext(r.Context(), r.Method, backend+r.URL.Path, nil)
		out.Host = r.URL.Host
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("X-Via", "test-proxy "+b.Host)
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}), probertest.ServerOpts{})
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

func TestHTTPProxy(t *testing.T) {
	backend := probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{})
	proxy, seen := newForwardProxy(t, backend.URL)
	proxyURL, _ := url.Parse(proxy.URL)
	viaProxy := []config.HeaderMatch{{Header: "X-Via", Regexp: config.MustNewRegexp("^test-proxy ")}}

	t.Run("skip_resolve_phase_with_proxy", func(t *testing.T) {
		m := newModule(t, func(h *config.HTTPProbe) {
			h.HTTPClientConfig.ProxyURL = pconfig.URL{URL: proxyURL}
			h.SkipResolvePhaseWithProxy = true
			h.FailIfHeaderNotMatchesRegexp = viaProxy
		})
		// The test DNS server does not know the name: only the proxy does.
		sink, err := probertest.Run(t, m, "http://only-the-proxy-knows.test/path")
		checkOutcome(t, err, failure{})
		probertest.Absent(t, sink, "probe_ip_protocol", "probe_dns_lookup_time_seconds", "probe_ip_addr_hash")
		probertest.Metric(t, sink, 200, "probe_http_status_code")
		if got := seen(); len(got) != 1 || got[0] != "http://only-the-proxy-knows.test/path" {
			t.Errorf("proxy saw %q", got)
		}
	})

	t.Run("resolve phase kept with a proxy", func(t *testing.T) {
		m := newModule(t, func(h *config.HTTPProbe) {
			h.HTTPClientConfig.ProxyURL = pconfig.URL{URL: proxyURL}
			h.FailIfHeaderNotMatchesRegexp = viaProxy
		})
		sink, err := probertest.Run(t, m, "http://v4only.test/")
		checkOutcome(t, err, failure{})
		probertest.Metric(t, sink, 4, "probe_ip_protocol")
		probertest.Value(t, sink, "probe_dns_lookup_time_seconds")
		probertest.Metric(t, sink, 200, "probe_http_status_code")
		if got := seen(); len(got) != 2 || got[1] != "http://v4only.test/" {
			t.Errorf("proxy saw %q", got)
		}
	})

	t.Run("resolve phase kept with a proxy fails on NXDOMAIN", func(t *testing.T) {
		m := newModule(t, func(h *config.HTTPProbe) {
			h.HTTPClientConfig.ProxyURL = pconfig.URL{URL: proxyURL}
		})
		_, err := probertest.Run(t, m, "http://only-the-proxy-knows.test/")
		checkOutcome(t, err, failure{taxonomy.ClassDNS, taxonomy.ReasonNXDomain, taxonomy.PhaseResolve})
	})
}

// newConnectProxy is a test proxy for https targets: it answers CONNECT
// by tunnelling to backend, whatever host was asked for, and records the
// requests' hosts and their X-Proxy-Token header.
func newConnectProxy(t *testing.T, backend string) (*httptest.Server, func() []string) {
	t.Helper()
	var (
		mu    sync.Mutex
		seen  []string
		conns []net.Conn
		wg    sync.WaitGroup
	)
	srv := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			t.Errorf("proxy got %s %s, want CONNECT", r.Method, r.RequestURI)
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		mu.Lock()
		seen = append(seen, r.Host+" "+r.Header.Get("X-Proxy-Token"))
		mu.Unlock()
		up, err := net.Dial("tcp", backend)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		down, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			up.Close()
			return
		}
		mu.Lock()
		conns = append(conns, up, down)
		mu.Unlock()
		fmt.Fprint(down, "HTTP/1.1 200 Connection established\r\n\r\n")
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = io.Copy(up, down)
			up.Close()
		}()
		_, _ = io.Copy(down, up)
		down.Close()
	}), probertest.ServerOpts{})
	t.Cleanup(func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// An https target through a proxy: the tunnel is the proxy's, the
// handshake and its metrics the probe's.
func TestHTTPSThroughProxy(t *testing.T) {
	ca := testcert.NewCA(t, testcert.Spec{})
	backend := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS.ServerName != "secure.test" || r.Host != "secure.test:8443" {
			t.Errorf("backend saw SNI %q and Host %q", r.TLS.ServerName, r.Host)
			w.WriteHeader(http.StatusBadRequest)
		}
	}), probertest.ServerOpts{TLS: true, HTTP2: true, CA: ca, Spec: new(testcert.Named("secure.test"))})
	proxy, seen := newConnectProxy(t, strings.TrimPrefix(backend.URL, "https://"))
	m := yamlModule(t, fmt.Sprintf(`proxy_url: %s
proxy_connect_header:
  X-Proxy-Token: [let-me-in]
skip_resolve_phase_with_proxy: true
tls_config:
  ca_file: %s`, proxy.URL, ca.File(t)))

	sink, err := probertest.Run(t, m, "https://secure.test:8443/")
	checkOutcome(t, err, failure{})
	probertest.Metric(t, sink, 1, "probe_http_ssl")
	probertest.Metric(t, sink, 200, "probe_http_status_code")
	probertest.Value(t, sink, "probe_ssl_earliest_cert_expiry")
	probertest.Metric(t, sink, 1, "probe_tls_version_info", "TLS 1.3")
	probertest.Absent(t, sink, "probe_ip_protocol", "probe_dns_lookup_time_seconds")
	for _, p := range []taxonomy.Phase{taxonomy.PhaseConnect, taxonomy.PhaseTLS, taxonomy.PhaseProcessing} {
		if v := probertest.PhaseSeconds(t, sink, p); v <= 0 {
			t.Errorf("phase %s = %v, want it timed", p, v)
		}
	}
	if got := seen(); len(got) != 1 || got[0] != "secure.test:8443 let-me-in" {
		t.Errorf("proxy saw %q", got)
	}

	// The certificate is verified through the tunnel too.
	other := yamlModule(t, fmt.Sprintf("proxy_url: %s\nskip_resolve_phase_with_proxy: true", proxy.URL))
	sink, err = probertest.Run(t, other, "https://secure.test:8443/")
	checkOutcome(t, err, failure{taxonomy.ClassTLS, taxonomy.ReasonCertUnknownAuthority, taxonomy.PhaseTLS})
	probertest.ChainSurvived(t, sink)
}

func probeHTTP(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return m.Prepared.(*httpPrepared).Probe(ctx, target, m, sink, logger)
}

// bothWays runs f as its test would, then once more with plain http kept
// off the direct path, through net/http's Transport: f passes its module
// through way, which sets the way it goes.
func bothWays(t *testing.T, f func(t *testing.T, way func(*core.Module) *core.Module)) {
	t.Helper()
	f(t, func(m *core.Module) *core.Module { return m })
	t.Run("through the Transport", func(t *testing.T) {
		f(t, func(m *core.Module) *core.Module {
			m.Prepared.(*httpPrepared).direct = false
			return m
		})
	})
}

// http_headers come from prometheus/common's round tripper, with its rules:
// the sensitive ones are not sent on to another host a redirect leads to.
func TestHTTPHeadersOnRedirects(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]http.Header{}
	record := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Host+r.URL.Path] = r.Header.Clone()
		mu.Unlock()
	}
	other := probertest.NewServer(t, http.HandlerFunc(record), probertest.ServerOpts{})
	otherPort := other.URL[strings.LastIndexByte(other.URL, ':')+1:]
	first := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(w, r)
		switch r.URL.Path {
		case "/":
			http.Redirect(w, r, "/same", http.StatusFound)
		case "/same":
			http.Redirect(w, r, "http://v4only.test:"+otherPort+"/other", http.StatusFound)
		}
	}), probertest.ServerOpts{})
	m := yamlModule(t, `http_headers:
  Cookie: {values: [session=secret]}
  X-Team: {values: [probes]}`)
	if m.Prepared.(*httpPrepared).direct {
		t.Fatal("a module with http_headers goes the direct way, without them")
	}
	_, err := probertest.Run(t, m, first.URL+"/")
	checkOutcome(t, err, failure{})
	host := strings.TrimPrefix(first.URL, "http://")
	for _, c := range []struct {
		at           string
		cookie, team string
	}{
		{host + "/", "session=secret", "probes"},
		{host + "/same", "session=secret", "probes"},
		{"v4only.test:" + otherPort + "/other", "", "probes"},
	} {
		h, ok := seen[c.at]
		if !ok {
			t.Errorf("%s got no request; requests: %v", c.at, seen)
			continue
		}
		if got := h.Get("Cookie"); got != c.cookie {
			t.Errorf("%s got Cookie %q, want %q", c.at, got, c.cookie)
		}
		if got := h.Get("X-Team"); got != c.team {
			t.Errorf("%s got X-Team %q, want %q", c.at, got, c.team)
		}
	}
}
