package collector

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// BenchmarkProbe measures one whole /probe request through the handler:
// module lookup, deadline, an HTTP probe of a loopback server on a fresh
// connection, the common metrics, the history and the exposition. It is
// the per-probe cost the load harness compares with blackbox_exporter.
func BenchmarkProbe(b *testing.B) {
	for _, bc := range []struct {
		name   string
		module string
	}{
		{"http", "http_2xx"},
		{"http_body_regexp", "http_body"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "healthy")
			}))
			defer target.Close()
			c, _ := newTestCollector(b, nil)
			req := httptest.NewRequest(http.MethodGet, probeURL(url.Values{"module": {bc.module}, "target": {target.URL}}), nil)
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
