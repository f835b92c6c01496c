package collector

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/prometheus/common/expfmt"

	"github.com/sonde-exporter/sonde/prober/probemetrics"
)

// expfmtBody is what expfmt writes for the sink's families in format.
func expfmtBody(t *testing.T, sink *probemetrics.Sink, format expfmt.Format) string {
	t.Helper()
	mfs, err := sink.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// exposeBody runs expose and returns the answer, decompressed.
func exposeBody(t *testing.T, c *Collector, sink *probemetrics.Sink, accept string, gzipped bool) (string, http.Header) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/probe", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if gzipped {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	rec := httptest.NewRecorder()
	c.expose(rec, req, sink)
	body := rec.Body.Bytes()
	if rec.Header().Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	return string(body), rec.Header()
}

// Whatever the scraper asks for, the answer is what expfmt would write in
// the negotiated format: the sink's own writer for the text formats, expfmt
// itself for the others and for names it would quote. The format is
// negotiated afresh when the Accept header changes, though the last one is
// kept.
func TestExposeMatchesExpfmt(t *testing.T) {
	c, _ := newTestCollector(t, nil)
	plain := probemetrics.NewSink()
	plain.Set("probe_success", "Displays whether or not the probe was a success", 1)
	plain.Set("probe_duration_seconds", "Returns how long the probe took", 0.000652254)
	plain.GaugeVec("probe_http_duration_seconds", "Duration by phase", "phase").With("connect").Set(0.5)
	plain.GaugeVec("probe_failure_info", "Why, with \"quotes\" and a \\", "class", "reason", "phase").With("tls", "cert_expired", "tls").Set(1)
	quoted := probemetrics.NewSink()
	quoted.Set("probe_success", "ok", 1)
	quoted.GaugeVec("probe_expect_info", "labels from the configuration", "service.name").With("x").Set(1)

	accepts := []string{
		"",
		acceptPrometheus,
		"application/openmetrics-text;version=0.0.1",
		"text/plain;version=0.0.4",
		"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
		acceptPrometheus, // back again, after other formats were cached
	}
	for name, sink := range map[string]*probemetrics.Sink{"plain names": plain, "a quoted name": quoted} {
		for _, accept := range accepts {
			for _, gzipped := range []bool{false, true} {
				got, header := exposeBody(t, c, sink, accept, gzipped)
				h := http.Header{}
				if accept != "" {
					h.Set("Accept", accept)
				}
				format := expfmt.NegotiateIncludingOpenMetrics(h)
				if ct := header.Get("Content-Type"); ct != string(format) {
					t.Errorf("%s, Accept %q: Content-Type %q, want %q", name, accept, ct, format)
				}
				if want := expfmtBody(t, sink, format); got != want {
					t.Errorf("%s, Accept %q, gzip %v: the answer\n%q\nis not expfmt's\n%q", name, accept, gzipped, got, want)
				}
			}
		}
	}
}

// Answers of every size come back whole: small ones through quickgzip,
// with their length stated, and those over maxQuickGzip through the
// streaming compressor.
func TestExposeGzipBySize(t *testing.T) {
	c, _ := newTestCollector(t, nil)
	for _, series := range []int{1, 200, 2000} {
		sink := probemetrics.NewSink()
		vec := sink.GaugeVec("probe_http_duration_seconds", "Duration by phase", "phase")
		for i := range series {
			vec.With(strconv.Itoa(i)).Set(float64(i) / 7)
		}
		want := expfmtBody(t, sink, expfmt.NegotiateIncludingOpenMetrics(http.Header{"Accept": {acceptPrometheus}}))
		for round := range 2 { // the second time with pooled encoders
			got, header := exposeBody(t, c, sink, acceptPrometheus, true)
			if got != want {
				t.Fatalf("%d series, round %d: the answer (%d bytes) is not expfmt's (%d bytes)", series, round, len(got), len(want))
			}
			if header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("%d series: Content-Encoding %q, want gzip", series, header.Get("Content-Encoding"))
			}
			quick := len(want) <= maxQuickGzip
			if stated := header.Get("Content-Length") != ""; stated != quick {
				t.Errorf("%d series (%d bytes): Content-Length stated %v, want %v", series, len(want), stated, quick)
			}
		}
	}
}
