package collector

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// BenchmarkProbe measures one whole /probe request through the handler:
// module lookup, deadline, a probe of a loopback server on a fresh
// connection, the common metrics, the history and the gzipped exposition.
// It is the per-probe cost the load harness compares with
// blackbox_exporter.
func BenchmarkProbe(b *testing.B) {
	for _, bc := range []struct {
		name   string
		module string
		target func(b *testing.B) string
	}{
		{"http", "http_2xx", healthyServer},
		{"http_body_regexp", "http_body", healthyServer},
		{"tcp", "tcp_connect", func(b *testing.B) string { return listen(b, closeConn) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c, _ := newTestCollector(b, nil)
			req := httptest.NewRequest(http.MethodGet, probeURL(url.Values{"module": {bc.module}, "target": {bc.target(b)}}), nil)
			req.Header.Set("Accept-Encoding", "gzip")
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rec := httptest.NewRecorder()
				c.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}

// closeConn is all a tcp probe with no query_response needs of its peer.
func closeConn(c net.Conn) { c.Close() }

// healthyServer starts an HTTP server that answers "healthy".
func healthyServer(b *testing.B) string {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "healthy")
	}))
	b.Cleanup(target.Close)
	return target.URL
}

// BenchmarkInFlightStack reports the goroutine stack a probe holds while
// it waits for its target's answer, which is what ten thousand probes in
// flight cost beyond their heap (docs/scaling.md). A goroutine starts
// small and doubles its stack whenever a call does not fit, and a probe
// waiting on its connection is too deep for the runtime to shrink it
// again: a probe whose deepest call fits in 8 KiB holds 8 KiB, one that
// goes deeper anywhere, even in a call long returned, holds 16.
//
// Each probe runs ServeHTTP on a goroutine of its own, as net/http's
// server runs a handler, against a peer that reads the probe's request
// and answers only once every probe waits; the figure is the runtime's
// stack memory then, per probe. The benchmark's other goroutines add a
// few hundred bytes to it.
func BenchmarkInFlightStack(b *testing.B) {
	const cfg = `
modules:
  http:
    prober: http
    timeout: 20s
  tcp:
    prober: tcp
    timeout: 20s
    tcp:
      query_response:
        - send: "GET / HTTP/1.0\r\n\r\n"
        - expect: "^HTTP/1\\.0 200"
`
	c := collectorFor(b, cfg)
	for _, module := range []string{"tcp", "http"} {
		b.Run(module, func(b *testing.B) {
			var perProbe float64
			for b.Loop() {
				perProbe = stackPerProbe(b, c, module, 1000)
			}
			b.ReportMetric(perProbe, "stack-B/probe")
		})
	}
}

// stackPerProbe starts n probes of module against a peer that holds them
// until all have sent their request, and returns the stack memory in use
// then, per probe.
func stackPerProbe(b *testing.B, c *Collector, module string, n int) float64 {
	peer := newHoldingPeer(b)
	defer peer.close()
	req := httptest.NewRequest(http.MethodGet, probeURL(url.Values{"module": {module}, "target": {peer.target(module)}}), nil)
	runtime.GC() // frees the stacks of earlier waves' goroutines
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			c.ServeHTTP(rec, req)
			if !strings.Contains(rec.Body.String(), "probe_success 1") {
				b.Errorf("%s probe failed:\n%s", module, rec.Body.String())
			}
		})
	}
	peer.waitFor(n)
	held := stackInUse()
	peer.answerAll()
	wg.Wait()
	return float64(held) / float64(n)
}

func stackInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.StackInuse
}

// holdingPeer accepts connections and reads a request from each on one
// goroutine, so that it adds no stacks of its own per probe, and answers
// them all when told.
type holdingPeer struct {
	l     net.Listener
	read  chan struct{} // one per request read
	conns []net.Conn
	done  chan struct{}
}

func newHoldingPeer(b *testing.B) *holdingPeer {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	p := &holdingPeer{l: l, read: make(chan struct{}, 4096), done: make(chan struct{})}
	go p.serve()
	return p
}

func (p *holdingPeer) target(module string) string {
	if module == "http" {
		return "http://" + p.l.Addr().String() + "/"
	}
	return p.l.Addr().String()
}

func (p *holdingPeer) serve() {
	defer close(p.done)
	for {
		conn, err := p.l.Accept()
		if err != nil {
			return
		}
		// Every probe sends a request ending in an empty line.
		if _, err := http.ReadRequest(bufio.NewReader(conn)); err != nil {
			conn.Close()
			continue
		}
		p.conns = append(p.conns, conn)
		p.read <- struct{}{}
	}
}

func (p *holdingPeer) waitFor(n int) {
	for range n {
		<-p.read
	}
}

// answerAll answers every request held and stops accepting.
func (p *holdingPeer) answerAll() {
	p.l.Close()
	<-p.done
	for _, conn := range p.conns {
		io.WriteString(conn, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
		conn.Close()
	}
	p.conns = nil
}

func (p *holdingPeer) close() {
	p.l.Close()
	<-p.done
	for _, conn := range p.conns {
		conn.Close()
	}
}
