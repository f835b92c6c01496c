package compat

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// family is one metric family of an answer: its type and its series by
// label set (written as {a="1",b="2"}, "" for none).
type family struct {
	kind   string
	series map[string]float64
}

// exposition is one parsed answer to /probe.
type exposition map[string]family

// parseExposition reads the text format both exporters answer.
func parseExposition(body string) (exposition, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parsing the exposition: %w", err)
	}
	list := make([]*dto.MetricFamily, 0, len(mfs))
	for _, mf := range mfs {
		list = append(list, mf)
	}
	return fromFamilies(list), nil
}

// fromFamilies is the exposition of decoded metric families.
func fromFamilies(mfs []*dto.MetricFamily) exposition {
	out := exposition{}
	for _, mf := range mfs {
		fam := family{kind: strings.ToLower(mf.GetType().String()), series: map[string]float64{}}
		for _, m := range mf.GetMetric() {
			fam.series[labelSet(m.GetLabel())] = sampleValue(mf.GetType(), m)
		}
		out[mf.GetName()] = fam
	}
	return out
}

func labelSet(pairs []*dto.LabelPair) string {
	if len(pairs) == 0 {
		return ""
	}
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p.GetName() + "=" + strconv.Quote(p.GetValue())
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

func sampleValue(kind dto.MetricType, m *dto.Metric) float64 {
	switch kind {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_UNTYPED:
		return m.GetUntyped().GetValue()
	}
	return math.NaN() // histograms and summaries: no probe metric is one
}

// deltaKind says what differs.
type deltaKind string

const (
	deltaStatus  deltaKind = "status"  // the HTTP status of /probe
	deltaFamily  deltaKind = "family"  // a family one of them lacks
	deltaType    deltaKind = "type"    // a family's type
	deltaSeries  deltaKind = "series"  // a label set one of them lacks
	deltaValue   deltaKind = "value"   // a deterministic value
	deltaSanity  deltaKind = "sanity"  // a varying value out of range (negative, NaN)
	deltaParse   deltaKind = "parse"   // an answer that does not parse
	deltaRequest deltaKind = "request" // /probe could not be asked
	deltaConfig  deltaKind = "config"  // sonde refuses the module BBE loads
	deltaFormat  deltaKind = "format"  // the Content-Type of /probe's answer
)

// delta is one difference between the two answers of a scenario.
type delta struct {
	scenario string
	kind     deltaKind
	family   string // "" for status, parse and request deltas
	series   string // the label set, for series, value and sanity deltas
	bbe      string
	sonde    string
}

func (d delta) metric() string {
	switch {
	case d.kind == deltaConfig:
		return "module"
	case d.kind == deltaFormat:
		return "Content-Type"
	case d.family == "":
		return "HTTP status"
	}
	return d.family + d.series
}

// varying are the families whose values differ from probe to probe:
// durations. Only their presence, labels and sanity are compared.
var varying = map[string]bool{
	"probe_duration_seconds":        true,
	"probe_dns_lookup_time_seconds": true,
	"probe_http_duration_seconds":   true,
	"probe_dns_duration_seconds":    true,
	"probe_grpc_duration_seconds":   true,
	"probe_icmp_duration_seconds":   true,
}

// answer is what one exporter answered for a scenario.
type answer struct {
	status int
	body   string
	expo   exposition // nil unless status is 200 and the body parsed
	err    error      // the request failed
}

// compareAnswers lists every difference between BBE's and sonde's answers
// to one scenario. Families in sondeOnly are skipped on sonde's side: they
// are the documented additions.
func compareAnswers(scenario string, bbe, sonde answer) []delta {
	d := func(kind deltaKind, fam, series, b, s string) delta {
		return delta{scenario: scenario, kind: kind, family: fam, series: series, bbe: b, sonde: s}
	}
	switch {
	case bbe.err != nil || sonde.err != nil:
		return []delta{d(deltaRequest, "", "", errText(bbe.err), errText(sonde.err))}
	case bbe.status != sonde.status:
		return []delta{d(deltaStatus, "", "", strconv.Itoa(bbe.status), strconv.Itoa(sonde.status))}
	case bbe.status != 200:
		return nil // both refused the request alike; their wording differs
	}
	var out []delta
	if bbe.expo == nil || sonde.expo == nil {
		return []delta{d(deltaParse, "", "", parseText(bbe), parseText(sonde))}
	}
	for _, name := range unionKeys(bbe.expo, sonde.expo) {
		bf, inB := bbe.expo[name]
		sf, inS := sonde.expo[name]
		switch {
		case !inS:
			out = append(out, d(deltaFamily, name, "", describeFamily(bf), "absent"))
			continue
		case !inB:
			if !sondeOnly[name] {
				out = append(out, d(deltaFamily, name, "", "absent", describeFamily(sf)))
			}
			continue
		case bf.kind != sf.kind:
			out = append(out, d(deltaType, name, "", bf.kind, sf.kind))
		}
		for _, ls := range unionKeys(bf.series, sf.series) {
			bv, inB := bf.series[ls]
			sv, inS := sf.series[ls]
			switch {
			case !inS:
				out = append(out, d(deltaSeries, name, ls, formatValue(bv), "absent"))
			case !inB:
				out = append(out, d(deltaSeries, name, ls, "absent", formatValue(sv)))
			case varying[name]:
				if !saneDuration(bv) || !saneDuration(sv) {
					out = append(out, d(deltaSanity, name, ls, formatValue(bv), formatValue(sv)))
				}
			case !sameValue(bv, sv):
				out = append(out, d(deltaValue, name, ls, formatValue(bv), formatValue(sv)))
			}
		}
	}
	return out
}

// compareStatus lists only a difference of the answers' HTTP status (or a
// request that failed).
func compareStatus(scenario string, bbe, sonde answer) []delta {
	switch {
	case bbe.err != nil || sonde.err != nil:
		return []delta{{scenario: scenario, kind: deltaRequest, bbe: errText(bbe.err), sonde: errText(sonde.err)}}
	case bbe.status != sonde.status:
		return []delta{{scenario: scenario, kind: deltaStatus, bbe: strconv.Itoa(bbe.status), sonde: strconv.Itoa(sonde.status)}}
	}
	return nil
}

// saneDuration: a duration is a finite number of seconds, not negative.
func saneDuration(v float64) bool { return v >= 0 && !math.IsInf(v, 0) }

func sameValue(a, b float64) bool {
	return a == b || (math.IsNaN(a) && math.IsNaN(b))
}

func unionKeys[V any](a, b map[string]V) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// describeFamily is a family in a table cell: its one value, or its label
// sets and values, cut short.
func describeFamily(f family) string {
	if v, ok := f.series[""]; ok && len(f.series) == 1 {
		return formatValue(v)
	}
	parts := make([]string, 0, len(f.series))
	for _, ls := range unionKeys(f.series, nil) {
		parts = append(parts, ls+" "+formatValue(f.series[ls]))
	}
	s := strings.Join(parts, "; ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

func formatValue(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func parseText(a answer) string {
	if a.expo != nil {
		return "parsed"
	}
	return "did not parse: " + tail(a.body, 120)
}

// formatDeltas lays deltas out as a table for a failure message.
func formatDeltas(deltas []delta, note func(delta) string) string {
	rows := [][]string{{"scenario", "kind", "metric", "BBE", "sonde", ""}}
	for _, d := range deltas {
		rows = append(rows, []string{d.scenario, string(d.kind), d.metric(), d.bbe, d.sonde, note(d)})
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], min(len(c), 70))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, c := range r {
			if len(c) > 70 && i < len(r)-1 {
				c = c[:67] + "..."
			}
			fmt.Fprintf(&b, "%-*s  ", widths[i], c)
		}
		b.WriteString("\n")
	}
	return b.String()
}
