// Package collector serves /probe: it picks the module, computes the
// deadline, runs the prober with a fresh metric sink, and answers with the
// probe's metrics. It also keeps the probe history and the exporter's own
// metrics, and serves the pages that show them.
package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"go.opentelemetry.io/otel/trace"

	"github.com/sonde-exporter/sonde/internal/acceptencoding"
	"github.com/sonde-exporter/sonde/internal/quickgzip"
	"github.com/sonde-exporter/sonde/internal/redact"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// DefaultModule is the module used when a scrape names none, as in
// blackbox_exporter.
const DefaultModule = "http_2xx"

// Options configure a Collector.
type Options struct {
	TimeoutOffset float64      // --timeout-offset, seconds
	HistoryLimit  int          // --history.limit
	Logger        *slog.Logger // the main logger
	ProberLevel   slog.Level   // --log.prober
	Registerer    prometheus.Registerer
	Tracer        trace.Tracer // nil when tracing is off
	MaxConcurrent int          // --probe.max-concurrent; 0: no limit
}

// Collector answers /probe with the modules it was last given.
type Collector struct {
	modules     atomic.Pointer[core.Set]
	history     *History
	offset      float64
	logger      *slog.Logger
	proberLevel slog.Level
	gzips       sync.Pool                  // *gzip.Writer, for large answers
	quickGzips  sync.Pool                  // *quickgzip.Encoder
	buffers     sync.Pool                  // *[]byte, for expositions
	lastFormat  atomic.Pointer[negotiated] // the last Accept header's format
	tracer      trace.Tracer
	limits      *limits // concurrency limits, see limit.go

	*selfMetrics
}

// New returns a Collector with no modules; call SetModules before serving.
func New(o Options) *Collector {
	c := &Collector{
		history:     NewHistory(o.HistoryLimit),
		offset:      o.TimeoutOffset,
		logger:      o.Logger,
		proberLevel: o.ProberLevel,
		tracer:      o.Tracer,
		selfMetrics: newSelfMetrics(o.Registerer),
		limits:      newLimits(o.MaxConcurrent, o.Registerer),
	}
	c.modules.Store(&core.Set{})
	return c
}

// SetModules switches to a new set of modules; probes already running
// finish with the set they started with.
func (c *Collector) SetModules(s *core.Set) {
	c.limits.setModules(s)
	c.modules.Store(s)
}

// Modules returns the current set of modules.
func (c *Collector) Modules() *core.Set { return c.modules.Load() }

// History returns the probe history.
func (c *Collector) History() *History { return c.history }

// refusal is a scrape sonde answers with an HTTP error instead of a probe,
// with blackbox_exporter's status code; its message says what to fix.
type refusal struct {
	status int
	msg    string
}

func (e *refusal) Error() string { return e.msg }

func refuse(status int, format string, args ...any) error {
	return &refusal{status: status, msg: fmt.Sprintf(format, args...)}
}

// scrapeRequest is what a /probe request asks for.
type scrapeRequest struct {
	module  *core.Module
	target  string
	timeout time.Duration
	// failed is set when the probe cannot run as asked but is answered
	// as a failed probe, as blackbox would answer it.
	failed *taxonomy.Error
}

// ServeHTTP runs one probe: /probe?module=M&target=T[&hostname=H][&debug=true].
func (c *Collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := c.parse(r)
	if err != nil {
		c.logger.Debug("Refused probe request", "err", redact.Cut(err.Error(), redact.MaxValue), "url", shownURL(r.URL))
		status := http.StatusBadRequest
		if ref, ok := err.(*refusal); ok {
			status = ref.status
		}
		http.Error(w, err.Error(), status)
		return
	}
	res := c.probe(requestContext(r, c.tracer), req)
	c.history.Add(res)
	c.count(res)
	// The query is parsed again only when it may ask for debug output.
	if strings.Contains(r.URL.RawQuery, "debug") && r.URL.Query().Get("debug") == "true" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, res.DebugOutput())
		return
	}
	c.expose(w, r, res.Sink)
}

// probe runs the probe req asks for, or fails it at once when it cannot
// run as asked.
func (c *Collector) probe(ctx context.Context, req scrapeRequest) *Result {
	id := c.history.NewID()
	if req.failed != nil {
		return c.failedBeforeRunning(ctx, id, req.module, req.target, req.timeout, time.Now(), req.failed)
	}
	return c.limited(ctx, id, req.module, req.target, req.timeout)
}

func (c *Collector) runner() Runner {
	return Runner{Logger: c.logger, ProberLevel: c.proberLevel, Tracer: c.tracer}
}

// parse reads the scrape's parameters: the module, the target and the
// deadline. It checks them in blackbox_exporter's order, so that a scrape
// wrong in several ways gets blackbox's answer; every refusal says what to
// change.
func (c *Collector) parse(r *http.Request) (scrapeRequest, error) {
	q := r.URL.Query()
	name := q.Get("module")
	if name == "" {
		name = DefaultModule
	}
	set := c.Modules()
	m, ok := set.Module(name)
	if !ok {
		c.unknownModule.Inc()
		return scrapeRequest{}, refuse(http.StatusBadRequest, "Unknown module %q; the configured modules are: %s", name, strings.Join(set.Names(), ", "))
	}
	timeout, err := probeTimeout(r.Header, m.Timeout, c.offset)
	if err != nil {
		return scrapeRequest{}, err
	}
	target := q.Get("target")
	if target == "" {
		return scrapeRequest{}, refuse(http.StatusBadRequest, "Target parameter is missing; add target=<host, host:port or URL> to the probe URL")
	}
	if _, ok := m.Func(); !ok {
		return scrapeRequest{}, refuse(http.StatusBadRequest, "Unknown prober %q", m.Prober)
	}
	req := scrapeRequest{module: m, target: target, timeout: timeout}
	hm, err := m.WithHostname(q.Get("hostname"))
	var failed *taxonomy.Error
	switch {
	case errors.As(err, &failed):
		req.failed = failed // a hostname the prober cannot send
	case err != nil:
		return scrapeRequest{}, refuse(http.StatusBadRequest, "Bad hostname parameter: %v", err)
	default:
		req.module = hm
	}
	return req, nil
}

// ScrapeTimeoutHeader is the header in which Prometheus sends its scrape
// timeout.
const ScrapeTimeoutHeader = "X-Prometheus-Scrape-Timeout-Seconds"

// defaultScrapeTimeout is assumed when a scrape does not say, as blackbox does.
const defaultScrapeTimeout = 120.0

// probeTimeout computes how long a probe may run: the scrape timeout less
// the offset, or the module's timeout when it is set and shorter. A header
// that is not a number is blackbox's 500.
//
// When the offset leaves no time and the module sets none, the probe gets
// the whole scrape timeout, where blackbox_exporter would fail it at once.
// A negative scrape timeout leaves no time at all: the probe gets the
// module's timeout if it has one, else none and fails at once, as in
// blackbox; so does NaN, even with a module timeout, as in blackbox. One
// too long to be a Go duration (1e10, +Inf), which blackbox on amd64 turns
// into a negative one and fails at once, is clamped to the longest
// duration: the scrape it came with still ends the probe.
func probeTimeout(h http.Header, module time.Duration, offset float64) (time.Duration, error) {
	scrape := defaultScrapeTimeout
	if v := h.Get(ScrapeTimeoutHeader); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, refuse(http.StatusInternalServerError, "Failed to parse timeout from Prometheus header: %v", err)
		}
		if f != 0 {
			scrape = f
		}
	}
	limit := scrape - offset
	switch {
	case module > 0 && (module.Seconds() < limit || limit <= 0):
		return module, nil
	case limit > 0:
		return seconds(limit), nil
	}
	return seconds(scrape), nil
}

// seconds converts a number of seconds to a duration: no time at all for
// one that is not positive, or NaN, and the longest duration for one too
// long to be a duration, which a plain conversion would overflow into a
// negative one.
func seconds(f float64) time.Duration {
	if !(f > 0) { // NaN too
		return 0
	}
	ns := f * float64(time.Second)
	if ns >= float64(math.MaxInt64) { // 2^63: the first value that overflows
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(ns)
}

// expose writes the probe's metrics in the format the scraper asked for,
// compressed when it accepts gzip. The exposition is rendered whole into a
// pooled buffer first: one write to the compressor (or the connection)
// instead of one per line.
func (c *Collector) expose(w http.ResponseWriter, r *http.Request, sink *probemetrics.Sink) {
	n := c.negotiate(r.Header.Get("Accept"))
	buf := c.buffer()
	defer c.putBuffer(buf)
	body, err := n.encode((*buf)[:0], sink)
	*buf = body[:0]
	if err != nil {
		c.logger.Error("Encoding probe metrics failed", "err", err)
		http.Error(w, "encoding probe metrics: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", string(n.format))
	if !acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if _, err := w.Write(body); err != nil {
			c.logger.Error("Writing probe metrics failed", "err", err)
		}
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	if len(body) > maxQuickGzip {
		err = c.gzipStream(w, body)
	} else {
		err = c.gzipQuick(w, body)
	}
	if err != nil {
		c.logger.Error("Writing probe metrics failed", "err", err)
	}
}

// maxQuickGzip is the largest answer compressed by quickgzip. Nearly every
// answer is far smaller; a larger one is worth the dynamic Huffman tables
// of a general compressor, whose cost it then spreads over more bytes.
const maxQuickGzip = 16 << 10

// gzipQuick compresses body in one call, with no tables to build: for a
// few KiB that is far less CPU than the fastest streaming level, for
// somewhat larger answers (docs/performance.md, internal/quickgzip).
func (c *Collector) gzipQuick(w http.ResponseWriter, body []byte) error {
	enc, ok := c.quickGzips.Get().(*quickgzip.Encoder)
	if !ok {
		enc = new(quickgzip.Encoder)
	}
	defer c.quickGzips.Put(enc)
	out := c.buffer()
	defer c.putBuffer(out)
	*out = enc.Append((*out)[:0], body)
	w.Header().Set("Content-Length", strconv.Itoa(len(*out)))
	_, err := w.Write(*out)
	return err
}

// gzipStream compresses a large body with a pooled streaming writer.
func (c *Collector) gzipStream(w io.Writer, body []byte) error {
	gz := c.gzipWriter(w)
	defer c.gzips.Put(gz)
	_, err := gz.Write(body)
	if cerr := gz.Close(); err == nil {
		err = cerr
	}
	return err
}

// negotiated is the exposition format chosen for one Accept header.
type negotiated struct {
	accept string
	format expfmt.Format
	// text is set for the formats the sink writes itself (the text format
	// and OpenMetrics 1.0.0 and 0.0.1); others go through expfmt.
	text, openMetrics bool
}

// negotiate picks the format for an Accept header. Prometheus sends the
// same header on every scrape, so the last answer is kept: parsing the
// header is otherwise a measurable part of a cheap probe.
func (c *Collector) negotiate(accept string) *negotiated {
	if n := c.lastFormat.Load(); n != nil && n.accept == accept {
		return n
	}
	h := http.Header{}
	if accept != "" {
		h.Set("Accept", accept)
	}
	n := &negotiated{accept: accept, format: expfmt.NegotiateIncludingOpenMetrics(h)}
	switch n.format.FormatType() {
	case expfmt.TypeTextPlain:
		n.text = true
	case expfmt.TypeOpenMetrics:
		version := formatParam(string(n.format), "version")
		n.text = version == expfmt.OpenMetricsVersion_1_0_0 || version == expfmt.OpenMetricsVersion_0_0_1
		n.openMetrics = n.text
	}
	c.lastFormat.Store(n)
	return n
}

// formatParam returns a parameter of a media type such as
// "application/openmetrics-text; version=1.0.0; charset=utf-8".
func formatParam(mediaType, name string) string {
	for _, p := range strings.Split(mediaType, ";")[1:] {
		if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && k == name {
			return v
		}
	}
	return ""
}

// encode appends the sink's exposition in the negotiated format to dst.
func (n *negotiated) encode(dst []byte, sink *probemetrics.Sink) ([]byte, error) {
	if n.text {
		if out, ok := sink.AppendText(dst, n.openMetrics); ok {
			return out, nil
		}
	}
	mfs, err := sink.Gather()
	if err != nil {
		return dst, fmt.Errorf("gathering: %w", err)
	}
	buf := bytes.NewBuffer(dst)
	enc := expfmt.NewEncoder(buf, n.format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return dst, err
		}
	}
	if closer, ok := enc.(expfmt.Closer); ok {
		if err := closer.Close(); err != nil {
			return dst, err
		}
	}
	return buf.Bytes(), nil
}

// maxPooledBuffer bounds the buffers kept for reuse, so that one probe with
// a huge exposition does not pin its buffer for good.
const maxPooledBuffer = 64 << 10

// buffer returns a pooled buffer for an exposition.
func (c *Collector) buffer() *[]byte {
	if b, ok := c.buffers.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 8<<10)
	return &b
}

func (c *Collector) putBuffer(b *[]byte) {
	if cap(*b) <= maxPooledBuffer {
		c.buffers.Put(b)
	}
}

// gzipWriter returns a pooled writer for an answer over maxQuickGzip. The
// fastest level compresses an exposition nearly as well as the default for
// a fraction of the CPU, and klauspost/compress (already built in, for
// promhttp's zstd) does it in less CPU than the standard library
// (BenchmarkGzipAnswer measures both).
func (c *Collector) gzipWriter(w io.Writer) *gzip.Writer {
	if gz, ok := c.gzips.Get().(*gzip.Writer); ok {
		gz.Reset(w)
		return gz
	}
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	return gz
}

func acceptsGzip(header string) bool {
	return header != "" && acceptencoding.Admits(header, "gzip")
}
