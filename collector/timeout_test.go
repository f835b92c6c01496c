package collector

import (
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// TestScrapeTimeoutTooLong: a scrape timeout header too long for a
// duration (1e10 seconds, +Inf) runs the probe with the longest duration,
// not with a negative one that fails it at once, as blackbox_exporter's
// conversion does. The scrape still bounds the probe.
func TestScrapeTimeoutTooLong(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer target.Close()
	c := collectorFor(t, `
modules:
  no_timeout:
    prober: http
`)
	longest := time.Duration(math.MaxInt64).Seconds()
	for _, header := range []string{"1e10", "+Inf", "1e300"} {
		t.Run(header, func(t *testing.T) {
			resp, body := scrape(t, c, url.Values{"module": {"no_timeout"}, "target": {target.URL}}, http.Header{ScrapeTimeoutHeader: {header}})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200: %s", resp.StatusCode, body)
			}
			m := parseMetrics(t, body)
			if got := m["probe_success"].value(); got != 1 {
				t.Errorf("probe_success = %v, want 1\n%s", got, body)
			}
			if got := m["probe_timeout_seconds"].value(); got != longest {
				t.Errorf("probe_timeout_seconds = %v, want the longest duration, %v", got, longest)
			}
		})
	}
}
