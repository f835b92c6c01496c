package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// acceptHeader is what Prometheus 3 asks for by default: OpenMetrics
// first, then the text format. Each exporter answers with the best format
// it supports, as it would to Prometheus.
const acceptHeader = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5," +
	"application/openmetrics-text;version=0.0.1;q=0.4," +
	"text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3," +
	"text/plain;version=0.0.4;q=0.2,*/*;q=0.1"

// outcome is what one scrape of /probe showed.
type outcome struct {
	latency time.Duration
	probe   time.Duration // probe_duration_seconds: the part of the latency the probe took
	allowed time.Duration // probe_timeout_seconds, when the exporter says (sonde does, blackbox does not)
	ok      bool          // answered 200 with probe_success 1
	late    bool          // no answer within the scrape timeout, or the probe ran past its own
	failure string        // why it was not ok, for the report
	// class is the answer's class/reason of probe_failure_info, or what
	// stands for one: "success", "no class", "no answer".
	class string
}

// scraper sends the scrapes of one worker. It keeps its buffers between
// scrapes so that the harness itself stays cheap next to the exporter it
// measures on the same cores.
type scraper struct {
	client  *http.Client
	url     string
	timeout time.Duration // sent to the exporter as the scrape timeout
	wait    time.Duration // how long the scraper waits for the answer
	header  string        // the timeout, as Prometheus writes it
	gzip    bool          // ask for a compressed answer, as Prometheus does
	body    bytes.Buffer
	raw     bytes.Buffer
	gz      *gzip.Reader
}

// newScraper returns the scraper of the i-th concurrent scrape.
func newScraper(e *exporter, i int, m Module, timeout time.Duration) *scraper {
	q := url.Values{"module": {m.Name}, "target": {m.Target}}
	return &scraper{
		client:  e.client(i),
		url:     e.base + "/probe?" + q.Encode(),
		timeout: timeout,
		wait:    timeout,
		header:  strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64),
		gzip:    !e.identity,
	}
}

// scrape sends one probe request with the headers Prometheus sends and
// judges the answer.
func (s *scraper) scrape(ctx context.Context) outcome {
	ctx, cancel := context.WithTimeout(ctx, s.wait)
	defer cancel()
	start := time.Now()
	body, status, err := s.fetch(ctx)
	o := outcome{latency: time.Since(start), class: "no answer"}
	switch {
	case err != nil && ctx.Err() != nil:
		o.late, o.failure = true, fmt.Sprintf("no answer within %s: %v", s.wait, err)
	case err != nil:
		o.failure = err.Error()
	case status != http.StatusOK:
		o.failure = fmt.Sprintf("status %d: %.200s", status, body)
	default:
		o.ok, o.late, o.failure = judge(body)
		o.class = failureClass(body, o.ok)
		if d, found := sampleValue(body, "probe_duration_seconds"); found {
			o.probe = time.Duration(d * float64(time.Second))
		}
		if d, found := sampleValue(body, "probe_timeout_seconds"); found {
			o.allowed = time.Duration(d * float64(time.Second))
		}
	}
	return o
}

// failureClass returns the class/reason of the answer's
// probe_failure_info, "success" for a successful probe, or "no class"
// when the answer has none (blackbox_exporter's never has).
func failureClass(body []byte, ok bool) string {
	if ok {
		return "success"
	}
	_, rest, found := bytes.Cut(body, []byte("\nprobe_failure_info{"))
	if !found {
		return "no class"
	}
	labels, _, _ := bytes.Cut(rest, []byte("}"))
	return labelValue(labels, "class") + "/" + labelValue(labels, "reason")
}

// labelValue finds name="value" in a series' labels.
func labelValue(labels []byte, name string) string {
	_, rest, found := bytes.Cut(labels, []byte(name+`="`))
	if !found {
		return "?"
	}
	value, _, _ := bytes.Cut(rest, []byte(`"`))
	return string(value)
}

// judge reads a probe's answer: it must say probe_success 1, within the
// time it was allowed.
func judge(body []byte) (ok, late bool, failure string) {
	success, found := sampleValue(body, "probe_success")
	if !found {
		return false, false, fmt.Sprintf("no probe_success in the answer: %.200s", body)
	}
	duration, _ := sampleValue(body, "probe_duration_seconds")
	allowed, hasTimeout := sampleValue(body, "probe_timeout_seconds")
	late = hasTimeout && duration >= allowed
	if success != 1 {
		return false, late, fmt.Sprintf("probe_success %v: %.300s", success, body)
	}
	return true, late, ""
}

// fetch sends the request and returns the decompressed body.
func (s *scraper) fetch(ctx context.Context) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", acceptHeader)
	if s.gzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", s.header)
	req.Header.Set("User-Agent", "sonde-loadharness")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	s.raw.Reset()
	if _, err := s.raw.ReadFrom(resp.Body); err != nil {
		return nil, resp.StatusCode, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.Header.Get("Content-Encoding") != "gzip" {
		return s.raw.Bytes(), resp.StatusCode, nil
	}
	body, err := s.gunzip()
	return body, resp.StatusCode, err
}

func (s *scraper) gunzip() ([]byte, error) {
	var err error
	if s.gz == nil {
		s.gz, err = gzip.NewReader(&s.raw)
	} else {
		err = s.gz.Reset(&s.raw)
	}
	if err != nil {
		return nil, fmt.Errorf("decompressing the answer: %w", err)
	}
	s.body.Reset()
	if _, err := io.Copy(&s.body, s.gz); err != nil {
		return nil, fmt.Errorf("decompressing the answer: %w", err)
	}
	return s.body.Bytes(), nil
}
