package compat

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/sonde-exporter/sonde/internal/metricsdoc"
)

// sondeOnly are the metric families sonde adds to BBE's, each documented
// in docs/metrics.md (TestSondeOnlyFamiliesAreDocumented holds them to
// it). Their presence in sonde's answer alone is no delta.
var sondeOnly = map[string]bool{
	"probe_failure_info":                                true,
	"probe_attempts":                                    true,
	"probe_failed_attempts":                             true,
	"probe_first_attempt_duration_seconds":              true,
	"probe_timeout_seconds":                             true,
	"probe_tcp_duration_seconds":                        true,
	"probe_icmp_packets_sent":                           true,
	"probe_icmp_packets_received":                       true,
	"probe_icmp_packet_loss_ratio":                      true,
	"probe_icmp_rtt_seconds":                            true,
	"probe_tls_verified":                                true,
	"probe_tls_cert_not_before_timestamp_seconds":       true,
	"probe_tls_cert_not_after_timestamp_seconds":        true,
	"probe_tls_cert_info":                               true,
	"probe_tls_client_cert_not_after_timestamp_seconds": true,
	"probe_tls_ocsp_stapled":                            true,
	"probe_tls_ocsp_status":                             true,
	"probe_tls_ocsp_this_update_timestamp_seconds":      true,
	"probe_tls_ocsp_next_update_timestamp_seconds":      true,
	"probe_tls_ocsp_revoked_at_timestamp_seconds":       true,
	"probe_tls_ocsp_error":                              true,
	"probe_tls_ocsp_duration_seconds":                   true,
}

// allowance accepts the deltas it matches: a documented difference (with
// section) or a pending one (with why).
type allowance struct {
	scenarios *regexp.Regexp // the scenario names it covers
	kind      deltaKind      // "" for any kind
	families  *regexp.Regexp // the families it covers; "" stands for the HTTP status and the module
	series    string         // a label set; "" for any
	section   string         // documented: its heading's anchor in docs/blackbox-differences.md
	why       string         // pending: one line of why, until it is fixed
}

func (a *allowance) matches(d delta) bool {
	return a.scenarios.MatchString(d.scenario) &&
		(a.kind == "" || a.kind == d.kind) &&
		a.families.MatchString(d.family) &&
		(a.series == "" || a.series == d.series)
}

// explain returns the documented or pending allowance that accepts d, or
// nil when none does.
func explain(d delta) *allowance {
	for _, table := range [][]*allowance{documented, pending} {
		for _, a := range table {
			if a.matches(d) {
				return a
			}
		}
	}
	return nil
}

// documentedDiff accepts a difference explained in a section of
// docs/blackbox-differences.md. scenarios and families are regular
// expressions matching whole names.
func documentedDiff(section, scenarios string, kind deltaKind, families string) *allowance {
	return &allowance{scenarios: whole(scenarios), kind: kind, families: whole(families), section: section}
}

// pendingDiff accepts a difference not fixed yet, saying why in one line.
func pendingDiff(why, scenarios string, kind deltaKind, families string) *allowance {
	return &allowance{scenarios: whole(scenarios), kind: kind, families: whole(families), why: why}
}

func whole(re string) *regexp.Regexp { return regexp.MustCompile("^(?:" + re + ")$") }

// withSeries narrows an allowance to one label set.
func (a *allowance) withSeries(series string) *allowance {
	a.series = series
	return a
}

// checkAllowancesUsed fails on an allowance that matched no delta although
// a scenario it covers ran: it is stale, and must go (or be narrowed).
func checkAllowancesUsed(t *testing.T, matched map[*allowance]bool, ran map[string]bool) {
	t.Helper()
	for _, table := range []struct {
		name string
		list []*allowance
	}{{"documented", documented}, {"pending", pending}} {
		for _, a := range table.list {
			if matched[a] || !coversRun(a, ran) {
				continue
			}
			t.Errorf("the %s entry {scenarios %q, kind %q, families %q, series %q} matched no delta: remove it (fixed?) or narrow it",
				table.name, a.scenarios, a.kind, a.families, a.series)
		}
	}
}

func coversRun(a *allowance, ran map[string]bool) bool {
	for name := range ran {
		if a.scenarios.MatchString(name) {
			return true
		}
	}
	return false
}

// TestSondeOnlyFamiliesAreDocumented holds the allow list to
// docs/metrics.md: a family sonde adds must be documented there.
func TestSondeOnlyFamiliesAreDocumented(t *testing.T) {
	docs, err := metricsdoc.Load(repoRoot + "/docs/metrics.md")
	if err != nil {
		t.Fatalf("reading docs/metrics.md: %v", err)
	}
	data, err := os.ReadFile(repoRoot + "/docs/metrics.md")
	if err != nil {
		t.Fatalf("reading docs/metrics.md: %v", err)
	}
	for name := range sondeOnly {
		if _, ok := docs[name]; !ok {
			t.Errorf("%s is allowed as a sonde addition but docs/metrics.md does not document it", name)
			continue
		}
		if !originSonde(string(data), name) {
			t.Errorf("docs/metrics.md documents %s, which BBE 0.28 does not export, without Origin **sonde**", name)
		}
	}
}

// originSonde tells whether a metric's rows of docs/metrics.md give its
// Origin as **sonde**.
func originSonde(doc, name string) bool {
	for _, line := range strings.Split(doc, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) > 4 && strings.TrimSpace(cells[1]) == "`"+name+"`" {
			return strings.TrimSpace(cells[3]) == "**sonde**"
		}
	}
	return false
}

// TestDocumentedDifferencesHaveSections holds the documented table to
// docs/blackbox-differences.md: every section it names must exist there.
func TestDocumentedDifferencesHaveSections(t *testing.T) {
	data, err := os.ReadFile(repoRoot + "/docs/blackbox-differences.md")
	if err != nil {
		t.Fatalf("reading docs/blackbox-differences.md: %v", err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "#") {
			anchors[anchor(strings.TrimLeft(line, "# "))] = true
		}
	}
	for _, a := range documented {
		if a.section == "" || !anchors[a.section] {
			t.Errorf("documented difference %q %s %s names section %q, which docs/blackbox-differences.md does not have", a.scenarios, a.kind, a.families, a.section)
		}
	}
	for _, a := range pending {
		if strings.TrimSpace(a.why) == "" {
			t.Errorf("pending delta %q %s %s says no why", a.scenarios, a.kind, a.families)
		}
	}
}

// anchor is the id GitHub gives a heading: lower case, punctuation but
// hyphens and underscores dropped, spaces to hyphens.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}
