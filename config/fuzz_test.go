package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Load, which reads the file an operator
// wrote and every file /-/reload or --config.auto-reload picks up: a typo
// must never take the exporter down. Load returns a configuration or an
// error, never both and never a panic; an error has a message to show; a
// configuration that loads renders for the /config page, and a module
// without a prober loads, as in blackbox_exporter, only with a warning. The seeds in
// testdata/fuzz/FuzzLoad are example.yml, the files of testdata/ and YAML
// that stresses the decoder (anchors, merge keys, tags, tabs, documents).
func FuzzLoad(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Load(data)
		if err != nil {
			if cfg != nil {
				t.Fatalf("Load returned a configuration with its error %v", err)
			}
			if err.Error() == "" {
				t.Fatal("Load returned an error without a message")
			}
			var e *Error
			if errors.As(err, &e) && e.Line < 0 {
				t.Fatalf("error at line %d: %v", e.Line, err)
			}
			return
		}
		if cfg == nil || cfg.Modules == nil {
			t.Fatal("Load returned neither a configuration nor an error")
		}
		for name, m := range cfg.Modules {
			if m.Prober == "" && !warnedOf(cfg, name, "prober") {
				t.Fatalf("module %q loaded without a prober, and without a warning saying so", name)
			}
		}
		if _, err := Marshal(cfg); err != nil {
			t.Fatalf("a configuration that loads does not render: %v", err)
		}
	})
}

// warnedOf reports whether a warning of cfg is about field of module name.
func warnedOf(cfg *Config, name, field string) bool {
	for _, w := range cfg.Warnings {
		if strings.Contains(w.Error(), fmt.Sprintf("module %q: %s:", name, field)) {
			return true
		}
	}
	return false
}
