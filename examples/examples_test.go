// Package examples holds the files operators copy: alert rules, and later
// Prometheus and dashboard configurations. Its tests keep them working.
package examples

import (
	"os"
	"os/exec"
	"testing"
)

// promtool finds Prometheus's promtool. Outside CI a missing promtool skips
// the test with a loud message; in CI (.ci/run installs Debian's prometheus
// package) it is a failure, so the rules are never left untested.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatal("promtool is not installed; .ci/run should have installed Debian's prometheus package")
	}
	t.Skip("SKIPPING: promtool is not installed, so the alert rules are not checked; install it with `apt-get install prometheus`")
	return ""
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %v: %v\n%s", args, err, out)
	}
}

func TestAlertRulesAreValid(t *testing.T) {
	runPromtool(t, "check", "rules", "alerts.yml")
}

// The unit tests in alerts.test.yml fire each alert from probe_failure_info
// series and check its labels and summary.
func TestAlertRulesFire(t *testing.T) {
	runPromtool(t, "test", "rules", "alerts.test.yml")
}
