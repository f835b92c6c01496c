package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// reloadConfig is configuration "a" or "b". Its echo module sends its
// name in a header and expects it back in the body, from a target that
// echoes the header: a probe that mixed the two configurations (the
// header of one, the check of the other) would fail. The marker module
// tells which of the two is loaded.
func reloadConfig(name string) string {
	return fmt.Sprintf(`
modules:
  echo:
    prober: http
    timeout: 5s
    http:
      headers:
        X-Config: %[1]s
      fail_if_body_not_matches_regexp: ["^%[1]s$"]
  marker_%[1]s:
    prober: tcp
`, name)
}

// writeAtomically replaces the file by renaming a complete one over it, as
// configuration management and Kubernetes do: a reload never reads a file
// half written.
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// While about 200 probes a second run, the configuration is switched
// between two versions, over and over, by each of the three ways of
// reloading: POST /-/reload, SIGHUP and --config.enable-auto-reload. No
// probe may fail, be refused or be dropped, and none may mix the two.
func TestReloadUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	var seen sync.Map // X-Config value → *atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.Header.Get("X-Config")
		n, _ := seen.LoadOrStore(v, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		io.WriteString(w, v)
	}))
	defer target.Close()

	cfgFile := filepath.Join(t.TempDir(), "sonde.yml")
	writeFile(t, cfgFile, reloadConfig("a"))
	p := startSonde(t, cfgFile, "--config.enable-auto-reload", "--config.auto-reload-interval=0.2", "--log.prober=debug")

	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	probeURL := p.base + "/probe?" + url.Values{"module": {"echo"}, "target": {target.URL}}.Encode()
	const rate, workers = 200, 16
	stop := make(chan struct{})
	var (
		probes, failed atomic.Int64
		firstFailure   sync.Once
		failure        string
		wg             sync.WaitGroup
	)
	ticks := time.NewTicker(time.Second / rate)
	defer ticks.Stop()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-ticks.C:
				}
				probes.Add(1)
				resp, err := client.Get(probeURL)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "\nprobe_success 1\n") {
					failed.Add(1)
					firstFailure.Do(func() { failure = fmt.Sprintf("%v %v\n%s", err, resp, body) })
				}
			}
		}()
	}

	// Switch configurations for a few seconds, each way in turn.
	loaded := func(name string) bool {
		_, page := p.get(t, "/config")
		return strings.Contains(page, "marker_"+name+":")
	}
	var posts, hups, autos int
	begin := time.Now()
	for i := 0; time.Since(begin) < 4*time.Second; i++ {
		name := []string{"b", "a"}[i%2]
		writeAtomically(t, cfgFile, reloadConfig(name))
		switch i % 3 {
		case 0:
			resp, err := http.Post(p.base+"/-/reload", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("POST /-/reload: %d %s", resp.StatusCode, body)
			}
			posts++
		case 1:
			if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			hups++
		case 2:
			autos++ // the watcher notices the new content
		}
		waitFor(t, func() bool { return loaded(name) })
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	t.Logf("%d probes in %v while reloading %d times (%d POST, %d SIGHUP, %d automatic)",
		probes.Load(), time.Since(begin).Round(time.Millisecond), posts+hups+autos, posts, hups, autos)
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d probes failed or were refused; the first:\n%s", n, probes.Load(), failure)
	}
	if probes.Load() < rate { // generous: a slow, busy machine still runs a second's worth
		t.Errorf("only %d probes ran; the load did not happen", probes.Load())
	}
	for _, name := range []string{"a", "b"} {
		if n, ok := seen.Load(name); !ok || n.(*atomic.Int64).Load() == 0 {
			t.Errorf("no probe ran with configuration %q", name)
		}
	}
	seen.Range(func(k, _ any) bool {
		if k != "a" && k != "b" {
			t.Errorf("the target saw X-Config %q", k)
		}
		return true
	})
	logs := p.logs.String()
	if got := strings.Count(logs, "Reloaded configuration"); got < posts+1 {
		t.Errorf("%d reloads by POST or SIGHUP logged; want at least the %d POSTs and a SIGHUP", got, posts)
	}
	if !strings.Contains(logs, "Configuration file changed and was reloaded") {
		t.Error("no automatic reload happened")
	}
	if strings.Contains(logs, "Reload failed") || strings.Contains(logs, "reload failed") {
		t.Error("a reload failed")
	}
	_, metrics := p.get(t, "/metrics")
	if !strings.Contains(metrics, "blackbox_exporter_config_last_reload_successful 1") {
		t.Error("the last reload is not reported successful")
	}
}
