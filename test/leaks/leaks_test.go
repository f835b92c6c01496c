// Package leaks holds sonde to a long-running exporter's budget: probes of
// every outcome, made by the thousand, must leave no goroutine and no open
// file behind. It is a package of its own so that no other test's servers
// or stragglers move the counts it compares.
package leaks

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go/http3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sonde-exporter/sonde/collector"
	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/prober"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

const (
	probes      = 10000
	concurrency = 50
	http3Probes = 1000
	// http3Concurrency stays under the 32 connections quic-go's server
	// queues before accepting them: past that it refuses connections, and
	// a loaded machine (the race detector, other packages' tests) slows
	// the test server's accepting enough to get there.
	http3Concurrency = 10
	// settle is how long the counts may take to come back down: the test
	// servers' side of the last connections closing, timers firing.
	settle = 10 * time.Second
	// http3Settle is settle for HTTP/3. A probe that gives up in the
	// middle of a QUIC handshake (a loaded machine makes some) leaves
	// without a word, as quic-go's Dial does, and the test server keeps
	// its side of the connection until it idles out: up to the probe's
	// timeout, which sonde advertises as its idle timeout.
	http3Settle = 40 * time.Second
	// http3Timeout bounds the HTTP/3 probes that should succeed: under
	// the race detector on two loaded cores a QUIC handshake can take
	// seconds, and the test is about leaks, not latency.
	http3Timeout = 30 * time.Second
)

// kind is one sort of probe in the mix, with the outcome it must have.
type kind struct {
	name    string
	module  *core.Module
	target  string
	timeout time.Duration
	class   taxonomy.Class // "" for success
	reason  taxonomy.Reason
}

// TestNoLeakAfterTenThousandProbes runs probes of mixed outcomes, fifty at
// a time, through collector.Run (the path every scrape takes): successes,
// a followed redirect, refused connections, deadlines that run out on a
// silent peer, failed TLS verifications, DNS queries, and gRPC health
// checks. Afterwards the goroutines and open file descriptors must be back
// at the baseline taken after a warm-up, once the servers' side of the
// last connections has closed.
func TestNoLeakAfterTenThousandProbes(t *testing.T) {
	if testing.Short() {
		t.Skip("makes 10,000 probes")
	}
	testkit.HoldTimingLock(t)
	checkNoLeak(t, startTargets(t), probes, concurrency, settle)
}

// TestNoLeakAfterHTTP3Probes holds HTTP/3 probes to the same budget: each
// has a UDP socket, a quic-go transport and connection, and an HTTP/3
// client of its own, with goroutines of their own. Fewer probes than the
// mix, fewer at a time: under the race detector an HTTP/3 probe costs
// several times a TCP one, and a thousand leave no doubt about a leak of
// one per probe.
func TestNoLeakAfterHTTP3Probes(t *testing.T) {
	if testing.Short() {
		t.Skip("makes 1,000 HTTP/3 probes")
	}
	testkit.HoldTimingLock(t)
	checkNoLeak(t, startHTTP3Targets(t), http3Probes, http3Concurrency, http3Settle)
}

// checkNoLeak runs n probes of the kinds, parallel at a time, after a
// warm-up, and fails the test when goroutines or open files stay above
// the baseline taken after the warm-up once settle has passed.
func checkNoLeak(t *testing.T, kinds []kind, n, parallel int, settle time.Duration) {
	t.Helper()
	run := func(n int) map[string]map[string]int {
		outcomes := map[string]map[string]int{}
		var mu sync.Mutex
		jobs := make(chan kind)
		var wg sync.WaitGroup
		for range parallel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				logger := slog.New(slog.DiscardHandler)
				for k := range jobs {
					res := collector.Run(context.Background(), k.module, k.target, k.timeout, logger, slog.LevelDebug)
					got := "success"
					if res.Err != nil {
						got = fmt.Sprintf("%s/%s", res.Err.Class, res.Err.Reason)
					}
					mu.Lock()
					if outcomes[k.name] == nil {
						outcomes[k.name] = map[string]int{}
					}
					outcomes[k.name][got]++
					mu.Unlock()
				}
			}()
		}
		for i := range n {
			jobs <- kinds[i%len(kinds)]
		}
		close(jobs)
		wg.Wait()
		return outcomes
	}

	// The warm-up starts what lives as long as the process (the HTTP/2
	// and gRPC machinery, resolver state, timers) before the baseline.
	run(10 * len(kinds))
	goroutines, fds := waitForCounts(t, -1, -1, settle)
	t.Logf("baseline: %d goroutines, %d open files", goroutines, fds)

	start := time.Now()
	outcomes := run(n)
	t.Logf("%d probes in %v", n, time.Since(start).Round(time.Millisecond))
	for _, k := range kinds {
		want := "success"
		if k.class != "" {
			want = fmt.Sprintf("%s/%s", k.class, k.reason)
		}
		if got := outcomes[k.name]; got[want] != n/len(kinds) && got[want] != n/len(kinds)+1 {
			t.Errorf("%s: outcomes %v, want every probe %s", k.name, got, want)
		}
	}

	afterG, afterF := waitForCounts(t, goroutines, fds, settle)
	t.Logf("after: %d goroutines, %d open files", afterG, afterF)
	if afterG > goroutines {
		var stacks bytes.Buffer
		pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		t.Errorf("%d goroutines after the probes settled, %d before:\n%s", afterG, goroutines, stacks.String())
	}
	if afterF > fds {
		t.Errorf("%d open files after the probes settled, %d before: %v", afterF, fds, openFiles(t))
	}
}

// waitForCounts waits, at most settle, until the goroutines and open
// files are at most the given counts (or, with -1, stop falling), and
// returns them.
func waitForCounts(t *testing.T, goroutines, fds int, settle time.Duration) (int, int) {
	t.Helper()
	deadline := time.Now().Add(settle)
	lastG, lastF, steady := -1, -1, 0
	for {
		runtime.GC() // finalizers close what was dropped without Close
		g, f := runtime.NumGoroutine(), len(openFiles(t))
		switch {
		case goroutines >= 0 && g <= goroutines && f <= fds:
			return g, f
		case goroutines < 0 && g == lastG && f == lastF:
			if steady++; steady == 5 {
				return g, f
			}
		default:
			steady = 0
		}
		if time.Now().After(deadline) {
			return g, f
		}
		lastG, lastF = g, f
		time.Sleep(100 * time.Millisecond)
	}
}

// openFiles lists the process's open file descriptors and what they are.
func openFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open files: %v", err)
	}
	var files []string
	for _, e := range entries {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the directory's own descriptor, closed already
		}
		files = append(files, e.Name()+"->"+target)
	}
	return files
}

// startTargets starts a server for each kind of probe, all on loopback,
// and returns the kinds.
func startTargets(t *testing.T) []kind {
	t.Helper()
	quiet := log.New(io.Discard, "", 0)
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	web := httptest.NewUnstartedServer(mux)
	web.Config.ErrorLog = quiet
	web.Start()
	t.Cleanup(web.Close)
	// A certificate no module trusts: every handshake fails verification.
	untrusted := httptest.NewUnstartedServer(mux)
	untrusted.Config.ErrorLog = quiet
	untrusted.StartTLS()
	t.Cleanup(untrusted.Close)

	refused := testkit.ClosedTCPAddr(t)

	silent := listen(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	dnsAddr := dnsServer(t)
	grpcAddr := grpcServer(t)

	return []kind{
		{name: "http success", module: module(t, "http", ""), target: web.URL + "/ok", timeout: 10 * time.Second},
		{name: "http redirect", module: module(t, "http", ""), target: web.URL + "/redirect", timeout: 10 * time.Second},
		{name: "refused", module: module(t, "tcp", ""), target: refused, timeout: 10 * time.Second,
			class: taxonomy.ClassConnect, reason: taxonomy.ReasonRefused},
		{name: "timeout", module: module(t, "http", ""), target: "http://" + silent + "/", timeout: 50 * time.Millisecond,
			class: taxonomy.ClassTimeout, reason: taxonomy.ReasonDeadline},
		{name: "tls failure", module: module(t, "http", ""), target: untrusted.URL + "/ok", timeout: 10 * time.Second,
			class: taxonomy.ClassTLS, reason: taxonomy.ReasonCertUnknownAuthority},
		{name: "dns", module: module(t, "dns", "query_name: example.test\nquery_type: A"), target: dnsAddr, timeout: 10 * time.Second},
		{name: "dns timeout", module: module(t, "dns", "query_name: silent.test"), target: dnsAddr, timeout: 50 * time.Millisecond,
			class: taxonomy.ClassTimeout, reason: taxonomy.ReasonDeadline},
		{name: "grpc", module: module(t, "grpc", ""), target: grpcAddr, timeout: 10 * time.Second},
	}
}

// startHTTP3Targets starts the targets of HTTP/3 probes, all on loopback,
// and returns their kinds: an HTTP/3 server whose certificate one module
// trusts and the other does not, a UDP port nothing listens on, and a UDP
// socket that never answers.
func startHTTP3Targets(t *testing.T) []kind {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	// httptest's TLS server lends its certificate, which is its own CA.
	certSource := httptest.NewUnstartedServer(mux)
	certSource.Config.ErrorLog = log.New(io.Discard, "", 0)
	certSource.StartTLS()
	t.Cleanup(certSource.Close)
	h3, caFile := http3Server(t, certSource, mux)
	trusting := module(t, "http", "enable_http3: true\nenable_http2: false\ntls_config:\n  ca_file: "+caFile)
	untrusting := module(t, "http", "enable_http3: true\nenable_http2: false")

	return []kind{
		{name: "http3 success", module: trusting, target: h3 + "/ok", timeout: http3Timeout},
		{name: "http3 redirect", module: trusting, target: h3 + "/redirect", timeout: http3Timeout},
		{name: "http3 refused", module: untrusting, target: "https://" + testkit.ClosedUDPPort(t), timeout: http3Timeout,
			class: taxonomy.ClassConnect, reason: taxonomy.ReasonRefused},
		{name: "http3 timeout", module: untrusting, target: "https://" + testkit.SilentUDP(t), timeout: 50 * time.Millisecond,
			class: taxonomy.ClassTimeout, reason: taxonomy.ReasonDeadline},
		{name: "http3 tls failure", module: untrusting, target: h3 + "/ok", timeout: http3Timeout,
			class: taxonomy.ClassTLS, reason: taxonomy.ReasonCertUnknownAuthority},
	}
}

// http3Server serves handler over HTTP/3 on a loopback UDP socket, with
// the certificate of the TLS server tlsServer, and returns its URL and the
// certificate in a PEM file, for a module's ca_file.
func http3Server(t *testing.T, tlsServer *httptest.Server, handler http.Handler) (string, string) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http3.Server{
		Handler:   handler,
		TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: tlsServer.TLS.Certificates}),
		Logger:    slog.New(slog.DiscardHandler),
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(pc) }()
	t.Cleanup(func() { srv.Close(); <-done; pc.Close() })

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsServer.Certificate().Raw})
	if err := os.WriteFile(caFile, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	return "https://" + pc.LocalAddr().String(), caFile
}

// module loads a module of prober, its section given as YAML lines.
func module(t *testing.T, proberName, section string) *core.Module {
	t.Helper()
	src := fmt.Sprintf("modules:\n  m:\n    prober: %s\n", proberName)
	if section != "" {
		src += fmt.Sprintf("    %s:\n      %s\n", proberName, strings.ReplaceAll(section, "\n", "\n      "))
	}
	cfg, err := config.Load([]byte(src))
	if err != nil {
		t.Fatalf("config.Load:\n%s\n%v", src, err)
	}
	m, err := prober.NewModule(proberName, cfg.Modules["m"])
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// listen serves handle on a loopback port until the test ends.
func listen(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testkit.ServeConns(t, ln, handle)
	return ln.Addr().String()
}

// dnsServer answers A queries for example.test over UDP and leaves those
// for silent.test unanswered.
func dnsServer(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			if len(r.Question) != 1 || r.Question[0].Name == "silent.test." {
				return
			}
			m := new(dns.Msg)
			m.SetReply(r)
			rr, _ := dns.NewRR("example.test. 60 IN A 192.0.2.1")
			m.Answer = append(m.Answer, rr)
			w.WriteMsg(m)
		})}
	done := make(chan struct{})
	go func() { defer close(done); srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { srv.Shutdown(); <-done })
	return pc.LocalAddr().String()
}

// grpcServer serves the gRPC health service, reporting SERVING.
func grpcServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return ln.Addr().String()
}
