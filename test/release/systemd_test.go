package release

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// unitSettings reads a systemd unit's Key=Value lines of one section, every
// value of a key that repeats.
func unitSettings(t *testing.T, unit []byte, section string) map[string][]string {
	t.Helper()
	settings := map[string][]string{}
	in := ""
	for _, line := range strings.Split(string(unit), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			in = strings.Trim(line, "[]")
		case in == section:
			key, value, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("unit line %q is not Key=Value", line)
			}
			settings[key] = append(settings[key], value)
		}
	}
	return settings
}

// TestUnitSettings holds the unit to what the packages promise: the sonde
// user, flags from the defaults file of either family, reload by SIGHUP,
// restart on failure, CAP_NET_RAW for ICMP and no other capability, and
// the file system read-only.
func TestUnitSettings(t *testing.T) {
	service := unitSettings(t, readFile(t, filepath.Join(repoRoot, "packaging/sonde.service")), "Service")
	for _, tc := range []struct {
		key  string
		want []string
	}{
		{"User", []string{"sonde"}},
		{"Group", []string{"sonde"}},
		{"EnvironmentFile", []string{"-/etc/default/sonde", "-/etc/sysconfig/sonde"}},
		{"ExecStart", []string{"/usr/bin/sonde $ARGS"}},
		{"ExecReload", []string{"/bin/kill -HUP $MAINPID"}},
		{"Restart", []string{"on-failure"}},
		{"AmbientCapabilities", []string{"CAP_NET_RAW"}},
		{"CapabilityBoundingSet", []string{"CAP_NET_RAW"}},
		{"NoNewPrivileges", []string{"yes"}},
		{"ProtectSystem", []string{"strict"}},
		{"ProtectHome", []string{"yes"}},
		{"PrivateTmp", []string{"yes"}},
	} {
		if got := service[tc.key]; !slices.Equal(got, tc.want) {
			t.Errorf("sonde.service: %s=%q, want %q", tc.key, got, tc.want)
		}
	}
	install := unitSettings(t, readFile(t, filepath.Join(repoRoot, "packaging/sonde.service")), "Install")
	if got := install["WantedBy"]; !slices.Equal(got, []string{"multi-user.target"}) {
		t.Errorf("sonde.service: WantedBy=%q, want multi-user.target", got)
	}
}

// defaultArgs reads ARGS="..." from a defaults file, as systemd's
// EnvironmentFile= does for this simple form: one line, double quotes, split
// at white space by ExecStart's $ARGS.
func defaultArgs(t *testing.T, defaults []byte) []string {
	t.Helper()
	var args []string
	found := 0
	for _, line := range strings.Split(string(defaults), "\n") {
		value, ok := strings.CutPrefix(strings.TrimSpace(line), "ARGS=")
		if !ok {
			continue
		}
		found++
		args = strings.Fields(strings.Trim(value, `"`))
	}
	if found != 1 {
		t.Fatalf("the defaults file sets ARGS %d times, want once", found)
	}
	return args
}

// TestDefaultsFile: the unit's flags name the configuration file the
// packages install.
func TestDefaultsFile(t *testing.T) {
	args := defaultArgs(t, readFile(t, filepath.Join(repoRoot, "packaging/sonde.default")))
	if want := []string{"--config.file=/etc/sonde/config.yml"}; !slices.Equal(args, want) {
		t.Errorf("ARGS = %q, want %q", args, want)
	}
}

// TestUnitVerifies has systemd check the unit, where systemd-analyze is
// installed, with any warning (an unknown or misspelt setting, which
// systemd would ignore) a failure. The unit is checked as a copy starting
// an executable that exists here, as verify wants ExecStart's to; the
// installed unit itself is checked by TestDebInstall.
func TestUnitVerifies(t *testing.T) {
	analyze := tool(t, "systemd-analyze", "systemd")
	unit := readFile(t, filepath.Join(repoRoot, "packaging/sonde.service"))
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copied := strings.Replace(string(unit), "ExecStart=/usr/bin/sonde ", "ExecStart="+self+" ", 1)
	path := filepath.Join(t.TempDir(), "sonde.service")
	if err := os.WriteFile(path, []byte(copied), 0o644); err != nil {
		t.Fatal(err)
	}
	verifyUnit(t, analyze, path)
}

func verifyUnit(t *testing.T, analyze, path string) {
	t.Helper()
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", path, err, out)
	}
}
