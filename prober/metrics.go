package prober

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	dto "github.com/prometheus/client_model/go"
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
}

// NewSink returns an empty sink for one probe.
func NewSink() *Sink { return &Sink{} }

type family struct {
	name   string
	help   string
	labels []string // in the order callers pass values
	sorted []int    // label indexes in name order, for exposition
	series []series
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
func (v GaugeVec) With(values ...string) Gauge {
	if len(values) != len(v.family.labels) {
		panic(fmt.Sprintf("metric %s: %d label values for labels %v", v.family.name, len(values), v.family.labels))
	}
	v.sink.mu.Lock()
	defer v.sink.mu.Unlock()
	return Gauge{sink: v.sink, family: v.family, index: v.family.seriesLocked(values)}
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

// Value returns the current value of a series, for tests, assertions and
// summaries. ok is false when no such series exists.
func (s *Sink) Value(name string, labelValues ...string) (v float64, ok bool) {
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
	f := &family{name: name, help: help, labels: labels, sorted: sortedIndexes(labels)}
	s.families = append(s.families, f)
	return f
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
	sort.Slice(idx, func(a, b int) bool { return labels[idx[a]] < labels[idx[b]] })
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
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
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
	if len(f.labels) == 0 {
		return order
	}
	sort.SliceStable(order, func(a, b int) bool {
		va, vb := f.series[order[a]].values, f.series[order[b]].values
		for _, li := range f.sorted {
			if c := strings.Compare(va[li], vb[li]); c != 0 {
				return c < 0
			}
		}
		return false
	})
	return order
}
