package http

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	pconfig "github.com/prometheus/common/config"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/crypto/ocsp"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// ---- HTTP/3 servers ----

// h3Opts shape a test HTTP/3 server.
type h3Opts struct {
	network string           // "udp4" (default) or "udp6"
	cert    *tls.Certificate // what the server presents; issued by ca from spec when nil
	spec    *testcert.Spec   // the certificate to issue; testcert.Loopback() when nil
	ca      *testcert.CA     // the issuing CA
}

// h3Env is one test's HTTP/3 server and the CA that issued its certificate.
type h3Env struct {
	t   *testing.T
	ca  *testcert.CA
	url string // https://127.0.0.1:port or https://[::1]:port
}

// port is the server's UDP port.
func (e *h3Env) port() string { return probertest.Port(e.t, e.url) }

// newHTTP3Server serves handler over HTTP/3 on a loopback UDP socket the
// test opens, until the test ends, and returns its https:// URL.
func newHTTP3Server(t *testing.T, handler http.Handler, o h3Opts) string {
	t.Helper()
	network, addr := "udp4", "127.0.0.1:0"
	if o.network == "udp6" {
		network, addr = "udp6", "[::1]:0"
	}
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		if o.network == "udp6" {
			t.Skipf("cannot listen on [::1] over UDP: %v", err)
		}
		t.Fatal(err)
	}
	cert := o.cert
	if cert == nil {
		spec := testcert.Loopback()
		if o.spec != nil {
			spec = *o.spec
		}
		cert = new(o.ca.Issue(t, spec).TLS())
	}
	srv := &http3.Server{
		Handler:   handler,
		TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{*cert}}),
		Logger:    slog.New(slog.DiscardHandler),
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(pc) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
		pc.Close()
	})
	return "https://" + pc.LocalAddr().String()
}

// h3Module is an http module with enable_http3 that trusts ca, changed
// by mutate.
func h3Module(t *testing.T, ca *testcert.CA, mutate func(h *config.HTTPProbe)) *core.Module {
	t.Helper()
	return newModule(t, func(h *config.HTTPProbe) {
		h.EnableHTTP3 = true
		h.HTTPClientConfig.EnableHTTP2 = false
		h.HTTPClientConfig.TLSConfig.CAFile = ca.File(t)
		if mutate != nil {
			mutate(h)
		}
	})
}

// h3Case is one probe of an enable_http3 module against a test HTTP/3
// server.
type h3Case struct {
	name    string
	server  h3Opts
	handler func(e *h3Env) http.Handler                        // okHandler when nil
	target  func(e *h3Env) string                              // the server's URL when nil
	module  func(h *config.HTTPProbe, e *h3Env)                // changes to the module
	yaml    func(e *h3Env) string                              // an http section to load instead
	want    failure                                            // zero: the probe must succeed
	message []string                                           // substrings of the error message
	metrics map[string]float64                                 // unlabelled gauges and their values
	check   func(t *testing.T, e *h3Env, s *probemetrics.Sink) // anything else
}

func runHTTP3Cases(t *testing.T, cases []h3Case) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := &h3Env{t: t, ca: testcert.NewCA(t, testcert.Spec{})}
			opts := tc.server
			if opts.ca == nil {
				opts.ca = e.ca
			}
			var handler http.Handler = probertest.OKHandler
			if tc.handler != nil {
				handler = tc.handler(e)
			}
			e.url = newHTTP3Server(t, handler, opts)
			var m *core.Module
			if tc.yaml != nil {
				m = yamlModule(t, tc.yaml(e))
			} else {
				m = h3Module(t, e.ca, func(h *config.HTTPProbe) {
					if tc.module != nil {
						tc.module(h, e)
					}
				})
			}
			target := e.url
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
			if tc.check != nil {
				tc.check(t, e, sink)
			}
		})
	}
}

func h3Handler(f func(e *h3Env, w http.ResponseWriter, r *http.Request)) func(e *h3Env) http.Handler {
	return func(e *h3Env) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f(e, w, r) })
	}
}

// ---- the probe's answers ----

func TestHTTP3(t *testing.T) {
	ok := map[string]float64{
		"probe_http_status_code":              200,
		"probe_http_version":                  3,
		"probe_http_ssl":                      1,
		"probe_http_content_length":           2,
		"probe_http_uncompressed_body_length": 2,
		"probe_http_redirects":                0,
		"probe_failed_due_to_regex":           0,
		"probe_tls_verified":                  1,
	}
	// seen answers "ok" when the request reached the server over HTTP/3
	// as the probe should have sent it. An IP target sends no server name
	// (RFC 6066 has none for addresses), though the certificate is still
	// verified for the address.
	seen := func(wantHost, wantSNI string) func(e *h3Env) http.Handler {
		return h3Handler(func(e *h3Env, w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Proto != "HTTP/3.0":
				e.t.Errorf("server saw %s, want HTTP/3.0", r.Proto)
			case r.TLS == nil || r.TLS.ServerName != wantSNI:
				e.t.Errorf("server saw TLS %+v, want server name %q", r.TLS, wantSNI)
			case wantHost != "" && r.Host != wantHost:
				e.t.Errorf("Host = %q, want %q", r.Host, wantHost)
			case !strings.HasPrefix(r.UserAgent(), "Blackbox-Exporter/"):
				e.t.Errorf("User-Agent = %q, want blackbox_exporter's, Blackbox-Exporter/<version>", r.UserAgent())
			}
			fmt.Fprint(w, "ok")
		})
	}
	runHTTP3Cases(t, []h3Case{
		{
			name:    "success over IPv4",
			handler: seen("", ""),
			module:  func(h *config.HTTPProbe, _ *h3Env) { h.ValidHTTPVersions = []string{"HTTP/3.0"} },
			metrics: ok,
			check: func(t *testing.T, _ *h3Env, s *probemetrics.Sink) {
				probertest.Metric(t, s, 4, "probe_ip_protocol")
				probertest.Metric(t, s, 1, "probe_tls_version_info", "TLS 1.3")
				probertest.Present(t, s, tlsFamilies...)
				probertest.Present(t, s, probertest.ChainFamilies...)
				for _, phase := range []taxonomy.Phase{taxonomy.PhaseTLS, taxonomy.PhaseProcessing} {
					if probertest.PhaseSeconds(t, s, phase) <= 0 {
						t.Errorf("phase %s took no time; the QUIC handshake and the server's answer must have", phase)
					}
				}
			},
		},
		{
			name:    "success over IPv6",
			server:  h3Opts{network: "udp6"},
			handler: seen("", ""),
			module:  func(h *config.HTTPProbe, _ *h3Env) { h.IPProtocol = "ip6" },
			metrics: ok,
			check: func(t *testing.T, e *h3Env, s *probemetrics.Sink) {
				if !strings.HasPrefix(e.url, "https://[::1]:") {
					t.Fatalf("server URL %s is not on [::1]", e.url)
				}
				probertest.Metric(t, s, 6, "probe_ip_protocol")
			},
		},
		{
			name:    "an http:// target is probed over https",
			handler: seen("", ""),
			target:  func(e *h3Env) string { return strings.Replace(e.url, "https://", "http://", 1) + "/" },
			metrics: ok,
		},
		{
			name:    "a host[:port] target is probed over https",
			handler: seen("", ""),
			target:  func(e *h3Env) string { return strings.TrimPrefix(e.url, "https://") },
			metrics: ok,
		},
		{
			name:    "a name is resolved by sonde and verified under that name",
			server:  h3Opts{spec: new(testcert.Named("v4only.test"))},
			handler: seen("", "v4only.test"),
			target:  func(e *h3Env) string { return "https://v4only.test:" + e.port() + "/" },
			check: func(t *testing.T, _ *h3Env, s *probemetrics.Sink) {
				probertest.Metric(t, s, 200, "probe_http_status_code")
				if probertest.Value(t, s, "probe_ip_addr_hash") == 0 {
					t.Error("probe_ip_addr_hash is 0; the resolved address must be hashed")
				}
			},
		},
	})
}

func TestHTTP3Checks(t *testing.T) {
	body := func(s string) func(e *h3Env) http.Handler {
		return h3Handler(func(_ *h3Env, w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, s) })
	}
	probeExample := new(testcert.Named("probe.example"))
	runHTTP3Cases(t, []h3Case{
		{
			name:    "status code not valid",
			handler: h3Handler(func(_ *h3Env, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }),
			want:    failure{taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus, taxonomy.PhaseValidate},
			metrics: map[string]float64{"probe_http_status_code": 503, "probe_http_version": 3},
		},
		{
			name:    "valid_status_codes accepts a 503",
			handler: h3Handler(func(_ *h3Env, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }),
			module:  func(h *config.HTTPProbe, _ *h3Env) { h.ValidStatusCodes = []int{503} },
			metrics: map[string]float64{"probe_http_status_code": 503},
		},
		{
			name:    "body regexp not matched",
			handler: body("degraded"),
			module: func(h *config.HTTPProbe, _ *h3Env) {
				h.FailIfBodyNotMatchesRegexp = []config.Regexp{config.MustNewRegexp("^ok$")}
			},
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonBodyRegex, taxonomy.PhaseValidate},
			metrics: map[string]float64{"probe_failed_due_to_regex": 1, "probe_http_uncompressed_body_length": 8},
		},
		{
			name:    "body regexp matched",
			handler: body("ok"),
			module: func(h *config.HTTPProbe, _ *h3Env) {
				h.FailIfBodyNotMatchesRegexp = []config.Regexp{config.MustNewRegexp("^ok$")}
			},
			metrics: map[string]float64{"probe_failed_due_to_regex": 0},
		},
		{
			name: "header regexp",
			handler: h3Handler(func(_ *h3Env, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("X-State", "maintenance")
			}),
			module: func(h *config.HTTPProbe, _ *h3Env) {
				h.FailIfHeaderMatchesRegexp = []config.HeaderMatch{{Header: "X-State", Regexp: config.MustNewRegexp("maint")}}
			},
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonHeaderRegex, taxonomy.PhaseValidate},
			metrics: map[string]float64{"probe_failed_due_to_regex": 1},
		},
		{
			name:    "CEL, valid_http_versions and tls_config from a configuration file",
			handler: body(`{"status": "down"}`),
			yaml: func(e *h3Env) string {
				return "enable_http3: true\nenable_http2: false\nvalid_http_versions: [HTTP/3.0]\n" +
					"fail_if_body_json_not_matches_cel: 'body.status == \"up\"'\ntls_config:\n  ca_file: " + e.ca.File(t)
			},
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonBodyCEL, taxonomy.PhaseValidate},
			metrics: map[string]float64{"probe_failed_due_to_cel": 1, "probe_http_version": 3},
		},
		{
			name: "compression",
			handler: h3Handler(func(e *h3Env, w http.ResponseWriter, r *http.Request) {
				// With compression set, quic-go asks for nothing itself
				// and sonde decodes once.
				if got, ok := r.Header["Accept-Encoding"]; ok {
					e.t.Errorf("Accept-Encoding = %q, want none", got)
				}
				w.Header().Set("Content-Encoding", "gzip")
				gz := gzip.NewWriter(w)
				fmt.Fprint(gz, "hello, world")
				gz.Close()
			}),
			module: func(h *config.HTTPProbe, _ *h3Env) {
				h.Compression = "gzip"
				h.FailIfBodyNotMatchesRegexp = []config.Regexp{config.MustNewRegexp("^hello, world$")}
			},
			metrics: map[string]float64{"probe_http_uncompressed_body_length": 12},
		},
		{
			// blackbox's HTTP/3 client is quic-go's with its defaults: it
			// asks for gzip and decodes it, so the length is unknown.
			name: "gzip asked for and decoded without compression",
			handler: h3Handler(func(e *h3Env, w http.ResponseWriter, r *http.Request) {
				if got := r.Header.Get("Accept-Encoding"); got != "gzip" {
					e.t.Errorf("Accept-Encoding = %q, want gzip, as quic-go asks for blackbox", got)
				}
				w.Header().Set("Content-Encoding", "gzip")
				gz := gzip.NewWriter(w)
				fmt.Fprint(gz, "hello, world")
				gz.Close()
			}),
			module: func(h *config.HTTPProbe, _ *h3Env) {
				h.FailIfBodyNotMatchesRegexp = []config.Regexp{config.MustNewRegexp("^hello, world$")}
			},
			metrics: map[string]float64{"probe_http_uncompressed_body_length": 12, "probe_http_content_length": -1},
		},
		{
			name:    "body_size_limit",
			handler: body(strings.Repeat("x", 4096)),
			module:  func(h *config.HTTPProbe, _ *h3Env) { h.BodySizeLimit = 1024 },
			want:    failure{taxonomy.ClassProtocol, taxonomy.ReasonBodyTooLarge, taxonomy.PhaseTransfer},
			metrics: map[string]float64{"probe_http_uncompressed_body_length": 1024},
		},
		{
			name: "method and body",
			handler: h3Handler(func(e *h3Env, w http.ResponseWriter, r *http.Request) {
				got, _ := io.ReadAll(r.Body)
				if r.Method != http.MethodPost || string(got) != "ping" {
					e.t.Errorf("server saw %s with %q, want POST with \"ping\"", r.Method, got)
				}
				fmt.Fprint(w, "pong")
			}),
			module: func(h *config.HTTPProbe, _ *h3Env) { h.Method, h.Body = http.MethodPost, "ping" },
		},
		{
			name:   "the Host header is the server name of an IP target",
			server: h3Opts{spec: probeExample},
			handler: h3Handler(func(e *h3Env, w http.ResponseWriter, r *http.Request) {
				if r.TLS.ServerName != "probe.example" || r.Host != "probe.example:8443" {
					e.t.Errorf("server name %q, Host %q; want probe.example and probe.example:8443", r.TLS.ServerName, r.Host)
				}
			}),
			module:  func(h *config.HTTPProbe, _ *h3Env) { h.Headers = map[string]string{"Host": "probe.example:8443"} },
			metrics: map[string]float64{"probe_tls_verified": 1},
		},
		{
			name:   "server_name wins over the Host header",
			server: h3Opts{spec: probeExample},
			handler: h3Handler(func(e *h3Env, w http.ResponseWriter, r *http.Request) {
				if r.TLS.ServerName != "probe.example" || r.Host != "www.example" {
					e.t.Errorf("server name %q, Host %q; want probe.example and www.example", r.TLS.ServerName, r.Host)
				}
			}),
			module: func(h *config.HTTPProbe, _ *h3Env) {
				h.Headers = map[string]string{"Host": "www.example"}
				h.HTTPClientConfig.TLSConfig.ServerName = "probe.example"
			},
		},
		{
			name:   "insecure_skip_verify accepts an untrusted certificate",
			server: h3Opts{ca: testcert.NewCA(t, testcert.Spec{})},
			module: func(h *config.HTTPProbe, _ *h3Env) {
				h.HTTPClientConfig.TLSConfig.InsecureSkipVerify = true
			},
			metrics: map[string]float64{"probe_http_ssl": 1, "probe_tls_verified": 0},
		},
		{
			name:   "fail_if_ssl",
			module: func(h *config.HTTPProbe, _ *h3Env) { h.FailIfSSL = true },
			want:   failure{taxonomy.ClassAssertion, taxonomy.ReasonSSLForbidden, taxonomy.PhaseValidate},
		},
	})
}

func TestHTTP3WithHostname(t *testing.T) {
	ca := testcert.NewCA(t, testcert.Spec{})
	url := newHTTP3Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS.ServerName != "vhost.example" || r.Host != "vhost.example" {
			t.Errorf("server name %q, Host %q; want vhost.example for both", r.TLS.ServerName, r.Host)
		}
	}), h3Opts{ca: ca, spec: new(testcert.Named("vhost.example"))})
	m, err := h3Module(t, ca, nil).WithHostname("vhost.example")
	if err != nil {
		t.Fatal(err)
	}
	sink, err := probertest.Run(t, m, url)
	checkOutcome(t, err, failure{})
	probertest.Metric(t, sink, 1, "probe_tls_verified")
}

// TestHTTP3ClientCertificate presents tls_config's certificate to a server
// that asks for one, and fails as TLS when there is none to present.
func TestHTTP3ClientCertificate(t *testing.T) {
	ca := testcert.NewCA(t, testcert.Spec{})
	client := ca.Issue(t, testcert.Spec{Client: true})
	certFile, keyFile := client.WriteFiles(t, t.TempDir(), "client")
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := ca.Issue(t, testcert.Loopback())
	srv := &http3.Server{Handler: probertest.OKHandler, Logger: slog.New(slog.DiscardHandler), TLSConfig: http3.ConfigureTLSConfig(&tls.Config{
		Certificates: []tls.Certificate{server.TLS()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
	})}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(pc) }()
	t.Cleanup(func() { srv.Close(); <-done; pc.Close() })
	target := "https://" + pc.LocalAddr().String()

	t.Run("presented", func(t *testing.T) {
		m := h3Module(t, ca, func(h *config.HTTPProbe) {
			h.HTTPClientConfig.TLSConfig.CertFile, h.HTTPClientConfig.TLSConfig.KeyFile = certFile, keyFile
		})
		sink, err := probertest.Run(t, m, target)
		checkOutcome(t, err, failure{})
		probertest.Metric(t, sink, probemetrics.UnixSeconds(client.Leaf.NotAfter), "probe_tls_client_cert_not_after_timestamp_seconds")
	})
	t.Run("missing", func(t *testing.T) {
		// The server refuses the handshake with an alert after sonde's
		// side of it is done, as with TLS 1.3 over TCP.
		_, err := probertest.Run(t, h3Module(t, ca, nil), target)
		checkOutcome(t, err, failure{taxonomy.ClassTLS, taxonomy.ReasonHandshake, taxonomy.PhaseProcessing})
	})
}

func TestHTTP3Redirects(t *testing.T) {
	// redirecting sends /redirect on to where, setting a cookie, and
	// records where each request came from. /ok wants the cookie back
	// from the host that set it, and only from it.
	redirecting := func(where func(r *http.Request) string, from *sync.Map) func(e *h3Env) http.Handler {
		return func(e *h3Env) http.Handler {
			mux := http.NewServeMux()
			mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
				from.Store(r.URL.Path, r.RemoteAddr)
				http.SetCookie(w, &http.Cookie{Name: "probe", Value: "1"})
				http.Redirect(w, r, where(r), http.StatusFound)
			})
			mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
				from.Store(r.URL.Path, r.RemoteAddr)
				_, err := r.Cookie("probe")
				if sameHost := strings.HasPrefix(r.Host, "127.0.0.1:"); sameHost != (err == nil) {
					e.t.Errorf("request to %s came with the cookie %v, want %v", r.Host, err == nil, sameHost)
				}
				fmt.Fprint(w, "ok")
			})
			return mux
		}
	}
	here := func(*http.Request) string { return "/ok" }
	// elsewhere is the same server under another name or scheme; the
	// port is the request's, since the handler cannot read the test's
	// variables without a race.
	elsewhere := func(prefix string) func(r *http.Request) string {
		return func(r *http.Request) string {
			_, port, _ := net.SplitHostPort(r.Host)
			return prefix + port + "/ok"
		}
	}
	var sameHost, otherHost sync.Map
	both := &testcert.Spec{DNSNames: []string{"localhost", "v4only.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	runHTTP3Cases(t, []h3Case{
		{
			name:    "followed on a connection of its own, with the cookie",
			handler: redirecting(here, &sameHost),
			target:  func(e *h3Env) string { return e.url + "/redirect" },
			metrics: map[string]float64{"probe_http_redirects": 1, "probe_http_status_code": 200, "probe_http_version": 3},
			check: func(t *testing.T, _ *h3Env, s *probemetrics.Sink) {
				first, _ := sameHost.Load("/redirect")
				second, _ := sameHost.Load("/ok")
				if first == nil || first == second {
					t.Errorf("both requests came from %v; each must have a QUIC connection of its own", first)
				}
				var handshakes []int
				for _, span := range s.Spans() {
					if span.Phase == taxonomy.PhaseTLS {
						handshakes = append(handshakes, span.Hop)
					}
				}
				if fmt.Sprint(handshakes) != "[0 1]" {
					t.Errorf("QUIC handshakes at hops %v, want [0 1]", handshakes)
				}
			},
		},
		{
			name:    "to another host, resolved by sonde and verified under its name",
			server:  h3Opts{spec: both},
			handler: redirecting(elsewhere("https://v4only.test:"), &otherHost),
			target:  func(e *h3Env) string { return e.url + "/redirect" },
			metrics: map[string]float64{"probe_http_redirects": 1, "probe_http_status_code": 200},
		},
		{
			name:    "to http://, which HTTP/3 cannot reach",
			handler: redirecting(elsewhere("http://127.0.0.1:"), &sync.Map{}),
			target:  func(e *h3Env) string { return e.url + "/redirect" },
			want:    failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseProcessing},
			message: []string{"HTTP/3 runs only over TLS"},
		},
		{
			name:    "not followed",
			handler: redirecting(here, &sync.Map{}),
			target:  func(e *h3Env) string { return e.url + "/redirect" },
			module:  func(h *config.HTTPProbe, _ *h3Env) { h.HTTPClientConfig.FollowRedirects = false },
			want:    failure{taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus, taxonomy.PhaseValidate},
			metrics: map[string]float64{"probe_http_redirects": 1, "probe_http_status_code": 302},
		},
		{
			name: "too many",
			handler: h3Handler(func(_ *h3Env, w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, r.URL.Path, http.StatusFound)
			}),
			want:    failure{taxonomy.ClassProtocol, taxonomy.ReasonTooManyRedirects, taxonomy.PhaseProcessing},
			metrics: map[string]float64{"probe_http_redirects": 11},
		},
	})
}

// TestHTTP3RedirectPolicy refuses a redirect whose name resolves to an
// address the module's targets rules deny: the address dialled over UDP
// is checked as over TCP.
func TestHTTP3RedirectPolicy(t *testing.T) {
	ca := testcert.NewCA(t, testcert.Spec{})
	url := newHTTP3Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, port, _ := net.SplitHostPort(r.Host)
		http.Redirect(w, r, "https://alias2.test:"+port+"/", http.StatusFound)
	}), h3Opts{ca: ca})
	m := defaultModule(t, "http", func(m *config.Module) {
		m.HTTP.EnableHTTP3, m.HTTP.HTTPClientConfig.EnableHTTP2 = true, false
		m.HTTP.HTTPClientConfig.TLSConfig.CAFile = ca.File(t)
		m.Targets.Deny = []string{"127.0.0.2/32"}
	})
	_, err := probertest.Run(t, m, url)
	checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseResolve})
}

func TestHTTP3Certificates(t *testing.T) {
	runHTTP3Cases(t, []h3Case{
		{
			name:    "unknown authority",
			server:  h3Opts{ca: testcert.NewCA(t, testcert.Spec{})},
			want:    failure{taxonomy.ClassTLS, taxonomy.ReasonCertUnknownAuthority, taxonomy.PhaseTLS},
			metrics: map[string]float64{"probe_http_ssl": 0, "probe_http_status_code": 0},
			check:   func(t *testing.T, _ *h3Env, s *probemetrics.Sink) { probertest.ChainSurvived(t, s) },
		},
		{
			name:   "expired",
			server: h3Opts{spec: new(testcert.Spec{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}.Expired())},
			want:   failure{taxonomy.ClassTLS, taxonomy.ReasonCertExpired, taxonomy.PhaseTLS},
			check: func(t *testing.T, _ *h3Env, s *probemetrics.Sink) {
				probertest.ChainSurvived(t, s)
				if expiry := probertest.Value(t, s, "probe_ssl_earliest_cert_expiry"); expiry > float64(time.Now().Unix()) {
					t.Errorf("probe_ssl_earliest_cert_expiry = %v, want the past", expiry)
				}
			},
		},
		{
			name:   "another name",
			server: h3Opts{spec: new(testcert.Named("probe.example"))},
			want:   failure{taxonomy.ClassTLS, taxonomy.ReasonCertHostnameMismatch, taxonomy.PhaseTLS},
			check:  func(t *testing.T, _ *h3Env, s *probemetrics.Sink) { probertest.ChainSurvived(t, s) },
		},
	})
}

// rawQUICServer accepts QUIC connections on loopback, with a certificate
// ca issued for localhost and the ALPN protocols given, and hands each to
// handle: a peer that misbehaves inside HTTP/3. A handler's connection is
// closed when it returns.
func rawQUICServer(t *testing.T, ca *testcert.CA, alpn []string, handle func(ctx context.Context, c *quic.Conn)) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert := ca.Issue(t, testcert.Loopback())
	ln, err := quic.Listen(pc, &tls.Config{Certificates: []tls.Certificate{cert.TLS()}, NextProtos: alpn}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var handlers sync.WaitGroup
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			handlers.Go(func() {
				handle(ctx, c)
				c.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "")
			})
		}
	}()
	t.Cleanup(func() {
		cancel()
		ln.Close()
		<-accepting
		handlers.Wait()
		pc.Close()
	})
	return "https://" + pc.LocalAddr().String()
}

// requestStream waits for the probe's request on c.
func requestStream(ctx context.Context, c *quic.Conn) (*quic.Stream, bool) {
	str, err := c.AcceptStream(ctx)
	return str, err == nil
}

func TestHTTP3Failures(t *testing.T) {
	ca := testcert.NewCA(t, testcert.Spec{})
	// deadline is short for the silent socket, where nothing happens
	// before it; stall is the deadline of a server that stalls after the
	// handshake, which must fit in it with a margin on a loaded machine.
	const deadline = 300 * time.Millisecond
	const stall = time.Second
	hold := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
	cases := []struct {
		name    string
		target  func(t *testing.T) string
		module  func(h *config.HTTPProbe)
		want    failure
		check   func(t *testing.T, s *probemetrics.Sink, took time.Duration)
		timeout time.Duration // 10 s when 0
	}{
		{
			name:   "nothing listens on the UDP port",
			target: func(t *testing.T) string { return "https://" + testkit.ClosedUDPPort(t) },
			want:   failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect},
			check: func(t *testing.T, s *probemetrics.Sink, _ time.Duration) {
				probertest.Metric(t, s, 0, "probe_http_status_code")
				probertest.Metric(t, s, 4, "probe_ip_protocol")
				probertest.Absent(t, s, tlsFamilies...)
			},
		},
		{
			name:    "the UDP port reads and never answers",
			target:  func(t *testing.T) string { return "https://" + testkit.SilentUDP(t) },
			timeout: deadline,
			want:    failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseTLS},
			check: func(t *testing.T, s *probemetrics.Sink, took time.Duration) {
				// It ends by its deadline, not before (quic-go's own
				// handshake timeout is 5 s) and not long after.
				if took < deadline*9/10 || took > deadline+5*time.Second {
					t.Errorf("the probe took %v with a deadline of %v", took, deadline)
				}
				if tls := probertest.PhaseSeconds(t, s, taxonomy.PhaseTLS); tls < (deadline / 2).Seconds() {
					t.Errorf("phase tls holds %vs; the wait for the handshake belongs there", tls)
				}
			},
		},
		{
			name: "the server holds the response past the deadline",
			target: func(t *testing.T) string {
				return newHTTP3Server(t, http.HandlerFunc(hold), h3Opts{ca: ca})
			},
			timeout: stall,
			want:    failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseProcessing},
		},
		{
			name: "the server stops sending the body",
			target: func(t *testing.T) string {
				return newHTTP3Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					fmt.Fprint(w, strings.Repeat("x", 8192))
					w.(http.Flusher).Flush()
					hold(w, r)
				}), h3Opts{ca: ca})
			},
			timeout: stall,
			want:    failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseTransfer},
			check: func(t *testing.T, s *probemetrics.Sink, _ time.Duration) {
				probertest.Metric(t, s, 200, "probe_http_status_code")
				if transfer := probertest.PhaseSeconds(t, s, taxonomy.PhaseTransfer); transfer < (stall / 2).Seconds() {
					t.Errorf("phase transfer holds %vs; the wait for the body belongs there", transfer)
				}
			},
		},
		{
			name: "the server resets the stream inside the body",
			target: func(t *testing.T) string {
				return newHTTP3Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					// A reset may discard what the client has not read,
					// headers too; 2 MiB is more than the client's flow
					// control lets through before it reads, so the reset
					// comes once sonde reads the body.
					w.Header().Set("Content-Length", "4194304")
					w.Write(make([]byte, 2<<20))
					panic(http.ErrAbortHandler) // quic-go resets the stream with H3_INTERNAL_ERROR
				}), h3Opts{ca: ca})
			},
			want: failure{taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, taxonomy.PhaseTransfer},
		},
		{
			name: "the server closes the connection before answering",
			target: func(t *testing.T) string {
				return rawQUICServer(t, ca, []string{http3.NextProtoH3}, func(ctx context.Context, c *quic.Conn) {
					requestStream(ctx, c)
				})
			},
			want: failure{taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, taxonomy.PhaseProcessing},
		},
		{
			name: "the server answers with a frame that may not come first",
			target: func(t *testing.T) string {
				return rawQUICServer(t, ca, []string{http3.NextProtoH3}, func(ctx context.Context, c *quic.Conn) {
					if str, ok := requestStream(ctx, c); ok {
						str.Write([]byte{0x00, 0x02, 'h', 'i'}) // DATA, where HEADERS must come
						str.Close()
						<-c.Context().Done() // until sonde closes it
					}
				})
			},
			want: failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseTransfer},
		},
		{
			name: "no application protocol in common",
			target: func(t *testing.T) string {
				return rawQUICServer(t, ca, []string{"hq-interop"}, func(context.Context, *quic.Conn) {})
			},
			want: failure{taxonomy.ClassTLS, taxonomy.ReasonHandshake, taxonomy.PhaseTLS},
		},
		{
			name:   "the module's proxy would carry the request",
			target: func(t *testing.T) string { return "https://" + testkit.ClosedUDPPort(t) },
			module: func(h *config.HTTPProbe) {
				h.HTTPClientConfig.ProxyURL = pconfig.URL{URL: &url.URL{Scheme: "http", Host: "127.0.0.1:3128"}}
			},
			want: failure{taxonomy.ClassProber, taxonomy.ReasonUnsupported, taxonomy.PhaseSetup},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := h3Module(t, ca, tc.module)
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			sink, took, err := probertest.Probe(t, m, tc.target(t), timeout)
			checkOutcome(t, err, tc.want)
			if tc.check != nil {
				tc.check(t, sink, took)
			}
		})
	}
}

// TestHTTP3WithTLS12FailsProbes: a module that could never speak HTTP/3
// loads, as in blackbox, and each probe fails before sending anything.
func TestHTTP3WithTLS12FailsProbes(t *testing.T) {
	cm := config.DefaultModule()
	cm.Prober = "http"
	cm.HTTP.EnableHTTP3, cm.HTTP.HTTPClientConfig.EnableHTTP2 = true, false
	cm.HTTP.HTTPClientConfig.TLSConfig.MaxVersion = pconfig.TLSVersion(tls.VersionTLS12)
	m, err := prepareModule("test", cm, core.WithResolver(probertest.TestResolver(t)))
	if err != nil {
		t.Fatalf("NewModule: %v", err)
	}
	_, err = probertest.Run(t, m, "https://127.0.0.1:1/")
	e := checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup})
	if e != nil && !strings.Contains(e.Error(), "TLS 1.3") {
		t.Errorf("the failure does not name TLS 1.3: %v", e)
	}
}

// TestClassifyQUIC maps quic-go's typed errors, the ones no test server
// here can be made to produce among them.
func TestClassifyQUIC(t *testing.T) {
	alive := context.Background()
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	cases := []struct {
		name  string
		ctx   context.Context
		err   error
		phase taxonomy.Phase
		want  failure
	}{
		{"the server refuses the connection", alive, &quic.TransportError{Remote: true, ErrorCode: quic.ConnectionRefused}, taxonomy.PhaseTLS,
			failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseTLS}},
		{"a stateless reset", alive, &quic.StatelessResetError{}, taxonomy.PhaseTransfer, failure{taxonomy.ClassConnect, taxonomy.ReasonReset, taxonomy.PhaseTransfer}},
		{"no QUIC version in common", alive, &quic.VersionNegotiationError{}, taxonomy.PhaseTLS, failure{taxonomy.ClassTLS, taxonomy.ReasonHandshake, taxonomy.PhaseTLS}},
		{"a TLS alert from the server", alive, &quic.TransportError{Remote: true, ErrorCode: 0x100 + 40}, taxonomy.PhaseTLS,
			failure{taxonomy.ClassTLS, taxonomy.ReasonHandshake, taxonomy.PhaseTLS}},
		{"the server breaks QUIC in the handshake", alive, &quic.TransportError{ErrorCode: quic.ProtocolViolation}, taxonomy.PhaseTLS,
			failure{taxonomy.ClassTLS, taxonomy.ReasonHandshake, taxonomy.PhaseTLS}},
		{"the server breaks QUIC", alive, &quic.TransportError{ErrorCode: quic.FrameEncodingError}, taxonomy.PhaseTransfer,
			failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseTransfer}},
		{"the server closes with an error", alive, &quic.TransportError{Remote: true, ErrorCode: quic.InternalError}, taxonomy.PhaseProcessing,
			failure{taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, taxonomy.PhaseProcessing}},
		{"the server resets the stream", alive, &quic.StreamError{Remote: true, ErrorCode: 0x10c}, taxonomy.PhaseTransfer,
			failure{taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, taxonomy.PhaseTransfer}},
		{"the server resets the stream past the deadline", expired, &quic.StreamError{Remote: true, ErrorCode: 0x10c}, taxonomy.PhaseTransfer,
			failure{taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, taxonomy.PhaseTransfer}},
		{"sonde cancels the stream at the deadline", expired, &quic.StreamError{ErrorCode: 0x10c}, taxonomy.PhaseTransfer,
			failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseTransfer}},
		{"sonde's client closes on a broken frame", alive, &quic.ApplicationError{ErrorCode: 0x105}, taxonomy.PhaseTransfer,
			failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseTransfer}},
		{"sonde closes at the deadline", expired, &quic.ApplicationError{ErrorCode: 0x100}, taxonomy.PhaseProcessing,
			failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseProcessing}},
		{"idle timeout", alive, &quic.IdleTimeoutError{}, taxonomy.PhaseProcessing, failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseProcessing}},
		{"handshake timeout", alive, &quic.HandshakeTimeoutError{}, taxonomy.PhaseTLS, failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseTLS}},
		{"wrapped", alive, fmt.Errorf("reading: %w", &quic.StreamError{Remote: true}), taxonomy.PhaseTransfer,
			failure{taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, taxonomy.PhaseTransfer}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkOutcome(t, classifyHTTP3(tc.ctx, tc.err, tc.phase), tc.want)
		})
	}
	t.Run("a classified error keeps its labels", func(t *testing.T) {
		err := taxonomy.Fail(taxonomy.ClassProtocol, taxonomy.ReasonBodyTooLarge, taxonomy.PhaseTransfer, nil)
		checkOutcome(t, classifyHTTP3(alive, fmt.Errorf("body: %w", err), taxonomy.PhaseTransfer), failure{taxonomy.ClassProtocol, taxonomy.ReasonBodyTooLarge, taxonomy.PhaseTransfer})
	})
}

// TestHTTP3UpgradeWarns says, at warn level, that an http:// target was
// probed over https, naming both.
func TestHTTP3UpgradeWarns(t *testing.T) {
	ca := testcert.NewCA(t, testcert.Spec{})
	url := newHTTP3Server(t, probertest.OKHandler, h3Opts{ca: ca})
	target := strings.Replace(url, "https://", "http://", 1) + "/health"
	var log strings.Builder
	logger := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := probeHTTP(ctx, target, h3Module(t, ca, nil), probemetrics.NewSink(), logger); err != nil {
		t.Fatalf("probe failed: %v", err)
	}
	for _, want := range []string{"level=WARN", "target=" + target, "probed=" + url + "/health"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log %q does not say %q", log.String(), want)
		}
	}
}

// TestHTTP3OCSP reads OCSP over QUIC as over TCP: the response stapled to
// the QUIC handshake, and with check: query the responder asked after it.
func TestHTTP3OCSP(t *testing.T) {
	t.Run("stapled", func(t *testing.T) {
		ca := testcert.NewCA(t, testcert.Spec{})
		leaf := ca.Issue(t, testcert.Loopback())
		presented := leaf.TLS()
		presented.OCSPStaple = ca.OCSPAnswer(t, leaf, ocsp.Revoked)
		url := newHTTP3Server(t, probertest.OKHandler, h3Opts{cert: &presented})
		sink, err := probertest.Run(t, h3Module(t, ca, nil), url)
		checkOutcome(t, err, failure{taxonomy.ClassTLS, taxonomy.ReasonCertRevoked, taxonomy.PhaseTLS})
		probertest.Metric(t, sink, 1, "probe_tls_ocsp_stapled")
		probertest.CheckOCSPSeries(t, sink, "revoked", "")
	})
	t.Run("queried", func(t *testing.T) {
		ca := testcert.NewCA(t, testcert.Spec{})
		var answer func(http.ResponseWriter)
		responder := probertest.NewOCSPResponder(t, func(w http.ResponseWriter) { answer(w) })
		leaf := ca.Issue(t, probertest.WithOCSP(responder.URL))
		answer = probertest.Answers(ca.OCSPAnswer(t, leaf, ocsp.Revoked))
		url := newHTTP3Server(t, probertest.OKHandler, h3Opts{cert: new(leaf.TLS())})
		m := defaultModule(t, "http", func(m *config.Module) {
			m.HTTP.EnableHTTP3, m.HTTP.HTTPClientConfig.EnableHTTP2 = true, false
			m.HTTP.HTTPClientConfig.TLSConfig.CAFile = ca.File(t)
			m.OCSP = probertest.OCSPPolicy(config.OCSPQuery)
		})
		sink, err := probertest.Run(t, m, url)
		checkOutcome(t, err, failure{taxonomy.ClassTLS, taxonomy.ReasonCertRevoked, taxonomy.PhaseOCSP})
		probertest.Metric(t, sink, 0, "probe_tls_ocsp_stapled")
		probertest.CheckOCSPSeries(t, sink, "revoked", "")
		if n := responder.Asked.Load(); n != 1 {
			t.Errorf("the responder was asked %d times, want once", n)
		}
		var asked bool
		for _, span := range sink.Spans() {
			asked = asked || span.Phase == taxonomy.PhaseOCSP
		}
		if !asked {
			t.Error("no ocsp span after the QUIC handshake")
		}
	})
}
