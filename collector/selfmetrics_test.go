package collector

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestSelfMetricsCountProbes: two successes and a failure show in the
// cumulative counters and the duration histogram, classic and native.
func TestSelfMetricsCountProbes(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer target.Close()
	c, reg := newTestCollector(t, nil)
	for _, tgt := range []string{target.URL, target.URL, closedPort(t)} {
		scrape(t, c, url.Values{"target": {tgt}}, nil)
	}
	scrape(t, c, url.Values{"module": {"nope"}, "target": {target.URL}}, nil) // refused: not a probe

	want := `
# HELP sonde_probes_total Probes run, by module, prober and result (success or failure).
# TYPE sonde_probes_total counter
sonde_probes_total{module="http_2xx",prober="http",result="failure"} 1
sonde_probes_total{module="http_2xx",prober="http",result="success"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sonde_probes_total"); err != nil {
		t.Error(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sonde_probe_duration_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 3 || len(h.GetBucket()) != len(probeDurationBuckets) {
			t.Errorf("histogram: %d samples, %d classic buckets; want 3 and %d", h.GetSampleCount(), len(h.GetBucket()), len(probeDurationBuckets))
		}
		if h.GetSchema() == 0 && len(h.GetPositiveSpan()) == 0 && h.GetZeroThreshold() == 0 {
			t.Error("the histogram has no native part")
		}
		return
	}
	t.Error("sonde_probe_duration_seconds is not exported")
}
