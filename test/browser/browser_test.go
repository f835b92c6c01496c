//go:build unix

// Package browser drives sonde's web pages in a real browser: Debian's
// chromium, headless. It builds and starts the sonde binary under a route
// prefix, makes one successful and one failed probe, then loads the landing
// page and the failed probe's detail page as a person would, and takes a
// screenshot of the waterfall.
package browser

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/internal/testkit"
)

// repoRoot is where the go test runs this package from, two levels down.
const repoRoot = "../.."

// browserTimeout bounds one chromium run; a run past it is killed.
const browserTimeout = 60 * time.Second

// prefix is the route prefix sonde runs under, so that the test also
// checks that the pages' links are relative.
const prefix = "/sonde/"

const sondeConfig = `
modules:
  http_2xx:
    prober: http
    timeout: 5s
`

// browsers are the names Chromium goes by on PATH, Debian's first.
var browsers = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

func TestMain(m *testing.M) {
	code := m.Run()
	sondeBin.Remove()
	os.Exit(code)
}

func TestPagesInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("builds sonde and runs a browser")
	}
	chromium := findChromium(t)
	base := startSonde(t)

	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer target.Close()
	// The successful probe's target is markup that every page must escape.
	good := target.URL + `/<script>alert("pwned")</script>?q='"`
	refused := closedPort(t)
	probe(t, base, good, "probe_success 1")
	probe(t, base, refused, "probe_success 0")

	landing := dumpDOM(t, chromium, base)
	noScript(t, "the landing page", landing)
	failedTable, recentTable := section(t, landing, "Recent failed probes"), section(t, landing, "Recent probes")
	for _, want := range []string{refused, "connect/refused in connect", "Waterfall"} {
		if !strings.Contains(failedTable, want) {
			t.Errorf("the failed probes' table lacks %q:\n%s", want, failedTable)
		}
	}
	if strings.Contains(failedTable, target.URL+"/") {
		t.Errorf("the successful probe is in the failed table:\n%s", failedTable)
	}
	for _, want := range []string{target.URL, refused, "Success", "Failure"} {
		if !strings.Contains(recentTable, want) {
			t.Errorf("the recent probes' table lacks %q:\n%s", want, recentTable)
		}
	}

	detail := detailURL(t, base, failedTable)
	dom := dumpDOM(t, chromium, detail)
	checkWaterfall(t, dom)

	successRow := strings.Index(recentTable, "Success")
	if successRow < 0 {
		t.Fatalf("no successful probe listed:\n%s", recentTable)
	}
	success := dumpDOM(t, chromium, detailURL(t, base, recentTable[successRow:]))
	noScript(t, "the successful probe's page", success)
	for _, want := range []string{`<span class="ok">Success</span>`, `<div class="bar attempt" style="left:`, `class="bar phase ph-`, "&lt;script&gt;alert"} {
		if !strings.Contains(success, want) {
			t.Errorf("the successful probe's page lacks %q:\n%s", want, success)
		}
	}

	dir := t.TempDir()
	for name, page := range map[string]string{"probe-detail.png": detail, "landing.png": base} {
		shot := filepath.Join(dir, name)
		screenshot(t, chromium, page, shot)
		t.Logf("screenshot of %s: %s", page, shot)
		keep(t, shot)
	}
}

// checkWaterfall asserts the detail page of the refused probe has its
// failed attempt's bar and bars labelled with phases.
func checkWaterfall(t *testing.T, dom string) {
	t.Helper()
	for _, want := range []string{
		"connect/refused in phase connect",
		`<div class="bar attempt failed" style="left:`,
		"attempt 1 failed: connect/refused",
		"Probe failed", // the log
		`href="../logs?id=`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the detail page lacks %q", want)
		}
	}
	phases := regexp.MustCompile(`<div class="row phase" title="[^"]*"><span class="label">([a-z]+)[^<]*</span><div class="track"><div class="bar phase ph-([a-z]+)" style="left:[0-9.]+%;\s*width:[0-9.]+%;?"`).FindAllStringSubmatch(dom, -1)
	for _, m := range phases {
		if m[1] != m[2] {
			t.Errorf("a bar of phase %s is labelled %s", m[2], m[1])
		}
	}
	if len(phases) == 0 {
		t.Errorf("the waterfall has no phase bars:\n%s", dom)
	}
	if t.Failed() {
		t.Logf("the detail page's DOM:\n%s", dom)
	}
}

// noScript asserts the page has no script element: the target's markup
// was escaped.
func noScript(t *testing.T, what, dom string) {
	t.Helper()
	if strings.Contains(strings.ToLower(dom), "<script") {
		t.Errorf("%s has a script element: a target was not escaped:\n%s", what, dom)
	}
}

// findChromium finds the browser. Outside CI a missing one skips the test
// with a loud message; in CI it is a failure.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range browsers {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("no Chromium on PATH (looked for %v); .ci/run should have installed Debian's chromium package", browsers)
	}
	t.Skipf("SKIPPING: no Chromium on PATH (looked for %v), so sonde's web pages are not tested in a browser; install it with `apt-get install chromium`", browsers)
	return ""
}

// runChromium runs headless Chromium with args and returns what it wrote
// on stdout. Its processes are killed after browserTimeout.
func runChromium(t *testing.T, chromium string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	args = append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--no-first-run", "--user-data-dir=" + t.TempDir(),
	}, args...)
	cmd := exec.CommandContext(ctx, chromium, args...)
	// Chromium starts helper processes: put them in a group of their own
	// and kill the whole group on timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("chromium %v did not finish within %v and was killed:\n%s", args, browserTimeout, stderr.String())
	}
	if err != nil {
		t.Fatalf("chromium %v: %v:\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

// dumpDOM loads url and returns the DOM as the browser built it.
func dumpDOM(t *testing.T, chromium, url string) string {
	t.Helper()
	dom := runChromium(t, chromium, "--dump-dom", url)
	if !strings.Contains(dom, "</html>") {
		t.Fatalf("chromium's DOM of %s is not a page:\n%s", url, dom)
	}
	return dom
}

// screenshot saves a PNG of url to file and checks it is one.
func screenshot(t *testing.T, chromium, url, file string) {
	t.Helper()
	runChromium(t, chromium, "--screenshot="+file, "--window-size=1200,900", "--hide-scrollbars", url)
	png, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("the screenshot %s is not a PNG", file)
	}
	// A blank 1200x900 page compresses to a few kilobytes; text and bars
	// make it larger.
	if len(png) < 10_000 {
		t.Errorf("the screenshot %s is only %d bytes: a blank page?", file, len(png))
	}
}

// keep copies file into $SONDE_BROWSER_ARTIFACTS when it is set, for a
// person to look at after the test.
func keep(t *testing.T, file string) {
	dir := os.Getenv("SONDE_BROWSER_ARTIFACTS")
	if dir == "" {
		return
	}
	data, err := os.ReadFile(file)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, filepath.Base(file)), data, 0o644)
	}
	if err != nil {
		t.Errorf("keeping the screenshot: %v", err)
		return
	}
	t.Logf("screenshot kept as %s", filepath.Join(dir, filepath.Base(file)))
}

// section returns the table that follows the heading title on the page.
func section(t *testing.T, page, title string) string {
	t.Helper()
	start := strings.Index(page, "<h2>"+title+"</h2>")
	if start < 0 {
		t.Fatalf("the page has no %q section:\n%s", title, page)
	}
	rest := page[start:]
	end := strings.Index(rest, "</table>")
	if end < 0 {
		t.Fatalf("the %q section has no table:\n%s", title, rest)
	}
	return rest[:end]
}

// detailURL follows the first detail link of a table, relative to the
// landing page as a browser resolves it.
func detailURL(t *testing.T, base, table string) string {
	t.Helper()
	m := regexp.MustCompile(`href="(probe/detail\?id=[0-9]+)"`).FindStringSubmatch(table)
	if m == nil {
		t.Fatalf("no link to a probe's detail page in:\n%s", table)
	}
	b, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := url.Parse(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return b.ResolveReference(ref).String()
}

// probe scrapes /probe for target and checks the answer contains want.
func probe(t *testing.T, base, target, want string) {
	t.Helper()
	resp, err := http.Get(base + "probe?" + url.Values{"module": {"http_2xx"}, "target": {target}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
		t.Fatalf("probe of %s: %d, want %q in:\n%s", target, resp.StatusCode, want, body)
	}
}

// sondeBin is sonde, built once, as `go build` from the repository root.
var sondeBin = testkit.SondeBinary(repoRoot)

// startSonde runs the sonde binary under prefix, on a port the kernel
// picks, and returns the URL of its landing page.
func startSonde(t *testing.T) string {
	t.Helper()
	bin := sondeBin.Path(t)
	cfg := filepath.Join(t.TempDir(), "sonde.yml")
	if err := os.WriteFile(cfg, []byte(sondeConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+cfg, "--web.listen-address="+testkit.AnyPort, "--web.route-prefix="+prefix)
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("sonde's log:\n%s", logs.String())
		}
	})
	base := "http://" + testkit.WaitListening(t, "sonde", logs.String, exited, 30*time.Second) + prefix
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "-/healthy")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("sonde did not become healthy:\n%s", logs.String())
	return ""
}

// closedPort returns a loopback URL on which nothing listens until the
// test ends.
func closedPort(t *testing.T) string {
	t.Helper()
	return "http://" + testkit.ClosedTCPAddr(t)
}

type syncBuffer = testkit.SyncBuffer
