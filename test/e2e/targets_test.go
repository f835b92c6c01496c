package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"golang.org/x/crypto/ocsp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// serverCert issues a certificate of ca for 127.0.0.1 valid from notBefore
// to notAfter, with the CA in the chain the server sends and, when staple
// is set, a "good" OCSP response signed by the CA stapled to the handshake.
func serverCert(t *testing.T, ca *testcert.CA, notBefore, notAfter time.Time, staple bool) tls.Certificate {
	t.Helper()
	issued := ca.Issue(t, testcert.Spec{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
	})
	cert := issued.TLSWithRoot()
	if staple {
		cert.OCSPStaple = ca.OCSPAnswer(t, issued, ocsp.Good)
	}
	return cert
}

// targets are what the end-to-end tests probe, all on loopback.
type targets struct {
	healthy string // http: answers 200
	refused string // http: a port nothing listens on
	expired string // https: an expired certificate of the test CA
	slow    string // http: answers long after any probe deadline
	secure  string // https: a valid certificate with a stapled OCSP response
	flaky   string // http: drops every other connection unanswered
	tcp     string // host:port of a listening socket
	dns     string // host:port of a DNS server answering every A question
	grpc    string // host:port of a gRPC server whose health service says SERVING
	icmp    string // an address to ping
	caPEM   []byte // the CA of expired and secure

	expiredNotAfter, secureNotAfter time.Time // of the leaf certificates
}

func ok(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }

func startTargets(t *testing.T) targets {
	t.Helper()
	ca := testcert.NewCA(t, testcert.Spec{Subject: pkix.Name{CommonName: "sonde e2e CA"}, NotAfter: time.Now().Add(24 * time.Hour)})
	now := time.Now()
	var tg targets
	tg.caPEM = ca.PEM()

	healthy := httptest.NewServer(http.HandlerFunc(ok))
	t.Cleanup(healthy.Close)
	tg.healthy = healthy.URL + "/"
	tg.tcp = healthy.Listener.Addr().String()

	tg.refused = "http://" + testkit.ClosedTCPAddr(t) + "/"

	// Whole seconds, as certificates store them.
	tg.expiredNotAfter = now.Add(-24 * time.Hour).Truncate(time.Second)
	tg.secureNotAfter = now.Add(12 * time.Hour).Truncate(time.Second)
	tg.expired = startTLS(t, serverCert(t, ca, now.Add(-48*time.Hour), tg.expiredNotAfter, false))
	tg.secure = startTLS(t, serverCert(t, ca, now.Add(-time.Hour), tg.secureNotAfter, true))

	// The slow target holds each request until the prober gives up (the
	// client closing the connection cancels the request's context) or,
	// failing that, for longer than any scrape timeout of the tests.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	tg.slow = slow.URL + "/slow"

	// Every other request is dropped without an answer, so a probe with
	// retries fails its first attempt and passes its second.
	var requests atomic.Int64
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1)%2 == 1 {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		ok(w, r)
	}))
	t.Cleanup(flaky.Close)
	tg.flaky = flaky.URL + "/flaky"

	tg.dns = startDNS(t)
	tg.grpc = startGRPC(t)
	tg.icmp = "127.0.0.1"
	return tg
}

func startTLS(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(ok))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	// sonde rejecting the expired certificate is the point, not news.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

// startDNS serves every A question with 192.0.2.1 over UDP.
func startDNS(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening for DNS: %v", err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, question := range q.Question {
			if question.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(192, 0, 2, 1),
				})
			}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.ShutdownContext(ctx)
	})
	return pc.LocalAddr().String()
}

// startGRPC serves the standard health service, SERVING.
func startGRPC(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening for gRPC: %v", err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return l.Addr().String()
}
