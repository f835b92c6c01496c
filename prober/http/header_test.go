package http

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// A module header net/http cannot send (blackbox loads such a module, so
// sonde does, with a warning) fails the probe as the module's
// configuration, on every path a request takes, before anything is sent.
func TestUnsendableHeaderIsTheModulesConfiguration(t *testing.T) {
	var requests atomic.Int64
	count := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { requests.Add(1) })
	plain := httptest.NewServer(count)
	defer plain.Close()
	secure := httptest.NewTLSServer(count)
	defer secure.Close()
	for _, header := range []map[string]string{
		{"Bad Header": "x"},
		{"X-Broken": "a\r\nX-Injected: b"},
	} {
		for _, target := range []string{plain.URL, secure.URL} {
			m := newModule(t, func(h *config.HTTPProbe) {
				h.Headers = header
				h.HTTPClientConfig.TLSConfig.InsecureSkipVerify = true
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := probeHTTP(ctx, target, m, probemetrics.NewSink(), probertest.DiscardLogger)
			cancel()
			checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup})
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the targets got %d requests, want none", n)
	}
}
