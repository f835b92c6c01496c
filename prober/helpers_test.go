package prober

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

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"

	"github.com/sonde-exporter/sonde/prober/core"
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
	servfailName = "servfail.test" // answered with SERVFAIL
	silentName   = "silent.test"   // never answered
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
	case strings.HasPrefix(name, silentName+"."):
		return
	case strings.HasPrefix(name, servfailName+"."):
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
	dnsAddr string
	dnsErr  error
)

// testResolver returns a Go resolver that asks only the in-process DNS
// server, whatever /etc/resolv.conf says. The server lives as long as the
// test binary.
func testResolver(t *testing.T) *net.Resolver {
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
		dnsAddr = pc.LocalAddr().String()
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
			return d.DialContext(ctx, "udp4", dnsAddr)
		},
	}
}

// ---- modules and probes ----

var discardLogger = slog.New(slog.DiscardHandler)

// defaultModule prepares a module of prober with blackbox's defaults,
// changed by mutate, that resolves names with the test DNS server.
func defaultModule(t *testing.T, prober string, mutate func(m *config.Module)) *core.Module {
	t.Helper()
	cm := config.DefaultModule()
	cm.Prober = prober
	if mutate != nil {
		mutate(&cm)
	}
	m, err := NewModule("test", cm, core.WithResolver(testResolver(t)))
	if err != nil {
		t.Fatalf("NewModule: %v", err)
	}
	return m
}

// newModule is defaultModule for the http prober.
func newModule(t *testing.T, mutate func(h *config.HTTPProbe)) *core.Module {
	t.Helper()
	return defaultModule(t, "http", func(m *config.Module) {
		if mutate != nil {
			mutate(&m.HTTP)
		}
	})
}

// loadSection loads a module of prober the way the exporter does, from
// its section of a configuration file, so that the schema's defaults,
// normalisations (bearer_token into authorization, ...) and rules apply.
// Names resolve with the test DNS server.
func loadSection(t *testing.T, prober, section string) (*core.Module, error) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "modules:\n  test:\n    prober: %s\n    %s:\n", prober, prober)
	for _, line := range strings.Split(strings.Trim(section, "\n"), "\n") {
		b.WriteString("      " + line + "\n")
	}
	cfg, err := config.Load([]byte(b.String()))
	if err != nil {
		return nil, fmt.Errorf("config.Load:\n%s\n%w", b.String(), err)
	}
	return NewModule("test", cfg.Modules["test"], core.WithResolver(testResolver(t)))
}

// sectionModule is loadSection for sections that must load.
func sectionModule(t *testing.T, prober, section string) *core.Module {
	t.Helper()
	m, err := loadSection(t, prober, section)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// yamlModule loads an http module from its `http:` section.
func yamlModule(t *testing.T, httpSection string) *core.Module {
	t.Helper()
	return sectionModule(t, "http", httpSection)
}

// probe runs one probe of target with module m under a deadline and
// returns its metrics, how long it took and its error.
func probe(t *testing.T, m *core.Module, target string, timeout time.Duration) (*probemetrics.Sink, time.Duration, error) {
	t.Helper()
	f, ok := m.Func()
	if !ok {
		t.Fatalf("prober %q is not implemented", m.Prober)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	sink := probemetrics.NewSink()
	start := time.Now()
	err := f(ctx, target, m, sink, discardLogger)
	observe(t, sink)
	return sink, time.Since(start), err
}

// run is probe with a generous deadline, for probes that should not need it.
func run(t *testing.T, m *core.Module, target string) (*probemetrics.Sink, error) {
	t.Helper()
	sink, _, err := probe(t, m, target, 10*time.Second)
	return sink, err
}

// ---- assertions ----

// failure names the labels a failed probe must carry; the zero value means
// the probe must succeed.
type failure struct {
	class  taxonomy.Class
	reason taxonomy.Reason
	phase  taxonomy.Phase
}

func (f failure) String() string {
	if f == (failure{}) {
		return "success"
	}
	return fmt.Sprintf("%s/%s in phase %s", f.class, f.reason, f.phase)
}

// checkOutcome asserts probe_success semantics (nil error = success) and,
// for a failure, the exact class, reason and phase. It returns the *Error.
func checkOutcome(t *testing.T, err error, want failure) *taxonomy.Error {
	t.Helper()
	if want == (failure{}) {
		if err != nil {
			t.Fatalf("probe failed, want success: %v", err)
		}
		return nil
	}
	if err == nil {
		t.Fatalf("probe succeeded, want %s", want)
	}
	var perr *taxonomy.Error
	if !errors.As(err, &perr) {
		t.Fatalf("error %v (%T) is not a *prober.Error", err, err)
	}
	got := failure{perr.Class, perr.Reason, perr.Phase}
	if got != want {
		t.Fatalf("failure = %s, want %s; error: %v", got, want, err)
	}
	return perr
}

// metric asserts that a series exists with the given value.
func metric(t *testing.T, sink *probemetrics.Sink, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := sink.Value(name, labels...)
	if !ok {
		t.Errorf("%s%v is missing; sink has %v", name, labels, familyNames(sink))
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// value returns a series' value, failing the test when it is missing.
func value(t *testing.T, sink *probemetrics.Sink, name string, labels ...string) float64 {
	t.Helper()
	v, ok := sink.Value(name, labels...)
	if !ok {
		t.Fatalf("%s%v is missing; sink has %v", name, labels, familyNames(sink))
	}
	return v
}

// absent asserts that no series of the family is exported.
func absent(t *testing.T, sink *probemetrics.Sink, names ...string) {
	t.Helper()
	have := familyNames(sink)
	for _, name := range names {
		for _, h := range have {
			if h == name {
				t.Errorf("%s is exported, want it absent", name)
			}
		}
	}
}

// present asserts that every family is exported.
func present(t *testing.T, sink *probemetrics.Sink, names ...string) {
	t.Helper()
	have := familyNames(sink)
	for _, name := range names {
		if !slices.Contains(have, name) {
			t.Errorf("%s is missing; sink has %v", name, have)
		}
	}
}

// chainFamilies are sonde's families from any handshake that saw a
// certificate, verified or not.
var chainFamilies = []string{
	"probe_tls_cert_info", "probe_tls_cert_not_after_timestamp_seconds", "probe_tls_cert_not_before_timestamp_seconds",
	"probe_tls_ocsp_stapled", "probe_tls_verified",
}

// chainSurvived asserts that a handshake that failed verification still
// exported the presented chain, marked as not verified.
func chainSurvived(t *testing.T, sink *probemetrics.Sink) {
	t.Helper()
	present(t, sink, "probe_ssl_earliest_cert_expiry", "probe_ssl_last_chain_info", "probe_tls_version_info")
	present(t, sink, chainFamilies...)
	metric(t, sink, 0, "probe_tls_verified")
}

// familyNames lists the families the sink would export.
func familyNames(sink *probemetrics.Sink) []string {
	mfs, _ := sink.Gather()
	names := make([]string, len(mfs))
	for i, mf := range mfs {
		names[i] = mf.GetName()
	}
	return names
}

func phaseSeconds(t *testing.T, sink *probemetrics.Sink, phase taxonomy.Phase) float64 {
	t.Helper()
	return value(t, sink, "probe_http_duration_seconds", string(phase))
}

// ---- servers ----

// serverOpts shape a test HTTP server.
type serverOpts struct {
	tls     bool
	http2   bool      // offer h2 by ALPN (TLS only)
	cert    *issued   // the server certificate; issued by ca from spec when nil
	ca      *testCA   // the issuing CA when cert is nil
	spec    *leafSpec // what to issue when cert is nil; localhostSpec() when nil
	network string    // "tcp4" (default) or "tcp6"
	tlsConf func(*tls.Config)
}

// newServer starts an httptest server on loopback with handler.
func newServer(t *testing.T, handler http.Handler, o serverOpts) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(handler)
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are what many tests are about
	if o.network == "tcp6" {
		ln, err := net.Listen("tcp6", "[::1]:0")
		if err != nil {
			t.Skipf("cannot listen on [::1]: %v", err)
		}
		s.Listener.Close()
		s.Listener = ln
	}
	s.EnableHTTP2 = o.http2
	if !o.tls {
		s.Start()
		t.Cleanup(s.Close)
		return s
	}
	cert := o.cert
	if cert == nil {
		ca := o.ca
		if ca == nil {
			ca = newTestCA(t, "sonde test CA")
		}
		spec := localhostSpec()
		if o.spec != nil {
			spec = *o.spec
		}
		c := ca.issue(t, spec)
		cert = &c
	}
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert.tls}, NextProtos: []string{"http/1.1"}}
	if o.http2 {
		s.TLS.NextProtos = []string{"h2", "http/1.1"}
	}
	if o.tlsConf != nil {
		o.tlsConf(s.TLS)
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// okHandler is a handler that answers 200 with a short body.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	fmt.Fprint(w, "ok")
})

// rawServer accepts TCP connections on 127.0.0.1 and hands each to handle,
// for peers that misbehave below HTTP. A connection is closed when its
// handler returns, and the handlers are awaited when the test ends.
func rawServer(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testkit.ServeConns(t, ln, handle)
	return ln.Addr().String()
}

// readRequest consumes one HTTP request from c.
func readRequest(c net.Conn) error {
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return err
	}
	return req.Body.Close()
}

// closedPort returns a loopback address nobody listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// port returns the port of a server URL or address.
func port(t *testing.T, hostport string) string {
	t.Helper()
	hostport = strings.TrimPrefix(strings.TrimPrefix(hostport, "http://"), "https://")
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// hold blocks until the request is abandoned or the test's patience ends.
func hold(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
	}
}
