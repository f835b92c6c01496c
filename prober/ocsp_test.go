package prober

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/ocsp"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// ocspEnv is a CA, a leaf naming responder (if any), and an https server
// presenting the leaf, stapling staple (if any).
type ocspEnv struct {
	ca   *testcert.CA
	leaf *testcert.Cert
	url  string
}

func newOCSPEnv(t *testing.T, responder string, staple func(t *testing.T, ca *testcert.CA, leaf *testcert.Cert) []byte) *ocspEnv {
	t.Helper()
	e := &ocspEnv{ca: testcert.NewCA(t, testcert.Spec{})}
	spec := testcert.Loopback()
	if responder != "" {
		spec.OCSPServer = []string{responder}
	}
	e.leaf = e.ca.Issue(t, spec)
	presented := e.leaf.TLS()
	if staple != nil {
		presented.OCSPStaple = staple(t, e.ca, e.leaf)
	}
	e.url = probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{TLS: true, Cert: &presented}).URL
	return e
}

func (e *ocspEnv) module(t *testing.T, policy config.OCSP) *core.Module {
	t.Helper()
	return defaultModule(t, "http", func(m *config.Module) {
		m.HTTP.HTTPClientConfig.TLSConfig.CAFile = e.ca.File(t)
		m.OCSP = policy
	})
}

func stapled(status int) func(t *testing.T, ca *testcert.CA, leaf *testcert.Cert) []byte {
	return func(t *testing.T, ca *testcert.CA, leaf *testcert.Cert) []byte {
		return ca.OCSPAnswer(t, leaf, status)
	}
}

func requireStapled(p *config.OCSP) { p.RequireStapled = true }
func failOnUnknown(p *config.OCSP)  { p.FailOnUnknown = true }

func TestOCSPStapled(t *testing.T) {
	garbage := func(*testing.T, *testcert.CA, *testcert.Cert) []byte { return []byte("not an OCSP response") }
	otherCA := func(t *testing.T, _ *testcert.CA, leaf *testcert.Cert) []byte {
		return testcert.NewCA(t, testcert.Spec{}).OCSPAnswer(t, leaf, xocsp.Good)
	}
	for _, tc := range []struct {
		name    string
		staple  func(*testing.T, *testcert.CA, *testcert.Cert) []byte
		policy  config.OCSP
		insec   bool
		want    failure
		status  string // the probe_tls_ocsp_status series; "" for none
		problem string // the probe_tls_ocsp_error reason; "" for none
		stapled float64
	}{
		{name: "good", staple: stapled(xocsp.Good), policy: probertest.OCSPPolicy(config.OCSPStapled), status: "good", stapled: 1},
		{name: "revoked", staple: stapled(xocsp.Revoked), policy: probertest.OCSPPolicy(config.OCSPStapled),
			want: failure{taxonomy.ClassTLS, taxonomy.ReasonCertRevoked, taxonomy.PhaseTLS}, status: "revoked", stapled: 1},
		{name: "unknown to the responder", staple: stapled(xocsp.Unknown), policy: probertest.OCSPPolicy(config.OCSPStapled), status: "unknown", stapled: 1},
		{name: "unknown fails with fail_on_unknown", staple: stapled(xocsp.Unknown), policy: probertest.OCSPPolicy(config.OCSPStapled, failOnUnknown),
			want: failure{taxonomy.ClassTLS, taxonomy.ReasonOCSPUnknown, taxonomy.PhaseTLS}, status: "unknown", stapled: 1},
		{name: "nothing stapled", policy: probertest.OCSPPolicy(config.OCSPStapled)},
		{name: "nothing stapled with require_stapled", policy: probertest.OCSPPolicy(config.OCSPStapled, requireStapled),
			want: failure{taxonomy.ClassTLS, taxonomy.ReasonOCSPNotStapled, taxonomy.PhaseTLS}},
		{name: "garbage stapled", staple: garbage, policy: probertest.OCSPPolicy(config.OCSPStapled), status: "unknown", problem: ocsp.Malformed, stapled: 1},
		{name: "signed by another CA", staple: otherCA, policy: probertest.OCSPPolicy(config.OCSPStapled), status: "unknown", problem: ocsp.Malformed, stapled: 1},
		{name: "garbage fails with fail_on_unknown", staple: garbage, policy: probertest.OCSPPolicy(config.OCSPStapled, failOnUnknown),
			want: failure{taxonomy.ClassTLS, taxonomy.ReasonOCSPUnknown, taxonomy.PhaseTLS}, status: "unknown", problem: ocsp.Malformed, stapled: 1},
		{name: "revoked but insecure_skip_verify", staple: stapled(xocsp.Revoked), policy: probertest.OCSPPolicy(config.OCSPStapled), insec: true,
			status: "revoked", stapled: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newOCSPEnv(t, "", tc.staple)
			m := defaultModule(t, "http", func(m *config.Module) {
				m.HTTP.HTTPClientConfig.TLSConfig.CAFile = e.ca.File(t)
				m.HTTP.HTTPClientConfig.TLSConfig.InsecureSkipVerify = tc.insec
				m.OCSP = tc.policy
			})
			sink, err := probertest.Run(t, m, e.url)
			checkOutcome(t, err, tc.want)
			probertest.Metric(t, sink, tc.stapled, "probe_tls_ocsp_stapled")
			probertest.CheckOCSPSeries(t, sink, tc.status, tc.problem)
			probertest.Absent(t, sink, "probe_tls_ocsp_duration_seconds") // nothing was asked
			if tc.status == "revoked" {
				// The answer was made a day after its revocation time, in
				// this test's last few seconds.
				at := probertest.Value(t, sink, "probe_tls_ocsp_revoked_at_timestamp_seconds")
				if ago := time.Since(time.Unix(int64(at), 0)) - 24*time.Hour; ago < 0 || ago > 5*time.Second {
					t.Errorf("probe_tls_ocsp_revoked_at_timestamp_seconds = %v, %v away from a day ago", at, ago)
				}
			}
		})
	}
}

// check: none reads nothing and exports nothing of OCSP.
func TestOCSPCheckNone(t *testing.T) {
	e := newOCSPEnv(t, "", stapled(xocsp.Revoked))
	sink, err := probertest.Run(t, e.module(t, probertest.OCSPPolicy(config.OCSPNone)), e.url)
	checkOutcome(t, err, failure{})
	probertest.Absent(t, sink, "probe_tls_ocsp_stapled", "probe_tls_ocsp_status")
}

func TestOCSPQuery(t *testing.T) {
	closed := "http://" + testkit.ClosedTCPAddr(t) + "/"
	for _, tc := range []struct {
		name    string
		answer  func(t *testing.T, ca *testcert.CA, leaf *testcert.Cert) func(http.ResponseWriter) // nil: the responder is down
		policy  config.OCSP
		want    failure
		status  string
		problem string
	}{
		{name: "good", answer: signed(xocsp.Good), policy: probertest.OCSPPolicy(config.OCSPQuery), status: "good"},
		{name: "revoked", answer: signed(xocsp.Revoked), policy: probertest.OCSPPolicy(config.OCSPQuery),
			want: failure{taxonomy.ClassTLS, taxonomy.ReasonCertRevoked, taxonomy.PhaseOCSP}, status: "revoked"},
		{name: "responder down", policy: probertest.OCSPPolicy(config.OCSPQuery), status: "unknown", problem: ocsp.Unreachable},
		{name: "responder down with fail_on_unknown", policy: probertest.OCSPPolicy(config.OCSPQuery, failOnUnknown),
			want: failure{taxonomy.ClassTLS, taxonomy.ReasonOCSPUnknown, taxonomy.PhaseOCSP}, status: "unknown", problem: ocsp.Unreachable},
		{name: "responder error", answer: httpError, policy: probertest.OCSPPolicy(config.OCSPQuery), status: "unknown", problem: ocsp.HTTPStatus},
		{name: "malformed answer", answer: func(*testing.T, *testcert.CA, *testcert.Cert) func(http.ResponseWriter) {
			return probertest.Answers([]byte{0x30, 0x03, 0x0a})
		},
			policy: probertest.OCSPPolicy(config.OCSPQuery), status: "unknown", problem: ocsp.Malformed},
		{name: "stapled: the responder is not asked", answer: signed(xocsp.Revoked), policy: probertest.OCSPPolicy(config.OCSPStapled)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := testcert.NewCA(t, testcert.Spec{})
			url, asked := closed, func() int32 { return 0 }
			var leaf *testcert.Cert
			if tc.answer != nil {
				var answer func(http.ResponseWriter)
				r := probertest.NewOCSPResponder(t, func(w http.ResponseWriter) { answer(w) })
				url, asked = r.URL, r.Asked.Load
				leaf = ca.Issue(t, probertest.WithOCSP(r.URL))
				answer = tc.answer(t, ca, leaf)
			} else {
				leaf = ca.Issue(t, probertest.WithOCSP(url))
			}
			srv := probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{TLS: true, Cert: new(leaf.TLS())})
			e := &ocspEnv{ca: ca, leaf: leaf, url: srv.URL}
			sink, err := probertest.Run(t, e.module(t, tc.policy), e.url)
			checkOutcome(t, err, tc.want)
			probertest.CheckOCSPSeries(t, sink, tc.status, tc.problem)
			if tc.policy.Check == config.OCSPStapled {
				if n := asked(); n != 0 {
					t.Errorf("the responder was asked %d times with check: stapled", n)
				}
				return
			}
			probertest.Metric(t, sink, 0, "probe_tls_ocsp_stapled")
			probertest.Present(t, sink, "probe_tls_ocsp_duration_seconds")
		})
	}
}

func signed(status int) func(t *testing.T, ca *testcert.CA, leaf *testcert.Cert) func(http.ResponseWriter) {
	return func(t *testing.T, ca *testcert.CA, leaf *testcert.Cert) func(http.ResponseWriter) {
		return probertest.Answers(ca.OCSPAnswer(t, leaf, status))
	}
}

func httpError(*testing.T, *testcert.CA, *testcert.Cert) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) { http.Error(w, "responder is sick", http.StatusInternalServerError) }
}

// A stapled answer is preferred: with check: query, the responder is
// asked only when nothing was stapled.
func TestOCSPQueryPrefersStaple(t *testing.T) {
	r := probertest.NewOCSPResponder(t, probertest.Answers(nil))
	e := newOCSPEnv(t, r.URL, stapled(xocsp.Good))
	sink, err := probertest.Run(t, e.module(t, probertest.OCSPPolicy(config.OCSPQuery)), e.url)
	checkOutcome(t, err, failure{})
	probertest.Metric(t, sink, 1, "probe_tls_ocsp_stapled")
	probertest.Metric(t, sink, 1, "probe_tls_ocsp_status", "good")
	if n := r.Asked.Load(); n != 0 {
		t.Errorf("the responder was asked %d times despite the staple", n)
	}
}

// A leaf that names no responder leaves the status unknown, and says why.
func TestOCSPQueryNoResponder(t *testing.T) {
	e := newOCSPEnv(t, "", nil)
	sink, err := probertest.Run(t, e.module(t, probertest.OCSPPolicy(config.OCSPQuery)), e.url)
	checkOutcome(t, err, failure{})
	probertest.CheckOCSPSeries(t, sink, "unknown", ocsp.NoResponder)
}

// The module's probes share one answer: sequential probes hit the cache,
// concurrent ones the request in flight. The responder is asked once.
func TestOCSPQueryCached(t *testing.T) {
	var answer []byte
	var gate sync.WaitGroup
	gate.Add(1)
	r := probertest.NewOCSPResponder(t, func(w http.ResponseWriter) {
		gate.Wait() // hold the first request until every probe is waiting
		probertest.Answers(answer)(w)
	})
	e := newOCSPEnv(t, r.URL, nil)
	answer = e.ca.OCSPAnswer(t, e.leaf, xocsp.Good)
	m := e.module(t, probertest.OCSPPolicy(config.OCSPQuery))

	const concurrent = 20
	var wg sync.WaitGroup
	errs := make(chan error, concurrent)
	for range concurrent {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sink, err := probertest.Run(t, m, e.url)
			if err == nil {
				if v, ok := sink.Value("probe_tls_ocsp_status", "good"); !ok || v != 1 {
					t.Errorf("a concurrent probe did not learn the status: %v %v", v, ok)
				}
			}
			errs <- err
		}()
	}
	time.Sleep(200 * time.Millisecond) // let the probes reach the responder
	gate.Done()
	wg.Wait()
	close(errs)
	for err := range errs {
		checkOutcome(t, err, failure{})
	}
	for range 5 {
		sink, err := probertest.Run(t, m, e.url)
		checkOutcome(t, err, failure{})
		probertest.Metric(t, sink, 1, "probe_tls_ocsp_status", "good")
	}
	if n := r.Asked.Load(); n != 1 {
		t.Errorf("the responder was asked %d times, want once", n)
	}
	// Another module keeps its own cache.
	if _, err := probertest.Run(t, e.module(t, probertest.OCSPPolicy(config.OCSPQuery)), e.url); err != nil {
		t.Fatal(err)
	}
	if n := r.Asked.Load(); n != 2 {
		t.Errorf("after a second module's probe the responder was asked %d times, want twice", n)
	}
}

// Answers are kept no longer than cache_ttl, and failures not at all.
func TestOCSPQueryCacheExpiry(t *testing.T) {
	var fail atomic.Bool
	var answer []byte
	r := probertest.NewOCSPResponder(t, func(w http.ResponseWriter) {
		if fail.Load() {
			httpError(nil, nil, nil)(w)
			return
		}
		probertest.Answers(answer)(w)
	})
	e := newOCSPEnv(t, r.URL, nil)
	answer = e.ca.OCSPAnswer(t, e.leaf, xocsp.Good)
	m := e.module(t, probertest.OCSPPolicy(config.OCSPQuery, func(p *config.OCSP) { p.CacheTTL = 50 * time.Millisecond }))

	fail.Store(true)
	for range 2 {
		sink, err := probertest.Run(t, m, e.url)
		checkOutcome(t, err, failure{})
		probertest.Metric(t, sink, 1, "probe_tls_ocsp_error", ocsp.HTTPStatus)
	}
	fail.Store(false)
	for range 2 {
		if _, err := probertest.Run(t, m, e.url); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.Asked.Load(); n != 3 {
		t.Fatalf("the responder was asked %d times, want 3: two failures, then one answer cached", n)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := probertest.Run(t, m, e.url); err != nil {
		t.Fatal(err)
	}
	if n := r.Asked.Load(); n != 4 {
		t.Errorf("after cache_ttl the responder was asked %d times in all, want 4", n)
	}
}

// A responder that never answers gets half of the probe's deadline; the
// status is then unknown, and the probe fails only with fail_on_unknown.
func TestOCSPQuerySlowResponder(t *testing.T) {
	release := make(chan struct{})
	r := probertest.NewOCSPResponder(t, func(http.ResponseWriter) { <-release })
	t.Cleanup(func() { close(release) })
	e := newOCSPEnv(t, r.URL, nil)

	sink, _, err := probertest.Probe(t, e.module(t, probertest.OCSPPolicy(config.OCSPQuery)), e.url, time.Second)
	checkOutcome(t, err, failure{})
	probertest.CheckOCSPSeries(t, sink, "unknown", ocsp.Timeout)

	_, _, err = probertest.Probe(t, e.module(t, probertest.OCSPPolicy(config.OCSPQuery, failOnUnknown)), e.url, time.Second)
	checkOutcome(t, err, failure{taxonomy.ClassTLS, taxonomy.ReasonOCSPUnknown, taxonomy.PhaseOCSP})
}

// The OCSP checks are the same on every prober that speaks TLS: here tcp,
// with a revoked certificate that only the responder knows about.
func TestOCSPQueryOnTCP(t *testing.T) {
	var answer []byte
	r := probertest.NewOCSPResponder(t, func(w http.ResponseWriter) { probertest.Answers(answer)(w) })
	ca := testcert.NewCA(t, testcert.Spec{})
	leaf := ca.Issue(t, probertest.WithOCSP(r.URL))
	answer = ca.OCSPAnswer(t, leaf, xocsp.Revoked)
	addr := probertest.RawServer(t, func(c net.Conn) {
		tls.Server(c, &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}}).Handshake()
	})
	m := defaultModule(t, "tcp", func(m *config.Module) {
		m.TCP.TLS = true
		m.TCP.TLSConfig.CAFile = ca.File(t)
		m.OCSP = probertest.OCSPPolicy(config.OCSPQuery)
	})
	sink, err := probertest.Run(t, m, addr)
	checkOutcome(t, err, failure{taxonomy.ClassTLS, taxonomy.ReasonCertRevoked, taxonomy.PhaseOCSP})
	probertest.Metric(t, sink, 1, "probe_tls_ocsp_status", "revoked")
	probertest.Metric(t, sink, 1, "probe_tls_verified")
}

// The responder is named by the target's own certificate, so the module's
// target policy applies to it: a denied responder is never contacted.
func TestOCSPResponderObeysTargetPolicy(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	var asked atomic.Int32
	responder := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { asked.Add(1) }))
	responder.Listener.Close()
	responder.Listener = ln
	responder.Start()
	t.Cleanup(responder.Close)
	e := newOCSPEnv(t, responder.URL, nil)
	for _, tc := range []struct {
		name   string
		policy config.OCSP
		want   failure
	}{
		{"status unknown", probertest.OCSPPolicy(config.OCSPQuery), failure{}},
		{"fails with fail_on_unknown", probertest.OCSPPolicy(config.OCSPQuery, failOnUnknown), failure{taxonomy.ClassTLS, taxonomy.ReasonOCSPUnknown, taxonomy.PhaseOCSP}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := defaultModule(t, "http", func(m *config.Module) {
				m.HTTP.HTTPClientConfig.TLSConfig.CAFile = e.ca.File(t)
				m.OCSP = tc.policy
				m.Targets.Deny = []string{"127.0.0.2/32"}
			})
			sink, err := probertest.Run(t, m, e.url)
			checkOutcome(t, err, tc.want)
			probertest.CheckOCSPSeries(t, sink, "unknown", ocsp.Denied)
		})
	}
	if n := asked.Load(); n != 0 {
		t.Errorf("the denied responder was asked %d times", n)
	}
}
