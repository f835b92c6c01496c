package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/sonde-exporter/sonde/assert"
)

// reporter writes the outcomes of `sonde probe` in one --output format.
// Standard output carries only that format; in the machine formats the
// failures and the verdict also go to standard error, so a CI log says
// why a gate failed when the output went to a file.
type reporter interface {
	outcome(o *outcome)
	summary(passed bool, msg string)
}

func newReporter(format string, stdout, stderr io.Writer, several bool) reporter {
	switch format {
	case "json":
		return &jsonReporter{enc: json.NewEncoder(stdout), notes: stderr}
	case "prometheus":
		return &promReporter{out: stdout, notes: stderr, several: several}
	}
	return &textReporter{out: stdout, several: several}
}

type textReporter struct {
	out     io.Writer
	several bool // more than one probe: say which run each is
}

func (r *textReporter) outcome(o *outcome) { writeText(r.out, o, r.several) }

func (r *textReporter) summary(passed bool, msg string) {
	fmt.Fprintf(r.out, "%s: %s\n", verdictWord(passed), msg)
}

type jsonReporter struct {
	enc   *json.Encoder
	notes io.Writer
}

// outcome writes one JSON object per line (JSON Lines): a consumer reads
// each probe as it is reported, and `jq -s` makes them one array.
func (r *jsonReporter) outcome(o *outcome) {
	if !o.passed() {
		writeText(r.notes, o, true)
	}
	if err := r.enc.Encode(newProbeJSON(o)); err != nil {
		fmt.Fprintf(r.notes, "sonde probe: writing JSON: %v\n", err)
	}
}

func (r *jsonReporter) summary(passed bool, msg string) {
	fmt.Fprintf(r.notes, "sonde probe: %s: %s\n", verdictWord(passed), msg)
}

type promReporter struct {
	out, notes io.Writer
	several    bool
}

// outcome writes the metrics as /probe answers them. With several probes
// a comment line before each says which it is; a single probe's output is
// exactly a scrape's.
func (r *promReporter) outcome(o *outcome) {
	if !o.passed() {
		writeText(r.notes, o, true)
	}
	if r.several {
		fmt.Fprintf(r.out, "# sonde probe module=%q target=%q run=%d passed=%t\n", o.res.Module.Name, o.res.ShownTarget(), o.run, o.passed())
	}
	enc := expfmt.NewEncoder(r.out, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range o.families {
		if err := enc.Encode(mf); err != nil {
			fmt.Fprintf(r.notes, "sonde probe: writing metrics: %v\n", err)
			return
		}
	}
}

func (r *promReporter) summary(passed bool, msg string) {
	fmt.Fprintf(r.notes, "sonde probe: %s: %s\n", verdictWord(passed), msg)
}

func verdictWord(passed bool) string {
	if passed {
		return "PASS"
	}
	return "FAIL"
}

// writeText writes the human summary of one probe: a header line, then
// one indented line per fact.
func writeText(w io.Writer, o *outcome, withRun bool) {
	header := fmt.Sprintf("%s  %s  %s", verdictWord(o.passed()), o.res.Module.Name, o.res.ShownTarget())
	if withRun {
		header += fmt.Sprintf("  (run %d)", o.run)
	}
	lines := []string{header, probeLine(o)}
	if ph := o.phases(); len(ph) > 0 {
		parts := make([]string, len(ph))
		for i, p := range ph {
			parts[i] = p.Name + " " + seconds(p.Seconds)
		}
		lines = append(lines, fact("phases", strings.Join(parts, ", ")))
	}
	if t := o.tls(); t != nil {
		lines = append(lines, fact("tls", tlsLine(t, time.Now())))
	}
	if a := o.attempts(); a.Made > 1 {
		lines = append(lines, fact("attempts", attemptsLine(a)))
	}
	for _, c := range o.checks {
		lines = append(lines, fact("assert", fmt.Sprintf("%-4s  %s  (%s)", okWord(c.Passed), c.Expr, c.Detail)))
	}
	for _, c := range o.comparisons {
		lines = append(lines, fact("baseline", fmt.Sprintf("%-4s  %s", okWord(!c.Regressed), c)))
	}
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}

func fact(name, text string) string { return fmt.Sprintf("      %-9s%s", name, text) }

func okWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAIL"
}

// probeLine says whether the probe succeeded, how fast, and if not why:
// class/reason in phase, the HTTP status a gateway would have answered,
// and the cause on a line of its own.
func probeLine(o *outcome) string {
	took := fmt.Sprintf("in %s (timeout %s)", seconds(o.res.Duration.Seconds()), o.res.Timeout)
	e := o.res.Err
	if e == nil {
		return fact("probe", "succeeded "+took)
	}
	s := fact("probe", fmt.Sprintf("failed %s: %s/%s in phase %s (HTTP %d)", took, e.Class, e.Reason, e.Phase, e.HTTPEquivalent()))
	if e.Err != nil {
		s += "\n" + fact("", e.Err.Error())
	}
	return s
}

func tlsLine(t *tlsFacts, now time.Time) string {
	parts := []string{strings.TrimSpace(t.Version + " " + t.Cipher)}
	if t.Subject != "" {
		parts = append(parts, "subject "+t.Subject)
	}
	if t.Issuer != "" {
		parts = append(parts, "issuer "+t.Issuer)
	}
	if t.EarliestCertExpiry != nil {
		days := int(t.EarliestCertExpiry.Sub(now).Hours() / 24)
		parts = append(parts, fmt.Sprintf("expires %s (in %d days)", t.EarliestCertExpiry.Format(time.RFC3339), days))
	}
	if !t.Verified {
		parts = append(parts, "NOT VERIFIED")
	}
	if t.OCSPStatus != "" {
		parts = append(parts, "OCSP "+t.OCSPStatus)
	}
	return strings.Join(parts, "; ")
}

func attemptsLine(a attempts) string {
	var failed []string
	total := 0
	for _, class := range sortedKeys(a.Failed) {
		failed = append(failed, fmt.Sprintf("%s %d", class, a.Failed[class]))
		total += a.Failed[class]
	}
	return fmt.Sprintf("%d, %d failed (%s); the first took %s", a.Made, total, strings.Join(failed, ", "), seconds(a.FirstDurationSeconds))
}

// seconds writes a number of seconds as a duration to the microsecond:
// 215µs, 1.234ms, 2.5s.
func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Microsecond).String()
}

// probeJSON is the --output=json object of one probe. Every key is always
// present (null or empty when it does not apply), so that a consumer can
// rely on the shape; docs/cli.md shows an example.
type probeJSON struct {
	Module          string             `json:"module"`
	Target          string             `json:"target"`
	Hostname        string             `json:"hostname"`
	Run             int                `json:"run"`
	Passed          bool               `json:"passed"`
	Success         bool               `json:"success"`
	DurationSeconds float64            `json:"duration_seconds"`
	TimeoutSeconds  float64            `json:"timeout_seconds"`
	Attempts        attempts           `json:"attempts"`
	Phases          map[string]float64 `json:"phases"`
	Failure         *failureJSON       `json:"failure"`
	TLS             *tlsFacts          `json:"tls"`
	Assertions      []check            `json:"assertions"`
	Baseline        []comparison       `json:"baseline"`
	Metrics         []metricJSON       `json:"metrics"`
}

type failureJSON struct {
	Class          string `json:"class"`
	Reason         string `json:"reason"`
	Phase          string `json:"phase"`
	HTTPEquivalent int    `json:"http_equivalent"`
	Message        string `json:"message"`
}

type metricJSON struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
	Value  jsonNumber        `json:"value"`
}

// jsonNumber is a metric value in JSON, which has no NaN or infinities:
// those are written as null rather than failing the whole object.
type jsonNumber float64

func (n jsonNumber) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(n))
}

func newProbeJSON(o *outcome) probeJSON {
	p := probeJSON{
		Module:          o.res.Module.Name,
		Target:          o.target,
		Hostname:        o.res.Module.Hostname,
		Run:             o.run,
		Passed:          o.passed(),
		Success:         o.res.Success(),
		DurationSeconds: o.res.Duration.Seconds(),
		TimeoutSeconds:  o.res.Timeout.Seconds(),
		Attempts:        o.attempts(),
		Phases:          map[string]float64{},
		TLS:             o.tls(),
		Assertions:      append([]check{}, o.checks...),
		Baseline:        append([]comparison{}, o.comparisons...),
		Metrics:         metricsJSON(o.samples),
	}
	for _, ph := range o.phases() {
		p.Phases[ph.Name] = ph.Seconds
	}
	if e := o.res.Err; e != nil {
		p.Failure = &failureJSON{Class: string(e.Class), Reason: string(e.Reason), Phase: string(e.Phase), HTTPEquivalent: e.HTTPEquivalent()}
		if e.Err != nil {
			p.Failure.Message = e.Err.Error()
		}
	}
	return p
}

func metricsJSON(samples []assert.Sample) []metricJSON {
	out := make([]metricJSON, len(samples))
	for i, s := range samples {
		out[i] = metricJSON{Name: s.Name, Labels: s.Labels, Value: jsonNumber(s.Value)}
	}
	return out
}
