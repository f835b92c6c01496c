package compat

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// The comparison is what the suite's verdicts rest on: these hold it to
// what it must catch and what it must let through, without the exporters.

func mustParse(t *testing.T, body string) exposition {
	t.Helper()
	e, err := parseExposition(body)
	if err != nil {
		t.Fatalf("parsing %q: %v", body, err)
	}
	return e
}

// gauges writes samples as an exposition of gauges.
func gauges(samples ...string) string {
	var b strings.Builder
	for _, s := range samples {
		name, _, _ := strings.Cut(s, " ")
		name, _, _ = strings.Cut(name, "{")
		fmt.Fprintf(&b, "# TYPE %s gauge\n%s\n", name, s)
	}
	return b.String()
}

func TestCompareAnswers(t *testing.T) {
	base := gauges("probe_success 1", "probe_duration_seconds 0.5")
	for _, tc := range []struct {
		name         string
		bbe, sonde   answer
		bbeB, sondeB string // bodies to parse when status is 200
		want         []string
	}{
		{name: "identical", bbeB: base, sondeB: base},
		{name: "durations differ", bbeB: base, sondeB: gauges("probe_success 1", "probe_duration_seconds 0.7"), want: nil},
		{name: "negative duration", bbeB: base, sondeB: gauges("probe_success 1", "probe_duration_seconds -1"),
			want: []string{"sanity probe_duration_seconds"}},
		{name: "value differs", bbeB: base, sondeB: gauges("probe_success 0", "probe_duration_seconds 0.5"),
			want: []string{"value probe_success"}},
		{name: "family missing in sonde", bbeB: base + "probe_http_ssl 0\n", sondeB: base,
			want: []string{"family probe_http_ssl"}},
		{name: "BBE family only in sonde", bbeB: base, sondeB: base + "probe_http_ssl 0\n",
			want: []string{"family probe_http_ssl"}},
		{name: "sonde addition", bbeB: base, sondeB: base + "probe_attempts 1\n"},
		{name: "series missing", bbeB: base + "probe_tls_version_info{version=\"TLS 1.3\"} 1\n",
			sondeB: base + "probe_tls_version_info{version=\"TLS 1.2\"} 1\n",
			want:   []string{"series probe_tls_version_info{version=\"TLS 1.2\"}", "series probe_tls_version_info{version=\"TLS 1.3\"}"}},
		{name: "type differs", bbeB: "# TYPE probe_success gauge\nprobe_success 1\n", sondeB: "# TYPE probe_success counter\nprobe_success 1\n",
			want: []string{"type probe_success"}},
		{name: "status differs", bbe: answer{status: 200}, sonde: answer{status: 400}, bbeB: base,
			want: []string{"status "}},
		{name: "both refused alike", bbe: answer{status: 400}, sonde: answer{status: 400}},
		{name: "request failed", bbe: answer{status: 200}, sonde: answer{err: errors.New("refused")}, bbeB: base,
			want: []string{"request "}},
		{name: "unparsable", bbe: answer{status: 200}, sonde: answer{status: 200, body: "{{"}, bbeB: base,
			want: []string{"parse "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.bbe.status == 0 && tc.bbe.err == nil {
				tc.bbe.status = 200
			}
			if tc.sonde.status == 0 && tc.sonde.err == nil {
				tc.sonde.status = 200
			}
			if tc.bbe.status == 200 && tc.bbeB != "" {
				tc.bbe.expo = mustParse(t, tc.bbeB)
			}
			if tc.sonde.status == 200 && tc.sondeB != "" {
				tc.sonde.expo = mustParse(t, tc.sondeB)
			}
			var got []string
			for _, d := range compareAnswers("s", tc.bbe, tc.sonde) {
				got = append(got, string(d.kind)+" "+d.family+d.series)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("deltas %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAllowanceMatches(t *testing.T) {
	a := documentedDiff("s", "tcp_.*", deltaFamily, "probe_tls_cipher_info")
	for _, tc := range []struct {
		d    delta
		want bool
	}{
		{delta{scenario: "tcp_tls", kind: deltaFamily, family: "probe_tls_cipher_info"}, true},
		{delta{scenario: "xtcp_tls", kind: deltaFamily, family: "probe_tls_cipher_info"}, false},  // whole names only
		{delta{scenario: "tcp_tls", kind: deltaValue, family: "probe_tls_cipher_info"}, false},    // another kind
		{delta{scenario: "tcp_tls", kind: deltaFamily, family: "probe_tls_cipher_info_x"}, false}, // whole families only
	} {
		if got := a.matches(tc.d); got != tc.want {
			t.Errorf("matches(%+v) = %v, want %v", tc.d, got, tc.want)
		}
	}
	status := pendingDiff("why", "x", deltaStatus, "")
	if !status.matches(delta{scenario: "x", kind: deltaStatus}) {
		t.Error("an empty families pattern must match the HTTP status delta")
	}
	if status.matches(delta{scenario: "x", kind: deltaStatus, family: "probe_success"}) {
		t.Error("an empty families pattern must match no family")
	}
	series := documentedDiff("s", ".*", deltaSeries, "f").withSeries(`{phase="tls"}`)
	if series.matches(delta{scenario: "a", kind: deltaSeries, family: "f", series: `{phase="connect"}`}) {
		t.Error("withSeries must narrow to its label set")
	}
}

func TestDedent(t *testing.T) {
	got := dedent("\n\t\t\thttp:\n\t\t\t  method: POST\n")
	if want := "http:\n  method: POST"; got != want {
		t.Errorf("dedent = %q, want %q", got, want)
	}
}
