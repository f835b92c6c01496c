// Package probertest holds what the probers' tests share: a DNS server
// and its zone, HTTP, gRPC, websocket and raw servers on loopback, a test
// CA, the metric assertions, and the check of what test probes export
// against docs/metrics.md.
package probertest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// ---- the in-process DNS server ----

// testZone is what the test DNS server knows. Any other name is NXDOMAIN.
var testZone = map[string][]string{
	"v4only.test.": {"127.0.0.1"},
	"v6only.test.": {"::1"},
	"both.test.":   {"127.0.0.1", "::1"},
	// For the target policy: names that resolve into a denied range.
	"alias2.test.":   {"127.0.0.2"},
	"metadata.test.": {"169.254.169.254"},
	"nat64.test.":    {"64:ff9b::7f00:2"}, // 127.0.0.2 behind the NAT64 prefix
}

const (
	ServfailName = "servfail.test" // answered with SERVFAIL
	SilentName   = "silent.test"   // never answered
)

type zoneHandler struct{}

func (zoneHandler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	switch {
	case strings.HasPrefix(name, SilentName+"."):
		return
	case strings.HasPrefix(name, ServfailName+"."):
		m.Rcode = dns.RcodeServerFailure
	default:
		addrs, ok := testZone[name]
		if !ok {
			m.Rcode = dns.RcodeNameError
			break
		}
		for _, a := range addrs {
			ip := net.ParseIP(a)
			hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 60}
			switch {
			case ip.To4() != nil && q.Qtype == dns.TypeA:
				hdr.Rrtype = dns.TypeA
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: ip.To4()})
			case ip.To4() == nil && q.Qtype == dns.TypeAAAA:
				hdr.Rrtype = dns.TypeAAAA
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: ip})
			}
		}
	}
	_ = w.WriteMsg(m)
}

var (
	dnsOnce sync.Once
	DNSAddr string
	dnsErr  error
)

// TestResolver returns a Go resolver that asks only the in-process DNS
// server, whatever /etc/resolv.conf says. The server lives as long as the
// test binary.
func TestResolver(t *testing.T) *net.Resolver {
	t.Helper()
	dnsOnce.Do(func() {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			dnsErr = err
			return
		}
		started := make(chan struct{})
		srv := &dns.Server{PacketConn: pc, Handler: zoneHandler{}, NotifyStartedFunc: func() { close(started) }}
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		DNSAddr = pc.LocalAddr().String()
	})
	if dnsErr != nil {
		t.Fatalf("starting the test DNS server: %v", dnsErr)
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			if strings.HasPrefix(network, "tcp") {
				return nil, errors.New("the test DNS server speaks UDP only")
			}
			return d.DialContext(ctx, "udp4", DNSAddr)
		},
	}
}

// ---- modules and probes ----

var DiscardLogger = slog.New(slog.DiscardHandler)

// Probe runs one probe of target with module m under a deadline and
// returns its metrics, how long it took and its error.
func Probe(t *testing.T, m *core.Module, target string, timeout time.Duration) (*probemetrics.Sink, time.Duration, error) {
	t.Helper()
	f, ok := m.Func()
	if !ok {
		t.Fatalf("prober %q is not implemented", m.Prober)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	sink := probemetrics.NewSink()
	start := time.Now()
	err := f(ctx, target, m, sink, DiscardLogger)
	Observe(t, sink)
	return sink, time.Since(start), err
}

// Run is probe with a generous deadline, for probes that should not need it.
func Run(t *testing.T, m *core.Module, target string) (*probemetrics.Sink, error) {
	t.Helper()
	sink, _, err := Probe(t, m, target, 10*time.Second)
	return sink, err
}

// ---- assertions ----

// Metric asserts that a series exists with the given value.
func Metric(t *testing.T, sink *probemetrics.Sink, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := sink.Value(name, labels...)
	if !ok {
		t.Errorf("%s%v is missing; sink has %v", name, labels, FamilyNames(sink))
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// Value returns a series' value, failing the test when it is missing.
func Value(t *testing.T, sink *probemetrics.Sink, name string, labels ...string) float64 {
	t.Helper()
	v, ok := sink.Value(name, labels...)
	if !ok {
		t.Fatalf("%s%v is missing; sink has %v", name, labels, FamilyNames(sink))
	}
	return v
}

// Absent asserts that no series of the family is exported.
func Absent(t *testing.T, sink *probemetrics.Sink, names ...string) {
	t.Helper()
	have := FamilyNames(sink)
	for _, name := range names {
		for _, h := range have {
			if h == name {
				t.Errorf("%s is exported, want it absent", name)
			}
		}
	}
}

// Present asserts that every family is exported.
func Present(t *testing.T, sink *probemetrics.Sink, names ...string) {
	t.Helper()
	have := FamilyNames(sink)
	for _, name := range names {
		if !slices.Contains(have, name) {
			t.Errorf("%s is missing; sink has %v", name, have)
		}
	}
}

// ChainFamilies are sonde's families from any handshake that saw a
// certificate, verified or not.
var ChainFamilies = []string{
	"probe_tls_cert_info", "probe_tls_cert_not_after_timestamp_seconds", "probe_tls_cert_not_before_timestamp_seconds",
	"probe_tls_ocsp_stapled", "probe_tls_verified",
}

// ChainSurvived asserts that a handshake that failed verification still
// exported the presented chain, marked as not verified.
func ChainSurvived(t *testing.T, sink *probemetrics.Sink) {
	t.Helper()
	Present(t, sink, "probe_ssl_earliest_cert_expiry", "probe_ssl_last_chain_info", "probe_tls_version_info")
	Present(t, sink, ChainFamilies...)
	Metric(t, sink, 0, "probe_tls_verified")
}

// FamilyNames lists the families the sink would export.
func FamilyNames(sink *probemetrics.Sink) []string {
	mfs, _ := sink.Gather()
	names := make([]string, len(mfs))
	for i, mf := range mfs {
		names[i] = mf.GetName()
	}
	return names
}

func PhaseSeconds(t *testing.T, sink *probemetrics.Sink, phase taxonomy.Phase) float64 {
	t.Helper()
	return Value(t, sink, "probe_http_duration_seconds", string(phase))
}

// ---- servers ----

// ServerOpts shape a test HTTP server.
type ServerOpts struct {
	TLS     bool
	HTTP2   bool             // offer h2 by ALPN (TLS only)
	Cert    *tls.Certificate // what the server presents; issued by ca from spec when nil
	CA      *testcert.CA     // the issuing CA when cert is nil
	Spec    *testcert.Spec   // what to issue when cert is nil; testcert.Loopback() when nil
	Network string           // "tcp4" (default) or "tcp6"
	TLSConf func(*tls.Config)
}

// NewServer starts an httptest server on loopback with handler.
func NewServer(t *testing.T, handler http.Handler, o ServerOpts) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(handler)
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are what many tests are about
	if o.Network == "tcp6" {
		ln, err := net.Listen("tcp6", "[::1]:0")
		if err != nil {
			t.Skipf("cannot listen on [::1]: %v", err)
		}
		s.Listener.Close()
		s.Listener = ln
	}
	s.EnableHTTP2 = o.HTTP2
	if !o.TLS {
		s.Start()
		t.Cleanup(s.Close)
		return s
	}
	cert := o.Cert
	if cert == nil {
		ca := o.CA
		if ca == nil {
			ca = testcert.NewCA(t, testcert.Spec{})
		}
		spec := testcert.Loopback()
		if o.Spec != nil {
			spec = *o.Spec
		}
		cert = new(ca.Issue(t, spec).TLS())
	}
	s.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: []string{"http/1.1"}}
	if o.HTTP2 {
		s.TLS.NextProtos = []string{"h2", "http/1.1"}
	}
	if o.TLSConf != nil {
		o.TLSConf(s.TLS)
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// OKHandler is a handler that answers 200 with a short body.
var OKHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	fmt.Fprint(w, "ok")
})

// RawServer accepts TCP connections on 127.0.0.1 and hands each to handle,
// for peers that misbehave below HTTP. A connection is closed when its
// handler returns, and the handlers are awaited when the test ends.
func RawServer(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testkit.ServeConns(t, ln, handle)
	return ln.Addr().String()
}

// ReadRequest consumes one HTTP request from c.
func ReadRequest(c net.Conn) error {
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return err
	}
	return req.Body.Close()
}

// Port returns the port of a server URL or address.
func Port(t *testing.T, hostport string) string {
	t.Helper()
	hostport = strings.TrimPrefix(strings.TrimPrefix(hostport, "http://"), "https://")
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Hold blocks until the request is abandoned or the test's patience ends.
func Hold(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
	}
}
