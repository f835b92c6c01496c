package probemetrics

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

func exposition(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// A Sink exposes what a prometheus.Registry holding the same gauges would:
// families sorted by name, label pairs by label name, series by label
// values in label-name order, unset gauges at 0, empty vectors left out.
func TestSinkGatherMatchesRegistry(t *testing.T) {
	type series struct {
		values []string
		value  float64
	}
	type fam struct {
		name, help string
		labels     []string
		series     []series // for an unlabelled family, one series with no values
	}
	fams := []fam{
		{"probe_success", "Displays whether or not the probe was a success", nil, []series{{nil, 1}}},
		{"probe_http_duration_seconds", "Duration of http request by phase", []string{"phase"}, []series{
			{[]string{"transfer"}, 0.004}, {[]string{"resolve"}, 0.001}, {[]string{"tls"}, 0}, {[]string{"connect"}, 0.5}, {[]string{"processing"}, 1e-9},
		}},
		{"a_first", "Registered after others but sorted first", []string{"zeta", "alpha"}, []series{
			{[]string{"z2", "a1"}, 1}, {[]string{"z1", "a2"}, 2}, {[]string{"z1", "a1"}, 3}, {[]string{"", "a0"}, 4},
		}},
		{"probe_ssl_last_chain_info", "Contains SSL leaf certificate information", []string{"fingerprint_sha256", "subject", "issuer", "subjectalternative", "serialnumber"}, []series{
			{[]string{"ab", "CN=x,O=\"q\"", "CN=ca", "a.example,b.example", "0a"}, 1},
			{[]string{"aa", "CN=new\nline", "CN=ca\\", "", "01"}, 1},
		}},
		{"b_negative_and_special", "Values that format specially", nil, []series{{nil, -1.5e10}}},
	}

	sink := NewSink()
	reg := prometheus.NewRegistry()
	for _, f := range fams {
		if f.labels == nil {
			sink.Set(f.name, f.help, f.series[0].value)
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: f.name, Help: f.help})
			g.Set(f.series[0].value)
			reg.MustRegister(g)
			continue
		}
		sv := sink.GaugeVec(f.name, f.help, f.labels...)
		rv := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: f.name, Help: f.help}, f.labels)
		reg.MustRegister(rv)
		for _, s := range f.series {
			sv.With(s.values...).Set(s.value)
			rv.WithLabelValues(s.values...).Set(s.value)
		}
	}
	// A gauge registered and never set is exported at 0, by both.
	sink.Gauge("probe_never_set", "Registered, never set")
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "probe_never_set", Help: "Registered, never set"}))
	// A vector without series is left out by both.
	sink.GaugeVec("probe_empty_vec", "No series", "l")
	reg.MustRegister(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "probe_empty_vec", Help: "No series"}, []string{"l"}))

	got, want := exposition(t, sink), exposition(t, reg)
	if got != want {
		t.Errorf("Sink exposition differs from a Registry's.\nsink:\n%s\nregistry:\n%s", got, want)
	}
	if strings.Contains(got, "probe_empty_vec") {
		t.Error("an empty vector is exported")
	}
	if !strings.Contains(got, "probe_never_set 0\n") {
		t.Error("an unset gauge is not exported at 0")
	}
}

func TestSinkGatherTypes(t *testing.T) {
	sink := NewSink()
	sink.Set("g", "help", 1)
	mfs, err := sink.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetType() != dto.MetricType_GAUGE || mfs[0].GetHelp() != "help" {
		t.Fatalf("Gather = %v", mfs)
	}
	// The exposition is a copy: later changes do not alter it.
	sink.Set("g", "help", 2)
	if v := mfs[0].GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("gathered value changed to %v after a later Set", v)
	}
}

func TestSinkValue(t *testing.T) {
	sink := NewSink()
	g := sink.Gauge("probe_x", "x")
	if v, ok := sink.Value("probe_x"); !ok || v != 0 {
		t.Errorf("Value of a fresh gauge = %v, %v; want 0, true", v, ok)
	}
	g.Set(2)
	g.Add(0.5)
	if v, _ := sink.Value("probe_x"); v != 2.5 {
		t.Errorf("Value = %v, want 2.5", v)
	}
	vec := sink.GaugeVec("probe_v", "v", "a", "b")
	vec.With("1", "2").Set(3)
	if v, ok := sink.Value("probe_v", "1", "2"); !ok || v != 3 {
		t.Errorf("Value(probe_v, 1, 2) = %v, %v", v, ok)
	}
	for _, labels := range [][]string{{"2", "1"}, {"1"}, nil} {
		if _, ok := sink.Value("probe_v", labels...); ok {
			t.Errorf("Value(probe_v, %q) found a series that does not exist", labels)
		}
	}
	if _, ok := sink.Value("probe_missing"); ok {
		t.Error("Value found a family that does not exist")
	}
	// Registering again returns the same series.
	sink.Gauge("probe_x", "x").Add(1)
	if v, _ := sink.Value("probe_x"); v != 3.5 {
		t.Errorf("Value after a second registration = %v, want 3.5", v)
	}
	if mfs, _ := sink.Gather(); len(mfs) != 2 {
		t.Errorf("Gather has %d families, want 2", len(mfs))
	}
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	f()
}

func TestSinkPanics(t *testing.T) {
	sink := NewSink()
	vec := sink.GaugeVec("probe_v", "v", "a", "b")
	mustPanic(t, "With with too few label values", func() { vec.With("1") })
	mustPanic(t, "With with too many label values", func() { vec.With("1", "2", "3") })
	mustPanic(t, "registering a name again with other labels", func() { sink.GaugeVec("probe_v", "v", "a") })
	mustPanic(t, "registering a labelled name as unlabelled", func() { sink.Gauge("probe_v", "v") })
	// The failed calls left nothing behind.
	if mfs, _ := sink.Gather(); len(mfs) != 0 {
		t.Errorf("Gather = %v, want nothing", mfs)
	}
}

func TestSinkConcurrentUse(t *testing.T) {
	sink := NewSink()
	const workers, rounds = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			total := sink.Gauge("probe_total", "sum of all adds")
			vec := sink.GaugeVec("probe_by_worker", "one series per worker", "worker")
			mine := vec.With(fmt.Sprint(w))
			for i := range rounds {
				total.Add(1)
				mine.Set(float64(i))
				sink.Set(fmt.Sprintf("probe_worker_%d", w), "per worker", float64(i))
				if i%50 == 0 {
					_, _ = sink.Gather()
					_, _ = sink.Value("probe_total")
				}
			}
		}()
	}
	wg.Wait()
	if v, _ := sink.Value("probe_total"); v != workers*rounds {
		t.Errorf("probe_total = %v, want %d", v, workers*rounds)
	}
	for w := range workers {
		metric(t, sink, rounds-1, "probe_by_worker", fmt.Sprint(w))
		metric(t, sink, rounds-1, fmt.Sprintf("probe_worker_%d", w))
	}
	mfs, _ := sink.Gather()
	if len(mfs) != 2+workers {
		t.Errorf("Gather has %d families, want %d", len(mfs), 2+workers)
	}
}

// metric asserts that a series exists with the given value.
func metric(t *testing.T, sink *Sink, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := sink.Value(name, labels...)
	if !ok {
		t.Errorf("%s%v is missing", name, labels)
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}
