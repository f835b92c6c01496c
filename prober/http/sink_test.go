package http

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
)

// gatheredText is what g exposes, in the text format.
func gatheredText(t *testing.T, g prometheus.Gatherer) string {
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

// A probe's own sink exposes like a registry too: the whole http family
// after a real probe, compared with the same values put in a registry.
func TestSinkOfAProbeMatchesRegistry(t *testing.T) {
	srv := probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{TLS: true, HTTP2: true, CA: nil})
	m := newModule(t, func(h *config.HTTPProbe) { h.HTTPClientConfig.TLSConfig.InsecureSkipVerify = true })
	sink, err := probertest.Run(t, m, srv.URL)
	checkOutcome(t, err, failure{})
	mfs, _ := sink.Gather()
	reg := prometheus.NewRegistry()
	for _, mf := range mfs {
		var labels []string
		for _, lp := range mf.GetMetric()[0].GetLabel() {
			labels = append(labels, lp.GetName())
		}
		vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: mf.GetName(), Help: mf.GetHelp()}, labels)
		reg.MustRegister(vec)
		// Series in reverse, so that the registry has to sort them.
		ms := mf.GetMetric()
		for i := len(ms) - 1; i >= 0; i-- {
			var values []string
			for _, lp := range ms[i].GetLabel() {
				values = append(values, lp.GetValue())
			}
			vec.WithLabelValues(values...).Set(ms[i].GetGauge().GetValue())
		}
	}
	if got, want := gatheredText(t, sink), gatheredText(t, reg); got != want {
		t.Errorf("probe sink exposition differs from a Registry's.\nsink:\n%s\nregistry:\n%s", got, want)
	}
}
