package probertest

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

	"github.com/miekg/dns"

	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
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

// DNSAnswers are the answer records of dnsZoneName by query type; ANY gets
// all of them.
var DNSAnswers = map[uint16][]string{
	dns.TypeA:    {"example.test.\t300\tIN\tA\t192.0.2.1", "example.test.\t300\tIN\tA\t192.0.2.2"},
	dns.TypeAAAA: {"example.test.\t300\tIN\tAAAA\t2001:db8::1"},
	dns.TypeMX:   {"example.test.\t300\tIN\tMX\t10 mx1.example.test.", "example.test.\t300\tIN\tMX\t20 mx2.example.test."},
	dns.TypeSOA:  {dnsSOA},
}

const dnsSOA = "example.test.\t300\tIN\tSOA\tns1.example.test. hostmaster.example.test. 2024051501 7200 3600 1209600 300"

var (
	DNSAuthority  = []string{"example.test.\t300\tIN\tNS\tns1.example.test."}
	DNSAdditional = []string{"ns1.example.test.\t300\tIN\tA\t192.0.2.53"}
)

// DNSAnswerCount is how many answer records a query of qtype gets.
func DNSAnswerCount(qtype uint16) int {
	if qtype != dns.TypeANY {
		return len(DNSAnswers[qtype])
	}
	n := 0
	for _, rrs := range DNSAnswers {
		n += len(rrs)
	}
	return n
}

// DNSSerial is the serial of the zone's SOA record.
func DNSSerial() float64 {
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
		m.Answer = mustRRs(DNSAnswers[dns.TypeA]...)
	case dnsChaosName:
		if q.Qclass != dns.ClassCHAOS {
			m.Rcode = dns.RcodeRefused
			break
		}
		m.Answer = mustRRs(`version.bind. 0 CH TXT "sonde-test"`)
	case dnsGarbageName:
		m.Answer = mustRRs(DNSAnswers[dns.TypeA]...)
		out := packDNS(m)
		return out[:len(out)-3] // the header promises records that are cut off
	case dnsZoneName:
		m.Answer = mustRRs(zoneAnswers(q.Qtype)...)
		m.Ns = mustRRs(DNSAuthority...)
		m.Extra = mustRRs(DNSAdditional...)
	default:
		m.Rcode = dns.RcodeNameError
	}
	return packDNS(m)
}

func zoneAnswers(qtype uint16) []string {
	if qtype != dns.TypeANY {
		return DNSAnswers[qtype]
	}
	var all []string
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeSOA} {
		all = append(all, DNSAnswers[qt]...)
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
	Via    string // udp, tcp, dot, doh
	Remote net.IP
	Msg    *dns.Msg
	Req    *http.Request // DoH only
}

// DNSTestServer answers from the test zone over UDP and TCP (one port),
// DNS over TLS and DNS over HTTPS (h2 and HTTP/1.1, and HTTP/1.1 only), on
// one loopback address, and records every query it receives.
type DNSTestServer struct {
	Addr  string // host:port of UDP and TCP
	Dot   string // host:port of DNS over TLS
	Doh   string // https URL of DNS over HTTPS, path /dns-query
	Doh1  string // the same, from a server without HTTP/2
	CA    *testcert.CA
	Mu    sync.Mutex
	Seen  []dnsSeen
	close []func()
}

// NewDNSTestServer starts the servers on host ("127.0.0.1" or "::1"). It
// skips the test when host cannot be listened on, which only happens for
// IPv6.
func NewDNSTestServer(t *testing.T, host string) *DNSTestServer {
	t.Helper()
	s := &DNSTestServer{CA: testcert.NewCA(t, testcert.Spec{})}
	t.Cleanup(func() {
		for _, f := range s.close {
			f()
		}
	})
	pc, ln := listenUDPAndTCP(t, host)
	s.Addr = pc.LocalAddr().String()
	s.serveDNS(&dns.Server{PacketConn: pc}, "udp")
	s.serveDNS(&dns.Server{Listener: ln}, "tcp")

	cert := s.CA.Issue(t, testcert.Loopback()).TLS()
	tlsLn, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("listening for DNS over TLS: %v", err)
	}
	s.Dot = tlsLn.Addr().String()
	s.serveDNS(&dns.Server{Listener: tls.NewListener(tlsLn, &tls.Config{Certificates: []tls.Certificate{cert}})}, "dot")

	network := "tcp4"
	if strings.Contains(host, ":") {
		network = "tcp6"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/dns-query", s.serveHTTP)
	mux.HandleFunc("/custom/path", s.serveHTTP)
	s.Doh = NewServer(t, mux, ServerOpts{TLS: true, HTTP2: true, Cert: &cert, Network: network}).URL + "/dns-query"
	s.Doh1 = NewServer(t, mux, ServerOpts{TLS: true, Cert: &cert, Network: network}).URL + "/dns-query"
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

func (s *DNSTestServer) serveDNS(srv *dns.Server, via string) {
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	srv.Handler = dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		s.record(dnsSeen{Via: via, Remote: remoteIP(w.RemoteAddr()), Msg: r})
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
func (s *DNSTestServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
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
	s.record(dnsSeen{Via: "doh", Remote: net.ParseIP(host), Msg: req, Req: r})
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
		Hold(r)
		return
	}
	w.Header().Set("Content-Type", dohMessageType)
	_, _ = w.Write(out)
}

func dohQuery(r *http.Request) ([]byte, int) {
	switch r.Method {
	case http.MethodPost:
		if r.Header.Get("Content-Type") != dohMessageType {
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

func (s *DNSTestServer) record(q dnsSeen) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	s.Seen = append(s.Seen, q)
}

// Last returns the latest query the server received, failing the test
// when there was none.
func (s *DNSTestServer) Last(t *testing.T) dnsSeen {
	t.Helper()
	s.Mu.Lock()
	defer s.Mu.Unlock()
	if len(s.Seen) == 0 {
		t.Fatal("the server received no query")
	}
	return s.Seen[len(s.Seen)-1]
}

func (s *DNSTestServer) Reset() {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	s.Seen = nil
}

// ---- modules and probes ----

// DialLog is a slog handler that keeps the addresses the probe dialled,
// from netdial.DialEndpoint's "Connecting" line.
type DialLog struct {
	mu    sync.Mutex
	addrs []string
}

func (l *DialLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *DialLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *DialLog) WithGroup(string) slog.Handler            { return l }

func (l *DialLog) Handle(_ context.Context, r slog.Record) error {
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

func (l *DialLog) Dialled() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.addrs...)
}

// dohMessageType is the media type of a DNS message over HTTPS (RFC 8484).
const dohMessageType = "application/dns-message"
