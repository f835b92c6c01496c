package perf

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/miekg/dns"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The child process: the test binary started again with peerEnv set. It
// serves a peer on the listener the test passes as its fd 3, and, told
// to, scrapes sonde as Prometheus would, so that neither what the peer
// allocates nor the stacks the scrapes hold count in the test's figures:
// runtime.MemStats is the whole process's.
//
// It talks to the test in lines. On stdout: "ready" once it serves; when
// scraping, "waiting" once every probe waits on the peer, then "done",
// or "failed: why" when a scrape did not succeed. On stdin: "go" to
// start the scrapes; the end of stdin lets a holding peer answer.

const (
	peerEnv     = "SONDE_PERF_PEER"      // the kind of peer the child runs, or "none"
	holdEnv     = "SONDE_PERF_HOLD"      // "1": hold every answer until stdin ends
	certEnv     = "SONDE_PERF_CERT_FILE" // where a TLS peer writes its certificate
	scrapeEnv   = "SONDE_PERF_SCRAPE"    // the /probe URL to scrape, but for its target
	scrapeCAEnv = "SONDE_PERF_SCRAPE_CA" // sonde's certificate, over TLS
	scrapesEnv  = "SONDE_PERF_SCRAPES"   // how many scrapes at once
)

// TestMain runs the child when the binary was started as one, the tests
// otherwise.
func TestMain(m *testing.M) {
	if kind := os.Getenv(peerEnv); kind != "" {
		if err := runChild(peerKind(kind)); err != nil {
			fmt.Fprintf(os.Stderr, "%s peer: %v\n", kind, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runChild(kind peerKind) error {
	g := newGate(os.Getenv(holdEnv) == "1")
	target := "127.0.0.1"
	errc := make(chan error, 1)
	if kind != peerNone {
		l, addr, err := openListener(kind)
		if err != nil {
			return err
		}
		target = targetOf(kind, addr)
		go func() { errc <- servePeer(kind, l, g) }()
	}
	if kind == peerHTTPS {
		if err := <-g.tlsReady; err != nil {
			return err
		}
	}
	say("ready")
	url := os.Getenv(scrapeEnv)
	if url == "" {
		return <-errc
	}
	select {
	case <-g.started:
	case err := <-errc:
		return err
	}
	n, err := strconv.Atoi(os.Getenv(scrapesEnv))
	if err != nil {
		return err
	}
	if err := scrapeAll(url+"&target="+neturl.QueryEscape(target), n, kind != peerNone, g); err != nil {
		say("failed: " + strings.ReplaceAll(err.Error(), "\n", " | "))
		return nil
	}
	say("done")
	return nil
}

// openListener opens the listener the test passed as fd 3, and returns
// it (a net.Listener, or a net.PacketConn for dns) and its address.
func openListener(kind peerKind) (any, string, error) {
	f := os.NewFile(3, "listener")
	defer f.Close()
	if kind == peerDNS {
		pc, err := net.FilePacketConn(f)
		if err != nil {
			return nil, "", err
		}
		return pc, pc.LocalAddr().String(), nil
	}
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, "", err
	}
	return ln, ln.Addr().String(), nil
}

func say(line string) { fmt.Fprintln(os.Stdout, line) }

// gate holds a peer's answers, counting the requests it holds, until
// stdin ends; not holding, it lets every answer go at once. It also
// passes on the test's "go".
type gate struct {
	hold     bool
	open     chan struct{} // closed when answers may go
	started  chan struct{} // closed on "go"
	arrived  atomic.Int64
	tlsReady chan error
}

func newGate(hold bool) *gate {
	g := &gate{hold: hold, open: make(chan struct{}), started: make(chan struct{}), tlsReady: make(chan error, 1)}
	if !hold {
		close(g.open)
	}
	go g.readStdin()
	return g
}

func (g *gate) readStdin() {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() == "go" {
			close(g.started)
		}
	}
	if g.hold {
		close(g.open)
	}
}

// pass counts a request and waits until it may be answered.
func (g *gate) pass() {
	g.arrived.Add(1)
	<-g.open
}

// awaitArrivals waits until n requests have come, for at most a minute.
func (g *gate) awaitArrivals(n int) error {
	limit := time.Now().Add(time.Minute)
	for g.arrived.Load() < int64(n) {
		if time.Now().After(limit) {
			return fmt.Errorf("%d requests reached the peer after a minute, want %d", g.arrived.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// batch is how many scrapes start at once, each batch once the peer has
// the last one's requests: a thousand at once would overflow the peer's
// listen queue or, for dns, its socket's receive buffer, and a dns probe
// whose query is dropped waits for its deadline.
const batch = 50

// scrapeAll sends n scrapes of url at once and waits until every probe
// waits on the peer (withPeer), or until all are sent. When stdin ends it
// lets the peer answer, and every scrape must succeed; without a peer it
// cancels the scrapes, which ends their probes.
func scrapeAll(url string, n int, withPeer bool, g *gate) error {
	client, err := scrapeClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for first := 0; first < n; first += batch {
		for i := first; i < min(first+batch, n); i++ {
			wg.Go(func() { errs[i] = scrape(ctx, client, url) })
		}
		if withPeer {
			if err := g.awaitArrivals(min(first+batch, n)); err != nil {
				return err
			}
		}
	}
	say("waiting")
	<-g.open
	if !withPeer {
		cancel()
	}
	wg.Wait()
	if !withPeer {
		return nil
	}
	return errors.Join(errs...)
}

// scrapeClient is Prometheus's: over TLS, HTTP/2 with sonde's certificate
// trusted.
func scrapeClient() (*http.Client, error) {
	tr := &http.Transport{DisableCompression: true}
	if path := os.Getenv(scrapeCAEnv); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(data) {
			return nil, errors.New("no certificate in " + path)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: roots}
		tr.ForceAttemptHTTP2 = true
	}
	return &http.Client{Transport: tr}, nil
}

func scrape(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", prometheusAccept)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "70")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !succeeded(string(body)) {
		return fmt.Errorf("status %d: %.500s", resp.StatusCode, body)
	}
	return nil
}

func servePeer(kind peerKind, l any, g *gate) error {
	if kind == peerDNS {
		return serveDNS(l.(net.PacketConn), g)
	}
	ln := l.(net.Listener)
	switch kind {
	case peerHTTP, peerTCP:
		return serveHTTP(ln, okHandler(g))
	case peerHTTPS:
		return serveHTTPS(ln, okHandler(g), g.tlsReady)
	case peerGRPC:
		return serveGRPC(ln, g)
	case peerUnix:
		return serveBanner(ln, g)
	case peerWebsocket:
		return serveHTTP(ln, websocketHandler(g))
	}
	return fmt.Errorf("no peer %q", kind)
}

func okHandler(g *gate) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.pass()
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
}

func serveHTTP(ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Minute, ErrorLog: log.New(io.Discard, "", 0)}
	return srv.Serve(ln)
}

// serveHTTPS serves with httptest's certificate, which names 127.0.0.1,
// and writes it where the test reads the module's CA.
func serveHTTPS(ln net.Listener, h http.Handler, ready chan<- error) error {
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	ready <- os.WriteFile(os.Getenv(certEnv), cert, 0o600)
	select {} // httptest serves until the process ends
}

// serveDNS answers A queries with 127.0.0.1, each on a goroutine of its
// own while the gate holds it.
func serveDNS(pc net.PacketConn, g *gate) error {
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
		go func() {
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
		}()
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
	return srv.Serve(ln)
}

// serveBanner greets every connection with "READY".
func serveBanner(ln net.Listener, g *gate) error {
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
			// Until the probe hangs up, so that it reads the banner and
			// not a reset.
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
