// Package perf holds sonde's performance rules as tests, so that they are
// kept by a failing test rather than by the shape of the code: what one
// probe of each prober allocates, from a scrape's request to its answer
// through the /probe handler (allocs_test.go), and the goroutine stack a
// scrape holds in sonde while its probe waits for the target, served as
// sonde serve serves it (stack_test.go), which is most of what ten
// thousand probes in flight cost beyond their heap.
//
// Both measure bytes and counts, not time, so that a loaded machine does
// not move them; each prober's bound is today's figure with some
// headroom. A change that crosses one either costs what the bound guards
// against, or is worth it: then raise the bound in the same commit, and
// say why there. `go test ./test/perf -v` logs every figure.
//
// The peers, and the scrapes of the stack test, run in a child process
// (child_test.go), so that only sonde's allocations and stacks are in
// this process's figures. The race detector changes both (it instruments
// every function, which makes its frames larger, and sync.Pool drops
// items at random under it): the tests skip under -race, and make test
// runs the package again without it.
package perf

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/icmp"

	"github.com/sonde-exporter/sonde/collector"
	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober"
)

// module is one module of a prober, as a configuration file has it
// under modules:, named "probe".
type module struct {
	prober  string
	section string // the prober's section, YAML; %s stands for the peer's CA file
}

// The modules measured. Timeouts are long: a waiting probe waits until
// the test lets its peer answer.
var (
	httpModule  = module{"http", "preferred_ip_protocol: ip4"}
	httpsModule = module{"http", "preferred_ip_protocol: ip4\nfail_if_not_ssl: true\ntls_config:\n  ca_file: %s"}
	tcpModule   = module{"tcp", "preferred_ip_protocol: ip4"}
	// A tcp probe waits only on a conversation: this one asks the HTTP
	// peer for its page and expects the status line.
	tcpQueryModule = module{"tcp", `preferred_ip_protocol: ip4
query_response:
  - send: "GET / HTTP/1.0\r\n\r\n"
  - expect: "^HTTP/1\\.[01] 200"`}
	dnsModule = module{"dns", `preferred_ip_protocol: ip4
transport_protocol: udp
query_name: perf.test
query_type: A
valid_rcodes: [NOERROR]`}
	grpcModule      = module{"grpc", "preferred_ip_protocol: ip4"}
	unixModule      = module{"unix", "query_response:\n  - expect: \"^READY\""}
	websocketModule = module{"websocket", "query_response:\n  - expect: \"^hello\""}
	icmpModule      = module{"icmp", "preferred_ip_protocol: ip4"}
	// An icmp probe waits between its packets: this one has its first
	// reply at once and waits to send the second.
	icmpWaitModule = module{"icmp", "preferred_ip_protocol: ip4\npackets: 2\npacket_interval: 30s"}
)

// newCollector returns the /probe handler as sonde serve builds it at its
// defaults (a main log at info, which a successful probe writes nothing
// to; --log.prober=info, --timeout-offset=0.5, --history.limit=100),
// with no module yet.
func newCollector() *collector.Collector {
	return collector.New(collector.Options{
		TimeoutOffset: 0.5,
		HistoryLimit:  100,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		ProberLevel:   slog.LevelInfo,
		Registerer:    prometheus.NewRegistry(),
	})
}

// setModule gives c the module m as its only one, named "probe"; caFile
// is what m's %s stands for.
func setModule(t *testing.T, c *collector.Collector, m module, caFile string) {
	t.Helper()
	section := m.section
	if strings.Contains(section, "%s") {
		section = fmt.Sprintf(section, strconv.Quote(caFile))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "modules:\n  probe:\n    prober: %s\n    timeout: 60s\n    %s:\n", m.prober, m.prober)
	for _, line := range strings.Split(section, "\n") {
		b.WriteString("      " + line + "\n")
	}
	cfg, err := config.Load([]byte(b.String()))
	if err != nil {
		t.Fatalf("config.Load:\n%s\n%v", b.String(), err)
	}
	set, err := prober.NewSet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetModules(set)
}

// prometheusAccept is what Prometheus 3 asks /probe for.
const prometheusAccept = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5," +
	"application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3," +
	"text/plain;version=0.0.4;q=0.2,*/*;q=0.1"

// scrapeRequest is a /probe request of the module "probe" as Prometheus
// sends it.
func scrapeRequest(target string) *http.Request {
	q := neturl.Values{"module": {"probe"}, "target": {target}}
	r := httptest.NewRequest(http.MethodGet, "/probe?"+q.Encode(), nil)
	r.Header.Set("Accept", prometheusAccept)
	r.Header.Set("Accept-Encoding", "gzip")
	r.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "70")
	r.Header.Set("User-Agent", "Prometheus/3.5.0")
	return r
}

// answer is a ResponseWriter kept from one scrape to the next, so that
// the test's own writer allocates nothing per probe once it has grown.
type answer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newAnswer() *answer { return &answer{header: http.Header{}} }

func (a *answer) Header() http.Header { return a.header }

func (a *answer) WriteHeader(status int) {
	if a.status == 0 {
		a.status = status
	}
}

func (a *answer) Write(b []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	return a.body.Write(b)
}

func (a *answer) reset() {
	clear(a.header)
	a.status = 0
	a.body.Reset()
}

// text is the answer's body, decompressed.
func (a *answer) text() string {
	if a.header.Get("Content-Encoding") != "gzip" {
		return a.body.String()
	}
	zr, err := gzip.NewReader(bytes.NewReader(a.body.Bytes()))
	if err != nil {
		return "(not gzip: " + err.Error() + ")"
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return "(bad gzip: " + err.Error() + ")"
	}
	return string(b)
}

// succeeded says whether the answer is a successful probe's.
func (a *answer) succeeded() bool { return a.status == http.StatusOK && succeeded(a.text()) }

// succeeded says whether an exposition, in the text format or
// OpenMetrics, is a successful probe's.
func succeeded(exposition string) bool {
	return strings.Contains(exposition, "\nprobe_success 1\n") || strings.Contains(exposition, "\nprobe_success 1.0\n")
}

// needICMP skips the test when this process may send no ICMP echo
// request: it needs a ping socket (its group within
// net.ipv4.ping_group_range) or a raw one (root, or CAP_NET_RAW). It
// returns the kind sonde uses, the first the system allows: "datagram"
// or "raw".
func needICMP(t *testing.T) string {
	t.Helper()
	for _, kind := range []struct{ name, network string }{{"datagram", "udp4"}, {"raw", "ip4:icmp"}} {
		if c, err := icmp.ListenPacket(kind.network, "127.0.0.1"); err == nil {
			c.Close()
			return kind.name
		}
	}
	t.Skip("this process may open neither a ping socket nor a raw ICMP socket (docs/icmp-privileges.md)")
	return ""
}
