//go:build unix

package collector

import (
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// fdChildEnv makes the test binary, run again by
// TestOutOfFileDescriptorsIsClassified, play the process out of fds.
const fdChildEnv = "SONDE_TEST_OUT_OF_FDS"

// A probe that cannot get a socket because the process is out of file
// descriptors fails as prober/resource_exhausted, answered like any failed
// probe, and sonde carries on. The limit is lowered in a child process
// (the test binary run again), so that no other test runs short of fds.
func TestOutOfFileDescriptorsIsClassified(t *testing.T) {
	if os.Getenv(fdChildEnv) == "1" {
		outOfFDs(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOutOfFileDescriptorsIsClassified$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), fdChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the child process out of file descriptors failed or crashed: %v\n%s", err, out)
	}
	for _, want := range []string{"out of fds: probe failed as prober/resource_exhausted", "fds back: probe succeeded", "--- PASS"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the child's output lacks %q:\n%s", want, out)
		}
	}
}

func outOfFDs(t *testing.T) {
	// The target and the collector exist before the fds run out: only the
	// probe's own socket must fail.
	target := newGatedTarget(t, 0)
	c, _ := newTestCollector(t, nil)
	params := url.Values{"module": {"http_2xx"}, "target": {target.URL + "/fast"}}

	var before syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &before); err != nil {
		t.Fatal(err)
	}
	lowered := syscall.Rlimit{Cur: min(before.Cur, 256), Max: before.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	// Take every fd left under the lowered limit.
	var filler []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatalf("filling the fd table: %v", err)
			}
			break
		}
		filler = append(filler, f)
		if len(filler) > int(lowered.Cur) {
			t.Fatal("the lowered limit did not hold")
		}
	}

	resp, body := scrape(t, c, params, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("out of fds: answered %d, want 200:\n%s", resp.StatusCode, body)
	}
	m := parseMetrics(t, body)
	if m["probe_success"].value() != 0 || m["probe_failure_info"] == nil {
		t.Fatalf("out of fds: the probe did not fail:\n%s", body)
	}
	fi := m["probe_failure_info"].series[0].labels
	if fi["class"] != "prober" || fi["reason"] != "resource_exhausted" {
		recent, _ := c.history.Lists()
		t.Fatalf("out of fds: failed as %v, want prober/resource_exhausted\n%s", fi, recent[0].Log())
	}
	t.Logf("out of fds: probe failed as prober/resource_exhausted in phase %s", fi["phase"])
	recent, _ := c.history.Lists()
	if log := recent[0].Log(); !strings.Contains(log, "too many open files") || !strings.Contains(log, "open file limit is used up") {
		t.Errorf("the probe's log does not say what ran out and what to do:\n%s", log)
	}

	for _, f := range filler {
		f.Close()
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &before); err != nil {
		t.Fatal(err)
	}
	if _, body := scrape(t, c, params, nil); !strings.Contains(body, "probe_success 1") {
		t.Fatalf("with fds back the probe still fails:\n%s", body)
	}
	t.Log("fds back: probe succeeded")
}
