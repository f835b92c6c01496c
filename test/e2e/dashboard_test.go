package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sonde-exporter/sonde/internal/metricsdoc"
)

// dashboardPath is the example dashboard, from the repository root.
const dashboardPath = "examples/grafana/sonde-dashboard.json"

// query is a PromQL expression of the dashboard and where it is.
type query struct {
	where string // panel title, or "variable NAME"
	expr  string
	// label is set for a variable's label_values(expr, label): expr is
	// then a series selector whose series must carry label.
	label string
}

// labelValuesQuery is the variable query of Grafana's Prometheus data
// source that lists a label's values on the series of a selector.
var labelValuesQuery = regexp.MustCompile(`^\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

// dashboardQueries reads every panel's target expressions (rows' panels
// included) and every query variable of a Grafana dashboard.
func dashboardQueries(t *testing.T, path string) []query {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the dashboard: %v", err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var dash struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name       string          `json:"name"`
				Type       string          `json:"type"`
				Definition string          `json:"definition"`
				Query      json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("parsing the dashboard: %v", err)
	}
	var out []query
	var walk func(raw []json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("parsing a panel of the dashboard: %v", err)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q has a target without an expression", p.Title)
					continue
				}
				out = append(out, query{where: p.Title, expr: tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		// Grafana writes the query as a string or, lately, as an object
		// with the string in "query"; "definition" repeats it.
		q := v.Definition
		var s string
		var obj struct {
			Query string `json:"query"`
		}
		if json.Unmarshal(v.Query, &s) == nil && s != "" {
			q = s
		} else if json.Unmarshal(v.Query, &obj) == nil && obj.Query != "" {
			q = obj.Query
		}
		m := labelValuesQuery.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(selector, label), the only variable query the tests understand", v.Name, q)
			continue
		}
		out = append(out, query{where: "variable " + v.Name, expr: m[1], label: m[2]})
	}
	if len(out) == 0 {
		t.Fatal("the dashboard has no queries")
	}
	return out
}

// grafanaVariable matches the ways a dashboard refers to a variable:
// $name, ${name}, ${name:format} and [[name]].
var grafanaVariable = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)

// variableValues are what the tests put in place of the dashboard's
// variables: every job, module and target (the dashboard's "All", which
// works only with =~ matchers), and Grafana's intervals as short as the
// tests' few minutes of data allow.
var variableValues = map[string]string{
	"job":             ".+",
	"module":          ".+",
	"instance":        ".+",
	"__rate_interval": "1m",
	"__interval":      "15s",
	"__range":         "5m",
	"__interval_ms":   "15000",
	"__range_s":       "300",
	"__range_ms":      "300000",
}

func substitute(expr string) (string, error) {
	var unknown []string
	out := grafanaVariable.ReplaceAllStringFunc(expr, func(ref string) string {
		m := grafanaVariable.FindStringSubmatch(ref)
		name := m[1] + m[2] + m[3]
		v, ok := variableValues[name]
		if !ok {
			unknown = append(unknown, ref)
		}
		return v
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("%s uses %v, which the tests give no value: add it to variableValues", expr, unknown)
	}
	return out, nil
}

// checkDashboardQueries runs every query of the dashboard against prom:
// each must parse and return data.
func checkDashboardQueries(t *testing.T, prom promAPI, path string) {
	for _, q := range dashboardQueries(t, path) {
		t.Run(q.where, func(t *testing.T) {
			expr, err := substitute(q.expr)
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, dataTimeout, q.expr, func() error {
				if q.label != "" {
					values, err := prom.labelValues(q.label, expr)
					if err == nil && len(values) == 0 {
						err = errEmpty
					}
					return err
				}
				got, err := prom.query(expr)
				if err == nil && len(got) == 0 {
					err = errEmpty
				}
				return err
			})
		})
	}
}

// prometheusBuiltins are the series Prometheus itself writes for every
// scrape and alert, which a dashboard may use.
var prometheusBuiltins = []string{
	"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
	"scrape_series_added", "ALERTS", "ALERTS_FOR_STATE",
}

// TestDashboardMetricsAreDocumented holds the dashboard to docs/metrics.md
// (which tests hold to the code): a panel may use only metrics sonde
// documents, probe metrics and exporter metrics alike, or Prometheus's own.
func TestDashboardMetricsAreDocumented(t *testing.T) {
	docs, err := metricsdoc.Load(filepath.Join(repoRoot, "docs", "metrics.md"))
	if err != nil {
		t.Fatalf("loading docs/metrics.md: %v", err)
	}
	used := 0
	for _, q := range dashboardQueries(t, filepath.Join(repoRoot, dashboardPath)) {
		expr, err := substitute(q.expr)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		names, err := metricNames(expr)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s: %q names no metric", q.where, q.expr)
		}
		for _, name := range names {
			used++
			if !documented(docs, name) && !slices.Contains(prometheusBuiltins, name) {
				t.Errorf("%s: %s is not documented in docs/metrics.md (query %q)", q.where, name, q.expr)
			}
		}
	}
	if used == 0 {
		t.Error("no metric names found in the dashboard")
	}
}

// documented reports whether name is in docs/metrics.md, a histogram's
// series (_bucket, _sum, _count) counting as their family.
func documented[V any](docs map[string]V, name string) bool {
	if _, ok := docs[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if _, ok := docs[base]; ok {
				return true
			}
		}
	}
	return false
}

// Words of PromQL that are not metric names where an identifier may stand.
var (
	promqlGrouping = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}
	promqlKeywords = []string{"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}
)

// metricNames returns the metric names an expression selects: identifiers
// outside label matchers, strings, ranges and grouping lists that are not
// functions, aggregations or keywords. It is a small lexer rather than
// Prometheus's parser, which would be a large dependency for one test; the
// end-to-end test sends every expression to a real Prometheus, which
// rejects what this lets through.
func metricNames(expr string) ([]string, error) {
	var names []string
	braces := 0
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(expr, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '{':
			braces++
			i++
		case c == '}':
			if braces == 0 {
				return nil, fmt.Errorf("%q: unbalanced }", expr)
			}
			braces--
			i++
		case c == '[':
			end := strings.IndexByte(expr[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("%q: unterminated [", expr)
			}
			i += end + 1
		case braces > 0:
			i++ // label names and operators of a matcher
		case isDigit(c) || c == '.' && i+1 < len(expr) && isDigit(expr[i+1]):
			// Numbers and durations: 1, 0.5, 1e3, 0x1f, 5m.
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(expr) && isIdent(expr[i]) {
				i++
			}
			word := expr[start:i]
			next := nextWord(expr, i)
			switch {
			case slices.Contains(promqlGrouping, word):
				// by (a, b): skip the label list.
				open := strings.IndexByte(expr[i:], '(')
				end := strings.IndexByte(expr[i:], ')')
				if open < 0 || end < open {
					return nil, fmt.Errorf("%q: %s without its label list", expr, word)
				}
				i += end + 1
			case next == "(" || next == "by" || next == "without":
				// A function call or an aggregation: sum by (x) (...).
			case slices.Contains(promqlKeywords, strings.ToLower(word)):
			default:
				if !slices.Contains(names, word) {
					names = append(names, word)
				}
			}
		default:
			i++
		}
	}
	if braces != 0 {
		return nil, fmt.Errorf("%q: unbalanced {", expr)
	}
	return names, nil
}

// skipString returns the index after the string literal starting at i.
func skipString(s string, i int) (int, error) {
	quote := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && quote != '`':
			j++
		case s[j] == quote:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("%q: unterminated string", s)
}

// nextWord returns the identifier or the single character that follows i,
// after spaces.
func nextWord(s string, i int) string {
	for i < len(s) && strings.ContainsRune(" \t\n", rune(s[i])) {
		i++
	}
	if i == len(s) {
		return ""
	}
	start := i
	for i < len(s) && isIdent(s[i]) {
		i++
	}
	if i == start {
		return s[i : i+1]
	}
	return s[start:i]
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
func isIdent(c byte) bool { return isIdentStart(c) || isDigit(c) }

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`probe_success{job=~"a|b", instance!="x"}`, []string{"probe_success"}},
		{`a * on (job) b`, []string{"a", "b"}},
		{`sum by (module, result) (rate(sonde_probe_attempts_total{module=~".+"}[1m]))`, []string{"sonde_probe_attempts_total"}},
		{`sum(rate(a_total[5m])) without (instance) / on (job) group_left (team) b`, []string{"a_total", "b"}},
		{`topk(10, (1 - avg by (job) (avg_over_time(probe_success[5m]))) > 0)`, []string{"probe_success"}},
		{`count(probe_success == 0) or vector(0)`, []string{"probe_success"}},
		{`min(probe_ssl_earliest_cert_expiry) - time() < 14 * 86400 and 1e3 > 0x10`, []string{"probe_ssl_earliest_cert_expiry"}},
		{`probe_duration_seconds offset 5m / bool probe_timeout_seconds`, []string{"probe_duration_seconds", "probe_timeout_seconds"}},
		{`label_replace(x, "dst", "$1", "src", "(.*)")`, []string{"x"}},
		{`avg_over_time(a[5m:30s]) unless b{c="}"}`, []string{"a", "b"}},
		{`sum without (phase) (probe_http_duration_seconds)`, []string{"probe_http_duration_seconds"}},
	} {
		got, err := metricNames(tc.expr)
		if err != nil {
			t.Errorf("metricNames(%q): %v", tc.expr, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %v, want %v", tc.expr, got, tc.want)
		}
	}
	for _, bad := range []string{`a{b="c"`, `a{b="c}`, `sum by a`, `a[5m`} {
		if _, err := metricNames(bad); err == nil {
			t.Errorf("metricNames(%q) found no problem", bad)
		}
	}
}
