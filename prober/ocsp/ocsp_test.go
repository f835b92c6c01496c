package ocsp

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/policy"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// issued is a leaf and its issuer, as a handshake shows them.
type issued struct {
	ca   *testcert.CA
	leaf *x509.Certificate
}

func issue(t *testing.T, responders ...string) issued {
	t.Helper()
	ca := testcert.NewCA(t, testcert.Spec{})
	spec := testcert.Loopback()
	spec.OCSPServer = responders
	return issued{ca: ca, leaf: ca.Issue(t, spec).Leaf}
}

// answer is an OCSP response of status for the leaf, signed by its issuer.
func (i issued) answer(t *testing.T, status int) []byte {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	tmpl := xocsp.Response{Status: status, SerialNumber: i.leaf.SerialNumber, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}
	if status == xocsp.Revoked {
		tmpl.RevokedAt = now.Add(-time.Hour)
	}
	raw, err := xocsp.CreateResponse(i.ca.Cert, i.ca.Cert, tmpl, i.ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// reason is the reason of err, a *taxonomy.Error, or "" for nil.
func reason(t *testing.T, err error) taxonomy.Reason {
	t.Helper()
	if err == nil {
		return ""
	}
	var perr *taxonomy.Error
	if !errors.As(err, &perr) {
		t.Fatalf("%v (%T) is not a *taxonomy.Error", err, err)
	}
	return perr.Reason
}

// status is the probe_tls_ocsp_status r exports, "" for none.
func status(r Result) string {
	sink := probemetrics.NewSink()
	r.Record(sink)
	for _, s := range []string{"good", "revoked", "unknown"} {
		if _, ok := sink.Value("probe_tls_ocsp_status", s); ok {
			return s
		}
	}
	return ""
}

func TestCheckStapled(t *testing.T) {
	leaf := issue(t)
	good, revoked := leaf.answer(t, xocsp.Good), leaf.answer(t, xocsp.Revoked)
	for _, tc := range []struct {
		name    string
		policy  config.OCSP
		raw     []byte
		issuer  *x509.Certificate
		enforce bool
		want    taxonomy.Reason
		status  string
	}{
		{name: "good", policy: config.OCSP{Check: config.OCSPStapled}, raw: good, issuer: leaf.ca.Cert, enforce: true, status: "good"},
		{name: "revoked", policy: config.OCSP{Check: config.OCSPStapled}, raw: revoked, issuer: leaf.ca.Cert, enforce: true, want: taxonomy.ReasonCertRevoked, status: "revoked"},
		{name: "revoked, not enforced", policy: config.OCSP{Check: config.OCSPStapled}, raw: revoked, issuer: leaf.ca.Cert, status: "revoked"},
		{name: "garbage", policy: config.OCSP{Check: config.OCSPStapled}, raw: []byte("garbage"), issuer: leaf.ca.Cert, enforce: true, status: "unknown"},
		{name: "garbage, fail_on_unknown", policy: config.OCSP{Check: config.OCSPStapled, FailOnUnknown: true}, raw: []byte("garbage"), issuer: leaf.ca.Cert, enforce: true, want: taxonomy.ReasonOCSPUnknown, status: "unknown"},
		{name: "issuer unknown", policy: config.OCSP{Check: config.OCSPStapled}, raw: good, enforce: true, status: "unknown"},
		{name: "nothing stapled", policy: config.OCSP{Check: config.OCSPStapled}, issuer: leaf.ca.Cert, enforce: true},
		{name: "nothing stapled, require_stapled", policy: config.OCSP{Check: config.OCSPStapled, RequireStapled: true}, issuer: leaf.ca.Cert, enforce: true, want: taxonomy.ReasonOCSPNotStapled},
		{name: "nothing stapled, query", policy: config.OCSP{Check: config.OCSPQuery, FailOnUnknown: true}, issuer: leaf.ca.Cert, enforce: true},
		{name: "check none", policy: config.OCSP{Check: config.OCSPNone}, raw: revoked, issuer: leaf.ca.Cert, enforce: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewClient(tc.policy).CheckStapled(tc.raw, leaf.leaf, tc.issuer, tc.enforce)
			if got := reason(t, err); got != tc.want {
				t.Errorf("failure %q (%v), want %q", got, err, tc.want)
			}
			if got := status(r); got != tc.status {
				t.Errorf("status %q, want %q", got, tc.status)
			}
		})
	}
}

func TestQueries(t *testing.T) {
	leaf := issue(t)
	stapled, _ := NewClient(config.OCSP{Check: config.OCSPQuery}).CheckStapled(leaf.answer(t, xocsp.Good), leaf.leaf, leaf.ca.Cert, true)
	for _, tc := range []struct {
		name  string
		check string
		r     Result
		want  bool
	}{
		{"query, nothing stapled", config.OCSPQuery, Result{checked: true}, true},
		{"query, stapled", config.OCSPQuery, stapled, false},
		{"stapled only", config.OCSPStapled, Result{checked: true}, false},
		{"none", config.OCSPNone, Result{}, false},
	} {
		if got := NewClient(config.OCSP{Check: tc.check}).Queries(tc.r); got != tc.want {
			t.Errorf("%s: Queries = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The responder is asked once for as long as its answer is fresh, however
// many probes want it.
func TestCheckQueriedCaches(t *testing.T) {
	var asked atomic.Int32
	var leaf issued
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		io.Copy(io.Discard, r.Body)
		w.Write(leaf.answer(t, xocsp.Good))
	}))
	defer srv.Close()
	leaf = issue(t, srv.URL)
	c := NewClient(config.OCSP{Check: config.OCSPQuery, CacheTTL: time.Hour})
	for range 3 {
		r, err := c.CheckQueried(context.Background(), leaf.leaf, leaf.ca.Cert, true)
		if err != nil || status(r) != "good" {
			t.Fatalf("CheckQueried = %q, %v; want good", status(r), err)
		}
		if start, end := r.Asked(); start.IsZero() || end.Before(start) {
			t.Errorf("asked from %v to %v", start, end)
		}
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("the responder was asked %d times, want once", n)
	}
}

func TestCheckQueriedProblems(t *testing.T) {
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer failing.Close()
	loopback, err := policy.New("m", &config.Module{Prober: "http", Targets: config.Targets{Deny: []string{"127.0.0.0/8"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		responders []string
		targets    *policy.Target
		problem    string
	}{
		{"no responder", nil, nil, NoResponder},
		{"http error", []string{failing.URL}, nil, HTTPStatus},
		{"unreachable", []string{"http://" + testkit.ClosedTCPAddr(t)}, nil, Unreachable},
		{"denied by the target policy", []string{failing.URL}, loopback, Denied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf := issue(t, tc.responders...)
			c := NewClient(config.OCSP{Check: config.OCSPQuery, FailOnUnknown: true})
			c.Targets = tc.targets
			r, err := c.CheckQueried(context.Background(), leaf.leaf, leaf.ca.Cert, true)
			if got := reason(t, err); got != taxonomy.ReasonOCSPUnknown {
				t.Errorf("failure %q (%v), want %q", got, err, taxonomy.ReasonOCSPUnknown)
			}
			sink := probemetrics.NewSink()
			r.Record(sink)
			if _, ok := sink.Value("probe_tls_ocsp_error", tc.problem); !ok {
				t.Errorf("probe_tls_ocsp_error{reason=%q} is missing", tc.problem)
			}
		})
	}
}
