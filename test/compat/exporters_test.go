package compat

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/internal/testkit"
)

// repoRoot is where go test runs this package from, two levels down.
const repoRoot = "../.."

// bbeEnv names the blackbox_exporter binary to compare with; without it
// the suite looks where `make blackbox-exporter` builds it.
const bbeEnv = "COMPAT_BLACKBOX_EXPORTER"

// bbeDefault is where `make blackbox-exporter` builds BBE 0.28, from the
// repository root.
const bbeDefault = ".cache/blackbox_exporter-v0.28.0"

// startTimeout bounds how long an exporter may take to answer /-/healthy:
// generous, as the CI machine's two cores are shared with other tests.
const startTimeout = 30 * time.Second

// blackboxBinary finds the reference binary. Missing, it skips the test
// outside CI and fails it in CI (CI set, as .ci/run does), where `make test`
// has built it first.
func blackboxBinary(t *testing.T) string {
	t.Helper()
	path := os.Getenv(bbeEnv)
	if path == "" {
		path = filepath.Join(repoRoot, bbeDefault)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatalf("locating blackbox_exporter: %v", err)
	}
	if info, err := os.Stat(abs); err == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
		// The tables of this package are BBE 0.28's answers: another
		// release would show deltas that are not sonde's.
		out, err := exec.Command(abs, "--version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "version 0.28.0") {
			t.Fatalf("%s is not blackbox_exporter 0.28.0 (--version: %v, %q); run `make blackbox-exporter`", abs, err, tail(string(out), 200))
		}
		return abs
	}
	msg := fmt.Sprintf("blackbox_exporter 0.28 is not at %s: run `make blackbox-exporter` (or set %s to its path)", abs, bbeEnv)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip("SKIPPING the comparison with blackbox_exporter: " + msg)
	return ""
}

// exporter is a running blackbox_exporter or sonde.
type exporter struct {
	name string // "bbe" or "sonde", as the tables name them
	base string // http://127.0.0.1:port
	log  *testkit.SyncBuffer
}

// startExporter runs bin serving config on a loopback port the kernel
// picks until the test ends, and waits until it answers /-/healthy.
func startExporter(t *testing.T, name, bin, config string, extra ...string) *exporter {
	t.Helper()
	e := &exporter{name: name, log: &testkit.SyncBuffer{}}
	args := append([]string{"--config.file=" + config, "--web.listen-address=" + testkit.AnyPort}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = e.log, e.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s's log (last 4 KiB):\n%s", name, tail(e.log.String(), 4096))
		}
	})
	e.base = "http://" + testkit.WaitListening(t, name, e.log.String, exited, startTimeout)
	deadline := time.Now().Add(startTimeout)
	for {
		status, _, err := get(context.Background(), e.base+"/-/healthy", nil)
		if err == nil && status == http.StatusOK {
			return e
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before it was healthy (%v):\n%s", name, exitErr, tail(e.log.String(), 4096))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer /-/healthy within %v (last: %d, %v)", name, startTimeout, status, err)
		}
	}
}

// probe asks the exporter's /probe with params and the scrape timeout
// header (none when timeout is empty).
func (e *exporter) probe(ctx context.Context, params url.Values, timeout string) (int, string, error) {
	header := http.Header{"Accept": {"text/plain; version=0.0.4"}}
	if timeout != "" {
		header.Set("X-Prometheus-Scrape-Timeout-Seconds", timeout)
	}
	return get(ctx, e.base+"/probe?"+params.Encode(), header)
}

// get fetches url and returns its status and body.
func get(ctx context.Context, url string, header http.Header) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", fmt.Errorf("making the request for %s: %w", url, err)
	}
	for name, values := range header {
		req.Header[name] = values
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("fetching %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, "", fmt.Errorf("reading the answer of %s: %w", url, err)
	}
	return resp.StatusCode, string(body), nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	if s == "" {
		return "(empty)"
	}
	return s
}
