package config

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const (
	reloadOK = "blackbox_exporter_config_last_reload_successful"
	reloadTS = "blackbox_exporter_config_last_reload_success_timestamp_seconds"
)

// gauge reads one unlabelled gauge from reg, the way a scrape would.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s is not registered", name)
	return 0
}

// replaceFile writes content atomically, so that a watcher never reads a
// half-written file.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// recorder is an apply function that remembers what it was given and
// refuses any configuration with a module called "refuse".
type recorder struct {
	mu      sync.Mutex
	applied []*Config
}

func (r *recorder) apply(cfg *Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applied = append(r.applied, cfg)
	if _, ok := cfg.Modules["refuse"]; ok {
		return errors.New("apply refused the configuration")
	}
	return nil
}

func (r *recorder) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.applied)
}

func (r *recorder) last() *Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied[len(r.applied)-1]
}

// logCounter is a slog handler that counts records by message, to see how
// often Watch attempted a reload.
type logCounter struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logCounter) WithGroup(string) slog.Handler            { return l }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.msgs == nil {
		l.msgs = map[string]int{}
	}
	l.msgs[r.Message]++
	return nil
}

func (l *logCounter) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for msg, c := range l.msgs {
		if strings.HasPrefix(msg, prefix) {
			n += c
		}
	}
	return n
}

func goodConfig(module string) string {
	return yml("modules:", "  "+module+":", "    prober: http")
}

const badConfig = "modules:\n  m:\n    prober: http\n    timout: 5s\n"

func TestReloaderReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blackbox.yml")
	replaceFile(t, path, goodConfig("first"))
	reg := prometheus.NewRegistry()
	rec := &recorder{}
	r := NewReloader(path, rec.apply, reg, slog.New(slog.DiscardHandler))
	assertEqual(t, "Path", r.Path(), path)

	// Nothing loaded yet.
	assertEqual(t, "success before any reload", gauge(t, reg, reloadOK), 0.0)
	assertEqual(t, "timestamp before any reload", gauge(t, reg, reloadTS), 0.0)

	before := float64(time.Now().Unix())
	if err := r.Reload(); err != nil {
		t.Fatalf("Reload of a good file: %v", err)
	}
	after := float64(time.Now().Add(time.Second).Unix())
	assertEqual(t, "apply calls", rec.calls(), 1)
	if _, ok := rec.last().Modules["first"]; !ok {
		t.Errorf("apply got modules %v, want first", moduleNames(rec.last()))
	}
	assertEqual(t, "success after a good reload", gauge(t, reg, reloadOK), 1.0)
	ts := gauge(t, reg, reloadTS)
	if ts < before || ts > after {
		t.Errorf("timestamp = %v, want between %v and %v", ts, before, after)
	}

	t.Run("bad file keeps the running configuration", func(t *testing.T) {
		replaceFile(t, path, badConfig)
		err := r.Reload()
		if err == nil {
			t.Fatal("Reload of a bad file succeeded")
		}
		for _, want := range []string{path, `line 4: module "m": unknown field "timout"`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
		assertEqual(t, "apply calls", rec.calls(), 1)
		assertEqual(t, "success", gauge(t, reg, reloadOK), 0.0)
		assertEqual(t, "timestamp", gauge(t, reg, reloadTS), ts)
	})

	t.Run("apply refusing counts as a failure", func(t *testing.T) {
		replaceFile(t, path, goodConfig("refuse"))
		err := r.Reload()
		if err == nil || !strings.Contains(err.Error(), "apply refused the configuration") || !strings.Contains(err.Error(), path) {
			t.Fatalf("err = %v, want apply's error with the file name", err)
		}
		assertEqual(t, "apply calls", rec.calls(), 2)
		assertEqual(t, "success", gauge(t, reg, reloadOK), 0.0)
		assertEqual(t, "timestamp", gauge(t, reg, reloadTS), ts)
	})

	t.Run("missing file", func(t *testing.T) {
		if err := os.Rename(path, path+".gone"); err != nil {
			t.Fatal(err)
		}
		defer os.Rename(path+".gone", path)
		err := r.Reload()
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err = %v, want a not-exist error", err)
		}
		assertEqual(t, "apply calls", rec.calls(), 2)
		assertEqual(t, "success", gauge(t, reg, reloadOK), 0.0)
		assertEqual(t, "timestamp", gauge(t, reg, reloadTS), ts)
	})

	t.Run("good file again", func(t *testing.T) {
		replaceFile(t, path, goodConfig("second"))
		if err := r.Reload(); err != nil {
			t.Fatal(err)
		}
		assertEqual(t, "apply calls", rec.calls(), 3)
		if _, ok := rec.last().Modules["second"]; !ok {
			t.Errorf("apply got modules %v, want second", moduleNames(rec.last()))
		}
		assertEqual(t, "success", gauge(t, reg, reloadOK), 1.0)
		if got := gauge(t, reg, reloadTS); got < ts {
			t.Errorf("timestamp went back from %v to %v", ts, got)
		}
	})

	// The two gauges carry blackbox_exporter's names, so existing alerts
	// keep working; sonde adds the file's hash, its module count and its
	// warning count.
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 5 {
		t.Errorf("registry holds %d metrics (%v), want 5", n, err)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(`
# HELP sonde_config_info Always 1; sha256 is the hash of the configuration file in use, to tell which version each instance runs.
# TYPE sonde_config_info gauge
sonde_config_info{sha256="%x"} 1
`, sha256.Sum256(content))), "sonde_config_info"); err != nil {
		t.Error(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP blackbox_exporter_config_last_reload_successful Whether the last configuration reload attempt was successful (1) or kept the previous configuration (0).
# TYPE blackbox_exporter_config_last_reload_successful gauge
blackbox_exporter_config_last_reload_successful 1
`), reloadOK); err != nil {
		t.Error(err)
	}
}

// TestReloaderRegistersOnce: two Reloaders on one registry collide, as two
// of blackbox's would; the panic is the registry's guard.
func TestReloaderRegistersOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewReloader("a.yml", (&recorder{}).apply, reg, slog.New(slog.DiscardHandler))
	defer func() {
		if recover() == nil {
			t.Error("a second Reloader registered the same metrics without complaint")
		}
	}()
	NewReloader("b.yml", (&recorder{}).apply, reg, slog.New(slog.DiscardHandler))
}

func TestReloaderWatch(t *testing.T) {
	const tick = 5 * time.Millisecond
	path := filepath.Join(t.TempDir(), "blackbox.yml")
	replaceFile(t, path, goodConfig("first"))
	reg := prometheus.NewRegistry()
	rec := &recorder{}
	logs := &logCounter{}
	r := NewReloader(path, rec.apply, reg, slog.New(logs))
	// The exporter loads the file once at start, then watches it.
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var done atomic.Bool
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		r.Watch(ctx, tick)
		done.Store(true)
	}()
	defer func() {
		cancel()
		<-stopped
	}()

	// waitFor polls cond for a while: the watcher runs on its own clock.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (apply calls %d, failures logged %d)",
					what, rec.calls(), logs.count("Automatic reload failed"))
			}
			time.Sleep(tick)
		}
	}
	// idle lets many ticks pass, to show that nothing happens on them.
	idle := func() { time.Sleep(40 * tick) }

	idle()
	assertEqual(t, "apply calls while the file is unchanged", rec.calls(), 1)

	// Rewriting the same content is not a change.
	replaceFile(t, path, goodConfig("first"))
	idle()
	assertEqual(t, "apply calls after rewriting the same content", rec.calls(), 1)

	replaceFile(t, path, goodConfig("second"))
	waitFor("the changed file to be applied", func() bool { return rec.calls() == 2 })
	if _, ok := rec.last().Modules["second"]; !ok {
		t.Errorf("applied modules %v, want second", moduleNames(rec.last()))
	}
	waitFor("the success to be logged", func() bool { return logs.count("Configuration file changed") == 1 })
	assertEqual(t, "success", gauge(t, reg, reloadOK), 1.0)

	// A file apply refuses is tried once, not on every tick.
	replaceFile(t, path, goodConfig("refuse"))
	waitFor("the refused file to be tried", func() bool { return rec.calls() == 3 })
	idle()
	assertEqual(t, "apply calls for an unchanged refused file", rec.calls(), 3)
	assertEqual(t, "failures logged", logs.count("Automatic reload failed"), 1)
	assertEqual(t, "success", gauge(t, reg, reloadOK), 0.0)

	// Same for a file that does not load: one attempt, one log line.
	replaceFile(t, path, badConfig)
	waitFor("the bad file to be tried", func() bool { return logs.count("Automatic reload failed") == 2 })
	idle()
	assertEqual(t, "failures logged for an unchanged bad file", logs.count("Automatic reload failed"), 2)
	assertEqual(t, "apply calls for a bad file", rec.calls(), 3)
	assertEqual(t, "success", gauge(t, reg, reloadOK), 0.0)

	// Fixing the file recovers.
	replaceFile(t, path, goodConfig("third"))
	waitFor("the fixed file to be applied", func() bool { return rec.calls() == 4 })
	if _, ok := rec.last().Modules["third"]; !ok {
		t.Errorf("applied modules %v, want third", moduleNames(rec.last()))
	}
	assertEqual(t, "success", gauge(t, reg, reloadOK), 1.0)

	// Watch returns when its context ends.
	cancel()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after cancel")
	}
	if !done.Load() {
		t.Error("Watch goroutine did not finish")
	}
}

// warningConfig has two warnings and no error: blackbox_exporter loads it.
const warningConfig = "modules:\n  w:\n    prober: http\n    http:\n      method: 'G T'\n      valid_status_codes: [999]\n"

// TestReloaderWarnings: a file with warnings loads, its warnings are
// logged and counted; with Strict it is refused like a bad file, and the
// running configuration stays.
func TestReloaderWarnings(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprintf("strict=%v", strict), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "blackbox.yml")
			replaceFile(t, path, goodConfig("first"))
			reg := prometheus.NewRegistry()
			rec := &recorder{}
			var logged strings.Builder
			logger := slog.New(slog.NewTextHandler(&logged, nil))
			r := NewReloader(path, rec.apply, reg, logger, Strict(strict))
			if err := r.Reload(); err != nil {
				t.Fatal(err)
			}
			assertEqual(t, "warnings of a clean file", gauge(t, reg, "sonde_config_warnings"), 0.0)

			replaceFile(t, path, warningConfig)
			err := r.Reload()
			if strict {
				if err == nil || !strings.Contains(err.Error(), "2 warnings, which strict checking refuses") || !strings.Contains(err.Error(), `line 5: module "w": http.method`) {
					t.Fatalf("strict Reload = %v; want the warnings as errors", err)
				}
				assertEqual(t, "apply calls", rec.calls(), 1)
				assertEqual(t, "success", gauge(t, reg, reloadOK), 0.0)
				assertEqual(t, "warnings of the running file", gauge(t, reg, "sonde_config_warnings"), 0.0)
				return
			}
			if err != nil {
				t.Fatalf("Reload of a file with warnings: %v", err)
			}
			assertEqual(t, "apply calls", rec.calls(), 2)
			assertEqual(t, "success", gauge(t, reg, reloadOK), 1.0)
			assertEqual(t, "warnings", gauge(t, reg, "sonde_config_warnings"), 2.0)
			for _, want := range []string{`level=WARN msg="Configuration warning"`, `line 5: module \"w\": http.method`, `line 6: module \"w\": http.valid_status_codes[0]`} {
				if !strings.Contains(logged.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, logged.String())
				}
			}
		})
	}
}

// TestReloaderRefusesAnEmptyFile: a file emptied by a copy in progress
// must not take every module away; blackbox_exporter refuses it too.
func TestReloaderRefusesAnEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blackbox.yml")
	replaceFile(t, path, goodConfig("first"))
	reg := prometheus.NewRegistry()
	rec := &recorder{}
	r := NewReloader(path, rec.apply, reg, slog.New(slog.DiscardHandler))
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	for _, content := range []string{"", "\n  \n", "# modules will be here\n"} {
		replaceFile(t, path, content)
		if err := r.Reload(); err == nil || !strings.Contains(err.Error(), "the file is empty") {
			t.Errorf("Reload of %q = %v; want it refused", content, err)
		}
	}
	assertEqual(t, "apply calls", rec.calls(), 1)
	assertEqual(t, "success", gauge(t, reg, reloadOK), 0.0)
	assertEqual(t, "modules still running", gauge(t, reg, "sonde_config_modules"), 1.0)
}
