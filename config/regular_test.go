//go:build unix

package config

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// mkfifo makes a named pipe nothing writes to: reading it the usual way
// waits for ever.
func mkfifo(t *testing.T, path string) string {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("cannot make a named pipe: %v", err)
	}
	return path
}

// within runs f, failing the test if it has not returned after a margin
// far beyond what reading a small file takes on any machine.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s blocked", what)
	}
}

// TestReloaderRefusesANamedPipe: a configuration path that is a named
// pipe is refused at once, naming it, and the running configuration
// stays; the reload after it is not held up.
func TestReloaderRefusesANamedPipe(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "blackbox.yml")
	replaceFile(t, path, goodConfig("first"))
	reg := prometheus.NewRegistry()
	rec := &recorder{}
	r := NewReloader(path, rec.apply, reg, slog.New(slog.DiscardHandler))
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	mkfifo(t, path)
	var err error
	within(t, "a reload of a named pipe", func() { err = r.Reload() })
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "must be a regular file") {
		t.Errorf("Reload of a named pipe = %v, want it refused, naming the path and saying it must be a regular file", err)
	}
	within(t, "a look for changes in a named pipe", func() { r.changed() })
	assertEqual(t, "modules still running", gauge(t, reg, "sonde_config_modules"), 1.0)

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	replaceFile(t, path, goodConfig("second"))
	within(t, "the reload after it", func() { err = r.Reload() })
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rec.last().Modules["second"]; !ok {
		t.Error("the reload after the named pipe did not apply the new file")
	}
}

// TestNamedPipesInModules: a file a module names (a CA, a body, a secret)
// that is a named pipe does not hold the load: it is a warning, as any
// file that cannot be read now, naming the file.
func TestNamedPipesInModules(t *testing.T) {
	pipe := mkfifo(t, filepath.Join(t.TempDir(), "pipe"))
	for _, section := range []string{
		"tls_config:\n        ca_file: " + pipe,
		"tls_config:\n        cert_file: " + pipe + "\n        key_file: " + pipe,
		"body_file: " + pipe,
		"basic_auth:\n        username: u\n        password_file: " + pipe,
		"bearer_token_file: " + pipe,
		"oauth2:\n        client_id: c\n        client_secret_file: " + pipe + "\n        token_url: http://127.0.0.1:1/",
	} {
		var (
			cfg *Config
			err error
		)
		within(t, "loading a module naming a named pipe", func() {
			cfg, err = Load([]byte("modules:\n  m:\n    prober: http\n    http:\n      " + section + "\n"))
		})
		if err != nil {
			t.Errorf("%s: %v", section, err)
			continue
		}
		if len(cfg.Warnings) == 0 || !strings.Contains(cfg.Warnings[0].Error(), pipe+" is a named pipe (FIFO); it must be a regular file") {
			t.Errorf("%s: warnings %v, want one saying the named pipe must be a regular file", section, cfg.Warnings)
		}
	}
}
