package perf

import (
	"bytes"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/sonde-exporter/sonde/collector"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
)

// stackRow bounds the goroutine stack one scrape of a prober holds in
// sonde while its probe waits for the target, over each transport a
// scrape comes by. A goroutine's stack doubles whenever a call does not
// fit and stays doubled while the probe waits, so the figure comes in
// steps: a probe whose deepest call fits in 8 KiB holds about 8, one that
// goes deeper anywhere, even in a call long returned, 16. The bounds are
// today's figures with some headroom, below the next step.
type stackRow struct {
	name   string
	module module
	peer   peerKind
	http1  float64 // KiB at most, per scrape over HTTP/1.1, Prometheus's default
	h2     float64 // KiB at most, per scrape over HTTP/2 with TLS
}

var stackRows = []stackRow{
	{name: "http", module: httpModule, peer: peerHTTP, http1: 21.0, h2: 18.5},
	// An https probe's request goes through net/http's Transport, built
	// by prometheus/common as blackbox builds it; its goroutines hold a
	// step more stack than those of sonde's own Transport did.
	{name: "https", module: httpsModule, peer: peerHTTPS, http1: 29.5, h2: 26.5},
	{name: "tcp", module: tcpQueryModule, peer: peerTCP, http1: 13.0, h2: 9.5},
	{name: "dns", module: dnsModule, peer: peerDNS, http1: 22.5, h2: 18.5},
	{name: "grpc", module: grpcModule, peer: peerGRPC, http1: 22.5, h2: 18.5},
	{name: "unix", module: unixModule, peer: peerUnix, http1: 13.0, h2: 9.5},
	{name: "websocket", module: websocketModule, peer: peerWebsocket, http1: 22.5, h2: 18.5},
	// An icmp probe waits between its packets. Its deepest call is at the
	// edge of 8 KiB: some probes hold 8, the others 16.
	{name: "icmp", module: icmpWaitModule, peer: peerNone, http1: 22.5, h2: 18.5},
}

// inFlight is how many probes wait at once: enough that the free stacks
// the runtime had before they started, which some of them get, are a
// small part of the figure per probe. Each holds two descriptors here
// (the scrape's connection and the probe's), and as many in the child.
const inFlight = 1000

// TestInFlightStack serves /probe as sonde serve does, over HTTP/1.1 and
// over HTTP/2 with TLS (exporter-toolkit's server), and has a child
// process scrape it inFlight times at once for each prober, against a
// peer that holds its answers. Once every probe waits, the stack memory
// that came in use in this process, per scrape, must be within the row's
// bound; then the peer answers, and every scrape must succeed.
func TestInFlightStack(t *testing.T) {
	skipUnderRace(t)
	for _, overTLS := range []bool{false, true} {
		transport := map[bool]string{false: "http1", true: "h2"}[overTLS]
		for _, row := range stackRows {
			t.Run(transport+"/"+row.name, func(t *testing.T) {
				if row.peer == peerNone {
					needICMP(t)
				}
				bound := map[bool]float64{false: row.http1, true: row.h2}[overTLS]
				kib := stackPerScrape(t, row, overTLS) / 1024
				t.Logf("%s over %s: %.2f KiB of stack per waiting probe (bound %.1f KiB)", row.name, transport, kib, bound)
				if kib > bound {
					t.Errorf("a waiting %s probe holds %.2f KiB of stack, more than its bound of %.1f KiB", row.name, kib, bound)
				}
			})
		}
	}
}

// stackPerScrape returns the stack memory that came in use while
// inFlight scrapes of row's module wait, per scrape. Garbage collection,
// which may shrink a stack, is off meanwhile: the figure is what the
// probes grew to.
func stackPerScrape(t *testing.T, row stackRow, overTLS bool) float64 {
	t.Helper()
	if need := uint64(2*inFlight + 256); openFileLimit() < need {
		t.Skipf("%d probes in flight need %d open files, and this process may open %d (ulimit -n)", inFlight, need, openFileLimit())
	}
	s := startSonde(t, overTLS)
	c := startChild(t, row.peer, childSpec{hold: true, scrape: s.url + "/probe?module=probe", scrapeCA: s.caFile, scrapes: inFlight})
	setModule(t, s.collector, row.module, c.caFile)
	runtime.GC() // frees the stacks of earlier rows' goroutines
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	before := stackInUse()
	c.tell(t, "go")
	c.expect(t, "waiting", 2*time.Minute)
	awaitBlocked(t, inFlight)
	held := stackInUse() - before
	c.release() // the peer answers; without one, the scrapes are cancelled
	c.expect(t, "done", 2*time.Minute)
	return float64(held) / inFlight
}

// sonde is /probe served as sonde serve serves it.
type sonde struct {
	collector *collector.Collector
	url       string // scheme://127.0.0.1:port
	caFile    string // its certificate over TLS
}

// startSonde serves a collector, with no module yet, through
// exporter-toolkit: in the clear, or over TLS with HTTP/2.
func startSonde(t *testing.T, overTLS bool) *sonde {
	t.Helper()
	s := &sonde{collector: newCollector(), url: "http://"}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var webConfig string
	if overTLS {
		dir := t.TempDir()
		certFile, keyFile := testcert.SelfSigned(t, testcert.Loopback()).WriteFiles(t, dir, "sonde")
		webConfig = filepath.Join(dir, "web.yml")
		text := "tls_server_config:\n  cert_file: " + certFile + "\n  key_file: " + keyFile + "\n"
		if err := os.WriteFile(webConfig, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		s.url, s.caFile = "https://", certFile
	}
	s.url += ln.Addr().String()
	mux := http.NewServeMux()
	mux.Handle("/probe", s.collector)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	systemd := false
	flags := &web.FlagConfig{WebListenAddresses: &[]string{ln.Addr().String()}, WebSystemdSocket: &systemd, WebConfigFile: &webConfig}
	go func() { _ = web.Serve(ln, srv, flags, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() { srv.Close() })
	return s
}

func stackInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.StackInuse
}

// awaitBlocked waits until at least n goroutines serving /probe have been
// blocked over several readings in a row: every probe has reached its
// wait, and none is passing through a short one on its way there.
func awaitBlocked(t *testing.T, n int) {
	t.Helper()
	const steady, every = 5, 20 * time.Millisecond
	buf := make([]byte, 64<<20)
	limit := time.Now().Add(time.Minute)
	for inARow := 0; inARow < steady; time.Sleep(every) {
		got := blockedServing(buf)
		if time.Now().After(limit) {
			t.Fatalf("%d goroutines serving /probe blocked after a minute, want %d", got, n)
		}
		if got >= n {
			inARow++
		} else {
			inARow = 0
		}
	}
}

// blockedServing counts the goroutines in Collector.ServeHTTP that are
// blocked (on the network, a channel, a timer), from a dump of every
// goroutine into buf.
func blockedServing(buf []byte) int {
	dump := buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(dump, []byte("\n\n")) {
		header, _, _ := bytes.Cut(g, []byte("\n"))
		running := bytes.Contains(header, []byte("[running")) || bytes.Contains(header, []byte("[runnable")) || bytes.Contains(header, []byte("[syscall"))
		if !running && bytes.Contains(g, []byte("collector.(*Collector).ServeHTTP(")) {
			n++
		}
	}
	return n
}
