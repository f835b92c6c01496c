package compat

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The zone the DNS peer answers. Records point at loopback addresses only:
// nothing probes them, but no answer should name another network.
const (
	zone        = "compat.test."
	zoneSerial  = 2024051501
	zoneSOA     = "compat.test.\t300\tIN\tSOA\tns1.compat.test. hostmaster.compat.test. 2024051501 7200 3600 1209600 300"
	nameNX      = "nx.compat.test."       // NXDOMAIN with the SOA in the authority section
	nameFail    = "servfail.compat.test." // SERVFAIL
	nameRefused = "refused.compat.test."  // REFUSED
	nameFormErr = "formerr.compat.test."  // FORMERR
	nameSilent  = "silent.compat.test."   // never answered
	nameBig     = "big.compat.test."      // more TXT records than a UDP answer holds: TC over UDP
	nameCNAME   = "www.compat.test."      // a CNAME to the zone apex, then its A records
	nameChaos   = "version.bind."         // TXT in class CH
)

// zoneAnswers are the apex's records by type; ANY gets all of them.
var zoneAnswers = map[uint16][]string{
	dns.TypeA:    {"compat.test.\t300\tIN\tA\t127.0.0.10", "compat.test.\t300\tIN\tA\t127.0.0.11"},
	dns.TypeAAAA: {"compat.test.\t300\tIN\tAAAA\t::1"},
	dns.TypeMX:   {"compat.test.\t300\tIN\tMX\t10 mx1.compat.test.", "compat.test.\t300\tIN\tMX\t20 mx2.compat.test."},
	dns.TypeTXT:  {"compat.test.\t300\tIN\tTXT\t\"v=compat1 ok\""},
	dns.TypeNS:   {"compat.test.\t300\tIN\tNS\tns1.compat.test.", "compat.test.\t300\tIN\tNS\tns2.compat.test."},
	dns.TypeSOA:  {zoneSOA},
}

var (
	zoneAuthority  = []string{"compat.test.\t300\tIN\tNS\tns1.compat.test.", "compat.test.\t300\tIN\tNS\tns2.compat.test."}
	zoneAdditional = []string{"ns1.compat.test.\t300\tIN\tA\t127.0.0.53", "ns2.compat.test.\t300\tIN\tA\t127.0.0.54"}
)

// dnsPeers are the DNS servers of the test.
type dnsPeers struct {
	addr    string // host:port, UDP and TCP on the same port
	addrV6  string // the same on [::1], empty without IPv6 loopback
	dot     string // host:port, DNS over TLS with the good certificate
	refused string // a port with no server, UDP nor TCP
}

func startDNSPeers(t *testing.T, p *pki) *dnsPeers {
	t.Helper()
	dp := &dnsPeers{
		addr: serveDNSPair(t, "127.0.0.1"),
		dot:  serveDoT(t, p.serverTLS(p.good, false)),
	}
	if ipv6Loopback() {
		dp.addrV6 = serveDNSPair(t, "::1")
	}
	dp.refused = refusedAddr(t, "udp")
	if !refuses("tcp", dp.refused) {
		t.Fatalf("%s refuses UDP but not TCP", dp.refused)
	}
	return dp
}

// serveDNSPair serves the zone over UDP and TCP on one port of host.
func serveDNSPair(t *testing.T, host string) string {
	t.Helper()
	for try := 0; try < 20; try++ {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatalf("listening for DNS over UDP: %v", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil { // the TCP port is taken: another UDP port
			pc.Close()
			continue
		}
		startDNSServer(t, &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(answerZone)})
		startDNSServer(t, &dns.Server{Listener: ln, Handler: dns.HandlerFunc(answerZone)})
		return pc.LocalAddr().String()
	}
	t.Fatalf("found no port free for both UDP and TCP on %s", host)
	return ""
}

func serveDoT(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatalf("listening for DNS over TLS: %v", err)
	}
	startDNSServer(t, &dns.Server{Listener: ln, Net: "tcp-tls", Handler: dns.HandlerFunc(answerZone)})
	return ln.Addr().String()
}

func startDNSServer(t *testing.T, srv *dns.Server) {
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.ShutdownContext(ctx)
	})
}

// answerZone answers a question about the zone.
func answerZone(w dns.ResponseWriter, q *dns.Msg) {
	if len(q.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	question := q.Question[0]
	name := strings.ToLower(question.Name)
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	switch {
	case name == nameSilent:
		return
	case name == nameChaos && question.Qclass == dns.ClassCHAOS:
		m.Answer = mustRRs(`version.bind.	0	CH	TXT	"compat-dns 1.0"`)
	case question.Qclass != dns.ClassINET:
		m.Rcode = dns.RcodeRefused
	case name == nameFail:
		m.Rcode = dns.RcodeServerFailure
	case name == nameRefused:
		m.Rcode = dns.RcodeRefused
	case name == nameFormErr:
		m.Rcode = dns.RcodeFormatError
	case name == nameBig:
		for i := 0; i < 40; i++ {
			m.Answer = append(m.Answer, mustRRs(fmt.Sprintf("big.compat.test.\t300\tIN\tTXT\t\"record %02d of a long answer that does not fit in one UDP datagram\"", i))...)
		}
	case name == nameCNAME:
		m.Answer = mustRRs("www.compat.test.\t300\tIN\tCNAME\tcompat.test.")
		if question.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, mustRRs(zoneAnswers[dns.TypeA]...)...)
		}
	case name == zone:
		if question.Qtype == dns.TypeANY {
			for _, qt := range []uint16{dns.TypeSOA, dns.TypeNS, dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeTXT} {
				m.Answer = append(m.Answer, mustRRs(zoneAnswers[qt]...)...)
			}
		} else {
			m.Answer = mustRRs(zoneAnswers[question.Qtype]...)
		}
		if question.Qtype != dns.TypeNS && len(m.Answer) > 0 {
			m.Ns = mustRRs(zoneAuthority...)
			m.Extra = mustRRs(zoneAdditional...)
		}
		if len(m.Answer) == 0 {
			m.Ns = mustRRs(zoneSOA)
		}
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = mustRRs(zoneSOA)
	}
	if w.LocalAddr().Network() == "udp" {
		// As a real server does: what does not fit the client's buffer
		// is cut, with the TC bit set.
		size := dns.MinMsgSize
		if opt := q.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// mustRRs parses records of the zone; they are constants of this file, so
// a failure is the test's own bug.
func mustRRs(texts ...string) []dns.RR {
	rrs := make([]dns.RR, len(texts))
	for i, s := range texts {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(fmt.Sprintf("zone record %q: %v", s, err))
		}
		rrs[i] = rr
	}
	return rrs
}
