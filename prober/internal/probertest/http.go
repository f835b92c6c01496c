package probertest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	pconfig "github.com/prometheus/common/config"
	"golang.org/x/crypto/ocsp"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
)

// Answer is a raw server's behaviour after reading one request.
func Answer(f func(c net.Conn)) func(c net.Conn) {
	return func(c net.Conn) {
		if err := ReadRequest(c); err != nil {
			return
		}
		f(c)
	}
}

func CEL(t *testing.T, expr string) *config.CELProgram {
	t.Helper()
	p, err := config.NewCELProgram(expr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var OAuth2WithCARef = pconfig.OAuth2{
	ClientID: "c", ClientSecret: "s", TokenURL: "http://127.0.0.1:1/token",
	TLSConfig: pconfig.TLSConfig{CARef: "vault-ca"},
}

// ocspResponder is an OCSP responder on loopback that counts the requests
// it answers with answer.
type ocspResponder struct {
	URL   string
	Asked atomic.Int32
}

func NewOCSPResponder(t *testing.T, answer func(w http.ResponseWriter)) *ocspResponder {
	t.Helper()
	r := &ocspResponder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if _, err := ocsp.ParseRequest(body); err != nil || req.Method != http.MethodPost ||
			req.Header.Get("Content-Type") != "application/ocsp-request" {
			t.Errorf("responder got a bad request: %s %s, %v", req.Method, req.Header.Get("Content-Type"), err)
		}
		r.Asked.Add(1)
		answer(w)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// Answers writes fixed bytes; the responder's answer for one certificate.
func Answers(raw []byte) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(raw)
	}
}

func OCSPPolicy(check string, mutate ...func(*config.OCSP)) config.OCSP {
	p := config.DefaultOCSP()
	p.Check = check
	for _, f := range mutate {
		f(&p)
	}
	return p
}

// CheckOCSPSeries asserts the one probe_tls_ocsp_status series (none when
// status is "") and the one probe_tls_ocsp_error series (none when problem
// is ""). A response that was read carries its update times.
func CheckOCSPSeries(t *testing.T, sink *probemetrics.Sink, status, problem string) {
	t.Helper()
	if status == "" {
		Absent(t, sink, "probe_tls_ocsp_status")
	} else {
		Metric(t, sink, 1, "probe_tls_ocsp_status", status)
		if n := SeriesCount(t, sink, "probe_tls_ocsp_status"); n != 1 {
			t.Errorf("probe_tls_ocsp_status has %d series, want 1", n)
		}
	}
	if problem == "" {
		Absent(t, sink, "probe_tls_ocsp_error")
		if status != "" {
			Present(t, sink, "probe_tls_ocsp_this_update_timestamp_seconds", "probe_tls_ocsp_next_update_timestamp_seconds")
		}
		return
	}
	Metric(t, sink, 1, "probe_tls_ocsp_error", problem)
	Absent(t, sink, "probe_tls_ocsp_this_update_timestamp_seconds")
}

// WithOCSP is the spec of a loopback server certificate that names url
// as its OCSP responder.
func WithOCSP(url string) testcert.Spec {
	spec := testcert.Loopback()
	spec.OCSPServer = []string{url}
	return spec
}

// SeriesCount counts the series of a family.
func SeriesCount(t *testing.T, sink *probemetrics.Sink, name string) int {
	t.Helper()
	mfs, err := sink.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}
