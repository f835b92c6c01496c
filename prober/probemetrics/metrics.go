// Package probemetrics holds the metrics of one probe (Sink), writes them
// in the exposition formats, and keeps the timeline of the probe's phases.
package probemetrics

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
)

// Sink collects the metrics of one probe. Every metric a probe exports is a
// gauge, so the sink keeps only names, label values and numbers, and turns
// them into metric families when the response is written. It implements
// prometheus.Gatherer, which lets promhttp negotiate the exposition format,
// without the descriptor bookkeeping a prometheus.Registry does on every
// registration: a fresh registry per probe is a large share of what a probe
// costs in blackbox_exporter.
//
// A Sink is safe for concurrent use.
type Sink struct {
	mu       sync.Mutex
	families []*family
	spare    []family // allocated ahead, a block at a time
	spans    []Span   // the phases as they happened: see timeline.go
}

// familyBlock is how many families a sink allocates at once. A probe
// registers 12 (tcp) to 22 (http) families: blocks of four make a few
// allocations instead of one per family and leave at most three unused
// for as long as the probe is in flight.
const familyBlock = 4

// typicalFamilies is room for the families of most probes, so that the
// list of them is not regrown five times per probe.
const typicalFamilies = 24

// NewSink returns an empty sink for one probe.
func NewSink() *Sink { return &Sink{families: make([]*family, 0, typicalFamilies)} }

type family struct {
	name   string
	help   string
	labels []string // in the order callers pass values
	sorted []int    // label indexes in name order, for exposition
	series []series
	// plain is true when the name and label names are valid in every
	// exposition format as they are, so AppendText may write them.
	plain bool
	one   [1]series // the storage of the first series: most families have only one
}

type series struct {
	values []string
	value  float64
}

// Gauge is a handle on one series of a sink.
type Gauge struct {
	sink   *Sink
	family *family
	index  int
}

// GaugeVec is a handle on a labelled family of a sink.
type GaugeVec struct {
	sink   *Sink
	family *family
}

// Gauge registers an unlabelled gauge. It is exported with value 0 until it
// is set, which is how blackbox_exporter reports phases a probe never reached.
func (s *Sink) Gauge(name, help string) Gauge {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.familyLocked(name, help, nil)
	return Gauge{sink: s, family: f, index: f.seriesLocked(nil)}
}

// GaugeVec registers a labelled gauge family. It is exported only once a
// series has been created with With.
func (s *Sink) GaugeVec(name, help string, labels ...string) GaugeVec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return GaugeVec{sink: s, family: s.familyLocked(name, help, labels)}
}

// Set registers an unlabelled gauge, if needed, and sets it.
func (s *Sink) Set(name, help string, v float64) {
	s.Gauge(name, help).Set(v)
}

// With returns the series for the given label values, creating it at 0.
// A value that is not valid UTF-8 is exported with U+FFFD in place of its
// invalid bytes: Prometheus refuses a whole scrape over one such value.
func (v GaugeVec) With(values ...string) Gauge {
	if len(values) != len(v.family.labels) {
		panic(fmt.Sprintf("metric %s: %d label values for labels %v", v.family.name, len(values), v.family.labels))
	}
	values = validUTF8(values)
	v.sink.mu.Lock()
	defer v.sink.mu.Unlock()
	return Gauge{sink: v.sink, family: v.family, index: v.family.seriesLocked(values)}
}

// validUTF8 returns values, or a copy of them made valid UTF-8 if one is
// not: label values come from targets too (probe_expect_info captures
// what the target sent), and client libraries refuse invalid UTF-8.
func validUTF8(values []string) []string {
	for i, s := range values {
		if !utf8.ValidString(s) {
			valid := slices.Clone(values)
			for j := i; j < len(valid); j++ {
				valid[j] = strings.ToValidUTF8(valid[j], "\uFFFD")
			}
			return valid
		}
	}
	return values
}

// Set sets the gauge's value.
func (g Gauge) Set(v float64) {
	g.sink.mu.Lock()
	g.family.series[g.index].value = v
	g.sink.mu.Unlock()
}

// Add adds to the gauge's value.
func (g Gauge) Add(v float64) {
	g.sink.mu.Lock()
	g.family.series[g.index].value += v
	g.sink.mu.Unlock()
}

// UnixSeconds is a time as the metrics carry it: whole seconds since the
// epoch, as blackbox_exporter exports a certificate's expiry.
func UnixSeconds(t time.Time) float64 { return float64(t.Unix()) }

// Value returns the current value of a series, for tests, assertions and
// summaries. ok is false when no such series exists.
func (s *Sink) Value(name string, labelValues ...string) (v float64, ok bool) {
	labelValues = validUTF8(labelValues) // as With stored them
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.families {
		if f.name != name {
			continue
		}
		for _, ser := range f.series {
			if slices.Equal(ser.values, labelValues) {
				return ser.value, true
			}
		}
	}
	return 0, false
}

// familyLocked returns the family of that name, registering it if new.
// Registering a name twice with other labels is a programming error.
func (s *Sink) familyLocked(name, help string, labels []string) *family {
	for _, f := range s.families {
		if f.name == name {
			if !slices.Equal(f.labels, labels) {
				panic(fmt.Sprintf("metric %s registered with labels %v and %v", name, f.labels, labels))
			}
			return f
		}
	}
	if len(s.spare) == 0 {
		s.spare = make([]family, familyBlock)
	}
	f := &s.spare[0]
	s.spare = s.spare[1:]
	f.name, f.help, f.labels, f.sorted, f.plain = name, help, labels, sortedIndexes(labels), plainNames(name, labels)
	f.series = f.one[:0]
	s.families = append(s.families, f)
	return f
}

// plainNames reports whether a family's names need none of the quoting or
// escaping that expfmt applies to names outside the legacy character set.
func plainNames(name string, labels []string) bool {
	if !model.LegacyValidation.IsValidMetricName(name) {
		return false
	}
	for _, l := range labels {
		if l == model.MetricNameLabel || !model.LegacyValidation.IsValidMetricName(l) {
			return false
		}
	}
	return true
}

func (f *family) seriesLocked(values []string) int {
	for i, ser := range f.series {
		if slices.Equal(ser.values, values) {
			return i
		}
	}
	f.series = append(f.series, series{values: slices.Clone(values)})
	return len(f.series) - 1
}

func sortedIndexes(labels []string) []int {
	idx := make([]int, len(labels))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(labels[a], labels[b]) })
	return idx
}

// Gather implements prometheus.Gatherer: families sorted by name, series by
// label values, empty families left out.
func (s *Sink) Gather() ([]*dto.MetricFamily, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*dto.MetricFamily, 0, len(s.families))
	for _, f := range s.families {
		if len(f.series) > 0 {
			out = append(out, f.toDTO())
		}
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out, nil
}

var gaugeType = dto.MetricType_GAUGE

// toDTO converts the family in a handful of allocations: the metrics, gauges,
// values and label pairs each live in one slice.
func (f *family) toDTO() *dto.MetricFamily {
	n := len(f.series)
	order := f.seriesOrder()
	metrics := make([]dto.Metric, n)
	gauges := make([]dto.Gauge, n)
	values := make([]float64, n)
	pairs := make([]dto.LabelPair, n*len(f.labels))
	mf := &dto.MetricFamily{Name: &f.name, Help: &f.help, Type: &gaugeType, Metric: make([]*dto.Metric, n)}
	for i, si := range order {
		ser := &f.series[si]
		values[i] = ser.value
		gauges[i].Value = &values[i]
		metrics[i].Gauge = &gauges[i]
		if len(f.labels) > 0 {
			metrics[i].Label = make([]*dto.LabelPair, len(f.labels))
			for j, li := range f.sorted {
				p := &pairs[i*len(f.labels)+j]
				p.Name, p.Value = &f.labels[li], &ser.values[li]
				metrics[i].Label[j] = p
			}
		}
		mf.Metric[i] = &metrics[i]
	}
	return mf
}

// seriesOrder returns series indexes ordered by their label values, taken
// in label-name order, as a prometheus.Registry would.
func (f *family) seriesOrder() []int {
	order := make([]int, len(f.series))
	for i := range order {
		order[i] = i
	}
	if len(f.labels) == 0 || len(order) < 2 {
		return order
	}
	slices.SortStableFunc(order, func(a, b int) int {
		va, vb := f.series[a].values, f.series[b].values
		for _, li := range f.sorted {
			if c := strings.Compare(va[li], vb[li]); c != 0 {
				return c
			}
		}
		return 0
	})
	return order
}

// AppendText appends the sink's metrics to dst in the Prometheus text
// format 0.0.4, or, with openMetrics, in OpenMetrics 1.0.0 with its final
// "# EOF" line: byte for byte what expfmt writes for Gather's families,
// written straight from the sink. Going through Gather and expfmt would
// allocate for every family and metric of every answer
// (TestAllocationsPerProbe in test/perf holds the count). ok is false, and dst returned unchanged, when
// a name would need the quoting expfmt gives names outside the legacy
// character set; the caller then encodes Gather's families with expfmt.
func (s *Sink) AppendText(dst []byte, openMetrics bool) (_ []byte, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var stack [48]*family
	fams := stack[:0]
	for _, f := range s.families {
		if !f.plain {
			return dst, false
		}
		if len(f.series) > 0 {
			fams = append(fams, f)
		}
	}
	slices.SortFunc(fams, func(a, b *family) int { return cmp.Compare(a.name, b.name) })
	for _, f := range fams {
		dst = f.appendText(dst, openMetrics)
	}
	if openMetrics {
		dst = append(dst, "# EOF\n"...)
	}
	return dst, true
}

func (f *family) appendText(dst []byte, openMetrics bool) []byte {
	dst = append(dst, "# HELP "...)
	dst = append(dst, f.name...)
	dst = append(dst, ' ')
	dst = appendEscaped(dst, f.help, openMetrics)
	dst = append(dst, "\n# TYPE "...)
	dst = append(dst, f.name...)
	dst = append(dst, " gauge\n"...)
	if len(f.series) == 1 {
		return f.appendSeries(dst, &f.series[0], openMetrics)
	}
	for _, i := range f.seriesOrder() {
		dst = f.appendSeries(dst, &f.series[i], openMetrics)
	}
	return dst
}

func (f *family) appendSeries(dst []byte, ser *series, openMetrics bool) []byte {
	dst = append(dst, f.name...)
	for j, li := range f.sorted {
		if j == 0 {
			dst = append(dst, '{')
		} else {
			dst = append(dst, ',')
		}
		dst = append(dst, f.labels[li]...)
		dst = append(dst, '=', '"')
		dst = appendEscaped(dst, ser.values[li], true)
		dst = append(dst, '"')
	}
	if len(f.sorted) > 0 {
		dst = append(dst, '}')
	}
	dst = append(dst, ' ')
	dst = appendValue(dst, ser.value, openMetrics)
	return append(dst, '\n')
}

// appendEscaped escapes backslashes and newlines, and double quotes when
// quotes is set (label values, and HELP texts in OpenMetrics).
func appendEscaped(dst []byte, s string, quotes bool) []byte {
	special := "\\\n"
	if quotes {
		special = "\\\n\""
	}
	if !strings.ContainsAny(s, special) {
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			dst = append(dst, '\\', '\\')
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '"' && quotes:
			dst = append(dst, '\\', '"')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendValue formats a sample value as expfmt does: the shortest
// representation, with ".0" added in OpenMetrics to a number that would
// otherwise read as an integer.
func appendValue(dst []byte, v float64, openMetrics bool) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	case math.IsInf(v, 1):
		return append(dst, "+Inf"...)
	case math.IsInf(v, -1):
		return append(dst, "-Inf"...)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, v, 'g', -1, 64)
	if openMetrics && !bytes.ContainsAny(dst[start:], "e.") {
		dst = append(dst, '.', '0')
	}
	return dst
}
