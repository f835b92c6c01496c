// Package e2e runs sonde the way it is deployed: a real Prometheus scrapes it
// with the relabeling of examples/prometheus/prometheus.yml, evaluates
// examples/alerts.yml and sends alerts to a real Alertmanager, and the panels
// of examples/grafana/sonde-dashboard.json are queried against what it
// stored. Everything listens on loopback, on ports chosen at run time, so
// the tests can run next to a Prometheus already serving :9090.
//
// Prometheus and Alertmanager are Debian's packages (prometheus,
// prometheus-alertmanager). Without them the tests skip, loudly; in CI (env
// CI set, as .ci/run does) they fail instead, so the examples are never
// left untested there.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/internal/testkit"
)

// repoRoot is where the go test runs this package from, two levels down.
const repoRoot = "../.."

// Bounded waits. The machine that runs CI has two cores shared with other
// test binaries, so they are generous; every wait polls and returns as soon
// as its condition holds.
const (
	startTimeout = 60 * time.Second // a process answers /-/ready
	dataTimeout  = 60 * time.Second // Prometheus has scraped and evaluated what a check needs
	pollEvery    = 250 * time.Millisecond
)

// tool finds an installed binary. Outside CI a missing one skips the test
// with a loud message; in CI it is a failure.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed; .ci/run should have installed Debian's %s package", name, pkg)
	}
	t.Skipf("SKIPPING: %s is not installed, so sonde is not tested end to end with it; install it with `apt-get install %s`", name, pkg)
	return ""
}

// sondeBin is sonde, built once for every test of the package, as
// `go build` from the repository root does.
var sondeBin = testkit.SondeBinary(repoRoot)

func TestMain(m *testing.M) {
	code := m.Run()
	sondeBin.Remove()
	os.Exit(code)
}

func sondeBinary(t *testing.T) string {
	t.Helper()
	return sondeBin.Path(t)
}

// process is a program the test started; it is killed when the test ends.
type process struct {
	name   string
	log    string        // its standard output and error
	exited chan struct{} // closed when it has exited
	err    error         // how it exited, once exited is closed
}

// start runs a program in the background with its output in a log file,
// kills it when the test ends, and shows the end of its log if the test
// failed.
func start(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, log: filepath.Join(t.TempDir(), name+".log"), exited: make(chan struct{})}
	logFile, err := os.Create(p.log)
	if err != nil {
		t.Fatalf("creating the log of %s: %v", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("last lines of %s's log:\n%s", name, p.tail(30))
		}
	})
	return p
}

func (p *process) tail(lines int) string {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", p.log, err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return "(empty)"
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// listenAddress waits until the process's log says where it listens, and
// returns that address.
func (p *process) listenAddress(t *testing.T) string {
	t.Helper()
	return testkit.WaitListening(t, p.name, p.readLog, p.exited, startTimeout)
}

func (p *process) readLog() string {
	data, _ := os.ReadFile(p.log)
	return string(data)
}

// waitReady polls url until it answers 200, failing early if the process
// exits (a bad flag or configuration) with its log.
func (p *process) waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before it was ready (%v):\n%s", p.name, p.err, p.tail(30))
		case <-time.After(pollEvery):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer %s within %v (last error %v):\n%s", p.name, url, startTimeout, err, p.tail(30))
		}
	}
}

// eventually polls check until it returns nil, and fails the test with the
// last error when the time is up.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %v: %v", what, timeout, err)
		}
		time.Sleep(pollEvery)
	}
}

// writeFile writes a file of the test's temporary directory.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatalf("writing %s: %v", name, err)
	}
	return path
}

// httpGet fetches url and returns its status and body.
func httpGet(ctx context.Context, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("reading the answer of %s: %w", url, err)
	}
	return resp.StatusCode, body, nil
}

var errEmpty = errors.New("empty result")

// trimmed shortens a body for an error message.
func trimmed(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}
