package probemetrics

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
)

// expfmtExposition is what expfmt writes for the sink's families.
func expfmtExposition(t *testing.T, s *Sink, openMetrics bool) string {
	t.Helper()
	mfs, err := s.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		var err error
		if openMetrics {
			_, err = expfmt.MetricFamilyToOpenMetrics(&b, mf)
		} else {
			_, err = expfmt.MetricFamilyToText(&b, mf)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if openMetrics {
		if _, err := expfmt.FinalizeOpenMetrics(&b); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// AppendText writes, byte for byte, what expfmt writes for Gather's
// families, in both formats: values that format specially, escapes in
// HELP texts and label values, series order, empty families left out.
func TestSinkAppendTextMatchesExpfmt(t *testing.T) {
	s := NewSink()
	values := map[string]float64{
		"v_one": 1, "v_zero": 0, "v_minus_one": -1, "v_int": 200, "v_big": -1.5e10, "v_tiny": 1e-9,
		"v_frac": 0.000652254, "v_nan": math.NaN(), "v_inf": math.Inf(1), "v_neg_inf": math.Inf(-1),
		"v_hash": 3.668918509e+09, "v_ts": 1.7e9,
	}
	for name, v := range values {
		s.Set(name, "help of "+name, v)
	}
	s.Gauge("probe_never_set", `a "quoted" help with a \ backslash
and a newline`)
	phases := s.GaugeVec("probe_http_duration_seconds", "by phase", "phase")
	for i, p := range []string{"transfer", "resolve", "tls", "connect", "processing"} {
		phases.With(p).Set(float64(i) / 7)
	}
	info := s.GaugeVec("probe_ssl_last_chain_info", "leaf", "fingerprint_sha256", "subject", "issuer")
	info.With("ab", "CN=x,O=\"q\"", "CN=ca").Set(1)
	info.With("aa", "CN=new\nline", `CN=ca\`).Set(1)
	s.GaugeVec("probe_empty_vector", "never given a series", "class")
	one := s.GaugeVec("probe_failure_info", "one series", "class", "reason", "phase")
	one.With("connect", "refused", "connect").Set(1)

	for _, openMetrics := range []bool{false, true} {
		got, ok := s.AppendText(nil, openMetrics)
		if !ok {
			t.Fatal("AppendText refused plain names")
		}
		if want := expfmtExposition(t, s, openMetrics); string(got) != want {
			t.Errorf("openMetrics=%v: AppendText wrote\n%s\nexpfmt writes\n%s", openMetrics, got, want)
		}
	}
}

// A name outside the legacy character set, which expfmt quotes, is left
// to expfmt: AppendText declines and leaves dst as it was.
func TestSinkAppendTextDeclinesQuotedNames(t *testing.T) {
	s := NewSink()
	s.Set("probe_success", "ok", 1)
	s.GaugeVec("probe_expect_info", "labels from the configuration", "service.name").With("x").Set(1)
	dst := []byte("kept")
	got, ok := s.AppendText(dst, false)
	if ok || string(got) != "kept" {
		t.Errorf("AppendText = %q, %v; want the input back and false", got, ok)
	}
}

// Families come from blocks of familyBlock; registering more than a block
// holds must keep every earlier handle valid.
func TestSinkManyFamilies(t *testing.T) {
	s := NewSink()
	gauges := make([]Gauge, 3*familyBlock+1)
	for i := range gauges {
		gauges[i] = s.Gauge("g_"+strings.Repeat("x", i), "h")
	}
	for i, g := range gauges {
		g.Set(float64(i))
	}
	for i := range gauges {
		if v, ok := s.Value("g_" + strings.Repeat("x", i)); !ok || v != float64(i) {
			t.Fatalf("gauge %d = %v, %v", i, v, ok)
		}
	}
}
