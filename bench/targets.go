package bench

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/icmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// DNSName is the name the DNS target answers, with 127.0.0.1.
const DNSName = "bench.test."

// Targets are the loopback services the exporters probe, one per prober,
// all run by the harness itself so that no external tool or network is
// needed and both exporters probe exactly the same thing.
type Targets struct {
	HTTP  string // http://127.0.0.1:port/
	HTTPS string // https://127.0.0.1:port/, certificate from the harness CA
	Slow  string // http://127.0.0.1:port/slow: answers after SlowDelay
	// SlowTCP is the HTTP target's 127.0.0.1:port, for a tcp probe that
	// asks for /slow itself.
	SlowTCP string
	TCP     string // 127.0.0.1:port, accepts and closes
	// Trickle is http://127.0.0.1:port/, which answers a byte every
	// trickleGap and never finishes: every probe of it ends at its
	// deadline.
	Trickle string
	DNS     string // 127.0.0.1:port (UDP), answers DNSName
	GRPC    string // 127.0.0.1:port, standard health service, SERVING
	ICMP    string // 127.0.0.1

	stops []func()
}

// startTargets starts every target on 127.0.0.1. slowDelay is how long
// the slow HTTP endpoint waits before answering (scale mode).
func startTargets(p *pki, slowDelay time.Duration) (_ *Targets, err error) {
	t := &Targets{ICMP: "127.0.0.1"}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	handler := targetHandler(slowDelay)
	httpAddr, err := t.serveHTTP(handler, nil)
	if err != nil {
		return nil, fmt.Errorf("starting the HTTP target: %w", err)
	}
	t.HTTP, t.Slow, t.SlowTCP = "http://"+httpAddr+"/", "http://"+httpAddr+"/slow", httpAddr
	httpsAddr, err := t.serveHTTP(handler, &tls.Config{Certificates: []tls.Certificate{p.Server}})
	if err != nil {
		return nil, fmt.Errorf("starting the HTTPS target: %w", err)
	}
	t.HTTPS = "https://" + httpsAddr + "/"
	if t.TCP, err = t.serveTCP(); err != nil {
		return nil, fmt.Errorf("starting the TCP target: %w", err)
	}
	trickleAddr, err := t.serveTrickle(trickleGap)
	if err != nil {
		return nil, fmt.Errorf("starting the trickling target: %w", err)
	}
	t.Trickle = "http://" + trickleAddr + "/"
	if t.DNS, err = t.serveDNS(); err != nil {
		return nil, fmt.Errorf("starting the DNS target: %w", err)
	}
	if t.GRPC, err = t.serveGRPC(); err != nil {
		return nil, fmt.Errorf("starting the gRPC target: %w", err)
	}
	return t, nil
}

// Close stops every target.
func (t *Targets) Close() {
	for i := len(t.stops) - 1; i >= 0; i-- {
		t.stops[i]()
	}
	t.stops = nil
}

// targetHandler answers "ok", after slowDelay on /slow. A slow answer
// stops waiting when the prober hangs up, so an abandoned probe frees its
// connection at once.
func targetHandler(slowDelay time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-time.After(slowDelay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
}

func (t *Targets) serveHTTP(h http.Handler, tlsConfig *tls.Config) (string, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: time.Minute,
		// Probes hang up as soon as they have their answer, which the
		// server would log as errors by the thousand.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	go func() { _ = srv.Serve(ln) }()
	t.stops = append(t.stops, func() { srv.Close() })
	return ln.Addr().String(), nil
}

// serveTCP accepts connections and closes them: all a tcp_connect probe
// needs is the handshake.
func (t *Targets) serveTCP() (string, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go acceptAndClose(ln)
	t.stops = append(t.stops, func() { ln.Close() })
	return ln.Addr().String(), nil
}

func acceptAndClose(ln net.Listener) {
	acceptEach(ln, func(conn net.Conn) { conn.Close() })
}

// acceptEach hands every connection ln accepts to handle, until ln
// closes.
func acceptEach(ln net.Listener, handle func(net.Conn)) {
	for {
		conn, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of file descriptors, say: give the others time to close.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		handle(conn)
	}
}

// serveTrickle answers every request with a status line and headers sent
// one byte every gap, without end: a target that keeps a probe reading
// until its deadline, whatever the deadline.
func (t *Targets) serveTrickle(gap time.Duration) (string, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go acceptEach(ln, func(conn net.Conn) { go trickle(conn, gap) })
	t.stops = append(t.stops, func() { ln.Close() })
	return ln.Addr().String(), nil
}

// trickle reads the request on conn and answers it a byte every gap,
// until the prober hangs up.
func trickle(conn net.Conn, gap time.Duration) {
	defer conn.Close()
	req, err := http.ReadRequest(bufio.NewReader(conn))
	if err != nil {
		return
	}
	req.Body.Close()
	answer := []byte("HTTP/1.1 200 OK\r\n")
	for i, lines := 0, 0; ; i++ {
		if i == len(answer) {
			lines++
			answer, i = []byte(fmt.Sprintf("X-Trickle-%d: on and on\r\n", lines)), 0
		}
		if _, err := conn.Write(answer[i : i+1]); err != nil {
			return
		}
		time.Sleep(gap)
	}
}

// serveDNS answers A queries for DNSName with 127.0.0.1 over UDP, and
// anything else with NXDOMAIN.
func (t *Targets) serveDNS() (string, error) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(answerDNS), NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.stops = append(t.stops, func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String(), nil
}

func answerDNS(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	if len(q.Question) != 1 || !strings.EqualFold(q.Question[0].Name, DNSName) {
		m.Rcode = dns.RcodeNameError
		_ = w.WriteMsg(m)
		return
	}
	if q.Question[0].Qtype == dns.TypeA {
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A:   net.IPv4(127, 0, 0, 1),
		})
	}
	_ = w.WriteMsg(m)
}

// serveGRPC runs the standard health service, with the whole server
// SERVING, over plaintext HTTP/2.
func (t *Targets) serveGRPC() (string, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(ln) }()
	t.stops = append(t.stops, srv.Stop)
	return ln.Addr().String(), nil
}

// icmpUsable reports whether this process may send ICMP echo requests
// (an unprivileged ping socket or a raw one). The exporters run with the
// same privileges, so without it the icmp module can only fail.
func icmpUsable() bool { return icmpUnavailable() == "" }

// icmpUnavailable says why this process may not send ICMP echo requests,
// or returns "" when it may: it needs an unprivileged ping socket (its
// group within net.ipv4.ping_group_range) or a raw socket (root, or
// CAP_NET_RAW).
func icmpUnavailable() string {
	var errs []string
	for _, network := range []string{"udp4", "ip4:icmp"} {
		c, err := icmp.ListenPacket(network, "127.0.0.1")
		if err == nil {
			c.Close()
			return ""
		}
		errs = append(errs, fmt.Sprintf("%s socket: %v", network, err))
	}
	pingRange := "unreadable"
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ping_group_range"); err == nil {
		pingRange = strings.Join(strings.Fields(string(data)), " ")
	}
	return fmt.Sprintf("this process (uid %d, gid %d) may not send ICMP echo requests, and the exporters it starts inherit its privileges: %s; "+
		"net.ipv4.ping_group_range is %q. Allow ping sockets (sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"), or run as root, or with CAP_NET_RAW (docs/icmp-privileges.md)",
		os.Getuid(), os.Getgid(), strings.Join(errs, "; "), pingRange)
}
