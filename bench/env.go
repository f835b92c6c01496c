package bench

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Environment describes the machine and the exporters, for the record
// that goes with the figures.
type Environment struct {
	CPUs     int               // runtime.NumCPU: what nproc says
	CPUModel string            // /proc/cpuinfo "model name"
	Kernel   string            // /proc/sys/kernel/osrelease
	Versions map[string]string // exporter name: first line of --version
}

func describeEnvironment(o Options) Environment {
	env := Environment{CPUs: runtime.NumCPU(), CPUModel: cpuModel(), Kernel: readTrimmed("/proc/sys/kernel/osrelease"), Versions: map[string]string{}}
	for _, s := range o.loadSpecs() {
		env.Versions[s.Name()] = exporterVersion(s.Argv[0])
	}
	return env
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if name, value, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown"
}

func readTrimmed(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(data))
}

// exporterVersion runs `binary --version`, which both exporters answer
// (on stdout or stderr, depending on the version), and keeps its first line.
func exporterVersion(binary string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "--version").CombinedOutput()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
