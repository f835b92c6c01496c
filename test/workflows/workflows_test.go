// Package workflows checks the GitHub Actions workflows sonde ships: its
// own release workflow and the example a user copies.
package workflows

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// actionlint is the linter's module and version, run with `go run` from
// the Go module proxy so that go.mod does not carry it.
const actionlint = "github.com/rhysd/actionlint/cmd/actionlint@v1.7.12"

// repoRoot is where go test runs this package from, two levels down.
const repoRoot = "../.."

// workflows are the files actionlint checks.
var workflows = []string{
	".github/workflows/release.yml",
	"examples/ci/github-actions.yml",
}

func TestWorkflowsPassActionlint(t *testing.T) {
	needActionlint(t)
	for _, wf := range workflows {
		t.Run(filepath.Base(wf), func(t *testing.T) {
			if out, err := runActionlint(t, filepath.Join(repoRoot, wf)); err != nil {
				t.Errorf("actionlint %s: %v\n%s", wf, err, out)
			}
		})
	}
}

// The linter must find what it is there to find, or a pass means nothing.
func TestActionlintCatchesABrokenWorkflow(t *testing.T) {
	needActionlint(t)
	broken := filepath.Join(t.TempDir(), "broken.yml")
	src := "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.no_such_context }}\n"
	if err := os.WriteFile(broken, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runActionlint(t, broken)
	if err == nil {
		t.Fatalf("actionlint passed a workflow with an unknown context:\n%s", out)
	}
	if !strings.Contains(out, "no_such_context") {
		t.Errorf("actionlint failed without naming the unknown context:\n%s", out)
	}
}

// Every `make` target the release workflow runs exists in the Makefile.
func TestReleaseWorkflowTargetsExist(t *testing.T) {
	wf, err := os.ReadFile(filepath.Join(repoRoot, ".github/workflows/release.yml"))
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	targets := regexp.MustCompile(`(?m)\bmake ([a-z][a-z-]*)`).FindAllStringSubmatch(string(wf), -1)
	if len(targets) == 0 {
		t.Fatal("the release workflow runs no make target")
	}
	for _, m := range targets {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(m[1]) + `:`).Match(makefile) {
			t.Errorf("the release workflow runs `make %s`, which the Makefile does not define", m[1])
		}
	}
}

func runActionlint(t *testing.T, files ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"run", actionlint, "-no-color"}, files...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// needActionlint skips when the linter cannot be fetched, unless CI is
// set: CI must run it.
func needActionlint(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs actionlint with go run")
	}
	if out, err := exec.Command("go", "run", actionlint, "-version").CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("actionlint cannot be run (%v), and CI must run it:\n%s", err, out)
		}
		t.Skipf("actionlint cannot be run from the Go module proxy here: %v", err)
	}
}
