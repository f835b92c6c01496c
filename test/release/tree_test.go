// Package release tests `make release` and `make packages` as a release
// manager runs them: on a copy of the tree made a git repository of one
// commit, so that the Makefile takes revision, branch and
// SOURCE_DATE_EPOCH from git as it does in a real checkout, and nothing is
// written into the tree under test.
package release

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

const repoRoot = "../.."

// The copy's single commit: its time is what SOURCE_DATE_EPOCH defaults to,
// and so the build date and every file's time in the release files.
const (
	commitEpoch     = 1700000000
	commitBuildDate = "20231114-22:13:20" // commitEpoch as --version shows it
	commitBranch    = "release-test"
)

// tool finds an installed binary. Outside CI a missing one skips the test
// with a loud message; in CI (.ci/run installs them) it is a failure.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed; .ci/run should have installed Debian's %s package", name, pkg)
	}
	t.Skipf("SKIPPING: %s is not installed, so this release step is not tested; install it with `apt-get install %s`", name, pkg)
	return ""
}

// tree is the copy every test of the package builds from, made once.
var tree struct {
	once     sync.Once
	dir      string
	revision string // git rev-parse --short HEAD there
	err      error
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range []string{tree.dir, packagesDist.dir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}

// sourceTree returns the copy of the tree and its commit's short hash.
func sourceTree(t *testing.T) (dir, revision string) {
	t.Helper()
	tool(t, "git", "git")
	tool(t, "make", "make")
	tree.once.Do(func() {
		tree.dir, tree.revision, tree.err = copyTree()
	})
	if tree.err != nil {
		t.Fatalf("copying the tree to release from: %v", tree.err)
	}
	return tree.dir, tree.revision
}

func copyTree() (dir, revision string, err error) {
	dir, err = os.MkdirTemp("", "sonde-release-tree-")
	if err != nil {
		return "", "", err
	}
	files, err := treeFiles(repoRoot)
	if err != nil {
		return dir, "", err
	}
	for _, name := range files {
		if err := copyFile(filepath.Join(repoRoot, name), filepath.Join(dir, name)); err != nil {
			return dir, "", err
		}
	}
	if err := addPlaceholders(dir); err != nil {
		return dir, "", err
	}
	if err := commitTree(dir); err != nil {
		return dir, "", err
	}
	out, err := git(dir, "rev-parse", "--short", "HEAD")
	return dir, strings.TrimSpace(out), err
}

// treeFiles lists what git would commit of the working tree (changes not yet
// committed included, ignored files such as .cache/ and dist/ not), or,
// outside a git checkout, every file but those directories.
func treeFiles(root string) ([]string, error) {
	out, err := git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	if err == nil {
		var files []string
		for _, name := range strings.Split(strings.TrimRight(out, "\x00"), "\x00") {
			// A file deleted but not yet committed is still listed.
			if fi, err := os.Lstat(filepath.Join(root, name)); err == nil && fi.Mode().IsRegular() {
				files = append(files, name)
			}
		}
		return files, nil
	}
	var files []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() && (rel == ".git" || rel == ".cache" || rel == "dist") {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			files = append(files, rel)
		}
		return nil
	})
	return files, err
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	fi, err := os.Stat(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, data, fi.Mode().Perm())
}

// addPlaceholders stands in for LICENSE and NOTICE until the tree has them
// (issue 20 adds them in a change of its own): the release refuses to go
// without them, and the tests check that they are shipped, not what they
// say.
func addPlaceholders(dir string) error {
	for _, name := range []string{"LICENSE", "NOTICE"} {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.WriteFile(path, []byte(name+" placeholder of test/release\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// commitTree makes dir a git repository of one commit at commitEpoch, on
// branch commitBranch, whatever the user's git configuration says.
func commitTree(dir string) error {
	for _, args := range [][]string{
		{"init", "--quiet", "--initial-branch=" + commitBranch},
		{"add", "--all"},
		{"-c", "user.name=test/release", "-c", "user.email=release@sonde.test", "-c", "commit.gpgsign=false",
			"commit", "--quiet", "--no-verify", "--message=release test"},
	} {
		if _, err := git(dir, args...); err != nil {
			return err
		}
	}
	return nil
}

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	date := fmt.Sprintf("@%d +0000", commitEpoch)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s in %s: %w\n%s", strings.Join(args, " "), dir, err, stderr.String())
	}
	return string(out), nil
}

// makeIn runs make in the tree copy with the given arguments, with
// SOURCE_DATE_EPOCH left to the Makefile (the commit's time) and no
// MAKEFLAGS or GOFLAGS from an enclosing `make test`.
func makeIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("make", append([]string{"-C", dir, "--no-print-directory"}, args...)...)
	cmd.Env = withoutEnv(os.Environ(), "SOURCE_DATE_EPOCH", "MAKEFLAGS", "GOFLAGS")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func withoutEnv(env []string, names ...string) []string {
	var kept []string
	for _, kv := range env {
		if name, _, _ := strings.Cut(kv, "="); !slices.Contains(names, name) {
			kept = append(kept, kv)
		}
	}
	return kept
}

// treeVersion is the copy's VERSION file, as the Makefile reads it.
func treeVersion(t *testing.T, dir string) string {
	t.Helper()
	v, err := os.ReadFile(filepath.Join(dir, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(v))
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
