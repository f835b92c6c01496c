package perf

import (
	"bufio"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/miekg/dns"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The peers run in a child process, the test binary started again with
// peerEnv set, so that what they allocate and the stacks they hold are not
// counted with the probes': runtime.MemStats is the whole process's. The
// test makes the listener and passes it to the child as its fd 3. The
// child writes "R" on its stdout when it serves; a holding peer then
// writes "a" for each request it has read and holds the answers until its
// stdin closes.

const (
	peerEnv = "SONDE_PERF_PEER"      // the kind of peer the child runs
	holdEnv = "SONDE_PERF_HOLD"      // "1": hold every answer until stdin closes
	certEnv = "SONDE_PERF_CERT_FILE" // where a TLS peer writes its certificate
)

// peerKind is what a peer serves.
type peerKind string

const (
	peerHTTP      peerKind = "http"      // HTTP/1.1: "ok"
	peerTCP       peerKind = "tcp"       // the same, its target host:port for a tcp probe
	peerHTTPS     peerKind = "https"     // the same over TLS, HTTP/2 offered
	peerDNS       peerKind = "dns"       // A records over UDP
	peerGRPC      peerKind = "grpc"      // the health service, SERVING
	peerUnix      peerKind = "unix"      // a "READY" banner on a unix socket
	peerWebsocket peerKind = "websocket" // a "hello" message once upgraded
)

// peer is a running child peer.
type peer struct {
	target string // what a probe of it is given
	caFile string // the certificate a TLS peer serves, PEM
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
}

// startPeer starts a peer of kind in a child process; hold makes it hold
// its answers until release.
func startPeer(t *testing.T, kind peerKind, hold bool) *peer {
	t.Helper()
	ln, file, target := peerListener(t, kind)
	defer ln.Close() // the child has its own copy
	defer file.Close()
	p := &peer{target: target}
	p.cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.cmd.Env = append(os.Environ(), peerEnv+"="+string(kind))
	if hold {
		p.cmd.Env = append(p.cmd.Env, holdEnv+"=1")
	}
	if kind == peerHTTPS {
		p.caFile = filepath.Join(t.TempDir(), "ca.pem")
		p.cmd.Env = append(p.cmd.Env, certEnv+"="+p.caFile)
	}
	p.cmd.ExtraFiles = []*os.File{file}
	p.cmd.Stderr = os.Stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdout = bufio.NewReader(out)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting the %s peer: %v", kind, err)
	}
	t.Cleanup(p.stop)
	if b, err := p.stdout.ReadByte(); err != nil || b != 'R' {
		t.Fatalf("the %s peer did not start: %q, %v", kind, b, err)
	}
	return p
}

// peerListener listens where a peer of kind serves, on loopback or in
// the test's directory, and returns the listener, its file for the child
// and the probes' target.
func peerListener(t *testing.T, kind peerKind) (io.Closer, *os.File, string) {
	t.Helper()
	var (
		l   interface{ File() (*os.File, error) }
		c   io.Closer
		err error
	)
	var target string
	switch kind {
	case peerDNS:
		var pc *net.UDPConn
		pc, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err == nil {
			l, c, target = pc, pc, pc.LocalAddr().String()
		}
	case peerUnix:
		path := filepath.Join(t.TempDir(), "peer.sock")
		var ul *net.UnixListener
		ul, err = net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err == nil {
			ul.SetUnlinkOnClose(false) // the child serves on it
			l, c, target = ul, ul, path
		}
	default:
		var tl *net.TCPListener
		tl, err = net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err == nil {
			l, c, target = tl, tl, tl.Addr().String()
		}
	}
	if err != nil {
		t.Fatalf("listening for the %s peer: %v", kind, err)
	}
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	switch kind {
	case peerHTTP:
		target = "http://" + target + "/"
	case peerHTTPS:
		target = "https://" + target + "/"
	case peerWebsocket:
		target = "ws://" + target + "/"
	}
	return c, f, target
}

// awaitRequests waits until the holding peer has read n requests.
func (p *peer) awaitRequests(n int) error {
	for i := range n {
		if b, err := p.stdout.ReadByte(); err != nil || b != 'a' {
			return fmt.Errorf("the peer read %d requests of %d, then %q, %v", i, n, b, err)
		}
	}
	return nil
}

// release lets a holding peer answer; it may be called again.
func (p *peer) release() { p.stdin.Close() }

func (p *peer) stop() {
	p.stdin.Close()
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// TestMain runs the peer when the binary was started as one, the tests
// otherwise.
func TestMain(m *testing.M) {
	if kind := os.Getenv(peerEnv); kind != "" {
		if err := runPeer(peerKind(kind), os.Getenv(holdEnv) == "1"); err != nil {
			fmt.Fprintf(os.Stderr, "%s peer: %v\n", kind, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// gate holds a peer's answers: it counts each request on stdout and lets
// it be answered once stdin closes, or at once when not holding.
type gate struct {
	hold   bool
	open   chan struct{}
	mu     sync.Mutex
	stdout *os.File
}

func newGate(hold bool) *gate {
	g := &gate{hold: hold, open: make(chan struct{}), stdout: os.Stdout}
	if !hold {
		close(g.open)
		return g
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(g.open)
	}()
	return g
}

// pass counts a request and waits until it may be answered.
func (g *gate) pass() {
	if g.hold {
		g.mu.Lock()
		_, _ = g.stdout.Write([]byte{'a'})
		g.mu.Unlock()
	}
	<-g.open
}

func runPeer(kind peerKind, hold bool) error {
	g := newGate(hold)
	f := os.NewFile(3, "listener")
	if kind == peerDNS {
		pc, err := net.FilePacketConn(f)
		if err != nil {
			return err
		}
		return serveDNS(pc, g)
	}
	ln, err := net.FileListener(f)
	if err != nil {
		return err
	}
	switch kind {
	case peerHTTP, peerTCP:
		return serveHTTP(ln, okHandler(g))
	case peerHTTPS:
		return serveHTTPS(ln, okHandler(g))
	case peerGRPC:
		return serveGRPC(ln, g)
	case peerUnix:
		return serveBanner(ln, g)
	case peerWebsocket:
		return serveHTTP(ln, websocketHandler(g))
	}
	return fmt.Errorf("no peer %q", kind)
}

func ready() { _, _ = os.Stdout.Write([]byte{'R'}) }

func okHandler(g *gate) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.pass()
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
}

func serveHTTP(ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Minute, ErrorLog: log.New(io.Discard, "", 0)}
	ready()
	return srv.Serve(ln)
}

// serveHTTPS serves with httptest's certificate, which names 127.0.0.1,
// and writes it where the test reads the module's CA.
func serveHTTPS(ln net.Listener, h http.Handler) error {
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(os.Getenv(certEnv), cert, 0o600); err != nil {
		return err
	}
	ready()
	select {} // httptest serves until the process ends
}

// serveDNS answers A queries with 127.0.0.1, one packet at a time on
// this goroutine unless holding.
func serveDNS(pc net.PacketConn, g *gate) error {
	ready()
	buf := make([]byte, dns.MaxMsgSize)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		q := new(dns.Msg)
		if q.Unpack(buf[:n]) != nil || len(q.Question) != 1 {
			continue
		}
		answer := func() {
			g.pass()
			m := new(dns.Msg)
			m.SetReply(q)
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.IPv4(127, 0, 0, 1),
			})
			if packed, err := m.Pack(); err == nil {
				_, _ = pc.WriteTo(packed, from)
			}
		}
		if g.hold {
			go answer()
		} else {
			answer()
		}
	}
}

// health is the health service of a server that is SERVING once the gate
// lets it answer.
type health struct {
	healthpb.UnimplementedHealthServer
	g *gate
}

func (h health) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.g.pass()
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func serveGRPC(ln net.Listener, g *gate) error {
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health{g: g})
	ready()
	return srv.Serve(ln)
}

// serveBanner greets every connection with "READY" and hangs up.
func serveBanner(ln net.Listener, g *gate) error {
	ready()
	for {
		conn, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		go func() {
			defer conn.Close()
			g.pass()
			io.WriteString(conn, "READY\n")
			// Wait for the probe to hang up, so that its reads see the
			// banner and not a reset.
			_, _ = io.Copy(io.Discard, conn)
		}()
	}
}

// websocketHandler upgrades, then sends "hello" and reads until the
// probe's close frame.
func websocketHandler(g *gate) http.Handler {
	up := websocket.Upgrader{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		g.pass()
		if conn.WriteMessage(websocket.TextMessage, []byte("hello")) != nil {
			return
		}
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	})
}
