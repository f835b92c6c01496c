package cli

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/internal/metricsdoc"
	"github.com/sonde-exporter/sonde/internal/testkit"

	"github.com/alecthomas/units"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/version"

	"github.com/sonde-exporter/sonde/collector"
	"github.com/sonde-exporter/sonde/config"
)

const goodConfig = `
modules:
  http_2xx:
    prober: http
    timeout: 5s
`

const reloadedConfig = goodConfig + `
  http_post:
    prober: http
    http:
      method: POST
`

const badConfig = `
modules:
  http_2xx:
    prober: http
    timout: 5s
    http:
      valid_status_code: [200]
`

// warnConfig loads with warnings: blackbox_exporter loads it too.
const warnConfig = `
modules:
  http_2xx:
    prober: http
  typo:
    prober: htp
`

// sondeBin is sonde built once for the tests that run the binary.
var sondeBin = testkit.SondeBinary("..")

func TestMain(m *testing.M) {
	code := m.Run()
	sondeBin.Remove()
	os.Exit(code)
}

// sondeProcess is a running sonde binary.
type sondeProcess struct {
	cmd    *exec.Cmd
	base   string
	logs   *syncBuffer
	exited chan struct{} // closed once the process has exited
	err    error         // how it exited, once exited is closed
}

// startTimeout bounds how long sonde may take to listen, and then to
// answer: generous, as the machine's two cores are shared with other tests.
const startTimeout = 30 * time.Second

func startSonde(t *testing.T, configFile string, extra ...string) *sondeProcess {
	t.Helper()
	p := runSonde(t, "http", append([]string{"--config.file=" + configFile}, extra...)...)
	p.waitHealthy(t)
	return p
}

// runSonde runs the sonde binary with args on a port the kernel picks,
// until the test ends, and returns it once it says where it listens, with
// base the URL of that address in scheme.
func runSonde(t *testing.T, scheme string, args ...string) *sondeProcess {
	t.Helper()
	bin := sondeBin.Path(t)
	args = append(args, "--web.listen-address="+testkit.AnyPort)
	p := &sondeProcess{cmd: exec.Command(bin, args...), logs: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("sonde's log:\n%s", p.logs)
		}
	})
	p.base = scheme + "://" + testkit.WaitListening(t, "sonde", p.logs.String, p.exited, startTimeout)
	return p
}

func (p *sondeProcess) waitHealthy(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.base + "/-/healthy")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("sonde did not become healthy:\n%s", p.logs)
}

func (p *sondeProcess) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *sondeProcess) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(p.base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (p *sondeProcess) probe(t *testing.T, module, target string) (int, string) {
	t.Helper()
	return p.get(t, "/probe?"+url.Values{"module": {module}, "target": {target}}.Encode())
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Method)
	}))
	defer target.Close()
	cfgFile := filepath.Join(t.TempDir(), "sonde.yml")
	writeFile(t, cfgFile, goodConfig)
	p := startSonde(t, cfgFile)

	if code, body := p.probe(t, "http_2xx", target.URL); code != 200 || !strings.Contains(body, "probe_success 1") {
		t.Fatalf("probe: %d\n%s", code, body)
	}
	if code, body := p.probe(t, "http_post", target.URL); code != 400 || !strings.Contains(body, `Unknown module "http_post"`) {
		t.Fatalf("unknown module: %d %s", code, body)
	}

	// A bad file: the reload fails, says why, and the old modules keep serving.
	writeFile(t, cfgFile, badConfig)
	resp, err := http.Post(p.base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError ||
		!strings.Contains(string(body), `line 5: module "http_2xx": unknown field "timout" (did you mean "timeout"?)`) ||
		!strings.Contains(string(body), `line 7: module "http_2xx": http: unknown field "valid_status_code" (did you mean "valid_status_codes"?)`) {
		t.Errorf("bad reload: %d\n%s", resp.StatusCode, body)
	}
	if !p.alive() {
		t.Fatal("sonde exited after a bad reload")
	}
	if code, body := p.probe(t, "http_2xx", target.URL); code != 200 || !strings.Contains(body, "probe_success 1") {
		t.Errorf("the old configuration stopped serving after a bad reload: %d %s", code, body)
	}
	_, metrics := p.get(t, "/metrics")
	for _, want := range []string{"blackbox_exporter_config_last_reload_successful 0", "blackbox_module_unknown_total 1", "sonde_build_info{", "go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// SIGHUP with a good file switches to it.
	writeFile(t, cfgFile, reloadedConfig)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		code, body := p.probe(t, "http_post", target.URL)
		return code == 200 && strings.Contains(body, "probe_success 1")
	})
	_, metrics = p.get(t, "/metrics")
	if !strings.Contains(metrics, "blackbox_exporter_config_last_reload_successful 1") {
		t.Error("the reload gauge did not go back to 1")
	}
	if code, _ := p.get(t, "/-/reload"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: %d, want 405", code)
	}
	if code, page := p.get(t, "/"); code != 200 || !strings.Contains(page, "http_post") {
		t.Errorf("landing page: %d", code)
	}

	// SIGTERM stops it cleanly.
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.err != nil {
			t.Errorf("exit after SIGTERM: %v", p.err)
		}
	case <-time.After(10 * time.Second):
		t.Error("sonde did not stop on SIGTERM")
	}
}

func TestAutoReload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	cfgFile := filepath.Join(t.TempDir(), "sonde.yml")
	writeFile(t, cfgFile, goodConfig)
	p := startSonde(t, cfgFile, "--config.enable-auto-reload", "--config.auto-reload-interval=0.1")
	writeFile(t, cfgFile, reloadedConfig)
	waitFor(t, func() bool {
		_, page := p.get(t, "/config")
		return strings.Contains(page, "http_post")
	})
}

func TestStartupWithBadConfigFails(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := sondeBin.Path(t)
	cfgFile := filepath.Join(t.TempDir(), "bad.yml")
	writeFile(t, cfgFile, badConfig)
	out, err := exec.Command(bin, "--config.file="+cfgFile, "--web.listen-address="+testkit.AnyPort).CombinedOutput()
	if exitCode(err) != 1 || !strings.Contains(string(out), `unknown field "timout"`) {
		t.Errorf("exit %v, output:\n%s", err, out)
	}
	out, err = exec.Command(bin, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "sonde, version") {
		t.Errorf("--version: %v %s", err, out)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good, bad, warn := filepath.Join(dir, "good.yml"), filepath.Join(dir, "bad.yml"), filepath.Join(dir, "warn.yml")
	writeFile(t, good, goodConfig)
	writeFile(t, bad, badConfig)
	writeFile(t, warn, warnConfig)
	const typo = `warning: line 6: module "typo": prober: "htp" is not a prober (did you mean "http"?)`
	tests := []struct {
		args     []string
		wantCode int
		want     []string
	}{
		{[]string{"--config.check", "--config.file=" + good}, 0, []string{"the configuration is valid (1 modules)"}},
		{[]string{"--config.check", "--config.file=" + bad}, 1, []string{`line 5: module "http_2xx": unknown field "timout"`, `line 7: module "http_2xx": http: unknown field "valid_status_code"`}},
		// Warnings are printed; only strict checking refuses them.
		{[]string{"--config.check", "--config.file=" + warn}, 0, []string{typo, "the configuration loads (2 modules), with 1 warnings"}},
		{[]string{"--config.check", "--config.strict", "--config.file=" + warn}, 1, []string{typo, "1 warnings, refused by strict checking"}},
		{[]string{"config", "check", "--strict", "--config.file=" + warn}, 1, []string{typo, "1 warnings, refused by strict checking"}},
		{[]string{"config", "check", "--config.file=" + warn}, 0, []string{typo}},
		{[]string{"--config.check", "--config.file=" + filepath.Join(dir, "missing.yml")}, 1, []string{"no such file or directory"}},
		{[]string{"--no-such-flag"}, 2, []string{"unknown long flag '--no-such-flag'"}},
	}
	for _, tc := range tests {
		var stderr bytes.Buffer
		if code := Run(tc.args, os.Stdout, &stderr); code != tc.wantCode {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, code, tc.wantCode, &stderr)
		}
		for _, want := range tc.want {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, want, &stderr)
			}
		}
	}
}

func TestAutoReloadIntervalFlag(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want time.Duration
	}{
		{"30", 30 * time.Second}, // blackbox_exporter's form
		{"0.5", 500 * time.Millisecond},
		{"2m", 2 * time.Minute},
	} {
		f, err := parseFlags([]string{"--config.auto-reload-interval=" + tc.arg}, io.Discard, io.Discard)
		if err != nil || f.autoReloadInterval != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.arg, f.autoReloadInterval, err, tc.want)
		}
	}
	for _, bad := range []string{"0", "-1", "soon"} {
		if _, err := parseFlags([]string{"--config.auto-reload-interval=" + bad}, io.Discard, io.Discard); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	f, _ := parseFlags(nil, io.Discard, io.Discard)
	if f.autoReloadInterval != 30*time.Second {
		t.Errorf("default %v, want 30s", f.autoReloadInterval)
	}
}

func TestGCFloorFlag(t *testing.T) {
	for arg, want := range map[string]units.Base2Bytes{"64MiB": 64 << 20, "512KiB": 512 << 10, "0": 0} {
		f, err := parseFlags([]string{"--runtime.gc-floor=" + arg}, io.Discard, io.Discard)
		if err != nil || f.gcFloor != want {
			t.Errorf("%s: %v, %v; want %v", arg, f.gcFloor, err, want)
		}
	}
	var stderr strings.Builder
	if _, err := parseFlags([]string{"--runtime.gc-floor=lots"}, io.Discard, &stderr); err == nil || !strings.Contains(err.Error(), "like 32MiB") {
		t.Errorf("lots: %v, want an error that shows the form", err)
	}
	f, _ := parseFlags(nil, io.Discard, io.Discard)
	if f.gcFloor != 32<<20 {
		t.Errorf("default %v, want 32MiB", f.gcFloor)
	}
	if startGCFloor(0) != nil {
		t.Error("a floor of 0 started the tuner")
	}
	t.Setenv("GOGC", "200")
	if startGCFloor(32<<20) != nil {
		t.Error("the tuner started though GOGC is set")
	}
}

func TestRoutePrefix(t *testing.T) {
	tests := []struct{ external, prefix, want string }{
		{"", "", "/"},
		{"http://example.com/sonde", "", "/sonde/"},
		{"http://example.com/sonde/", "/other", "/other/"},
		{"", "probes/", "/probes/"},
	}
	for _, tc := range tests {
		got, err := routePrefix(&flags{externalURL: tc.external, routePrefix: tc.prefix})
		if err != nil || got != tc.want {
			t.Errorf("routePrefix(%q, %q) = %q, %v; want %q", tc.external, tc.prefix, got, err, tc.want)
		}
	}

	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer target.Close()
	cfg, err := config.Load([]byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.DiscardHandler)
	col := collector.New(collector.Options{HistoryLimit: 10, Logger: logger, Registerer: reg})
	cfgFile := filepath.Join(t.TempDir(), "sonde.yml")
	writeFile(t, cfgFile, goodConfig)
	reloader := config.NewReloader(cfgFile, applyConfig(col), reg, logger)
	if err := applyConfig(col)(cfg); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newMux("/sonde/", col, reloader, reg, logger))
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(srv.URL + "/sonde/probe?target=" + url.QueryEscape(target.URL))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("probe under the prefix: %v %v", resp, err)
	}
	resp.Body.Close()
	for path, want := range map[string]int{
		"/sonde/metrics":           200,
		"/sonde/-/healthy":         200,
		"/sonde/config":            200,
		"/sonde/":                  200,
		"/":                        http.StatusFound,
		"/probe?target=x":          404,
		"/sonde/logs?id=0":         200,
		"/sonde/probe/detail?id=0": 200,
		"/sonde/probe/detail?id=x": 400,
		"/sonde/-/reload":          http.StatusMethodNotAllowed,
		"/sonde/not-a-page":        404,
	} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("condition not met within 10s")
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

type syncBuffer = testkit.SyncBuffer

// The README runs sonde on example.yml: it must load, with every module
// prepared, and without a warning, as an example to follow.
func TestExampleConfigLoads(t *testing.T) {
	var stderr bytes.Buffer
	if code := Run([]string{"--config.check", "--config.strict", "--config.file=../example.yml"}, os.Stdout, &stderr); code != 0 {
		t.Fatalf("example.yml: exit %d\n%s", code, &stderr)
	}
}

// /metrics has what blackbox_exporter's has of the exporter itself: its
// build_info under blackbox's name (sonde's own too), and promhttp's count
// of the scrapes of /metrics, by status code, and of those in flight.
func TestExporterMetricsAsBlackbox(t *testing.T) {
	srv := httptest.NewServer(metricsHandler(newRegistry()))
	defer srv.Close()
	scrapeMetrics := func() string {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	scrapeMetrics()
	body := scrapeMetrics() // counts the first scrape, and itself in flight
	for _, want := range []string{
		`blackbox_exporter_build_info{branch="` + version.Branch + `",goarch=`,
		`sonde_build_info{branch=`,
		`promhttp_metric_handler_requests_total{code="200"} 1`,
		`promhttp_metric_handler_requests_total{code="500"} 0`,
		`promhttp_metric_handler_requests_total{code="503"} 0`,
		"promhttp_metric_handler_requests_in_flight 1",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	docs, err := metricsdoc.Load("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, labels := range map[string][]string{
		"blackbox_exporter_build_info":               {"version", "revision", "branch", "goversion", "goos", "goarch", "tags"},
		"promhttp_metric_handler_requests_total":     {"code"},
		"promhttp_metric_handler_requests_in_flight": nil,
	} {
		if p := metricsdoc.Check(docs, name, labels); p != "" {
			t.Error(p)
		}
	}
}

// --help and --version print on stdout and exit 0, as blackbox_exporter's
// do; a usage error goes to stderr alone.
func TestHelpAndVersionGoToStdout(t *testing.T) {
	tests := []struct {
		args         []string
		code         int
		stdout       string // a part of it, "" for none at all
		stderrBlank  bool
		stderrSubstr string
	}{
		{args: []string{"--version"}, stdout: "sonde, version " + version.Version, stderrBlank: true},
		{args: []string{"--help"}, stdout: "usage: sonde", stderrBlank: true},
		{args: []string{"-h"}, stdout: "usage: sonde", stderrBlank: true},
		{args: []string{"serve", "--help"}, stdout: "--config.file", stderrBlank: true},
		{args: []string{"probe", "--help"}, stdout: "--target", stderrBlank: true},
		{args: []string{"--no-such-flag"}, code: 2, stderrSubstr: "unknown long flag '--no-such-flag'; see sonde --help"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Run(tc.args, &stdout, &stderr); code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, stderr.String())
			}
			if tc.stdout == "" && stdout.Len() > 0 || !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout %q, want it to have %q", stdout.String(), tc.stdout)
			}
			if tc.stderrBlank && stderr.Len() > 0 {
				t.Errorf("stderr %q, want nothing", stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.stderrSubstr) {
				t.Errorf("stderr %q, want it to have %q", stderr.String(), tc.stderrSubstr)
			}
		})
	}
}

// `make build` stamps the build user as user@host, as Prometheus' release
// tool does, so that --version shows who built the binary.
func TestMakefileStampsTheBuildUser(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil && os.Getenv("CI") == "" {
		t.Skip("make is not installed")
	}
	out, err := exec.Command("make", "-C", "..", "-s", "-n", "build").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build: %v\n%s", err, out)
	}
	who, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	if want := "version.BuildUser=" + who.Username + "@" + host + " "; !strings.Contains(string(out), want) {
		t.Errorf("make build does not stamp %q:\n%s", want, out)
	}
}
