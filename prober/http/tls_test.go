package http

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	pconfig "github.com/prometheus/common/config"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
	"github.com/sonde-exporter/sonde/prober/tlsfacts"
)

// tlsFamilies are the metrics only a completed handshake exports.
var tlsFamilies = []string{
	"probe_ssl_earliest_cert_expiry",
	"probe_ssl_last_chain_expiry_timestamp_seconds",
	"probe_ssl_last_chain_info",
	"probe_tls_version_info",
	"probe_tls_cipher_info",
}

// sni answers 200 when the handshake's server name and the Host header
// are what the probe should have sent.
func sni(wantSNI, wantHost string) func(e *env) http.Handler {
	return handlerFunc(func(e *env, w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			e.t.Error("the request did not come over TLS")
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if r.TLS.ServerName != wantSNI {
			e.t.Errorf("server name = %q, want %q", r.TLS.ServerName, wantSNI)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if wantHost != "" && r.Host != wantHost {
			e.t.Errorf("Host = %q, want %q", r.Host, wantHost)
			w.WriteHeader(http.StatusBadRequest)
		}
	})
}

// ipTarget is the server's URL, whose host is the loopback IP: named for
// the cases where that is the point.
func ipTarget(e *env) string { return e.srv.URL }

func TestHTTPTLSOptions(t *testing.T) {
	probeExample := new(testcert.Named("probe.example"))
	runHTTPCases(t, []httpCase{
		{
			name:    "ca_file verifies the server",
			server:  probertest.ServerOpts{TLS: true},
			metrics: map[string]float64{"probe_http_ssl": 1},
		},
		{
			name:    "server_name verifies an IP target under another name",
			server:  probertest.ServerOpts{TLS: true, Spec: probeExample},
			handler: sni("probe.example", ""),
			target:  ipTarget,
			module: func(h *config.HTTPProbe, _ *env) {
				h.HTTPClientConfig.TLSConfig.ServerName = "probe.example"
			},
		},
		{
			name:    "the Host header is the server name of an IP target",
			server:  probertest.ServerOpts{TLS: true, Spec: probeExample, HTTP2: true},
			handler: sni("probe.example", "probe.example:8443"),
			target:  ipTarget,
			module: func(h *config.HTTPProbe, _ *env) {
				h.Headers = map[string]string{"Host": "probe.example:8443"}
			},
			metrics: map[string]float64{"probe_http_version": 2},
		},
		{
			name:    "server_name wins over the Host header",
			server:  probertest.ServerOpts{TLS: true, Spec: probeExample},
			handler: sni("probe.example", "www.example"),
			target:  ipTarget,
			module: func(h *config.HTTPProbe, _ *env) {
				h.Headers = map[string]string{"Host": "www.example"}
				h.HTTPClientConfig.TLSConfig.ServerName = "probe.example"
			},
		},
		{
			name:   "insecure_skip_verify accepts an untrusted certificate",
			server: probertest.ServerOpts{TLS: true, Spec: new(testcert.Named("nobody.example"))},
			module: func(h *config.HTTPProbe, _ *env) {
				h.HTTPClientConfig.TLSConfig.CAFile = ""
				h.HTTPClientConfig.TLSConfig.InsecureSkipVerify = true
			},
			metrics: map[string]float64{"probe_http_ssl": 1},
			check: func(t *testing.T, _ *env, s *probemetrics.Sink) {
				probertest.Value(t, s, "probe_ssl_earliest_cert_expiry")
				// Verification still ran: the option does not hide that
				// the chain is untrusted.
				probertest.Metric(t, s, 0, "probe_tls_verified")
			},
		},
		{
			name:   "max_version TLS 1.2",
			server: probertest.ServerOpts{TLS: true},
			module: func(h *config.HTTPProbe, _ *env) {
				h.HTTPClientConfig.TLSConfig.MaxVersion = pconfig.TLSVersion(tls.VersionTLS12)
			},
			check: func(t *testing.T, _ *env, s *probemetrics.Sink) {
				probertest.Metric(t, s, 1, "probe_tls_version_info", "TLS 1.2")
			},
		},
		{
			name:   "min_version TLS 1.3 against a TLS 1.2 server",
			server: probertest.ServerOpts{TLS: true, TLSConf: func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }},
			module: func(h *config.HTTPProbe, _ *env) {
				h.HTTPClientConfig.TLSConfig.MinVersion = pconfig.TLSVersion(tls.VersionTLS13)
			},
			want:    failure{taxonomy.ClassTLS, taxonomy.ReasonHandshake, taxonomy.PhaseTLS},
			metrics: map[string]float64{"probe_http_ssl": 0, "probe_http_status_code": 0},
			absent:  tlsFamilies,
		},
		{
			name:    "expired certificate",
			server:  probertest.ServerOpts{TLS: true, Spec: new(testcert.Spec{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}.Expired())},
			want:    failure{taxonomy.ClassTLS, taxonomy.ReasonCertExpired, taxonomy.PhaseTLS},
			metrics: map[string]float64{"probe_http_ssl": 0},
			check:   func(t *testing.T, _ *env, s *probemetrics.Sink) { probertest.ChainSurvived(t, s) },
		},
		{
			name:   "certificate not yet valid",
			server: probertest.ServerOpts{TLS: true, Spec: new(testcert.Spec{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}.NotYetValid())},
			want:   failure{taxonomy.ClassTLS, taxonomy.ReasonCertNotYetValid, taxonomy.PhaseTLS},
			check:  func(t *testing.T, _ *env, s *probemetrics.Sink) { probertest.ChainSurvived(t, s) },
		},
		{
			name:   "certificate for another name",
			server: probertest.ServerOpts{TLS: true, Spec: new(testcert.Named("other.example"))},
			want:   failure{taxonomy.ClassTLS, taxonomy.ReasonCertHostnameMismatch, taxonomy.PhaseTLS},
			check:  func(t *testing.T, _ *env, s *probemetrics.Sink) { probertest.ChainSurvived(t, s) },
		},
		{
			name:   "Host header that the certificate does not cover",
			server: probertest.ServerOpts{TLS: true, Spec: probeExample},
			target: ipTarget,
			module: func(h *config.HTTPProbe, _ *env) { h.Headers = map[string]string{"Host": "wrong.example"} },
			want:   failure{taxonomy.ClassTLS, taxonomy.ReasonCertHostnameMismatch, taxonomy.PhaseTLS},
			check:  func(t *testing.T, _ *env, s *probemetrics.Sink) { probertest.ChainSurvived(t, s) },
		},
		{
			name:   "certificate from an unknown authority",
			server: probertest.ServerOpts{TLS: true},
			module: func(h *config.HTTPProbe, e *env) {
				h.HTTPClientConfig.TLSConfig.CAFile = testcert.NewCA(e.t, testcert.Spec{}).File(e.t)
			},
			want:  failure{taxonomy.ClassTLS, taxonomy.ReasonCertUnknownAuthority, taxonomy.PhaseTLS},
			check: func(t *testing.T, _ *env, s *probemetrics.Sink) { probertest.ChainSurvived(t, s) },
		},
		{
			name:   "https to a plain http server",
			target: func(e *env) string { return strings.Replace(e.srv.URL, "http://", "https://", 1) },
			want:   failure{taxonomy.ClassTLS, taxonomy.ReasonHandshake, taxonomy.PhaseTLS},
			absent: tlsFamilies,
		},
	})
}

// Without the client certificate the server asks for, the probe fails as a
// TLS handshake failure. In TLS 1.2 the client learns it during its
// handshake; in TLS 1.3 the client's side of the handshake is done when the
// server refuses, so the alert arrives on the first read, while waiting
// for the response.
func TestHTTPClientCertificateMissing(t *testing.T) {
	for _, tc := range []struct {
		version uint16
		phase   taxonomy.Phase
	}{
		{tls.VersionTLS12, taxonomy.PhaseTLS},
		{tls.VersionTLS13, taxonomy.PhaseProcessing},
	} {
		t.Run(tlsfacts.VersionName(tc.version), func(t *testing.T) {
			ca := testcert.NewCA(t, testcert.Spec{})
			srv := probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{TLS: true, CA: ca, TLSConf: func(c *tls.Config) {
				c.ClientAuth = tls.RequireAndVerifyClientCert
				c.ClientCAs = ca.Pool()
				c.MaxVersion = tc.version
			}})
			m := newModule(t, func(h *config.HTTPProbe) { h.HTTPClientConfig.TLSConfig.CAFile = ca.File(t) })
			sink, err := probertest.Run(t, m, srv.URL)
			checkOutcome(t, err, failure{taxonomy.ClassTLS, taxonomy.ReasonHandshake, tc.phase})
			probertest.Metric(t, sink, 0, "probe_http_status_code")
		})
	}
}

func TestHTTPClientCertificateRequiredAndVerified(t *testing.T) {
	// The server trusts the CA that issued the client certificate only.
	ca := testcert.NewCA(t, testcert.Spec{})
	client := ca.Issue(t, testcert.Spec{Subject: pkix.Name{CommonName: "sonde-client"}, Client: true})
	certFile, keyFile := client.WriteFiles(t, t.TempDir(), "client")
	srv := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}), probertest.ServerOpts{TLS: true, CA: ca, TLSConf: func(c *tls.Config) {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = ca.Pool()
	}})
	m := newModule(t, func(h *config.HTTPProbe) {
		h.HTTPClientConfig.TLSConfig.CAFile = ca.File(t)
		h.HTTPClientConfig.TLSConfig.CertFile = certFile
		h.HTTPClientConfig.TLSConfig.KeyFile = keyFile
		h.FailIfBodyNotMatchesRegexp = res("^sonde-client$")
	})
	sink, err := probertest.Run(t, m, srv.URL)
	checkOutcome(t, err, failure{})
	probertest.Metric(t, sink, float64(client.Leaf.NotAfter.Unix()), "probe_tls_client_cert_not_after_timestamp_seconds")
}

// The hostname parameter sets the Host header and the TLS server name.
func TestHTTPWithHostname(t *testing.T) {
	ca := testcert.NewCA(t, testcert.Spec{})
	var (
		mu       sync.Mutex
		sawSNI   string
		sawHost  string
		requests int
	)
	srv := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		requests++
		sawSNI, sawHost = r.TLS.ServerName, r.Host
	}), probertest.ServerOpts{TLS: true, CA: ca, Spec: new(testcert.Named("vhost.example"))})
	m := newModule(t, func(h *config.HTTPProbe) { h.HTTPClientConfig.TLSConfig.CAFile = ca.File(t) })

	// Without the parameter the IP target does not match the certificate.
	_, err := probertest.Run(t, m, srv.URL)
	checkOutcome(t, err, failure{taxonomy.ClassTLS, taxonomy.ReasonCertHostnameMismatch, taxonomy.PhaseTLS})

	hm, err := m.WithHostname("vhost.example")
	if err != nil {
		t.Fatal(err)
	}
	sink, err := probertest.Run(t, hm, srv.URL)
	checkOutcome(t, err, failure{})
	probertest.Metric(t, sink, 1, "probe_http_ssl")
	mu.Lock()
	defer mu.Unlock()
	if requests != 1 || sawSNI != "vhost.example" || sawHost != "vhost.example" {
		t.Errorf("server saw %d requests, SNI %q, Host %q; want 1, vhost.example, vhost.example", requests, sawSNI, sawHost)
	}
	// The original module is unchanged.
	if _, found := m.HTTP.HostHeader(); found {
		t.Errorf("WithHostname changed the module it was called on")
	}
}

func TestHTTPTLSMetrics(t *testing.T) {
	org := []string{"sonde tests"}
	ca := testcert.NewCA(t, testcert.Spec{Subject: pkix.Name{CommonName: "sonde metrics CA", Organization: org}})
	leaf := ca.Issue(t, testcert.Spec{
		Subject:     pkix.Name{CommonName: "metrics.example", Organization: org},
		DNSNames:    []string{"a.example", "b.example"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotAfter:    time.Now().Add(72 * time.Hour).Truncate(time.Second),
	})
	if !leaf.Leaf.NotAfter.Before(ca.Cert.NotAfter) {
		t.Fatal("the leaf must expire before its CA")
	}
	var (
		mu     sync.Mutex
		cipher uint16
	)
	srv := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		cipher = r.TLS.CipherSuite
		mu.Unlock()
	}), probertest.ServerOpts{TLS: true, Cert: new(leaf.TLSWithRoot())})
	m := newModule(t, func(h *config.HTTPProbe) { h.HTTPClientConfig.TLSConfig.CAFile = ca.File(t) })
	sink, err := probertest.Run(t, m, srv.URL)
	checkOutcome(t, err, failure{})

	expiry := float64(leaf.Leaf.NotAfter.Unix())
	probertest.Metric(t, sink, expiry, "probe_ssl_earliest_cert_expiry")
	probertest.Metric(t, sink, expiry, "probe_ssl_last_chain_expiry_timestamp_seconds")

	sum := sha256.Sum256(leaf.Leaf.Raw)
	serial := fmt.Sprintf("%x", leaf.Leaf.SerialNumber.Bytes()) // blackbox's form: leading zeros kept
	if !strings.HasPrefix(serial, "0") {
		t.Fatalf("serial %s should start with a zero nibble to test that it is kept", serial)
	}
	probertest.Metric(t, sink, 1, "probe_ssl_last_chain_info",
		hex.EncodeToString(sum[:]),
		"CN=metrics.example,O=sonde tests",
		"CN=sonde metrics CA,O=sonde tests",
		"a.example,b.example",
		serial,
	)
	probertest.Metric(t, sink, 1, "probe_tls_version_info", "TLS 1.3")
	mu.Lock()
	wantCipher := tls.CipherSuiteName(cipher)
	mu.Unlock()
	probertest.Metric(t, sink, 1, "probe_tls_cipher_info", wantCipher)
	// One series per family, but one per presented certificate (leaf and
	// CA) for the chain families: nothing left over from elsewhere.
	mfs, _ := sink.Gather()
	for _, mf := range mfs {
		want := 1
		if strings.HasPrefix(mf.GetName(), "probe_tls_cert_") {
			want = 2
		}
		if strings.HasPrefix(mf.GetName(), "probe_ssl_") || strings.HasPrefix(mf.GetName(), "probe_tls_") {
			if len(mf.GetMetric()) != want {
				t.Errorf("%s has %d series, want %d", mf.GetName(), len(mf.GetMetric()), want)
			}
		}
	}
	probertest.Metric(t, sink, 1, "probe_tls_verified")
}

// When the final response comes over plain http after an https redirect,
// the TLS metrics describe no handshake of the final response.
func TestHTTPTLSMetricsFollowFinalResponse(t *testing.T) {
	plain := probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{})
	ca := testcert.NewCA(t, testcert.Spec{})
	secure := probertest.NewServer(t, http.RedirectHandler(plain.URL, http.StatusFound), probertest.ServerOpts{TLS: true, CA: ca})
	m := newModule(t, func(h *config.HTTPProbe) { h.HTTPClientConfig.TLSConfig.CAFile = ca.File(t) })
	sink, err := probertest.Run(t, m, secure.URL)
	checkOutcome(t, err, failure{})
	probertest.Metric(t, sink, 0, "probe_http_ssl")
	probertest.Metric(t, sink, 1, "probe_http_redirects")
	probertest.Absent(t, sink, tlsFamilies...)
}
