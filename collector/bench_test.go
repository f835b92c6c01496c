package collector

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
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
