package collector

import (
	"net/url"
	"testing"

	"github.com/sonde-exporter/sonde/internal/metricsdoc"
)

// What /probe adds to a prober's metrics, and what the collector counts on
// /metrics, is documented in docs/metrics.md with the same labels.
func TestMetricsDocumented(t *testing.T) {
	docs, err := metricsdoc.Load("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	c, reg := newTestCollector(t, nil)
	retrying := collectorFor(t, `
modules:
  http_retry:
    prober: http
    retry:
      attempts: 2
      initial_backoff: 10ms
`)
	exported := map[string][]string{}
	for _, probe := range []struct {
		c      *Collector
		params url.Values
	}{
		{c, url.Values{"module": {"http_2xx"}, "target": {closedPort(t)}}},
		{retrying, url.Values{"module": {"http_retry"}, "target": {closedPort(t)}}},
	} {
		_, body := scrape(t, probe.c, probe.params, nil)
		for name, fam := range parseMetrics(t, body) {
			exported[name] = labelNames(fam)
		}
	}
	scrape(t, c, url.Values{"module": {"nope"}, "target": {"x"}}, nil) // counts blackbox_module_unknown_total
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		var names []string
		for _, l := range mf.GetMetric()[0].GetLabel() {
			names = append(names, l.GetName())
		}
		exported[mf.GetName()] = names
	}
	for _, must := range []string{"probe_success", "probe_failure_info", "probe_attempts", "probe_failed_attempts",
		"sonde_probe_attempts_total", "sonde_probe_failures_total", "blackbox_module_unknown_total"} {
		if _, ok := exported[must]; !ok {
			t.Errorf("the test exported no %s; it should cover it", must)
		}
	}
	for name, labels := range exported {
		if p := metricsdoc.Check(docs, name, labels); p != "" {
			t.Error(p)
		}
	}
}

func labelNames(f *familyView) []string {
	names := []string{}
	for name := range f.series[0].labels {
		names = append(names, name)
	}
	return names
}
