package http

import (
	"testing"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
)

// fillLikeHTTPProbe registers and sets what a successful HTTP probe
// exports, the common metrics included.
func fillLikeHTTPProbe(sink *probemetrics.Sink) {
	m := newHTTPMetrics(sink, &config.HTTPProbe{})
	r := netdial.NewResolveMetrics(sink)
	r.Protocol.Set(4)
	r.LookupTime.Set(0.000002)
	r.AddrHash.Set(3668918509)
	for i, p := range phases {
		m.durations.With(string(p)).Set(float64(i) / 1000)
	}
	m.status.Set(200)
	m.contentLength.Set(3)
	m.uncompressed.Set(3)
	m.proto.Set(1.1)
	for _, name := range []string{"probe_success", "probe_duration_seconds", "probe_timeout_seconds", "probe_attempts", "probe_first_attempt_duration_seconds"} {
		sink.Set(name, "help text of "+name, 1)
	}
	sink.GaugeVec("probe_failed_attempts", "failed attempts by class", "class")
}

// BenchmarkSink is the cost of a probe's metrics alone: registering them,
// setting them, and writing them out as /probe does (text), or gathering
// them into metric families as debug output and expfmt's other formats do.
func BenchmarkSink(b *testing.B) {
	b.Run("register", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fillLikeHTTPProbe(probemetrics.NewSink())
		}
	})
	b.Run("text", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			sink := probemetrics.NewSink()
			fillLikeHTTPProbe(sink)
			var ok bool
			if buf, ok = sink.AppendText(buf[:0], true); !ok {
				b.Fatal("AppendText declined")
			}
		}
	})
	b.Run("gather", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink := probemetrics.NewSink()
			fillLikeHTTPProbe(sink)
			if _, err := sink.Gather(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
