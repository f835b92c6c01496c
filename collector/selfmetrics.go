package collector

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// selfMetrics are the exporter's own metrics about the probes it ran, on
// /metrics. Unlike a probe's metrics they are cumulative, so success
// ratios computed from them survive scrapes Prometheus missed.
type selfMetrics struct {
	unknownModule prometheus.Counter
	probes        *prometheus.CounterVec   // by module, prober and result
	attempts      *prometheus.CounterVec   // by module and result
	failures      *prometheus.CounterVec   // failed probes, by module and class
	duration      *prometheus.HistogramVec // by module
}

// probeDurationBuckets are the classic buckets of sonde_probe_duration_seconds,
// for scrapers without native histograms: from a loopback probe to a
// probe that used the whole of a long scrape timeout.
var probeDurationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

func newSelfMetrics(reg prometheus.Registerer) *selfMetrics {
	m := &selfMetrics{
		unknownModule: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "blackbox_module_unknown_total",
			Help: "Count of unknown modules requested by probes",
		}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sonde_probes_total",
			Help: "Probes run, by module, prober and result (success or failure).",
		}, []string{"module", "prober", "result"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sonde_probe_attempts_total",
			Help: "Probe attempts made, by module and result (success or failure); with retries a probe makes several.",
		}, []string{"module", "result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sonde_probe_failures_total",
			Help: "Probes that failed after all their attempts, by module and failure class.",
		}, []string{"module", "class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "sonde_probe_duration_seconds",
			Help:                            "How long probes took, all attempts included, by module.",
			Buckets:                         probeDurationBuckets,
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: time.Hour,
		}, []string{"module"}),
	}
	reg.MustRegister(m.unknownModule, m.probes, m.attempts, m.failures, m.duration)
	return m
}

// count adds a finished probe: the probe by result, its duration, every
// attempt by result, and a failed probe by the class it ended with.
func (m *selfMetrics) count(res *Result) {
	name := res.Module.Name
	m.duration.WithLabelValues(name).Observe(res.Duration.Seconds())
	failed := 0
	for _, n := range res.Attempts.failed {
		failed += n
	}
	if failed > 0 {
		m.attempts.WithLabelValues(name, "failure").Add(float64(failed))
	}
	if res.Err == nil {
		m.probes.WithLabelValues(name, res.Module.Prober, "success").Inc()
		m.attempts.WithLabelValues(name, "success").Inc()
		return
	}
	m.probes.WithLabelValues(name, res.Module.Prober, "failure").Inc()
	m.failures.WithLabelValues(name, string(res.Err.Class)).Inc()
}
