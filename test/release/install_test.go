//go:build linux

package release

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/internal/testkit"
)

// How long the installed sonde may take to say where it listens and to
// answer: generous, as other packages' tests share the machine.
const startTimeout = 60 * time.Second

// TestDebInstall installs the amd64 .deb into this machine with dpkg, as a
// user would: the sonde user appears, the installed configuration checks
// out, the installed binary runs as that user with the defaults file's
// flags and answers a scrape and a probe, systemd accepts the installed
// unit, a changed configuration survives reinstalling, and purging leaves
// none of the package's files. It changes the machine, so it runs only as
// root with CI set (.ci/run), and puts back what it found: no package, and
// no sonde user if there was none.
func TestDebInstall(t *testing.T) {
	if os.Getenv("CI") == "" || os.Geteuid() != 0 {
		t.Skip("SKIPPING: installs the .deb into this machine (dpkg -i, a sonde user): runs only as root with CI set, as .ci/run runs it")
	}
	dpkg := tool(t, "dpkg", "dpkg")
	if out, err := exec.Command("dpkg-query", "--show", "--showformat=${Status}", "sonde").Output(); err == nil && strings.Contains(string(out), "installed") {
		t.Fatalf("a sonde package is already installed here (%s): purge it (dpkg --purge sonde) to run this test", out)
	}
	dist, tree := builtPackages(t)
	_, deb, _ := packageFiles(treeVersion(t, tree))
	deb = filepath.Join(dist, deb)

	_, lookupErr := user.Lookup("sonde")
	hadUser := lookupErr == nil
	t.Cleanup(func() { restoreMachine(t, dpkg, hadUser) })

	run(t, dpkg, "--install", deb)
	sonde := checkSondeUser(t)
	for _, args := range [][]string{
		{"config", "check", "--config.file", "/etc/sonde/config.yml"},
		{"--config.check", "--config.file=/etc/sonde/config.yml"},
	} {
		if out, err := exec.Command("/usr/bin/sonde", args...).CombinedOutput(); err != nil {
			t.Errorf("sonde %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	startInstalled(t, sonde)
	if analyze, err := exec.LookPath("systemd-analyze"); err == nil {
		verifyUnit(t, analyze, "/usr/lib/systemd/system/sonde.service")
	}

	// A changed conffile is the administrator's: dpkg keeps it, and asks
	// nothing when the package's own copy has not changed.
	const local = "\n# changed by TestDebInstall\n"
	appendFile(t, "/etc/sonde/config.yml", local)
	run(t, dpkg, "--install", deb)
	if got := string(readFile(t, "/etc/sonde/config.yml")); !strings.HasSuffix(got, local) {
		t.Error("reinstalling the package replaced the changed /etc/sonde/config.yml")
	}

	run(t, dpkg, "--purge", "sonde")
	for _, f := range packaged("deb") {
		if _, err := os.Lstat(f.path); !os.IsNotExist(err) {
			t.Errorf("after dpkg --purge, %s is still there (%v)", f.path, err)
		}
	}
}

// checkSondeUser wants the preinst's user: a system account (below 1000),
// no login, its own group.
func checkSondeUser(t *testing.T) *user.User {
	t.Helper()
	u, err := user.Lookup("sonde")
	if err != nil {
		t.Fatalf("after dpkg --install: %v", err)
	}
	if uid, _ := strconv.Atoi(u.Uid); uid == 0 || uid >= 1000 {
		t.Errorf("sonde's uid is %s, want a system account's (1-999)", u.Uid)
	}
	if g, err := user.LookupGroupId(u.Gid); err != nil || g.Name != "sonde" {
		t.Errorf("sonde's group is %v (%v), want sonde", g, err)
	}
	passwd := string(readFile(t, "/etc/passwd"))
	for _, line := range strings.Split(passwd, "\n") {
		if fields := strings.Split(line, ":"); len(fields) == 7 && fields[0] == "sonde" && !strings.HasSuffix(fields[6], "nologin") {
			t.Errorf("sonde's shell is %s, want nologin", fields[6])
		}
	}
	return u
}

// startInstalled runs /usr/bin/sonde as the unit would (the sonde user, the
// flags of /etc/default/sonde), on a loopback port the kernel picks, and
// scrapes /metrics and probes its own port once.
func startInstalled(t *testing.T, sonde *user.User) {
	t.Helper()
	uid, _ := strconv.ParseUint(sonde.Uid, 10, 32)
	gid, _ := strconv.ParseUint(sonde.Gid, 10, 32)
	args := append(defaultArgs(t, readFile(t, "/etc/default/sonde")), "--web.listen-address="+testkit.AnyPort)
	cmd := exec.Command("/usr/bin/sonde", args...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	var logs testkit.SyncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the installed sonde: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(startTimeout):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("the installed sonde's log:\n%s", logs.String())
		}
	}()
	addr := testkit.WaitListening(t, "the installed sonde", logs.String, exited, startTimeout)
	metrics := get(t, "http://"+addr+"/metrics")
	if !strings.Contains(metrics, "sonde_build_info{") {
		t.Errorf("/metrics of the installed sonde has no sonde_build_info:\n%.2000s", metrics)
	}
	probe := get(t, fmt.Sprintf("http://%s/probe?module=tcp_connect&target=%s", addr, addr))
	if !strings.Contains(probe, "\nprobe_success 1\n") {
		t.Errorf("the installed sonde's tcp_connect probe of itself did not succeed:\n%s", probe)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: startTimeout}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v\n%s", url, resp.Status, err, body)
	}
	return string(body)
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// restoreMachine purges the package if the test left it installed, and
// removes the sonde user and group the package made if there was no such
// user before (packages keep their users, as Debian's do).
func restoreMachine(t *testing.T, dpkg string, hadUser bool) {
	if out, err := exec.Command("dpkg-query", "--show", "--showformat=${Status}", "sonde").Output(); err == nil && !strings.Contains(string(out), "not-installed") {
		if out, err := exec.Command(dpkg, "--purge", "sonde").CombinedOutput(); err != nil {
			t.Errorf("cleaning up: dpkg --purge sonde: %v\n%s", err, out)
		}
	}
	if hadUser {
		return
	}
	if _, err := user.Lookup("sonde"); err == nil {
		if out, err := exec.Command("userdel", "sonde").CombinedOutput(); err != nil {
			t.Errorf("cleaning up: userdel sonde: %v\n%s", err, out)
		}
	}
	if _, err := user.LookupGroup("sonde"); err == nil {
		if out, err := exec.Command("groupdel", "sonde").CombinedOutput(); err != nil {
			t.Errorf("cleaning up: groupdel sonde: %v\n%s", err, out)
		}
	}
}
