// Package metricsdoc reads the metric tables of docs/metrics.md, so that
// tests can hold what sonde exports and what it documents to each other.
package metricsdoc

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// Family is a documented metric.
type Family struct {
	Name string
	// Labels are the label names, sorted.
	Labels []string
	// AnyLabels marks a family whose labels the configuration names
	// (probe_expect_info); its labels are not checked.
	AnyLabels bool
}

var (
	backticked = regexp.MustCompile("`([^`]+)`")
	enumerated = regexp.MustCompile("`([a-z_]+)` =")
)

// Load reads every table of path whose header starts with "| Metric |"
// and returns its rows by metric name. Names with a wildcard (go_*) are
// skipped. A metric documented twice must have the same labels both times.
func Load(path string) (map[string]Family, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	families := map[string]Family{}
	labelsCol := -1
	scanner := bufio.NewScanner(f)
	for line := 1; scanner.Scan(); line++ {
		cells := splitRow(scanner.Text())
		switch {
		case cells == nil:
			labelsCol = -1
		case cells[0] == "Metric":
			labelsCol = slices.Index(cells, "Labels")
		case labelsCol > 0 && !strings.HasPrefix(cells[0], "---"):
			fam, ok := parseRow(cells, labelsCol)
			if !ok {
				continue
			}
			if prev, seen := families[fam.Name]; seen && !slices.Equal(prev.Labels, fam.Labels) {
				return nil, fmt.Errorf("%s:%d: %s is documented with labels %v and, earlier, %v", path, line, fam.Name, fam.Labels, prev.Labels)
			}
			families[fam.Name] = fam
		}
	}
	return families, scanner.Err()
}

// splitRow returns the cells of a table row, nil for any other line.
func splitRow(line string) []string {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "|") || !strings.HasSuffix(line, "|") {
		return nil
	}
	cells := strings.Split(strings.Trim(line, "|"), "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells
}

func parseRow(cells []string, labelsCol int) (Family, bool) {
	m := backticked.FindStringSubmatch(cells[0])
	if m == nil || m[0] != cells[0] || strings.Contains(m[1], "*") || labelsCol >= len(cells) {
		return Family{}, false
	}
	fam := Family{Name: m[1], Labels: []string{}}
	labels := cells[labelsCol]
	switch {
	case strings.Contains(labels, "the `labels`"):
		fam.AnyLabels = true
	case strings.Contains(labels, " ="):
		for _, l := range enumerated.FindAllStringSubmatch(labels, -1) {
			fam.Labels = append(fam.Labels, l[1])
		}
	default:
		for _, l := range backticked.FindAllStringSubmatch(labels, -1) {
			fam.Labels = append(fam.Labels, l[1])
		}
	}
	slices.Sort(fam.Labels)
	return fam, true
}

// Check compares an exported family's label names with the documentation,
// returning a problem or "".
func Check(docs map[string]Family, name string, labels []string) string {
	fam, ok := docs[name]
	if !ok {
		return fmt.Sprintf("%s is exported but not documented in docs/metrics.md", name)
	}
	if fam.AnyLabels {
		return ""
	}
	labels = slices.Sorted(slices.Values(labels))
	if !slices.Equal(fam.Labels, labels) {
		return fmt.Sprintf("%s is exported with labels %v, documented with %v", name, labels, fam.Labels)
	}
	return ""
}
