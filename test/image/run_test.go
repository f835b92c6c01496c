package image

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/internal/testkit"
)

// mountedConfig is a configuration a user mounts in place of the image's:
// its module is in no other, so a probe of it proves this file was read.
const mountedConfig = `modules:
  mounted:
    prober: http
    timeout: 5s
`

// mount is a file or directory of the host that a run puts at target in
// the image.
type mount struct {
	source, target string
	dir            bool
}

// runner runs the image's sonde, with the image's command and a
// listen address, and returns the address it listens on; it stops it
// when the test ends.
type runner interface {
	describe() string
	start(t *testing.T, m *mount) string
}

func checkProbes(t *testing.T, e *engine, ref string, cfg imageConfig, layout, version string) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	}))
	t.Cleanup(target.Close)

	r := pickRunner(t, e, ref, cfg, layout, version)
	t.Logf("sonde runs %s", r.describe())
	for _, tc := range []struct {
		name   string
		mount  string // where the test's configuration is mounted, if anywhere
		dir    bool   // a directory holding config.yml rather than the file
		module string
	}{
		{"the image's configuration", "", false, "http_2xx"},
		// A blackbox deployment mounts its configuration where blackbox's
		// image reads it and names no path: the image's command must find
		// it there.
		{"a file mounted at blackbox_exporter's path", blackboxPath, false, "mounted"},
		{"a directory mounted at blackbox_exporter's path", filepath.Dir(blackboxPath), true, "mounted"},
		{"a file mounted at sonde's path", configPath, false, "mounted"},
		{"a directory mounted at sonde's path", filepath.Dir(configPath), true, "mounted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m *mount
			if tc.mount != "" {
				m = &mount{source: writeMountSource(t, tc.dir), target: tc.mount, dir: tc.dir}
			}
			addr := r.start(t, m)
			body := probe(t, addr, tc.module, target.URL)
			if !strings.Contains(body, "\nprobe_success 1\n") {
				t.Errorf("module %s, target %s: the probe failed:\n%s", tc.module, target.URL, body)
			}
		})
	}
	t.Run("icmp", func(t *testing.T) { checkICMP(t, r) })
}

// checkICMP runs `sonde probe` of the example's icmp module against the
// container's own loopback, with each way docs/container.md gives to
// allow ICMP, and with neither. It needs a network namespace of the
// container's own (--network none: loopback alone), so a container.
func checkICMP(t *testing.T, r runner) {
	c, ok := r.(*containerRunner)
	if !ok {
		t.Skip("ICMP needs the container's own network namespace, and podman run was refused")
	}
	closed := "net.ipv4.ping_group_range=1 0" // the kernel's default: no group
	for _, tc := range []struct {
		name  string
		flags []string
		pass  bool
	}{
		{"ping_group_range for every group, as the image's user", []string{"--sysctl", "net.ipv4.ping_group_range=0 2147483647", "--cap-drop", "ALL"}, true},
		{"NET_RAW, as root", []string{"--user", "0", "--sysctl", closed, "--cap-drop", "ALL", "--cap-add", "NET_RAW"}, true},
		{"neither", []string{"--sysctl", closed, "--cap-drop", "ALL"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flags := append([]string{"--network", "none"}, tc.flags...)
			out, err := c.runWith(t, flags, "probe", "--config.file="+configPath, "--module=icmp", "--target=127.0.0.1")
			switch {
			case tc.pass && err != nil:
				t.Errorf("sonde probe failed: %v\n%s", err, out)
			case !tc.pass && err == nil:
				t.Errorf("sonde probe passed where ICMP is not allowed:\n%s", out)
			case !tc.pass && !strings.Contains(out, "permission_denied"):
				t.Errorf("sonde probe failed, but not for want of permission: %v\n%s", err, out)
			}
		})
	}
}

// writeMountSource writes mountedConfig as config.yml, and returns the
// file, or the directory that holds it.
func writeMountSource(t *testing.T, dir bool) string {
	d := openDir(t)
	file := filepath.Join(d, "config.yml")
	writeFile(t, file, mountedConfig)
	if dir {
		return d
	}
	return file
}

// probe asks sonde at addr to probe target with module, and returns the
// answer's body.
func probe(t *testing.T, addr, module, target string) string {
	t.Helper()
	client := &http.Client{Timeout: time.Minute}
	u := fmt.Sprintf("http://%s/probe?module=%s&target=%s", addr, url.QueryEscape(module), url.QueryEscape(target))
	resp, err := client.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", u, resp.Status, body)
	}
	return string(body)
}

// pickRunner runs the image with podman where the machine lets it, and
// otherwise runs the binary from the image's files. The first try is a
// plain `podman run` with the default runtime; the second runc, as crun
// (Debian's default) refuses hosts that mount cgroup v1 and v2 side by
// side, as some sandboxes do.
func pickRunner(t *testing.T, e *engine, ref string, cfg imageConfig, layout, version string) runner {
	if e.tool == "podman" {
		tries := [][]string{nil}
		if _, err := exec.LookPath("runc"); err == nil {
			tries = append(tries, []string{"--runtime", "runc"})
		}
		for _, global := range tries {
			c := &containerRunner{e: e, ref: ref, global: global, cmd: cfg.Cmd}
			out, err := c.run(t, "--version")
			if err == nil && strings.Contains(out, "version "+version) {
				return c
			}
			t.Logf("%s refused: %v\n%s", c.describe(), err, lastLines(out, 5))
		}
	}
	uid, gid, err := parseUser(cfg.User)
	if err != nil {
		t.Fatal(err)
	}
	return &treeRunner{layout: layout, cmd: cfg.Cmd, uid: uid, gid: gid}
}

// containerRunner runs the image with podman, in the host's network, so
// that sonde and the test reach each other on loopback. The open-file and
// process limits are set low because podman raises them by default, past
// the hard limits, which a root without CAP_SYS_RESOURCE (a sandbox's)
// may not do.
type containerRunner struct {
	e      *engine
	ref    string
	global []string // podman's flags before run
	cmd    []string // the image's command
}

func (c *containerRunner) describe() string {
	return "in a container: podman " + strings.Join(append(append([]string(nil), c.global...), "run"), " ")
}

// args are podman's arguments to run the image with flags (run's, after
// the limits) and args in place of the image's command.
func (c *containerRunner) args(flags []string, args ...string) []string {
	a := append(append([]string(nil), c.global...), "run", "--rm",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")
	a = append(append(a, flags...), c.ref)
	return append(a, args...)
}

// run runs the image, in the host's network, with args in place of its
// command, to its end.
func (c *containerRunner) run(t *testing.T, args ...string) (string, error) {
	return c.runWith(t, []string{"--network", "host"}, args...)
}

func (c *containerRunner) runWith(t *testing.T, flags []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := c.e.command(ctx, c.args(flags, args...)...).CombinedOutput()
	return string(out), err
}

func (c *containerRunner) start(t *testing.T, m *mount) string {
	name := fmt.Sprintf("sonde-image-test-%d", time.Now().UnixNano())
	flags := []string{"--network", "host", "--name", name}
	if m != nil {
		flags = append(flags, "--volume", m.source+":"+m.target+":ro")
	}
	args := append(append([]string(nil), c.cmd...), "--web.listen-address="+testkit.AnyPort)
	cmd := c.e.command(context.Background(), c.args(flags, args...)...)
	addr := startAndWait(t, cmd, "the container's sonde")
	t.Cleanup(func() {
		// podman run stops the container when it is stopped (it passes
		// on the signal); rm covers a podman that went first.
		_, _ = c.e.output(context.Background(), "rm", "--force", "--time", "0", name)
	})
	return addr
}

// treeRunner runs the binary from the image's files, as the image's user
// where the test may switch to it (as root), with the image's command's
// paths taken inside those files. Each run has files of its own, on which
// a mount is mimicked as a runtime does it: the target is resolved inside
// the image, links included, and replaced.
type treeRunner struct {
	layout   string
	cmd      []string
	uid, gid uint32
}

func (r *treeRunner) describe() string {
	who := "as the test's user"
	if os.Geteuid() == 0 {
		who = fmt.Sprintf("as uid %d gid %d", r.uid, r.gid)
	}
	return "from the image's files on the host (podman run refused or podman missing), " + who
}

func (r *treeRunner) start(t *testing.T, m *mount) string {
	tree := unpackTree(t, r.layout)
	if m != nil {
		mimicMount(t, tree, m)
	}
	args := []string{"--web.listen-address=" + testkit.AnyPort}
	for _, a := range r.cmd {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			a = "--config.file=" + filepath.Join(tree, v)
		}
		args = append(args, a)
	}
	cmd := exec.Command(filepath.Join(tree, "bin/sonde"), args...)
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: r.uid, Gid: r.gid, Groups: []uint32{}}}
	}
	return startAndWait(t, cmd, "the unpacked image's sonde")
}

// mimicMount puts m's source at its target inside tree.
func mimicMount(t *testing.T, tree string, m *mount) {
	t.Helper()
	target, err := filepath.EvalSymlinks(filepath.Join(tree, m.target))
	if err != nil {
		t.Fatalf("the mount's target %s: %v", m.target, err)
	}
	if !strings.HasPrefix(target, tree+string(filepath.Separator)) {
		t.Fatalf("the mount's target %s leads out of the image, to %s", m.target, target)
	}
	if !m.dir {
		writeFile(t, target, readFile(t, m.source))
		return
	}
	if err := os.RemoveAll(target); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(m.source)
	if err != nil {
		t.Fatal(err)
	}
	for _, entry := range entries {
		writeFile(t, filepath.Join(target, entry.Name()), readFile(t, filepath.Join(m.source, entry.Name())))
	}
}

// startAndWait starts cmd and waits until its log says where it listens;
// it stops the process (SIGTERM, then SIGKILL) when the test ends.
func startAndWait(t *testing.T, cmd *exec.Cmd, name string) string {
	t.Helper()
	var log testkit.SyncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, log.String())
		}
	})
	return testkit.WaitListening(t, name, log.String, exited, 2*time.Minute)
}

// parseUser reads the numeric uid:gid of the image's USER.
func parseUser(user string) (uid, gid uint32, err error) {
	u, g, ok := strings.Cut(user, ":")
	if !ok {
		return 0, 0, fmt.Errorf("the image's user %q is not uid:gid", user)
	}
	uid64, err := strconv.ParseUint(u, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("the image's user %q: %w", user, err)
	}
	gid64, err := strconv.ParseUint(g, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("the image's user %q: %w", user, err)
	}
	return uint32(uid64), uint32(gid64), nil
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
