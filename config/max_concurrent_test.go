package config

import (
	"strings"
	"testing"
)

func TestMaxConcurrent(t *testing.T) {
	const base = `
modules:
  one:
    prober: http
    max_concurrent: %s
`
	for _, tc := range []struct {
		value, err string
		want       int
	}{
		{"0", "", 0},
		{"16", "", 16},
		{"-1", `line 5: module "one": max_concurrent: must not be negative (0 means no limit), got -1`, 0},
		{"many", "max_concurrent", 0},
	} {
		cfg, err := Load([]byte(strings.Replace(base, "%s", tc.value, 1)))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("max_concurrent: %s: error %v, want one with %q", tc.value, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("max_concurrent: %s: %v", tc.value, err)
		case tc.err == "" && cfg.Modules["one"].MaxConcurrent != tc.want:
			t.Errorf("max_concurrent: %s: got %d", tc.value, cfg.Modules["one"].MaxConcurrent)
		}
	}
}
