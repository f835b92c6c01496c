package cli

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sonde-exporter/sonde/assert"
	"github.com/sonde-exporter/sonde/internal/redact"
)

// A baseline file keeps, per module and target, the latency a pipeline
// accepted, so that a later run can fail when it got slower. It is JSON,
// small and stable, meant to be kept as a CI artifact or committed.

// baselineVersion is the version of the file format.
const baselineVersion = 1

// baselineMetrics are the latency figures compared: the whole probe, and
// the first attempt alone, which retries cannot hide.
var baselineMetrics = []string{"probe_duration_seconds", "probe_first_attempt_duration_seconds"}

type baselineFile struct {
	Version int             `json:"version"`
	Entries []baselineEntry `json:"entries"`
}

// baselineEntry holds the figures of one module and target: for each
// metric, the median over the runs that passed when it was saved.
type baselineEntry struct {
	Module  string             `json:"module"`
	Target  string             `json:"target"`
	Metrics map[string]float64 `json:"metrics"`
	Runs    int                `json:"runs"`
	Saved   time.Time          `json:"saved"`
}

// readBaseline reads a baseline file. A file that does not exist yet is
// an empty baseline, noted on stderr: the first run of a pipeline has
// nothing to compare with. A file that cannot be read or parsed is an
// error: a gate must not pass because its baseline was lost.
func readBaseline(path string, stderr io.Writer) (*baselineFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "sonde probe: baseline file %s does not exist yet; nothing to compare with\n", path)
		return &baselineFile{Version: baselineVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the baseline: %w", err)
	}
	var b baselineFile
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("baseline file %s: %w", path, err)
	}
	if b.Version != baselineVersion {
		return nil, fmt.Errorf("baseline file %s: version %d, this sonde reads version %d", path, b.Version, baselineVersion)
	}
	return &b, nil
}

func (b *baselineFile) entry(module, target string) *baselineEntry {
	for i := range b.Entries {
		if b.Entries[i].Module == module && b.Entries[i].Target == target {
			return &b.Entries[i]
		}
	}
	return nil
}

// comparison is one latency figure of a probe against the baseline.
type comparison struct {
	Metric       string  `json:"metric"`
	Current      float64 `json:"current"`
	Baseline     float64 `json:"baseline"`
	Change       float64 `json:"change"`     // (current - baseline) / baseline
	Max          float64 `json:"max_change"` // --max-regression
	Regressed    bool    `json:"regressed"`
	BaselineRuns int     `json:"baseline_runs"` // the runs the baseline is the median of
}

func (c comparison) String() string {
	return fmt.Sprintf("%s %s, baseline %s (%+.0f%%, at most +%.4g%%)", c.Metric, seconds(c.Current), seconds(c.Baseline),
		c.Change*100, c.Max*100)
}

// compare compares the probe's latency figures with the baseline entry of
// its module and target; nothing when there is no baseline or no entry.
// A figure missing on either side is not compared.
func (b *baselineFile) compare(module, target string, samples []assert.Sample, maxChange float64) []comparison {
	if b == nil {
		return nil
	}
	e := b.entry(module, target)
	if e == nil {
		return nil
	}
	var out []comparison
	for _, metric := range baselineMetrics {
		base, ok := e.Metrics[metric]
		cur, found := sampleValue(samples, metric)
		if !ok || !found || base <= 0 {
			continue
		}
		c := comparison{Metric: metric, Current: cur, Baseline: base, Change: (cur - base) / base, Max: maxChange, BaselineRuns: e.Runs}
		c.Regressed = c.Change > maxChange
		out = append(out, c)
	}
	return out
}

func sampleValue(samples []assert.Sample, name string) (float64, bool) {
	for _, s := range samples {
		if s.Name == name && len(s.Labels) == 0 {
			return s.Value, true
		}
	}
	return 0, false
}

// save writes the figures of every target that passed into the
// --save-baseline file, keeping the entries of other modules and targets.
// A target that failed keeps its old entry: a regression must not become
// the new normal.
func (g *gate) save(tallies []tally) error {
	path := g.flags.saveBaseline
	b, err := readBaseline(path, io.Discard)
	if err != nil {
		return err
	}
	for _, t := range tallies {
		if t.failures > g.flags.maxFailures || len(t.passed) == 0 {
			fmt.Fprintf(g.stderr, "sonde probe: the baseline of %s is not updated: it failed\n", redact.Target(t.target))
			continue
		}
		b.put(newBaselineEntry(g.module.Name, t.target, t.passed))
	}
	return writeBaseline(path, b)
}

func newBaselineEntry(module, target string, passed []*outcome) baselineEntry {
	e := baselineEntry{Module: module, Target: target, Metrics: map[string]float64{}, Runs: len(passed), Saved: time.Now().UTC().Truncate(time.Second)}
	for _, metric := range baselineMetrics {
		var values []float64
		for _, o := range passed {
			if v, ok := sampleValue(o.samples, metric); ok {
				values = append(values, v)
			}
		}
		if len(values) > 0 {
			e.Metrics[metric] = median(values)
		}
	}
	return e
}

// put adds or replaces the entry, keeping entries sorted so that the file
// diffs cleanly.
func (b *baselineFile) put(e baselineEntry) {
	if old := b.entry(e.Module, e.Target); old != nil {
		*old = e
	} else {
		b.Entries = append(b.Entries, e)
	}
	slices.SortFunc(b.Entries, func(x, y baselineEntry) int {
		return cmp.Or(strings.Compare(x.Module, y.Module), strings.Compare(x.Target, y.Target))
	})
}

// writeBaseline replaces the file atomically: a pipeline killed while
// writing leaves the old baseline, not half of one.
func writeBaseline(path string, b *baselineFile) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the baseline: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing the baseline: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing left to remove
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the baseline: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the baseline: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing the baseline: %w", err)
	}
	return nil
}

func median(values []float64) float64 {
	s := slices.Clone(values)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percent is the value of --max-regression: "20%" or "20", stored as a
// fraction (0.2).
type percent float64

func (p *percent) Set(s string) error {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return fmt.Errorf("%q is not a percentage such as 20%%", s)
	}
	*p = percent(v / 100)
	return nil
}

func (p *percent) String() string { return fmt.Sprintf("%.4g%%", float64(*p)*100) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
