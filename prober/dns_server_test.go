package prober

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
)

// ---- the zone the test DNS server answers from ----

// Names the test DNS server treats specially. Any other name is NXDOMAIN.
const (
	dnsZoneName    = "example.test."  // records of every section, by type
	dnsNXName      = "nx.test."       // NXDOMAIN, with the zone's SOA in the authority section
	dnsServfail    = "servfail.test." // SERVFAIL
	dnsBigName     = "big.test."      // truncated (TC) over UDP, whole over TCP
	dnsSilentName  = "silent.test."   // never answered
	dnsGarbageName = "garbage.test."  // an answer cut short, so it does not parse
	dnsErrorName   = "error.test."    // DoH answers 500
	dnsChaosName   = "version.bind."  // a TXT record in class CH; REFUSED in other classes
)

// dnsAnswers are the answer records of dnsZoneName by query type; ANY gets
// all of them.
var dnsAnswers = map[uint16][]string{
	dns.TypeA:    {"example.test.\t300\tIN\tA\t192.0.2.1", "example.test.\t300\tIN\tA\t192.0.2.2"},
	dns.TypeAAAA: {"example.test.\t300\tIN\tAAAA\t2001:db8::1"},
	dns.TypeMX:   {"example.test.\t300\tIN\tMX\t10 mx1.example.test.", "example.test.\t300\tIN\tMX\t20 mx2.example.test."},
	dns.TypeSOA:  {dnsSOA},
}

const dnsSOA = "example.test.\t300\tIN\tSOA\tns1.example.test. hostmaster.example.test. 2024051501 7200 3600 1209600 300"

var (
	dnsAuthority  = []string{"example.test.\t300\tIN\tNS\tns1.example.test."}
	dnsAdditional = []string{"ns1.example.test.\t300\tIN\tA\t192.0.2.53"}
)

// dnsAnswerCount is how many answer records a query of qtype gets.
func dnsAnswerCount(qtype uint16) int {
	if qtype != dns.TypeANY {
		return len(dnsAnswers[qtype])
	}
	n := 0
	for _, rrs := range dnsAnswers {
		n += len(rrs)
	}
	return n
}

// dnsSerial is the serial of the zone's SOA record.
func dnsSerial() float64 {
	return float64(mustRRs(dnsSOA)[0].(*dns.SOA).Serial)
}

// mustRRs parses records of the test zone. It panics, since the server's
// goroutines call it and the texts are constants of this file.
func mustRRs(texts ...string) []dns.RR {
	rrs := make([]dns.RR, len(texts))
	for i, s := range texts {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(fmt.Sprintf("test record %q: %v", s, err))
		}
		rrs[i] = rr
	}
	return rrs
}

// dnsReply is the server's answer to req arriving via a transport ("udp",
// "tcp", "dot", "doh"), packed; nil means no answer.
func dnsReply(req *dns.Msg, via string) []byte {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return packDNS(m)
	}
	q := req.Question[0]
	switch strings.ToLower(q.Name) {
	case dnsSilentName:
		return nil
	case dnsServfail:
		m.Rcode = dns.RcodeServerFailure
	case dnsNXName:
		m.Rcode = dns.RcodeNameError
		m.Ns = mustRRs(dnsSOA)
	case dnsBigName:
		if via == "udp" {
			m.Truncated = true
			break
		}
		m.Answer = mustRRs(dnsAnswers[dns.TypeA]...)
	case dnsChaosName:
		if q.Qclass != dns.ClassCHAOS {
			m.Rcode = dns.RcodeRefused
			break
		}
		m.Answer = mustRRs(`version.bind. 0 CH TXT "sonde-test"`)
	case dnsGarbageName:
		m.Answer = mustRRs(dnsAnswers[dns.TypeA]...)
		out := packDNS(m)
		return out[:len(out)-3] // the header promises records that are cut off
	case dnsZoneName:
		m.Answer = mustRRs(zoneAnswers(q.Qtype)...)
		m.Ns = mustRRs(dnsAuthority...)
		m.Extra = mustRRs(dnsAdditional...)
	default:
		m.Rcode = dns.RcodeNameError
	}
	return packDNS(m)
}

func zoneAnswers(qtype uint16) []string {
	if qtype != dns.TypeANY {
		return dnsAnswers[qtype]
	}
	var all []string
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeSOA} {
		all = append(all, dnsAnswers[qt]...)
	}
	return all
}

func packDNS(m *dns.Msg) []byte {
	out, err := m.Pack()
	if err != nil {
		panic(fmt.Sprintf("packing the test answer: %v", err))
	}
	return out
}

// ---- the server ----

// dnsSeen is a query as the test server received it.
type dnsSeen struct {
	via    string // udp, tcp, dot, doh
	remote net.IP
	msg    *dns.Msg
	req    *http.Request // DoH only
}

// dnsTestServer answers from the test zone over UDP and TCP (one port),
// DNS over TLS and DNS over HTTPS (h2 and HTTP/1.1, and HTTP/1.1 only), on
// one loopback address, and records every query it receives.
type dnsTestServer struct {
	addr  string // host:port of UDP and TCP
	dot   string // host:port of DNS over TLS
	doh   string // https URL of DNS over HTTPS, path /dns-query
	doh1  string // the same, from a server without HTTP/2
	ca    *probertest.TestCA
	mu    sync.Mutex
	seen  []dnsSeen
	close []func()
}

// newDNSTestServer starts the servers on host ("127.0.0.1" or "::1"). It
// skips the test when host cannot be listened on, which only happens for
// IPv6.
func newDNSTestServer(t *testing.T, host string) *dnsTestServer {
	t.Helper()
	s := &dnsTestServer{ca: probertest.NewTestCA(t, "sonde DNS test CA")}
	t.Cleanup(func() {
		for _, f := range s.close {
			f()
		}
	})
	pc, ln := listenUDPAndTCP(t, host)
	s.addr = pc.LocalAddr().String()
	s.serveDNS(&dns.Server{PacketConn: pc}, "udp")
	s.serveDNS(&dns.Server{Listener: ln}, "tcp")

	cert := s.ca.Issue(t, probertest.LocalhostSpec())
	tlsLn, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("listening for DNS over TLS: %v", err)
	}
	s.dot = tlsLn.Addr().String()
	s.serveDNS(&dns.Server{Listener: tls.NewListener(tlsLn, &tls.Config{Certificates: []tls.Certificate{cert.TLS}})}, "dot")

	network := "tcp4"
	if strings.Contains(host, ":") {
		network = "tcp6"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/dns-query", s.serveHTTP)
	mux.HandleFunc("/custom/path", s.serveHTTP)
	s.doh = probertest.NewServer(t, mux, probertest.ServerOpts{TLS: true, HTTP2: true, Cert: &cert, Network: network}).URL + "/dns-query"
	s.doh1 = probertest.NewServer(t, mux, probertest.ServerOpts{TLS: true, Cert: &cert, Network: network}).URL + "/dns-query"
	return s
}

// listenUDPAndTCP opens a UDP and a TCP socket on the same port of host,
// so that one target serves both transports.
func listenUDPAndTCP(t *testing.T, host string) (net.PacketConn, net.Listener) {
	t.Helper()
	suffix := "4"
	if strings.Contains(host, ":") {
		suffix = "6"
	}
	for range 20 {
		pc, err := net.ListenPacket("udp"+suffix, net.JoinHostPort(host, "0"))
		if err != nil {
			t.Skipf("cannot listen on %s: %v", host, err)
		}
		ln, err := net.Listen("tcp"+suffix, pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close() // the TCP port is taken; try another
	}
	t.Fatalf("no port on %s is free for both UDP and TCP", host)
	return nil, nil
}

func (s *dnsTestServer) serveDNS(srv *dns.Server, via string) {
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	srv.Handler = dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		s.record(dnsSeen{via: via, remote: remoteIP(w.RemoteAddr()), msg: r})
		if out := dnsReply(r, via); out != nil {
			_, _ = w.Write(out)
		}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ActivateAndServe()
	}()
	<-started
	s.close = append(s.close, func() {
		_ = srv.Shutdown()
		<-done
	})
}

// serveHTTP is the DoH endpoint: a query POSTed as application/dns-message
// or sent as ?dns=<base64url without padding>.
func (s *dnsTestServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	raw, status := dohQuery(r)
	if status != http.StatusOK {
		http.Error(w, http.StatusText(status), status)
		return
	}
	req := new(dns.Msg)
	if err := req.Unpack(raw); err != nil {
		http.Error(w, "not a DNS message", http.StatusBadRequest)
		return
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	s.record(dnsSeen{via: "doh", remote: net.ParseIP(host), msg: req, req: r})
	name := ""
	if len(req.Question) == 1 {
		name = req.Question[0].Name
	}
	switch name {
	case dnsErrorName:
		http.Error(w, "upstream failed", http.StatusInternalServerError)
		return
	case dnsGarbageName:
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html><body>This is not a DNS message.</body></html>")
		return
	}
	out := dnsReply(req, "doh")
	if out == nil {
		probertest.Hold(r)
		return
	}
	w.Header().Set("Content-Type", dnsMessageType)
	_, _ = w.Write(out)
}

func dohQuery(r *http.Request) ([]byte, int) {
	switch r.Method {
	case http.MethodPost:
		if r.Header.Get("Content-Type") != dnsMessageType {
			return nil, http.StatusUnsupportedMediaType
		}
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, http.StatusBadRequest
		}
		return raw, http.StatusOK
	case http.MethodGet:
		raw, err := base64.RawURLEncoding.DecodeString(r.URL.Query().Get("dns"))
		if err != nil {
			return nil, http.StatusBadRequest
		}
		return raw, http.StatusOK
	}
	return nil, http.StatusMethodNotAllowed
}

func remoteIP(a net.Addr) net.IP {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.IP
	case *net.TCPAddr:
		return a.IP
	}
	return nil
}

func (s *dnsTestServer) record(q dnsSeen) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, q)
}

// last returns the latest query the server received, failing the test
// when there was none.
func (s *dnsTestServer) last(t *testing.T) dnsSeen {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) == 0 {
		t.Fatal("the server received no query")
	}
	return s.seen[len(s.seen)-1]
}

func (s *dnsTestServer) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = nil
}

// ---- modules and probes ----

// dnsModule loads a dns module from its `dns:` section. Names resolve
// with the test resolver (v4only.test and friends).
func dnsModule(t *testing.T, section string) *core.Module {
	t.Helper()
	return sectionModule(t, "dns", section)
}

// probeDNSWithin runs one dns probe under a deadline, logging to logger.
func probeDNSWithin(t *testing.T, m *core.Module, target string, timeout time.Duration, logger *slog.Logger) (*probemetrics.Sink, time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	sink := probemetrics.NewSink()
	start := time.Now()
	err := probeDNS(ctx, target, m, sink, logger)
	probertest.Observe(t, sink)
	return sink, time.Since(start), err
}

// dialLog is a slog handler that keeps the addresses the probe dialled,
// from dialEndpoint's "Connecting" line.
type dialLog struct {
	mu    sync.Mutex
	addrs []string
}

func (l *dialLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *dialLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *dialLog) WithGroup(string) slog.Handler            { return l }

func (l *dialLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "Connecting" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "address" {
			l.mu.Lock()
			l.addrs = append(l.addrs, a.Value.String())
			l.mu.Unlock()
		}
		return true
	})
	return nil
}

func (l *dialLog) dialled() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.addrs...)
}
