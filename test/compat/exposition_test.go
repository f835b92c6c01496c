package compat

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// acceptHeaders are Accept headers scrapers send: Prometheus 3's default
// (OpenMetrics preferred, then text), its protobuf-first one (native
// histograms), an OpenMetrics-only and a text-only client, and none.
var acceptHeaders = []struct{ name, accept string }{
	{"prometheus3_default", "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"},
	{"prometheus_protobuf_first", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"},
	{"openmetrics_only", "application/openmetrics-text;version=1.0.0"},
	{"text_004", "text/plain;version=0.0.4"},
	{"none", ""},
}

// negotiate asks both exporters for the same probe with each Accept
// header, gzip accepted: the format each answers in must be the same (a
// scraper parses what it is given), and so must what the answer holds.
// Each header is a pseudo-scenario, judged like the others.
func negotiate(ctx context.Context, bbe, sonde *exporter, target string) ([]scenario, map[string]result) {
	var cases []scenario
	results := map[string]result{}
	for _, h := range acceptHeaders {
		s := scenario{name: "negotiation_" + h.name, target: target}
		header := http.Header{"Accept-Encoding": {"gzip"}, "X-Prometheus-Scrape-Timeout-Seconds": {defaultScrapeTimeout}}
		if h.accept != "" {
			header.Set("Accept", h.accept)
		}
		q := url.Values{"module": {"http_2xx"}, "target": {target}}
		b := fetchAnswer(ctx, bbe.base+"/probe?"+q.Encode(), header)
		so := fetchAnswer(ctx, sonde.base+"/probe?"+q.Encode(), header)
		r := result{bbe: b.answer, sonde: so.answer}
		if b.contentType != so.contentType {
			r.deltas = append(r.deltas, delta{scenario: s.name, kind: deltaFormat, bbe: b.contentType, sonde: so.contentType})
		}
		r.deltas = append(r.deltas, compareAnswers(s.name, b.answer, so.answer)...)
		cases = append(cases, s)
		results[s.name] = r
	}
	return cases, results
}

// typedAnswer is an answer and the Content-Type it came in.
type typedAnswer struct {
	answer
	contentType string
}

// fetchAnswer asks for a probe and decodes the answer in whatever format
// it came.
func fetchAnswer(ctx context.Context, u string, header http.Header) typedAnswer {
	f, err := fetch(ctx, u, header)
	a := typedAnswer{answer: answer{status: f.status, body: string(f.body), err: err}, contentType: f.contentType}
	if err == nil && f.status == 200 {
		a.expo, _ = decodeExposition(f)
	}
	return a
}

// fetched is an answer with the headers that say how to read it.
type fetched struct {
	status      int
	contentType string
	body        []byte // decompressed
}

func fetch(ctx context.Context, u string, header http.Header) (fetched, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fetched{}, err
	}
	req.Header = header
	resp, err := http.DefaultTransport.RoundTrip(req) // no transparent gzip: the header is ours
	if err != nil {
		return fetched{}, err
	}
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return fetched{}, fmt.Errorf("gunzipping the answer: %w", err)
		}
		r = zr
	}
	body, err := io.ReadAll(r)
	return fetched{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: body}, err
}

// decodeExposition reads an answer in the text, OpenMetrics or protobuf
// format. OpenMetrics is read as text less its "# EOF" line, which holds
// for probe answers: all gauges, so no _total or _created samples.
func decodeExposition(f fetched) (exposition, error) {
	media, _, _ := mime.ParseMediaType(f.contentType)
	switch media {
	case "application/openmetrics-text":
		body, ok := strings.CutSuffix(string(f.body), "# EOF\n")
		if !ok {
			return nil, errors.New("an OpenMetrics answer without its # EOF line")
		}
		return parseExposition(body)
	case "text/plain":
		return parseExposition(string(f.body))
	}
	dec := expfmt.NewDecoder(bytes.NewReader(f.body), expfmt.Format(f.contentType))
	var mfs []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("decoding %s: %w", f.contentType, err)
		}
		mfs = append(mfs, mf)
	}
	return fromFamilies(mfs), nil
}

// checkExporterMetrics compares the exporters' own /metrics: BBE's
// blackbox_* families must be in sonde's, with the same values where they
// count the same events (the scenarios asked both for unknown modules
// alike), but for the build info sonde names sonde_build_info.
func checkExporterMetrics(t *testing.T, bbe, sonde *exporter) {
	t.Run("exporter_metrics", func(t *testing.T) {
		expo := func(e *exporter) exposition {
			status, body, err := get(t.Context(), e.base+"/metrics", http.Header{"Accept": {"text/plain;version=0.0.4"}})
			if err != nil || status != 200 {
				t.Fatalf("%s /metrics: %d, %v", e.name, status, err)
			}
			x, err := parseExposition(body)
			if err != nil {
				t.Fatalf("%s /metrics: %v", e.name, err)
			}
			return x
		}
		b, s := expo(bbe), expo(sonde)
		for name, bf := range b {
			if !strings.HasPrefix(name, "blackbox_") || name == "blackbox_exporter_build_info" {
				continue
			}
			sf, ok := s[name]
			switch {
			case !ok:
				t.Errorf("sonde's /metrics lacks %s", name)
				continue
			case bf.kind != sf.kind:
				t.Errorf("%s: BBE's is a %s, sonde's a %s", name, bf.kind, sf.kind)
			}
			if name == "blackbox_exporter_config_last_reload_success_timestamp_seconds" {
				continue // when each loaded its file
			}
			if got, want := describeFamily(sf), describeFamily(bf); got != want {
				t.Errorf("%s: BBE %s, sonde %s", name, want, got)
			}
		}
		if _, ok := s["sonde_build_info"]; !ok {
			t.Error("sonde's /metrics lacks sonde_build_info, which stands for BBE's blackbox_exporter_build_info")
		}
	})
}
