package cli

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/assert"
	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit"
)

const probeConfig = `
modules:
  http_2xx:
    prober: http
    timeout: 5s
  http_no_timeout:
    prober: http
  http_retry:
    prober: http
    retry:
      attempts: 3
      initial_backoff: 10ms
      on: [status]
  http_host:
    prober: http
    http:
      fail_if_body_not_matches_regexp: ["host=probe\\.example"]
  tcp_connect:
    prober: tcp
`

// probeEnv is what the probe tests run against: a config file, and
// servers that answer 200, 503, over TLS, slowly, or echo the Host header.
type probeEnv struct {
	config, certFile          string
	ok, fail, tls, slow, echo string
	refused                   string
}

func newProbeEnv(t *testing.T) *probeEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	e := &probeEnv{config: filepath.Join(dir, "sonde.yml"), certFile: filepath.Join(dir, "ca.pem")}
	writeFile(t, e.config, probeConfig)
	e.ok = started(t, httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })))
	e.fail = started(t, httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })))
	e.slow = started(t, httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})))
	e.echo = started(t, httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "host=%s", r.Host) })))
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	e.tls = started(t, tlsSrv)
	writeFile(t, e.certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})))
	e.refused = "http://" + testkit.ClosedTCPAddr(t)
	return e
}

func started(t *testing.T, srv *httptest.Server) string {
	t.Cleanup(srv.Close)
	return srv.URL
}

// flaky answers 503 to the first n requests, then 200.
func flaky(t *testing.T, n int64) string {
	var count atomic.Int64
	return started(t, httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if count.Add(1) <= n {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})))
}

// sonde runs the built binary; the TLS test server's certificate is
// trusted through SSL_CERT_FILE, as a CI runner's CA bundle would be.
func (e *probeEnv) sonde(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	bin := sondeBin.Path(t)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+e.certFile)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return exitCode(err), out.String(), errOut.String()
}

func (e *probeEnv) probe(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return e.sonde(t, append([]string{"probe", "--config.file=" + e.config}, args...)...)
}

func TestProbeCommand(t *testing.T) {
	e := newProbeEnv(t)
	tests := []struct {
		name       string
		args       []string
		code       int
		wantOut    []string
		wantErr    []string
		notWantOut []string
	}{
		{
			name: "success",
			args: []string{"--target=" + e.ok},
			code: 0,
			wantOut: []string{"PASS  http_2xx  " + e.ok + "\n", "      probe    succeeded in ", "(timeout 5s)",
				"      phases   resolve ", ", connect ", ", processing ", ", transfer ", "PASS: 1 of 1 targets passed"},
			notWantOut: []string{"(run ", "tls      ", "attempts "},
		},
		{
			name:    "status failure",
			args:    []string{"--target=" + e.fail},
			code:    1,
			wantOut: []string{"FAIL  http_2xx  " + e.fail, "failed in ", ": status/http_status in phase validate (HTTP 502)", "FAIL: " + e.fail + " failed 1 of 1 runs (at most 0 allowed)"},
		},
		{
			name:    "refused connection",
			args:    []string{"--target=" + e.refused},
			code:    1,
			wantOut: []string{"connect/refused in phase connect (HTTP 503)", "connection refused"},
		},
		{
			name:    "tcp module",
			args:    []string{"--module=tcp_connect", "--target=" + strings.TrimPrefix(e.ok, "http://")},
			code:    0,
			wantOut: []string{"PASS  tcp_connect  127.0.0.1:", "phases   resolve "},
		},
		{
			name: "every comparison and arithmetic",
			args: []string{"--target=" + e.ok,
				"--assert=probe_success == 1",
				"--assert=probe_http_status_code != 500",
				"--assert=probe_duration_seconds < 5",
				"--assert=probe_duration_seconds <= probe_timeout_seconds",
				"--assert=probe_http_status_code > 199",
				"--assert=probe_http_status_code >= 200",
				`--assert=probe_http_duration_seconds{phase="connect"} < 1`,
				`--assert=probe_http_duration_seconds{phase!="connect", phase='tls'} == 0`,
				"--assert=(probe_http_status_code - 100) * 2 / 4 + -50 == 0",
				"--assert=time() > 1700000000",
			},
			code: 0,
			wantOut: []string{"assert   ok    probe_success == 1  (1 == 1)", "assert   ok    probe_http_status_code != 500  (200 != 500)",
				"assert   ok    (probe_http_status_code - 100) * 2 / 4 + -50 == 0  (0 == 0)", `assert   ok    probe_http_duration_seconds{phase="connect"} < 1  (`},
		},
		{
			name:    "failed assertion on a successful probe",
			args:    []string{"--target=" + e.ok, "--assert=probe_http_status_code == 200", "--assert=probe_http_status_code == 201"},
			code:    1,
			wantOut: []string{"FAIL  http_2xx", "probe    succeeded", "assert   ok    probe_http_status_code == 200", "assert   FAIL  probe_http_status_code == 201  (200 == 201 is false)"},
		},
		{
			name:    "a metric the probe does not export fails, it does not crash",
			args:    []string{"--target=" + e.ok, "--assert=probe_ssl_earliest_cert_expiry - time() > 86400*14"},
			code:    1,
			wantOut: []string{"assert   FAIL  probe_ssl_earliest_cert_expiry - time() > 86400*14  (probe_ssl_earliest_cert_expiry: the probe exported no such metric)"},
		},
		{
			name:    "an ambiguous selector fails with the series it could mean",
			args:    []string{"--target=" + e.ok, "--assert=probe_http_duration_seconds < 1"},
			code:    1,
			wantOut: []string{`probe_http_duration_seconds matches 5 series; pick one with a label matcher: {phase="connect"}, {phase="processing"}`},
		},
		{
			name:    "TLS facts and certificate expiry",
			args:    []string{"--target=" + e.tls, "--assert=probe_ssl_earliest_cert_expiry - time() > 86400*14", `--assert=probe_tls_version_info{version="TLS 1.3"} == 1`},
			code:    0,
			wantOut: []string{"      tls      TLS 1.3 TLS_", "; issuer O=Acme Co; expires ", "assert   ok    probe_ssl_earliest_cert_expiry - time() > 86400*14"},
		},
		{
			name:    "TLS facts of a certificate that failed verification",
			args:    []string{"--target=" + e.tls, "--hostname=probe.invalid"},
			code:    1,
			wantOut: []string{"tls/cert_hostname_mismatch in phase tls", "; issuer O=Acme Co; expires ", "; NOT VERIFIED"},
		},
		{
			name:    "timeout flag",
			args:    []string{"--target=" + e.slow, "--timeout=100ms"},
			code:    1,
			wantOut: []string{"(timeout 100ms): timeout/deadline in phase processing (HTTP 504)"},
		},
		{
			name:    "a module without timeout gets 10s",
			args:    []string{"--module=http_no_timeout", "--target=" + e.ok},
			code:    0,
			wantOut: []string{"(timeout 10s)"},
		},
		{
			name:    "hostname",
			args:    []string{"--module=http_host", "--target=" + e.echo, "--hostname=probe.example"},
			code:    0,
			wantOut: []string{"PASS  http_host"},
		},
		{
			name:    "without the hostname the body check fails",
			args:    []string{"--module=http_host", "--target=" + e.echo},
			code:    1,
			wantOut: []string{"assertion/body_regex"},
		},
		{
			name:    "retries are shown",
			args:    []string{"--module=http_retry", "--target=" + flaky(t, 1)},
			code:    0,
			wantOut: []string{"      attempts 2, 1 failed (status 1); the first took "},
		},
		{
			name: "several targets, in the order given",
			args: []string{"--target=" + e.fail, "--target=" + e.ok, "--target=" + e.tls, "--concurrency=2"},
			code: 1,
			wantOut: []string{"FAIL  http_2xx  " + e.fail + "  (run 1)\n", "PASS  http_2xx  " + e.ok + "  (run 1)\n",
				"FAIL: " + e.fail + " failed 1 of 1 runs"},
			notWantOut: []string{"FAIL: " + e.ok},
		},
		{
			name:    "repeat tolerates max-failures failed runs",
			args:    []string{"--target=" + flaky(t, 1), "--repeat=3", "--interval=10ms", "--max-failures=1"},
			code:    0,
			wantOut: []string{"FAIL  http_2xx  http://127.0.0.1:", "(run 1)", "PASS  http_2xx  http://127.0.0.1:", "(run 3)", "PASS: 1 of 1 targets passed"},
		},
		{
			name:    "repeat fails beyond max-failures",
			args:    []string{"--target=" + flaky(t, 2), "--repeat=3", "--interval=10ms", "--max-failures=1"},
			code:    1,
			wantOut: []string{"failed 2 of 2 runs (at most 1 allowed)", "FAIL: stopped after run 2 of 3: the runs left could not make the gate pass"},
		},
		{
			name:    "debug prints the probe's log",
			args:    []string{"--target=" + e.ok, "--debug"},
			code:    0,
			wantErr: []string{"Logs for the probe of " + e.ok + " (run 1):", "msg=\"Beginning probe\"", "msg=\"Probe succeeded\""},
		},

		// Usage and configuration errors: exit 2, nothing probed.
		{
			name:    "assertion syntax error with a caret",
			args:    []string{"--target=" + e.ok, "--assert=probe_duration_seconds < < 0.5", "--assert=probe_success = 1"},
			code:    2,
			wantErr: []string{"sonde probe: --assert: expected a number, a metric, time() or (, found \"<\" at column 26\n  probe_duration_seconds < < 0.5\n                           ^\n", "--assert: expected a comparison (< <= > >= == !=), found = (compare with ==) at column 15\n  probe_success = 1\n                ^"},
		},
		{name: "unknown module", args: []string{"--module=nope", "--target=" + e.ok}, code: 2, wantErr: []string{`unknown module "nope"; the modules of`, "http_2xx"}},
		{name: "no target", args: []string{}, code: 2, wantErr: []string{"required flag(s) '--target' not provided"}},
		{name: "bad output", args: []string{"--target=" + e.ok, "--output=yaml"}, code: 2, wantErr: []string{"enum value must be one of text,json,prometheus"}},
		{name: "max-failures not below repeat", args: []string{"--target=" + e.ok, "--repeat=2", "--max-failures=2"}, code: 2, wantErr: []string{"--max-failures=2: must be from 0 to 1"}},
		{name: "zero concurrency", args: []string{"--target=" + e.ok, "--concurrency=0"}, code: 2, wantErr: []string{"--concurrency=0: must be at least 1"}},
		{name: "bad hostname", args: []string{"--target=" + e.ok, "--hostname=a b"}, code: 2, wantErr: []string{`cannot be probed as given: the Host header "a b", from the hostname parameter`}},
		{name: "bad max-regression", args: []string{"--target=" + e.ok, "--max-regression=lots"}, code: 2, wantErr: []string{`"lots" is not a percentage`}},
		{name: "invalid target", args: []string{"--target=http://[::1"}, code: 2, wantErr: []string{`target "http://[::1" cannot be probed as given`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := e.probe(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			for _, want := range tc.wantOut {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			for _, bad := range tc.notWantOut {
				if strings.Contains(stdout, bad) {
					t.Errorf("stdout has %q:\n%s", bad, stdout)
				}
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
		})
	}
}

// A gate stops at the run that decided its outcome instead of waiting out
// --interval for runs that cannot change it. The interval is a minute and
// the bound half of that, so a slow machine cannot fail the test; a gate
// that waited would take the whole minute.
func TestProbeStopsWhenDecided(t *testing.T) {
	e := newProbeEnv(t)
	const waited = 30 * time.Second
	tests := []struct {
		name    string
		args    []string
		code    int
		wantOut []string
		runs    int // the runs expected in the report
	}{
		{
			name:    "a failed run that --max-failures cannot tolerate",
			args:    []string{"--target=" + e.fail, "--target=" + e.ok, "--repeat=2", "--max-failures=0"},
			code:    1,
			wantOut: []string{e.fail + " failed 1 of 1 runs (at most 0 allowed)", "FAIL: stopped after run 1 of 2: the runs left could not make the gate pass"},
			runs:    1,
		},
		{
			name:    "a pass that failing every run left would not undo",
			args:    []string{"--target=" + e.ok, "--repeat=3", "--max-failures=2"},
			code:    0,
			wantOut: []string{"PASS: 1 of 1 targets passed; stopped after run 1 of 3: the runs left could not make the gate fail"},
			runs:    1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, stdout, stderr := e.probe(t, append(tc.args, "--interval=1m")...)
			if took := time.Since(start); took >= waited {
				t.Errorf("took %s: the gate waited for runs that could not change its outcome", took)
			}
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			for _, want := range tc.wantOut {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			if next := fmt.Sprintf("(run %d)", tc.runs+1); strings.Contains(stdout, next) {
				t.Errorf("stdout has %s:\n%s", next, stdout)
			}
		})
	}
}

// --save-baseline keeps a decided pass running: the later runs feed the
// medians it saves.
func TestProbeSaveBaselineRunsEveryRun(t *testing.T) {
	e := newProbeEnv(t)
	saved := filepath.Join(t.TempDir(), "baseline.json")
	code, stdout, stderr := e.probe(t, "--target="+e.ok, "--repeat=3", "--interval=1ms", "--max-failures=2", "--save-baseline="+saved)
	if code != 0 || !strings.Contains(stdout, "(run 3)") || strings.Contains(stdout, "stopped after") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if b := readBaselineFile(t, saved); len(b.Entries) != 1 || b.Entries[0].Runs != 3 {
		t.Errorf("baseline %+v, want one entry of 3 runs", b)
	}
}

func TestProbeConfigErrors(t *testing.T) {
	e := newProbeEnv(t)
	bad := filepath.Join(t.TempDir(), "bad.yml")
	writeFile(t, bad, badConfig)
	for _, tc := range []struct {
		file string
		want string
	}{
		{bad, `line 5: module "http_2xx": unknown field "timout"`},
		{filepath.Join(t.TempDir(), "missing.yml"), "no such file or directory"},
	} {
		code, _, stderr := e.sonde(t, "probe", "--config.file="+tc.file, "--target="+e.ok)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d\n%s", tc.file, code, stderr)
		}
	}
}

// probeJSONOutput mirrors the documented --output=json object.
type probeJSONOutput struct {
	Module          string             `json:"module"`
	Target          string             `json:"target"`
	Hostname        string             `json:"hostname"`
	Run             int                `json:"run"`
	Passed          bool               `json:"passed"`
	Success         bool               `json:"success"`
	DurationSeconds float64            `json:"duration_seconds"`
	TimeoutSeconds  float64            `json:"timeout_seconds"`
	Attempts        attempts           `json:"attempts"`
	Phases          map[string]float64 `json:"phases"`
	Failure         *struct {
		Class, Reason, Phase, Message string
		HTTPEquivalent                int `json:"http_equivalent"`
	} `json:"failure"`
	TLS        *tlsFacts    `json:"tls"`
	Assertions []check      `json:"assertions"`
	Baseline   []comparison `json:"baseline"`
	Metrics    []struct {
		Name   string
		Labels map[string]string
		Value  float64
	} `json:"metrics"`
}

func decodeJSONLines(t *testing.T, stdout string) []probeJSONOutput {
	t.Helper()
	var out []probeJSONOutput
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	for dec.More() {
		var p probeJSONOutput
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("%v\n%s", err, stdout)
		}
		out = append(out, p)
	}
	if n := strings.Count(stdout, "\n"); n != len(out) {
		t.Errorf("%d lines for %d objects: want one object per line", n, len(out))
	}
	return out
}

func TestProbeJSONOutput(t *testing.T) {
	e := newProbeEnv(t)
	code, stdout, stderr := e.probe(t, "--output=json", "--target="+e.tls, "--target="+e.fail, "--hostname=example.com",
		"--assert=probe_http_status_code == 200")
	if code != 1 {
		t.Errorf("exit %d\n%s", code, stderr)
	}
	got := decodeJSONLines(t, stdout)
	if len(got) != 2 {
		t.Fatalf("%d objects:\n%s", len(got), stdout)
	}
	ok, failed := got[0], got[1]
	if ok.Module != "http_2xx" || ok.Target != e.tls || ok.Hostname != "example.com" || ok.Run != 1 || !ok.Passed || !ok.Success ||
		ok.DurationSeconds <= 0 || ok.TimeoutSeconds != 5 || ok.Failure != nil || ok.Attempts.Made != 1 || ok.Attempts.FirstDurationSeconds <= 0 {
		t.Errorf("success: %+v", ok)
	}
	for _, phase := range []string{"resolve", "connect", "tls", "processing", "transfer"} {
		if _, found := ok.Phases[phase]; !found {
			t.Errorf("phase %s missing: %v", phase, ok.Phases)
		}
	}
	if ok.TLS == nil || ok.TLS.Version != "TLS 1.3" || ok.TLS.Issuer != "O=Acme Co" || len(ok.TLS.DNSNames) == 0 ||
		ok.TLS.EarliestCertExpiry == nil || ok.TLS.EarliestCertExpiry.Before(time.Now()) || len(ok.TLS.FingerprintSHA256) != 64 {
		t.Errorf("tls: %+v", ok.TLS)
	}
	if len(ok.Assertions) != 1 || !ok.Assertions[0].Passed || ok.Assertions[0].Detail != "200 == 200" || ok.Baseline == nil {
		t.Errorf("assertions %+v, baseline %+v", ok.Assertions, ok.Baseline)
	}
	if !hasMetric(ok.Metrics, "probe_success", 1) || !hasMetric(ok.Metrics, "probe_http_status_code", 200) {
		t.Errorf("metrics: %+v", ok.Metrics)
	}
	f := failed.Failure
	if failed.Passed || failed.Success || f == nil || f.Class != "status" || f.Reason != "http_status" || f.Phase != "validate" ||
		f.HTTPEquivalent != 502 || !strings.Contains(f.Message, "503") || failed.TLS != nil || failed.Assertions[0].Passed {
		t.Errorf("failure: %+v %+v", failed, f)
	}
	// The failure and the verdict go to stderr, for the CI log.
	for _, want := range []string{"FAIL  http_2xx  " + e.fail, "sonde probe: FAIL: " + e.fail + " failed 1 of 1 runs"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func hasMetric(metrics []struct {
	Name   string
	Labels map[string]string
	Value  float64
}, name string, value float64) bool {
	for _, m := range metrics {
		if m.Name == name && m.Value == value {
			return true
		}
	}
	return false
}

func TestProbePrometheusOutput(t *testing.T) {
	e := newProbeEnv(t)
	code, stdout, stderr := e.probe(t, "--output=prometheus", "--target="+e.ok)
	if code != 0 || stderr != "sonde probe: PASS: 1 of 1 targets passed\n" {
		t.Errorf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"# HELP probe_success ", "# TYPE probe_success gauge\nprobe_success 1\n", `probe_http_duration_seconds{phase="connect"} `, "probe_timeout_seconds 5\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "# sonde") {
		t.Errorf("a single probe's output must be exactly a scrape's:\n%s", stdout)
	}

	code, stdout, stderr = e.probe(t, "--output=prometheus", "--target="+e.ok, "--target="+e.fail)
	if code != 1 || !strings.Contains(stderr, "FAIL  http_2xx  "+e.fail) {
		t.Errorf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{
		fmt.Sprintf("# sonde probe module=%q target=%q run=1 passed=true\n", "http_2xx", e.ok),
		fmt.Sprintf("# sonde probe module=%q target=%q run=1 passed=false\n", "http_2xx", e.fail),
		`probe_failure_info{class="status",phase="validate",reason="http_status"} 1`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("lacks %q:\n%s", want, stdout)
		}
	}
}

func TestProbeBaseline(t *testing.T) {
	e := newProbeEnv(t)
	dir := t.TempDir()
	saved := filepath.Join(dir, "baseline.json")

	// No baseline yet: a note, nothing compared, and the figures saved.
	code, stdout, stderr := e.probe(t, "--target="+e.ok, "--target="+e.fail, "--repeat=2", "--interval=1ms", "--max-failures=1",
		"--baseline="+saved, "--save-baseline="+saved)
	if code != 1 || !strings.Contains(stderr, "does not exist yet; nothing to compare with") || strings.Contains(stdout, "baseline ") ||
		!strings.Contains(stderr, "the baseline of "+e.fail+" is not updated: it failed") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	b := readBaselineFile(t, saved)
	if len(b.Entries) != 1 || b.Entries[0].Module != "http_2xx" || b.Entries[0].Target != e.ok || b.Entries[0].Runs != 2 ||
		b.Entries[0].Metrics["probe_duration_seconds"] <= 0 || b.Entries[0].Metrics["probe_first_attempt_duration_seconds"] <= 0 {
		t.Fatalf("%+v", b)
	}

	// Compared with figures no probe can beat, and with figures any can.
	tests := []struct {
		figure  float64
		code    int
		wantOut string
	}{
		{1e-9, 1, "baseline FAIL  probe_duration_seconds "},
		{100, 0, "baseline ok    probe_duration_seconds "},
	}
	for _, tc := range tests {
		b.Entries[0].Metrics = map[string]float64{"probe_duration_seconds": tc.figure, "probe_first_attempt_duration_seconds": tc.figure}
		writeBaseline(saved, b)
		code, stdout, stderr := e.probe(t, "--target="+e.ok, "--baseline="+saved, "--max-regression=20%")
		if code != tc.code || !strings.Contains(stdout, tc.wantOut) || !strings.Contains(stdout, "baseline") ||
			!strings.Contains(stdout, "probe_first_attempt_duration_seconds") || !strings.Contains(stdout, "at most +20%)") {
			t.Errorf("baseline %v: exit %d\n%s\n%s", tc.figure, code, stdout, stderr)
		}
	}

	// A baseline that cannot be read is a usage error, not a pass.
	writeFile(t, saved, "{not json")
	if code, _, stderr := e.probe(t, "--target="+e.ok, "--baseline="+saved); code != 2 || !strings.Contains(stderr, "baseline file") {
		t.Errorf("corrupt baseline: exit %d\n%s", code, stderr)
	}
}

func readBaselineFile(t *testing.T, path string) *baselineFile {
	t.Helper()
	b, err := readBaseline(path, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConfigCommands(t *testing.T) {
	e := newProbeEnv(t)
	bad := filepath.Join(t.TempDir(), "bad.yml")
	writeFile(t, bad, badConfig)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"config", "check", "--config.file=" + e.config}, 0, "the configuration is valid (5 modules)"},
		{[]string{"config", "check", "--config.file=" + bad}, 1, `unknown field "timout"`},
		{[]string{"--config.check", "--config.file=" + bad}, 1, `unknown field "timout"`},
		{[]string{"config", "check", "--config.file=" + bad + ".missing"}, 1, "no such file or directory"},
		{[]string{"config"}, 2, "must select a subcommand of 'config'"},
		{[]string{"config", "check", "--web.listen-address=:1"}, 2, "unknown long flag '--web.listen-address'"},
	} {
		code, _, stderr := e.sonde(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", tc.args, code, tc.code, tc.want, stderr)
		}
	}

	code, stdout, stderr := e.sonde(t, "config", "schema")
	want, err := config.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || stdout != string(want) || stderr != "" {
		t.Errorf("config schema: exit %d, %d bytes, stderr %s", code, len(stdout), stderr)
	}
}

// The server's command line is unchanged: flags without a command still
// run it, and naming the command does too.
func TestServeCommand(t *testing.T) {
	for _, args := range [][]string{
		{"--config.file=x.yml", "--web.listen-address=:1", "--log.level=debug"},
		{"serve", "--config.file=x.yml", "--web.listen-address=:1", "--log.level=debug"},
	} {
		f, err := parseFlags(args, io.Discard, io.Discard)
		if err != nil || f.command != cmdServe || f.configFile != "x.yml" || (*f.web.WebListenAddresses)[0] != ":1" || f.log.Level.String() != "debug" {
			t.Errorf("%v: %+v %v", args, f, err)
		}
	}
	f, err := parseFlags([]string{"probe", "--target=a", "--target=b", "--assert=probe_success == 1"}, io.Discard, io.Discard)
	if err != nil || f.command != cmdProbe || len(f.probe.targets) != 2 || f.probe.module != "http_2xx" || f.probe.configFile != "blackbox.yml" ||
		f.probe.output != "text" || f.probe.repeat != 1 || f.probe.maxRegression != 0.2 {
		t.Errorf("probe: %+v %v", f, err)
	}
	// The server's flags are not the probe's.
	if _, err := parseFlags([]string{"probe", "--target=a", "--web.listen-address=:1"}, io.Discard, io.Discard); err == nil {
		t.Error("probe accepted --web.listen-address")
	}
}

func TestExplicitServeCommandRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	cfgFile := filepath.Join(t.TempDir(), "sonde.yml")
	writeFile(t, cfgFile, goodConfig)
	runSonde(t, "http", "serve", "--config.file="+cfgFile).waitHealthy(t)
}

func TestPercentFlag(t *testing.T) {
	for in, want := range map[string]float64{"20%": 0.2, "20": 0.2, " 5.5% ": 0.055, "0": 0, "150%": 1.5} {
		var p percent
		if err := p.Set(in); err != nil || float64(p) != want {
			t.Errorf("%q: %v %v, want %v", in, float64(p), err, want)
		}
	}
	for _, bad := range []string{"", "%", "-5%", "twenty", "NaN", "Inf%"} {
		var p percent
		if err := p.Set(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	p := percent(0.2)
	if p.String() != "20%" {
		t.Errorf("String() = %q", p.String())
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// docs/cli.md documents every flag of every command but serve, whose
// flags docs/configuration.md lists.
func TestCLIDocsListEveryFlag(t *testing.T) {
	e := newProbeEnv(t)
	doc, err := os.ReadFile("../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	flag := regexp.MustCompile(`(?m)^\s+(?:-\w, )?--(?:\[no-\])?([a-z][a-z.-]*[a-z])`) // a flag's own line
	for _, command := range [][]string{{"probe"}, {"config", "check"}, {"config", "schema"}} {
		_, help, _ := e.sonde(t, append(command, "--help")...) // on stdout, as blackbox prints it
		var names []string
		for _, m := range flag.FindAllStringSubmatch(help, -1) {
			if name := m[1]; !strings.HasPrefix(name, "help") && name != "version" {
				names = append(names, name)
			}
		}
		if command[0] == "probe" && len(names) < 10 {
			t.Fatalf("found only %v in the help of sonde probe; has kingpin's layout changed?\n%s", names, help)
		}
		for _, name := range names {
			if !strings.Contains(string(doc), "`--"+name) {
				t.Errorf("sonde %s --%s is not in docs/cli.md", strings.Join(command, " "), name)
			}
		}
	}
}

func TestPhasesInProbeOrder(t *testing.T) {
	sample := func(name, phase string) assert.Sample {
		return assert.Sample{Name: name, Labels: map[string]string{"phase": phase}, Value: 1}
	}
	o := &outcome{samples: []assert.Sample{
		sample("probe_http_duration_seconds", "transfer"),
		sample("probe_http_duration_seconds", "connect"),
		sample("probe_http_duration_seconds", "zeta"), // a phase of a future prober: last
		sample("probe_http_duration_seconds", "resolve"),
		sample("probe_icmp_duration_seconds", "setup"),
		{Name: "probe_http_duration_seconds", Labels: map[string]string{"phase": "tls", "extra": "x"}}, // not a phase series
		{Name: "probe_expect_info", Labels: map[string]string{"phase": "x"}},                           // not a duration
	}}
	var got []string
	for _, p := range o.phases() {
		got = append(got, p.Name)
	}
	if want := []string{"setup", "resolve", "connect", "transfer", "zeta"}; !slices.Equal(got, want) {
		t.Errorf("%v, want %v", got, want)
	}
}

// TestProbeWithAWarnedModule: a module that loads with a warning, as in
// blackbox_exporter, is probed as it would be, and its warning is printed,
// since it may say why the probe fails.
func TestProbeWithAWarnedModule(t *testing.T) {
	e := newProbeEnv(t)
	cfg := filepath.Join(t.TempDir(), "warned.yml")
	writeFile(t, cfg, "modules:\n  warned:\n    prober: http\n    http:\n      valid_status_codes: [999]\n  other:\n    prober: htp\n")
	code, _, stderr := e.sonde(t, "probe", "--config.file="+cfg, "--module=warned", "--target="+e.ok)
	if code != 1 {
		t.Errorf("exit %d, want 1: status 999 never matches\n%s", code, stderr)
	}
	if !strings.Contains(stderr, `warning: line 5: module "warned": http.valid_status_codes[0]: 999 is not an HTTP status code`) {
		t.Errorf("the module's warning is not printed:\n%s", stderr)
	}
	if strings.Contains(stderr, `module "other"`) {
		t.Errorf("another module's warning is printed:\n%s", stderr)
	}
	code, _, stderr = e.sonde(t, "probe", "--config.file="+cfg, "--module=other", "--target="+e.ok)
	if code != 2 || !strings.Contains(stderr, `unknown prober "htp"`) {
		t.Errorf("a module of an unknown prober: exit %d\n%s", code, stderr)
	}
}

// The human report names a target with its password masked, as the pages
// and logs do: a CI job's log is a log. The JSON report keeps the target
// as given, as the baseline file does: it is what identifies it.
func TestProbeReportMasksTargetPasswords(t *testing.T) {
	e := newProbeEnv(t)
	const password = "s3cr3t-PW"
	failing := "alice:" + password + "@" + strings.TrimPrefix(e.fail, "http://") + "/x" // sent as basic auth
	for _, args := range [][]string{
		{"--target=" + failing},
		{"--target=" + failing, "--repeat=2", "--output=prometheus"},
		{"--target=" + failing, "--debug"},
		{"--target=http://alice:" + password + "@/x"}, // cannot be probed
	} {
		code, stdout, stderr := e.probe(t, args...)
		if code == 0 || strings.Contains(stdout+stderr, password) || !strings.Contains(stdout+stderr, "alice:xxxxx@") {
			t.Errorf("%v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, stdout, stderr)
		}
	}
}
