package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// tenModules is a configuration whose cuts at, and inside, its modules
// are valid files too: the kind a non-atomic copy leaves while it runs.
func tenModules(prober string) string {
	var b strings.Builder
	b.WriteString("modules:\n")
	for i := range 10 {
		fmt.Fprintf(&b, "  m%d:\n    prober: %s\n    timeout: 5s\n", i, prober)
	}
	return b.String()
}

// writeInChunks writes content over path as cp does, truncating it first,
// then in pieces: cut before each of the cuts. It says on written when the
// first piece is in the file, and waits gap between pieces, far less than
// the settle time the test gives the Reloader.
func writeInChunks(t *testing.T, path, content string, cuts []string, gap time.Duration, written chan<- struct{}) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	start := 0
	for i, cut := range cuts {
		end := strings.Index(content, cut)
		if _, err := f.WriteString(content[start:end]); err != nil {
			return err
		}
		start = end
		if i == 0 {
			close(written)
		}
		time.Sleep(gap)
	}
	_, err = f.WriteString(content[start:])
	return err
}

// TestReloadWaitsForAPartialWrite: a reload that comes while the file is
// being copied over, non-atomically, does not load what it finds: cut
// between two modules, or in the middle of one, it is a valid file with
// modules missing. It waits until the file has gone unwritten for the
// settle time and loads the whole file.
func TestReloadWaitsForAPartialWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		cuts []string
	}{
		{"between modules", []string{"  m3:", "  m7:"}},
		{"in the middle of a module", []string{"p\n    timeout: 5s\n  m4:", "5s\n  m8:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "blackbox.yml")
			replaceFile(t, path, tenModules("http"))
			settled(t, path)
			rec := &recorder{}
			r := NewReloader(path, rec.apply, prometheus.NewRegistry(), slog.New(slog.DiscardHandler), Settle(2*time.Second, 30*time.Second))
			if err := r.Reload(); err != nil {
				t.Fatal(err)
			}
			// The first piece is a valid file of its own.
			full := tenModules("tcp")
			if cfg, err := Load([]byte(full[:strings.Index(full, tc.cuts[0])])); err != nil || len(cfg.Modules) == 10 {
				t.Fatalf("the first piece should load with fewer modules: %v", err)
			}
			written := make(chan struct{})
			done := make(chan error, 1)
			go func() { done <- writeInChunks(t, path, full, tc.cuts, 50*time.Millisecond, written) }()
			<-written
			if err := r.Reload(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			for _, cfg := range rec.applied {
				if len(cfg.Modules) != 10 {
					t.Fatalf("a reload applied %d modules of 10: a partial write was loaded", len(cfg.Modules))
				}
			}
			if got := rec.last().Modules["m9"].Prober; got != "tcp" {
				t.Errorf("the reload applied a module m9 of prober %q, want the new file's tcp", got)
			}
		})
	}
}

// settled dates path an hour back, as a file written long ago: the first
// reload need not wait.
func settled(t *testing.T, path string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

// TestReloadRefusesAFileStillBeingWritten: a file that never stops
// changing is not loaded; the running configuration stays.
func TestReloadRefusesAFileStillBeingWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blackbox.yml")
	replaceFile(t, path, tenModules("http"))
	settled(t, path)
	rec := &recorder{}
	r := NewReloader(path, rec.apply, prometheus.NewRegistry(), slog.New(slog.DiscardHandler), Settle(100*time.Millisecond, 500*time.Millisecond))
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	stop, writing := make(chan struct{}), make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; ; i++ {
			os.WriteFile(path, []byte(tenModules("http")+fmt.Sprintf("# %d\n", i)), 0o600)
			if i == 0 {
				close(writing)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	<-writing
	err := r.Reload()
	if err == nil || !strings.Contains(err.Error(), "still being written") {
		t.Errorf("Reload of a file written without end = %v, want it refused", err)
	}
	assertEqual(t, "apply calls", rec.calls(), 1)
}
