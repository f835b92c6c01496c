package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Write prints the report as aligned text, or as Markdown tables when
// markdown is set (for docs/performance.md).
func (r *Report) Write(w io.Writer, markdown bool) error {
	var b strings.Builder
	r.writeHeader(&b)
	for _, t := range r.tables() {
		b.WriteString("\n")
		if markdown {
			writeMarkdown(&b, t)
		} else {
			writeAligned(&b, t)
		}
	}
	if usage := r.machineUsage(); usage != "" {
		b.WriteString("\n" + usage + "\n")
	}
	for _, note := range append(r.failures(), r.Notes...) {
		b.WriteString("\n" + note + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) writeHeader(b *strings.Builder) {
	o := r.Options
	fmt.Fprintf(b, "machine: %d CPUs (nproc), %s, Linux %s\n", r.Env.CPUs, r.Env.CPUModel, r.Env.Kernel)
	for _, spec := range r.Options.loadSpecs() {
		fmt.Fprintf(b, "%s: %s: %s\n", spec.Name(), strings.Join(spec.Argv, " "), r.Env.Versions[spec.Name()])
	}
	fmt.Fprintf(b, "RLIMIT_NOFILE: %d (soft raised to the hard limit)\n", r.FileLimit.Soft)
	if o.OverrunProbes > 0 {
		fmt.Fprintf(b, "overrun: %d http probes in flight of a target that sends its answer a byte every %s and never finishes it, "+
			"deadline %s (the module's timeout; scrape timeout %s), scrapes started over %s, over HTTPS with HTTP/2\n",
			o.OverrunProbes, trickleGap, o.OverrunTimeout, o.OverrunTimeout+overrunHeadroom, o.OverrunRamp)
		fmt.Fprintf(b, "answer past deadline: when the answer came, from when the scrape was sent, less the deadline; "+
			"probe past its time: probe_duration_seconds less probe_timeout_seconds (less the deadline for blackbox, which does not export its timeout)\n")
		return
	}
	if o.ScaleProbes > 0 {
		transport := "HTTPS with HTTP/2"
		if o.ScalePlain {
			transport = "plain HTTP/1.1"
		}
		fmt.Fprintf(b, "scale: %d %s probes in flight, target answers after %s, scrapes started over %s, scrape timeout %s, scrapes over %s\n",
			o.ScaleProbes, o.scaleProber(), o.ScaleDelay, o.ScaleRamp, o.ScaleTimeout, transport)
		return
	}
	fmt.Fprintf(b, "load: %d concurrent scrapes, %d rounds of %s per module and exporter (after a %s warm-up), scrape timeout %s\n",
		o.Concurrency, o.Rounds, o.Duration, o.Warmup, o.ScrapeTimeout)
	if o.NoGzip {
		b.WriteString("scrapes do not ask for gzip (Prometheus does)\n")
	}
	if o.B != nil {
		b.WriteString("ratios are B/A over the same rounds, alternated A B A B; above 1 means B costs more (or, for probes/s, does more)\n")
	}
	if o.Floor != nil {
		b.WriteString("A/floor is A over the floor in the same rounds (the floor runs after A and B on each module): " +
			"what A costs next to the network work of its probes alone; 1.00x would be no cost of A's own\n")
	}
}

// table is a header row and rows of cells.
type table [][]string

func (r *Report) tables() []table {
	if len(r.Scale) > 0 {
		return []table{r.scaleTable()}
	}
	if len(r.Overrun) > 0 {
		return []table{r.overrunTable()}
	}
	if len(r.Load) == 0 {
		return nil
	}
	return []table{r.loadTable()}
}

func (r *Report) loadTable() table {
	t := table{{"module", "exporter", "probes/s", "CPU-s/1k probes", "peak RSS MiB", "p50 ms", "p99 ms", "failed", "probes"}}
	o := r.Options
	for _, m := range r.Load {
		t = append(t, statsRow(m.Module, o.A.Name(), m.A))
		if o.B != nil {
			t = append(t, statsRow(m.Module, o.B.Name(), m.B), ratioRow(m.Module, "B/A", m.A, m.B))
		}
		if o.Floor != nil {
			t = append(t, statsRow(m.Module, o.Floor.Name(), m.Floor), ratioRow(m.Module, "A/floor", m.Floor, m.A))
		}
	}
	return t
}

func statsRow(module, exporter string, s Stats) []string {
	return []string{
		module, exporter,
		fmt.Sprintf("%.0f", s.ProbesPerSecond()),
		fmt.Sprintf("%.3f", s.CPUPer1000()),
		fmt.Sprintf("%.1f", mib(s.PeakRSS)),
		millis(s.Latency(0.50)),
		millis(s.Latency(0.99)),
		fmt.Sprint(s.Failures),
		fmt.Sprint(s.Probes),
	}
}

// ratioRow is the row of b's figures over a's.
func ratioRow(module, name string, a, b Stats) []string {
	return []string{
		module, name,
		ratio(b.ProbesPerSecond(), a.ProbesPerSecond()),
		ratio(b.CPUPer1000(), a.CPUPer1000()),
		ratio(float64(b.PeakRSS), float64(a.PeakRSS)),
		ratio(b.Latency(0.50).Seconds(), a.Latency(0.50).Seconds()),
		ratio(b.Latency(0.99).Seconds(), a.Latency(0.99).Seconds()),
		"", "",
	}
}

func (r *Report) scaleTable() table {
	t := table{{"exporter", "probes", "peak in flight", "failed", "past deadline", "peak RSS MiB", "idle RSS MiB", "Go stacks / heap in use MiB", "goroutines (idle)", "open fds (idle)", "scrape p50/p99/max s", "probe p50/p99/max s", "CPU-s"}}
	for _, s := range r.Scale {
		st := s.Stats
		t = append(t, []string{
			s.Exporter, fmt.Sprint(s.InFlight), fmt.Sprint(s.PeakInFlight), fmt.Sprint(st.Failures), fmt.Sprint(st.Late),
			fmt.Sprintf("%.0f", mib(max(st.PeakRSS, s.Peak.RSS))), fmt.Sprintf("%.0f", mib(s.Idle.RSS)),
			fmt.Sprintf("%.0f / %.0f", mib(s.Peak.Stacks), mib(s.Peak.Heap)),
			fmt.Sprintf("%d (%d)", s.Peak.Goroutines, s.Idle.Goroutines),
			fmt.Sprintf("%d (%d)", s.Peak.OpenFiles, s.Idle.OpenFiles),
			seconds(st.Latency(0.50)) + " / " + seconds(st.Latency(0.99)) + " / " + seconds(st.Latency(1)),
			seconds(st.ProbeTime(0.50)) + " / " + seconds(st.ProbeTime(0.99)) + " / " + seconds(st.ProbeTime(1)),
			fmt.Sprintf("%.2f", st.CPU.Seconds()),
		})
	}
	return t
}

func (r *Report) overrunTable() table {
	t := table{{"exporter", "probes", "outcomes", "answer past deadline p50 / p99 / max ms", "probe past its time p99 / max ms",
		"peak RSS MiB", "goroutines idle / peak / after", "open fds idle / peak / after", "back to baseline", "CPU-s"}}
	for _, s := range r.Overrun {
		back := "no"
		if s.Settled {
			back = fmt.Sprintf("yes, in %.1f s", s.SettleTook.Seconds())
		}
		probePast := "-"
		if len(s.Stats.probeTimes) > 0 {
			probePast = millis(s.ProbePast(0.99)) + " / " + millis(s.ProbePast(1))
		}
		t = append(t, []string{
			s.Exporter, fmt.Sprint(s.Probes), s.OutcomeList(),
			millis(s.Past(0.50)) + " / " + millis(s.Past(0.99)) + " / " + millis(s.Past(1)),
			probePast,
			fmt.Sprintf("%.0f", mib(max(s.Stats.PeakRSS, s.Peak.RSS))),
			fmt.Sprintf("%d / %d / %d", s.Idle.Goroutines, s.Peak.Goroutines, s.After.Goroutines),
			fmt.Sprintf("%d / %d / %d", s.Idle.OpenFiles, s.Peak.OpenFiles, s.After.OpenFiles),
			back,
			fmt.Sprintf("%.2f", s.Stats.CPU.Seconds()),
		})
	}
	return t
}

// machineUsage says who used the CPUs during the measurements, in cores
// on average: the exporter, the harness, and everything else. Other work
// on the machine slows the exporters; alternating them spreads it over
// both, but a large share still makes the figures noisier.
func (r *Report) machineUsage() string {
	var total Stats
	for _, m := range r.Load {
		total.add(m.A)
		total.add(m.B)
		total.add(m.Floor)
	}
	for _, s := range r.Scale {
		total.add(s.Stats)
	}
	for _, s := range r.Overrun {
		total.add(s.Stats)
	}
	if total.Elapsed <= 0 {
		return ""
	}
	cores := func(d time.Duration) float64 { return d.Seconds() / total.Elapsed.Seconds() }
	return fmt.Sprintf("CPU use while measuring, in cores of %d: exporter %.2f, harness (scrapes and targets) %.2f, other processes %.2f",
		r.Env.CPUs, cores(total.CPU), cores(total.HarnessCPU), cores(total.OtherCPU))
}

// failures notes why the first failed probe of each exporter and module
// failed, so that a failure count comes with a cause.
func (r *Report) failures() []string {
	var notes []string
	for _, m := range r.Load {
		for j, spec := range r.Options.loadSpecs() {
			if s := m.stats(j, r.Options); s.FirstFailure != "" {
				notes = append(notes, fmt.Sprintf("first failure, %s on %s: %s", spec.Name(), m.Module, s.FirstFailure))
			}
		}
	}
	for _, s := range r.Scale {
		if s.Stats.FirstFailure != "" {
			notes = append(notes, fmt.Sprintf("first failure, %s: %s", s.Exporter, s.Stats.FirstFailure))
		}
	}
	return notes
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func millis(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func seconds(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }

func ratio(b, a float64) string {
	if a == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", b/a)
}

func writeMarkdown(b *strings.Builder, t table) {
	for i, row := range t {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
		if i == 0 {
			b.WriteString(strings.Repeat("|---", len(row)) + "|\n")
		}
	}
}

func writeAligned(b *strings.Builder, t table) {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	for _, row := range t {
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
}
