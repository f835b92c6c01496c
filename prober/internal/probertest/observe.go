package probertest

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sonde-exporter/sonde/internal/metricsdoc"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
)

// Every family a test probe exports is checked against docs/metrics.md:
// its name must be documented with the same label names. Probes report
// their sinks through observe; TestMain checks them once all tests ran.

var exported = struct {
	sync.Mutex
	labels map[string][]string // family -> label names
	where  map[string]string   // family -> a test that exported it
}{labels: map[string][]string{}, where: map[string]string{}}

// Observe records what a probe's sink exports.
func Observe(t testing.TB, sink *probemetrics.Sink) {
	mfs, err := sink.Gather()
	if err != nil {
		t.Errorf("gathering the probe's metrics: %v", err)
		return
	}
	exported.Lock()
	defer exported.Unlock()
	for _, mf := range mfs {
		if _, seen := exported.labels[mf.GetName()]; seen || len(mf.GetMetric()) == 0 {
			continue
		}
		names := []string{}
		for _, l := range mf.GetMetric()[0].GetLabel() {
			names = append(names, l.GetName())
		}
		exported.labels[mf.GetName()] = names
		exported.where[mf.GetName()] = t.Name()
	}
}

// tlsDocumented are families every full run must see exported, since the
// TLS tests are hermetic: a documented TLS family nobody exports is stale.
func tlsDocumented(docs map[string]metricsdoc.Family) []string {
	var names []string
	for name := range docs {
		if strings.HasPrefix(name, "probe_tls_") || strings.HasPrefix(name, "probe_ssl_") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// CheckDocumented checks what the test probes of the binary exported
// against the documentation at path, and, in a run of every test, that
// each documented TLS family mustSee accepts was exported (nil accepts
// none: the TLS tests are spread over the prober and prober/http tests,
// each seeing its share). It returns the exit code TestMain should end
// with.
func CheckDocumented(path string, mustSee func(family string) bool) int {
	docs, err := metricsdoc.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, path+":", err)
		return 1
	}
	exported.Lock()
	defer exported.Unlock()
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(exported.labels)) {
		if p := metricsdoc.Check(docs, name, exported.labels[name]); p != "" {
			problems = append(problems, fmt.Sprintf("%s (seen in %s)", p, exported.where[name]))
		}
	}
	if mustSee != nil && fullRun() {
		for _, name := range tlsDocumented(docs) {
			if _, seen := exported.labels[name]; !seen && mustSee(name) {
				problems = append(problems, name+" is documented but no test probe exported it")
			}
		}
	}
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, "metrics documentation:", p)
	}
	if len(problems) > 0 {
		fmt.Fprintln(os.Stderr, "FAIL: exported metrics and docs/metrics.md disagree")
		return 1
	}
	return 0
}

// fullRun reports whether every test ran: no -run or -skip filter.
func fullRun() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return !testing.Short()
}
