package assert

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/sonde-exporter/sonde/internal/suggest"
)

// Sample is one series of a probe's metrics.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// SamplesFrom flattens gathered metric families (a probe's are all gauges)
// into samples. Families of other types keep their counter or untyped
// value; summaries and histograms, which no probe exports, are left out.
func SamplesFrom(mfs []*dto.MetricFamily) []Sample {
	var out []Sample
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v, ok := value(m)
			if !ok {
				continue
			}
			labels := make(map[string]string, len(m.GetLabel()))
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			out = append(out, Sample{Name: mf.GetName(), Labels: labels, Value: v})
		}
	}
	return out
}

func value(m *dto.Metric) (float64, bool) {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue(), true
	case m.Counter != nil:
		return m.Counter.GetValue(), true
	case m.Untyped != nil:
		return m.Untyped.GetValue(), true
	}
	return 0, false
}

// Env is what an assertion is evaluated against: one probe's samples, and
// the time time() returns.
type Env struct {
	Samples []Sample
	Now     time.Time
}

// Outcome is an evaluated assertion.
type Outcome struct {
	Passed      bool
	Left, Right float64 // the two sides, when Err is nil
	Op          string
	Err         error // why the assertion could not be evaluated; it then fails
}

// Detail says why the assertion passed or failed, in numbers:
// "200 == 200", "0.731 < 0.5 is false", or the evaluation error.
func (o Outcome) Detail() string {
	if o.Err != nil {
		return o.Err.Error()
	}
	s := FormatNumber(o.Left) + " " + o.Op + " " + FormatNumber(o.Right)
	if !o.Passed {
		s += " is false"
	}
	return s
}

// Eval evaluates the assertion. It never panics on missing or ambiguous
// metrics: those fail the assertion with a message saying what there is.
func (a *Assertion) Eval(env Env) Outcome {
	o := Outcome{Op: a.op}
	if o.Left, o.Err = a.left.eval(&env); o.Err != nil {
		return o
	}
	if o.Right, o.Err = a.right.eval(&env); o.Err != nil {
		return o
	}
	o.Passed = compare(a.op, o.Left, o.Right)
	return o
}

func compare(op string, l, r float64) bool {
	switch op {
	case "<":
		return l < r
	case "<=":
		return l <= r
	case ">":
		return l > r
	case ">=":
		return l >= r
	case "==":
		return l == r
	}
	return l != r
}

// FormatNumber writes v as a person reads it, in the shortest form that
// is exact: without an exponent in the range of timestamps, status codes
// and durations, with one for the very small and very large.
func FormatNumber(v float64) string {
	if a := math.Abs(v); a == 0 || (a >= 1e-4 && a < 1e15) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

type node interface {
	eval(env *Env) (float64, error)
}

type numberNode float64

func (n numberNode) eval(*Env) (float64, error) { return float64(n), nil }

type timeNode struct{}

func (timeNode) eval(env *Env) (float64, error) {
	return float64(env.Now.UnixNano()) / 1e9, nil
}

type negNode struct{ x node }

func (n *negNode) eval(env *Env) (float64, error) {
	v, err := n.x.eval(env)
	return -v, err
}

type binaryNode struct {
	op          byte
	left, right node
}

var errDivisionByZero = errors.New("division by zero")

func (n *binaryNode) eval(env *Env) (float64, error) {
	l, err := n.left.eval(env)
	if err != nil {
		return 0, err
	}
	r, err := n.right.eval(env)
	if err != nil {
		return 0, err
	}
	switch n.op {
	case '+':
		return l + r, nil
	case '-':
		return l - r, nil
	case '*':
		return l * r, nil
	}
	if r == 0 {
		// +Inf would compare, silently, as bigger than any threshold.
		return 0, errDivisionByZero
	}
	return l / r, nil
}

type labelMatcher struct {
	name, value string
	negate      bool
}

func (m labelMatcher) matches(labels map[string]string) bool {
	return (labels[m.name] == m.value) != m.negate
}

func (m labelMatcher) String() string {
	op := "="
	if m.negate {
		op = "!="
	}
	return m.name + op + strconv.Quote(m.value)
}

type selectorNode struct {
	name     string
	matchers []labelMatcher
}

func (s *selectorNode) String() string {
	if len(s.matchers) == 0 {
		return s.name
	}
	parts := make([]string, len(s.matchers))
	for i, m := range s.matchers {
		parts[i] = m.String()
	}
	return s.name + "{" + strings.Join(parts, ", ") + "}"
}

// eval returns the value of the one series the selector picks; none or
// several is an error that lists the series of that metric.
func (s *selectorNode) eval(env *Env) (float64, error) {
	var all, matched []Sample
	for _, sm := range env.Samples {
		if sm.Name != s.name {
			continue
		}
		all = append(all, sm)
		if s.matches(sm) {
			matched = append(matched, sm)
		}
	}
	switch {
	case len(matched) == 1:
		return matched[0].Value, nil
	case len(all) == 0:
		return 0, fmt.Errorf("%s: the probe exported no such metric%s", s.name, suggestion(s.name, env.Samples))
	case len(matched) == 0:
		return 0, fmt.Errorf("%s matches none of the series of %s: %s", s, s.name, labelSets(all))
	}
	return 0, fmt.Errorf("%s matches %d series; pick one with a label matcher: %s", s, len(matched), labelSets(matched))
}

func (s *selectorNode) matches(sm Sample) bool {
	for _, m := range s.matchers {
		if !m.matches(sm.Labels) {
			return false
		}
	}
	return true
}

// labelSets lists the label sets of samples, e.g. {phase="connect"}, {phase="tls"}.
func labelSets(samples []Sample) string {
	sets := make([]string, len(samples))
	for i, sm := range samples {
		sets[i] = formatLabels(sm.Labels)
	}
	sort.Strings(sets)
	return strings.Join(sets, ", ")
}

func formatLabels(labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for name := range labels {
		names = append(names, name)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = name + "=" + strconv.Quote(labels[name])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// suggestion names the exported metric closest to a misspelt name.
func suggestion(name string, samples []Sample) string {
	names := make([]string, len(samples))
	for i, sm := range samples {
		names[i] = sm.Name
	}
	if best := suggest.Closest(name, names); best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	return ""
}
