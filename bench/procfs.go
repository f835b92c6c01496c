package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// The exporter is measured from outside, through /proc, the same way for
// both exporters: nothing in either needs to cooperate.

// userHZ is the unit of the CPU times in /proc/<pid>/stat. It is 100 on
// every architecture Linux runs Go on (the kernel's USER_HZ); reading
// sysconf(_SC_CLK_TCK) would need cgo for the same answer.
const userHZ = 100

// cpuTime returns the CPU time the process has used so far, user plus
// system, from /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the exporter's CPU time: %w", err)
	}
	return parseStatCPU(data)
}

// parseStatCPU reads utime and stime (fields 14 and 15) from a
// /proc/<pid>/stat line. The command name, field 2, is in parentheses and
// may hold spaces, so fields are counted after its closing parenthesis.
func parseStatCPU(data []byte) (time.Duration, error) {
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return 0, fmt.Errorf("/proc stat line without a command name: %q", data)
	}
	fields := strings.Fields(string(data[end+1:]))
	// fields[0] is field 3 (state), so field n is fields[n-3].
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc stat line too short: %q", data)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat CPU field %q: %w", f, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// machineBusy returns the CPU time all CPUs have spent busy so far (user,
// nice, system, irq, softirq, steal), from the first line of /proc/stat.
func machineBusy() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("reading the machine's CPU time: %w", err)
	}
	return parseMachineBusy(data)
}

func parseMachineBusy(data []byte) (time.Duration, error) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat does not start with the cpu line: %q", line)
	}
	var ticks int64
	// user nice system idle iowait irq softirq steal: all but idle and iowait.
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, err := strconv.ParseInt(fields[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat field %q: %w", fields[i], err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// cpuReading is the CPU time of the exporter, of the harness itself and of
// the whole machine at one moment; the difference of two says who used
// the CPUs in between, and so whether other work shared the machine.
type cpuReading struct {
	exporter, harness, machine time.Duration
}

func readCPU(pid int) (cpuReading, error) {
	var r cpuReading
	var err error
	if r.exporter, err = cpuTime(pid); err != nil {
		return r, err
	}
	if r.harness, err = cpuTime(os.Getpid()); err != nil {
		return r, err
	}
	r.machine, err = machineBusy()
	return r, err
}

// since fills s's CPU figures with what was used since before.
func (r cpuReading) since(before cpuReading, s *Stats) {
	s.CPU = r.exporter - before.exporter
	s.HarnessCPU = r.harness - before.harness
	s.OtherCPU = max(0, (r.machine-before.machine)-s.CPU-s.HarnessCPU)
}

// memory is the resident set of a process, in bytes: now and at its peak
// (since the start, or since the peak was last reset).
type memory struct {
	RSS, Peak uint64
}

// readMemory reads VmRSS and VmHWM from /proc/<pid>/status.
func readMemory(pid int) (memory, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, fmt.Errorf("reading the exporter's memory: %w", err)
	}
	return parseStatusMemory(data)
}

func parseStatusMemory(data []byte) (memory, error) {
	var m memory
	var seen int
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return m, fmt.Errorf("/proc status %s: %w", name, err)
		}
		if name == "VmRSS" {
			m.RSS = kb * 1024
		} else {
			m.Peak = kb * 1024
		}
		seen++
	}
	if seen < 2 {
		return m, fmt.Errorf("/proc status has no VmRSS or VmHWM")
	}
	return m, nil
}

// resetPeakMemory restarts VmHWM from the current RSS (writing 5 to
// clear_refs, Linux 4.0 and later), so that each round reports its own
// peak, not the largest since the exporter started. It reports whether the
// kernel allowed it; if not, peaks are cumulative.
func resetPeakMemory(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// openFiles counts the process's open file descriptors.
func openFiles(pid int) (int, error) {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, fmt.Errorf("counting the exporter's open files: %w", err)
	}
	return len(entries), nil
}
