package collector

import (
	"bytes"
	stdgzip "compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/sonde-exporter/sonde/internal/quickgzip"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
)

// The exposition of one probe's metrics, and the parsing of a scrape's
// parameters, apart from the probe itself (BenchmarkProbe has the whole).
//
//	go test ./collector -run '^$' -bench 'Expose|Parse|Run' -benchmem

// acceptPrometheus is what Prometheus 3 sends by default.
const acceptPrometheus = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5," +
	"application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3," +
	"text/plain;version=0.0.4;q=0.2,*/*;q=0.1"

// probedSink runs one real HTTP probe and returns its metrics, the set a
// scrape of an http module answers with.
func probedSink(b *testing.B, c *Collector) *probemetrics.Sink {
	b.Helper()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "healthy") }))
	defer target.Close()
	m, _ := c.Modules().Module("http_2xx")
	res := Run(context.Background(), m, target.URL, 5*time.Second, slog.New(slog.DiscardHandler), slog.LevelDebug)
	if res.Err != nil {
		b.Fatalf("probe failed: %v", res.Err)
	}
	return res.Sink
}

// BenchmarkExpose writes one probe's metrics as each scraper asks for them.
func BenchmarkExpose(b *testing.B) {
	c, _ := newTestCollector(b, nil)
	sink := probedSink(b, c)
	for _, bc := range []struct {
		name, accept, encoding string
	}{
		{"text", "", ""},
		{"text_gzip", "", "gzip"},
		{"prometheus_gzip", acceptPrometheus, "gzip"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/probe", nil)
			if bc.accept != "" {
				req.Header.Set("Accept", bc.accept)
			}
			if bc.encoding != "" {
				req.Header.Set("Accept-Encoding", bc.encoding)
			}
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				c.expose(rec, req, sink)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}

// BenchmarkParse reads a scrape's module, target and deadline.
func BenchmarkParse(b *testing.B) {
	c, _ := newTestCollector(b, nil)
	req := httptest.NewRequest(http.MethodGet, probeURL(url.Values{"module": {"http_2xx"}, "target": {"http://127.0.0.1:8080/"}}), nil)
	req.Header.Set(ScrapeTimeoutHeader, "10")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.parse(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRun is one probe through Run, the code path every probe takes,
// without the HTTP server around it: logging, retries, common metrics.
func BenchmarkRun(b *testing.B) {
	c, _ := newTestCollector(b, nil)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "healthy") }))
	defer target.Close()
	m, _ := c.Modules().Module("http_2xx")
	logger := slog.New(slog.DiscardHandler)
	b.ReportAllocs()
	for b.Loop() {
		if res := Run(context.Background(), m, target.URL, 5*time.Second, logger, slog.LevelDebug); res.Err != nil {
			b.Fatalf("probe failed: %v", res.Err)
		}
	}
}

// BenchmarkGzipAnswer compresses one probe's answer (an http probe's
// OpenMetrics exposition) with a reused writer, as expose does: the
// standard library's compress/gzip and klauspost/compress's at the fastest
// level (expose uses klauspost's for answers over maxQuickGzip), and
// quickgzip, which expose uses for the rest. All are valid gzip; the size
// of each is reported as bytes/answer.
func BenchmarkGzipAnswer(b *testing.B) {
	c, _ := newTestCollector(b, nil)
	body, ok := probedSink(b, c).AppendText(nil, true)
	if !ok {
		b.Fatal("AppendText declined")
	}
	for _, bc := range []struct {
		name string
		w    interface {
			io.WriteCloser
			Reset(io.Writer)
		}
	}{
		{"stdlib", must(stdgzip.NewWriterLevel(io.Discard, stdgzip.BestSpeed))},
		{"klauspost", must(gzip.NewWriterLevel(io.Discard, gzip.BestSpeed))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var out bytes.Buffer
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				out.Reset()
				bc.w.Reset(&out)
				if _, err := bc.w.Write(body); err != nil {
					b.Fatal(err)
				}
				if err := bc.w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out.Len()), "bytes/answer")
		})
	}
	b.Run("quickgzip", func(b *testing.B) {
		var enc quickgzip.Encoder
		var out []byte
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			out = enc.Append(out[:0], body)
		}
		b.ReportMetric(float64(len(out)), "bytes/answer")
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
