package metricsdoc

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLoad(t *testing.T) {
	doc := "# x\n\n| Metric | Labels | Meaning |\n|---|---|---|\n" +
		"| `a_info` | `version` = `1`, `2` | v |\n" +
		"| `b_info` | `position`, `fingerprint` | c |\n" +
		"| `c` | | plain |\n" +
		"| `d_info` | the `labels` names of the steps | dynamic |\n" +
		"| `go_*` | | skipped |\n" +
		"\n| Family | Present when |\n|---|---|\n| `e` | always |\n"
	path := filepath.Join(t.TempDir(), "metrics.md")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	docs, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		labels  []string
		problem bool
	}{
		{"a_info", []string{"version"}, false},
		{"b_info", []string{"fingerprint", "position"}, false},
		{"b_info", []string{"position"}, true},
		{"c", nil, false},
		{"c", []string{"x"}, true},
		{"d_info", []string{"anything"}, false},
		{"e", nil, true}, // a presence table does not document
		{"go_goroutines", nil, true},
	} {
		if got := Check(docs, tc.name, tc.labels); (got != "") != tc.problem {
			t.Errorf("Check(%s, %v) = %q", tc.name, tc.labels, got)
		}
	}
}

func TestConflictingRows(t *testing.T) {
	doc := "| Metric | Labels |\n|---|---|\n| `a` | `x` |\n\n| Metric | Labels |\n|---|---|\n| `a` | `y` |\n"
	path := filepath.Join(t.TempDir(), "metrics.md")
	os.WriteFile(path, []byte(doc), 0o600)
	if _, err := Load(path); err == nil {
		t.Error("a family documented with two label sets was accepted")
	}
}
