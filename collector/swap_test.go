package collector

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober"
	"github.com/sonde-exporter/sonde/prober/core"
)

// TestScrapesNeverSeeAModuleMissing: while the module set is replaced,
// over and over, by one that also has the scraped module, no scrape is
// answered 400 Unknown module: the swap is one atomic store, never an
// empty or half-built set.
func TestScrapesNeverSeeAModuleMissing(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer target.Close()
	sets := make([]*core.Set, 2)
	for i, marker := range []string{"a", "b"} {
		cfg, err := config.Load(fmt.Appendf(nil, "modules:\n  m:\n    prober: http\n  marker_%s:\n    prober: tcp\n", marker))
		if err != nil {
			t.Fatal(err)
		}
		if sets[i], err = prober.NewSet(cfg); err != nil {
			t.Fatal(err)
		}
	}
	c := New(Options{TimeoutOffset: 0.5, HistoryLimit: 3, Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()})
	c.SetModules(sets[0])

	var (
		stop     atomic.Bool
		scrapes  atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
	)
	params := url.Values{"module": {"m"}, "target": {target.URL}}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				resp, body := scrape(t, c, params, nil)
				scrapes.Add(1)
				if resp.StatusCode != http.StatusOK || !strings.Contains(body, "\nprobe_success 1\n") {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%d %s", resp.StatusCode, body))
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < 2000 || scrapes.Load() < 200; i++ {
		c.SetModules(sets[i%2])
	}
	stop.Store(true)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d scrapes failed during the swaps; the first: %s", len(failures), scrapes.Load(), failures[0])
	}
}
