package bench

import (
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// buildSonde builds the exporter from this module into a temporary
// directory.
func buildSonde(t *testing.T) string {
	t.Helper()
	return build(t, "..", "sonde")
}

// build builds the package at dir into a temporary directory as name.
func build(t *testing.T, dir, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	out, err := exec.Command("go", "build", "-o", bin, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", dir, err, out)
	}
	return bin
}

// usableModules are the load modules this process can measure: icmp
// only when it may send echo requests.
func usableModules(t *testing.T) []string {
	modules := LoadModules()
	if !icmpUsable() {
		t.Log("this process may not send ICMP echo requests; the icmp module is left out")
		modules = slices.DeleteFunc(modules, func(m string) bool { return m == "icmp" })
	}
	return modules
}

func needLinux(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the harness reads /proc")
	}
}

// The harness works end to end against sonde: one very short round per
// module, every probe answered and successful, every figure measured. Only
// that it works is checked: no timing is asserted, CI machines vary too
// much for that.
func TestHarnessSmoke(t *testing.T) {
	needLinux(t)
	sonde := buildSonde(t)
	modules := usableModules(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	report, err := Run(ctx, Options{
		A:             ExporterSpec{Label: "A", Argv: []string{sonde}},
		Modules:       modules,
		Concurrency:   4,
		Duration:      400 * time.Millisecond,
		Rounds:        1,
		ScrapeTimeout: 5 * time.Second,
		Dir:           t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Load) != len(modules) {
		t.Fatalf("%d module reports for %d modules", len(report.Load), len(modules))
	}
	var cpu time.Duration
	for _, m := range report.Load {
		s := m.A
		if s.Probes == 0 || s.Failures != 0 || s.Late != 0 {
			t.Errorf("%s: %d probes, %d failed, %d late; first failure: %s", m.Module, s.Probes, s.Failures, s.Late, s.FirstFailure)
		}
		if s.PeakRSS == 0 || s.Elapsed == 0 || s.Latency(0.5) == 0 || s.ProbesPerSecond() == 0 {
			t.Errorf("%s: a figure is missing: %+v", m.Module, s)
		}
		cpu += s.CPU
	}
	// CPU time comes in ticks of 10ms; a short round may not cross one,
	// all of them together do.
	if cpu == 0 {
		t.Error("no CPU time measured for the exporter")
	}
	var out strings.Builder
	if err := report.Write(&out, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| module | exporter |", "| http | A (sonde) |", "machine: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
}

// The floor runs through the harness as a third exporter of every round,
// and every probe of every module it does succeeds: here it is A as well,
// which spares building sonde and tests the same rounds and rows.
func TestFloorSmoke(t *testing.T) {
	needLinux(t)
	floor := build(t, "./cmd/floor", "floor")
	modules := usableModules(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	report, err := Run(ctx, Options{
		A:             ExporterSpec{Label: "A", Argv: []string{floor}},
		Floor:         &ExporterSpec{Label: "floor", Argv: []string{floor}},
		Modules:       modules,
		Concurrency:   4,
		Duration:      400 * time.Millisecond,
		Rounds:        1,
		ScrapeTimeout: 5 * time.Second,
		Dir:           t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Load) != len(modules) {
		t.Fatalf("%d module reports for %d modules", len(report.Load), len(modules))
	}
	for _, m := range report.Load {
		for name, s := range map[string]Stats{"A": m.A, "floor": m.Floor} {
			if s.Probes == 0 || s.Failures != 0 || s.Late != 0 {
				t.Errorf("%s, %s: %d probes, %d failed, %d late; first failure: %s", m.Module, name, s.Probes, s.Failures, s.Late, s.FirstFailure)
			}
		}
	}
	var out strings.Builder
	if err := report.Write(&out, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| tcp | floor |", "| tcp | A/floor |", "| grpc | A/floor |", "A/floor is A over the floor"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := Run(ctx, Options{A: report.Options.A, Floor: report.Options.Floor, ScaleProbes: 1, ScaleDelay: time.Second, ScaleTimeout: 2 * time.Second}); err == nil {
		t.Error("scale mode accepted a floor")
	}
}

// Scale mode holds probes of each prober it knows in flight against the
// slow target and samples the exporter meanwhile; none may miss its
// deadline. Overrun mode, which needs the same build, holds probes of the
// trickling target until their deadline.
func TestHarnessScaleSmoke(t *testing.T) {
	needLinux(t)
	sonde := buildSonde(t)
	for _, prober := range ScaleProbers() {
		t.Run(prober, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			report, err := Run(ctx, Options{
				A:            ExporterSpec{Label: "A", Argv: []string{sonde}},
				ScaleProbes:  50,
				ScaleDelay:   600 * time.Millisecond,
				ScaleRamp:    100 * time.Millisecond,
				ScaleTimeout: 10 * time.Second,
				ScaleProber:  prober,
				Dir:          t.TempDir(),
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(report.Scale) != 1 {
				t.Fatalf("%d scale reports, want 1", len(report.Scale))
			}
			checkScaleWave(t, report.Scale[0], 50, 600*time.Millisecond)
		})
	}
	t.Run("overrun", func(t *testing.T) { checkOverrun(t, sonde) })
	t.Run("unknown prober", func(t *testing.T) {
		_, err := Run(context.Background(), Options{
			A:            ExporterSpec{Label: "A", Argv: []string{sonde}},
			ScaleProbes:  1,
			ScaleDelay:   time.Second,
			ScaleTimeout: 2 * time.Second,
			ScaleProber:  "icmp",
		})
		if err == nil || !strings.Contains(err.Error(), `cannot hold "icmp" probes`) || !strings.Contains(err.Error(), "http, tcp") {
			t.Errorf("err = %v, want it to name the probers scale mode can hold", err)
		}
	})
}

// checkOverrun runs overrun mode against sonde, with and without a
// concurrency limit, and checks that every probe was answered as failed
// at its deadline (or refused a slot), that every figure was measured and
// that the exporter came back to its idle goroutines and descriptors. No
// timing is asserted: how late past its deadline an answer comes is the
// figure measured, and on a CI machine it says more about the machine.
func checkOverrun(t *testing.T, sonde string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n, limit = 50, 20
	report, err := Run(ctx, Options{
		A:                    ExporterSpec{Label: "A", Argv: []string{sonde}},
		OverrunProbes:        n,
		OverrunTimeout:       time.Second,
		OverrunRamp:          100 * time.Millisecond,
		OverrunMaxConcurrent: limit,
		OverrunSettle:        10 * time.Second,
		Dir:                  t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Overrun) != 2 || report.Overrun[0].MaxConcurrent != 0 || report.Overrun[1].MaxConcurrent != limit {
		t.Fatalf("overrun waves %+v, want one without a limit and one with %d", report.Overrun, limit)
	}
	for _, s := range report.Overrun {
		ended := s.Outcomes["timeout/deadline"] + s.Outcomes["prober/resource_exhausted"]
		if s.Probes != n || s.Stats.Probes != n || ended != n {
			t.Errorf("%s: %d probes, outcomes %v; want all %d to end at their deadline", s.Exporter, s.Stats.Probes, s.Outcomes, n)
		}
		if s.Samples == 0 || s.Peak.Goroutines == 0 || s.Peak.OpenFiles == 0 || s.Stats.PeakRSS == 0 {
			t.Errorf("%s: the exporter was not sampled: %+v", s.Exporter, s)
		}
		if !s.Settled {
			t.Errorf("%s: %d goroutines and %d open files after the wave, %d and %d before",
				s.Exporter, s.After.Goroutines, s.After.OpenFiles, s.Idle.Goroutines, s.Idle.OpenFiles)
		}
	}
	// With the limit, no more probes than it allows were connected at once.
	if limited := report.Overrun[1]; limited.Peak.OpenFiles >= limited.Idle.OpenFiles+n {
		t.Errorf("%d open files at the peak with --probe.max-concurrent=%d, %d idle", limited.Peak.OpenFiles, limit, limited.Idle.OpenFiles)
	}
	var out strings.Builder
	if err := report.Write(&out, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| exporter | probes | outcomes |", "--probe.max-concurrent=20 |", "overrun: 50 http probes"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
}

// checkScaleWave checks that all n probes of a wave were answered and
// successful, in flight at once, and waited the target's delay.
func checkScaleWave(t *testing.T, s ScaleReport, n int, delay time.Duration) {
	t.Helper()
	if s.Stats.Probes != n || s.Stats.Failures != 0 || s.Stats.Late != 0 {
		t.Errorf("%d probes, %d failed, %d late; first failure: %s", s.Stats.Probes, s.Stats.Failures, s.Stats.Late, s.Stats.FirstFailure)
	}
	if s.Samples == 0 || s.Peak.Goroutines == 0 || s.Peak.OpenFiles == 0 || s.Peak.RSS == 0 || s.Peak.Stacks == 0 || s.Peak.Heap == 0 {
		t.Errorf("the exporter was not sampled: %+v", s)
	}
	// The ramp is far shorter than the delay: all were in flight at once.
	if s.PeakInFlight != n {
		t.Errorf("%d scrapes in flight at once at most, want all %d", s.PeakInFlight, n)
	}
	if fastest := s.Stats.Latency(0); fastest < delay {
		t.Errorf("fastest scrape %s, but the target answers after %s", fastest, delay)
	}
}

func TestParseStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (my (odd) exporter) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 12 0 100 0 0"
	got, err := parseStatCPU([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if want := 3250 * time.Millisecond; got != want {
		t.Errorf("CPU = %s, want %s (325 ticks)", got, want)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1")); err == nil {
		t.Error("a short line was accepted")
	}
}

func TestParseStatusMemory(t *testing.T) {
	status := "Name:\tsonde\nVmHWM:\t   40960 kB\nVmRSS:\t   20480 kB\nThreads:\t7\n"
	m, err := parseStatusMemory([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS != 20<<20 || m.Peak != 40<<20 {
		t.Errorf("memory = %+v, want 20 MiB now and 40 MiB at peak", m)
	}
	if _, err := parseStatusMemory([]byte("Name:\tsonde\n")); err == nil {
		t.Error("a status without memory lines was accepted")
	}
}

func TestJudge(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		ok, late   bool
	}{
		{"text success", "# TYPE probe_success gauge\nprobe_success 1\nprobe_duration_seconds 0.01\nprobe_timeout_seconds 9.5\n", true, false},
		{"openmetrics success", "probe_success 1.0\nprobe_duration_seconds 0.01\nprobe_timeout_seconds 9.5\n# EOF\n", true, false},
		{"failure", "probe_success 0\nprobe_duration_seconds 0.01\nprobe_timeout_seconds 9.5\n", false, false},
		{"past its deadline", "probe_success 0\nprobe_duration_seconds 9.5\nprobe_timeout_seconds 9.5\n", false, true},
		{"a longer name is not probe_success", "probe_success_total 1\n", false, false},
	} {
		ok, late, failure := judge([]byte(tc.body))
		if ok != tc.ok || late != tc.late || ok == (failure != "") {
			t.Errorf("%s: ok %v late %v failure %q; want ok %v late %v", tc.name, ok, late, failure, tc.ok, tc.late)
		}
	}
}

func TestFailureClass(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		ok         bool
		want       string
	}{
		{"success", "probe_success 1\n", true, "success"},
		{"sonde", "# TYPE probe_failure_info gauge\nprobe_failure_info{class=\"timeout\",phase=\"processing\",reason=\"deadline\"} 1\n", false, "timeout/deadline"},
		{"blackbox", "probe_success 0\nprobe_duration_seconds 3\n", false, "no class"},
	} {
		if got := failureClass([]byte(tc.body), tc.ok); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestOutcomeList(t *testing.T) {
	s := OverrunStats{Outcomes: map[string]int{"prober/resource_exhausted": 5, "timeout/deadline": 45, "no answer": 5}}
	if got, want := s.OutcomeList(), "timeout/deadline 45, no answer 5, prober/resource_exhausted 5"; got != want {
		t.Errorf("OutcomeList = %q, want %q", got, want)
	}
}

func TestPeakOverlap(t *testing.T) {
	ms := time.Millisecond
	spans := []span{{0, 10 * ms}, {5 * ms, 15 * ms}, {10 * ms, 20 * ms}, {12 * ms, 13 * ms}}
	// At 12ms: the second, third and fourth; the first ended as the third began.
	if got := peakOverlap(spans); got != 3 {
		t.Errorf("peakOverlap = %d, want 3", got)
	}
	if got := peakOverlap(nil); got != 0 {
		t.Errorf("peakOverlap(nil) = %d, want 0", got)
	}
}

func TestQuantile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0, time.Millisecond}, {0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		if got := quantile(d, tc.q); got != tc.want {
			t.Errorf("quantile(%v) = %s, want %s", tc.q, got, tc.want)
		}
	}
	if quantile(nil, 0.5) != 0 {
		t.Error("the quantile of nothing is not 0")
	}
}

func TestParseExporter(t *testing.T) {
	s, err := ParseExporter("B", "/usr/bin/prometheus-blackbox-exporter  --log.level=warn")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Argv, []string{"/usr/bin/prometheus-blackbox-exporter", "--log.level=warn"}) {
		t.Errorf("argv = %q", s.Argv)
	}
	if s.Name() != "B (prometheus-blackbox-exporter)" {
		t.Errorf("name = %q", s.Name())
	}
	if _, err := ParseExporter("A", "  "); err == nil {
		t.Error("an empty command was accepted")
	}
}
