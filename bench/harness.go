// Package bench is sonde's load harness: it measures an exporter (sonde,
// blackbox_exporter, or any drop-in) probing targets the harness runs
// itself on loopback, the way Prometheus would scrape it, and reports per
// module what each probe costs the exporter. With two exporters it
// alternates them round by round and reports their ratios, so that drift
// of the machine (other work, frequency scaling) falls on both alike.
//
// Its scale mode holds thousands of probes in flight at once against a
// target that answers late, and reports the exporter's memory,
// goroutines and file descriptors. Its overrun mode holds thousands of
// probes of a target that never finishes its answer, and reports how late
// past their deadline the answers come and whether the exporter's
// goroutines and descriptors come back down.
//
// The harness reads the exporter's figures from /proc, so it runs on
// Linux only. cmd/loadharness is its command line.
package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Options say what to measure.
type Options struct {
	A ExporterSpec  // the exporter measured, the denominator of B's ratios
	B *ExporterSpec // the one compared with it (--vs), or nil
	// Floor (--floor) is bench/cmd/floor, or nil: the network work of each
	// probe alone, the denominator of A's ratios. Load mode only.
	Floor *ExporterSpec

	// Load mode.
	Modules       []string      // names from LoadModules
	Concurrency   int           // scrapes in flight
	Duration      time.Duration // of one round of one module on one exporter
	Rounds        int           // per exporter and module
	Warmup        time.Duration // an uncounted round per module and exporter first
	ScrapeTimeout time.Duration // X-Prometheus-Scrape-Timeout-Seconds
	// NoGzip scrapes without Accept-Encoding: gzip, unlike Prometheus, to
	// tell what compressing the answers costs each exporter.
	NoGzip bool

	// Scale mode, instead of load mode when ScaleProbes > 0.
	ScaleProbes  int           // probes in flight at once
	ScaleDelay   time.Duration // how long the target takes to answer
	ScaleRamp    time.Duration // the scrapes start spread over this
	ScaleTimeout time.Duration // the scrape timeout, and the module's
	ScalePlain   bool          // scrape over plain HTTP/1.1, not TLS and HTTP/2
	ScaleProber  string        // from ScaleProbers; http when empty

	// Overrun mode, instead of load mode when OverrunProbes > 0.
	OverrunProbes        int           // probes in flight at once
	OverrunTimeout       time.Duration // every probe's deadline, the module's timeout
	OverrunRamp          time.Duration // the scrapes start spread over this
	OverrunMaxConcurrent int           // the exporter's --probe.max-concurrent in A's second wave; 0: no such wave
	OverrunSettle        time.Duration // how long goroutines and descriptors may take to come back down

	Dir      string    // for the configuration and logs; a temporary one if empty
	Progress io.Writer // progress lines, or nil
}

// Report is what a run measured.
type Report struct {
	Options   Options
	Env       Environment
	FileLimit FileLimit
	Load      []ModuleReport // load mode, in module order
	Scale     []ScaleReport  // scale mode, one per exporter
	Overrun   []OverrunStats // overrun mode, one per wave
	// Notes say what was asked for but not measured, and why.
	Notes []string
}

// ModuleReport is one module's figures for each exporter.
type ModuleReport struct {
	Module string
	A, B   Stats // B is zero without a second exporter
	Floor  Stats // zero without a floor
}

// ScaleReport is one exporter's wave.
type ScaleReport struct {
	Exporter string
	ScaleStats
}

// Run measures as o says.
func Run(ctx context.Context, o Options) (*Report, error) {
	if runtime.GOOS != "linux" {
		return nil, errors.New("the load harness reads the exporter's figures from /proc and runs on Linux only")
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	r := &Report{Env: describeEnvironment(o)}
	if o.ScaleProbes == 0 && slices.Contains(o.Modules, "icmp") {
		// Every icmp probe would fail, for want of privileges and not of
		// the exporter: leave the module out, and say why.
		if why := icmpUnavailable(); why != "" {
			note := "icmp not measured: " + why
			r.Notes = append(r.Notes, note)
			if o.Progress != nil {
				fmt.Fprintln(o.Progress, note)
			}
			o.Modules = slices.DeleteFunc(slices.Clone(o.Modules), func(m string) bool { return m == "icmp" })
			if len(o.Modules) == 0 {
				r.Options = o
				return r, errors.New(note)
			}
		}
	}
	r.Options = o
	var err error
	// Before anything starts, so that the targets and the exporters, which
	// inherit it, may hold as many connections as the machine allows.
	if r.FileLimit, err = raiseFileLimit(o.filesNeeded()); err != nil {
		return nil, err
	}
	dir, cleanup, err := workDir(o.Dir)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	s, err := newSetup(dir, o)
	if err != nil {
		return nil, err
	}
	defer s.targets.Close()
	switch {
	case o.ScaleProbes > 0:
		r.Scale, err = s.runScale(ctx, o)
	case o.OverrunProbes > 0:
		r.Overrun, err = s.runOverrun(ctx, o)
	default:
		r.Load, err = s.runLoad(ctx, o)
	}
	return r, err
}

func (o *Options) validate() error {
	switch {
	case len(o.A.Argv) == 0:
		return errors.New("no exporter to measure")
	case o.ScaleProbes > 0 && (o.ScaleDelay <= 0 || o.ScaleTimeout <= o.ScaleDelay):
		return fmt.Errorf("scale mode needs a delay (%s) shorter than the scrape timeout (%s)", o.ScaleDelay, o.ScaleTimeout)
	case o.ScaleProbes > 0 && scaleModules[o.scaleProber()] == "":
		return fmt.Errorf("scale mode cannot hold %q probes in flight; it can hold %s", o.ScaleProber, strings.Join(ScaleProbers(), ", "))
	case o.ScaleProbes > 0 && o.OverrunProbes > 0:
		return errors.New("scale mode and overrun mode are run one at a time")
	case o.Floor != nil && (o.ScaleProbes > 0 || o.OverrunProbes > 0):
		return errors.New("the floor is measured in load mode only: it does the network work of a probe, and holds no probe in flight the way an exporter does")
	case o.ScaleProbes > 0:
		return nil
	case o.OverrunProbes > 0 && (o.OverrunTimeout <= 0 || o.OverrunRamp >= o.OverrunTimeout):
		return fmt.Errorf("overrun mode needs a deadline (%s) longer than the ramp (%s), so that every probe is in flight at once", o.OverrunTimeout, o.OverrunRamp)
	case o.OverrunProbes > 0:
		return nil
	case len(o.Modules) == 0 || o.Concurrency < 1 || o.Rounds < 1 || o.Duration <= 0 || o.ScrapeTimeout <= 0:
		return errors.New("load mode needs modules, a concurrency, rounds, a round duration and a scrape timeout")
	}
	return nil
}

// filesNeeded is how many descriptors the harness, and each exporter,
// may hold at once: a connection per probe in flight, to the target for
// the exporter and from it for the harness; over plain HTTP a second one,
// the scrape's, at each end; a margin for everything else, the few
// connections that carry the scrapes over HTTP/2 included.
func (o *Options) filesNeeded() uint64 {
	const margin = 1024
	perProbe := 1
	if o.ScaleProbes > 0 && o.ScalePlain {
		perProbe = 2
	}
	return uint64(perProbe*max(o.ScaleProbes, o.OverrunProbes)) + margin
}

// scaleProber is the prober scale mode holds in flight: http unless told.
func (o *Options) scaleProber() string { return cmp.Or(o.ScaleProber, "http") }

func workDir(dir string) (string, func(), error) {
	if dir != "" {
		return dir, func() {}, os.MkdirAll(dir, 0o755)
	}
	dir, err := os.MkdirTemp("", "sonde-loadharness-")
	if err != nil {
		return "", nil, fmt.Errorf("creating a work directory: %w", err)
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// setup is what both modes share: the PKI, the targets, the configuration.
type setup struct {
	dir       string
	pki       *pki
	targets   *Targets
	config    string
	webConfig string
	noGzip    bool
	progress  io.Writer
}

func newSetup(dir string, o Options) (*setup, error) {
	p, err := newPKI(dir)
	if err != nil {
		return nil, err
	}
	slowTimeout := o.ScaleTimeout
	if slowTimeout <= 0 {
		slowTimeout = 30 * time.Second
	}
	s := &setup{dir: dir, pki: p, noGzip: o.NoGzip, progress: o.Progress}
	if s.config, err = writeConfig(dir, p, slowTimeout, cmp.Or(o.OverrunTimeout, 3*time.Second)); err != nil {
		return nil, err
	}
	if s.webConfig, err = writeWebConfig(dir, p); err != nil {
		return nil, err
	}
	if s.targets, err = startTargets(p, o.ScaleDelay); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *setup) logf(format string, args ...any) {
	if s.progress != nil {
		fmt.Fprintf(s.progress, format+"\n", args...)
	}
}

// start starts an exporter on the setup's configuration.
func (s *setup) start(ctx context.Context, spec ExporterSpec, scrapes int, overTLS bool) (*exporter, error) {
	l := launch{dir: s.dir, config: s.config, roots: s.pki.CertPool, scrapes: scrapes, identity: s.noGzip}
	if overTLS {
		l.webConfig = s.webConfig
	}
	e, err := startExporter(ctx, spec, l)
	if err != nil {
		return nil, err
	}
	s.logf("started %s, pid %d, on %s", spec.Name(), e.pid, e.base)
	return e, nil
}

// runLoad starts the exporters once and alternates them, module by
// module and round by round: A then B on a module, then the next module,
// then the next round.
func (s *setup) runLoad(ctx context.Context, o Options) ([]ModuleReport, error) {
	modules, err := s.targets.modules(o.Modules)
	if err != nil {
		return nil, err
	}
	exporters, err := s.startAll(ctx, o)
	defer stopAll(exporters)
	if err != nil {
		return nil, err
	}
	if o.Warmup > 0 {
		s.logf("warming up, %s per module and exporter", o.Warmup)
		if _, err := s.rounds(ctx, o, exporters, modules, 1, o.Warmup); err != nil {
			return nil, err
		}
	}
	return s.rounds(ctx, o, exporters, modules, o.Rounds, o.Duration)
}

func (s *setup) startAll(ctx context.Context, o Options) ([]*exporter, error) {
	var out []*exporter
	for _, spec := range o.loadSpecs() {
		e, err := s.start(ctx, spec, o.Concurrency, false)
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

func stopAll(exporters []*exporter) {
	for _, e := range exporters {
		e.stop()
	}
}

// loadSpecs are the exporters load mode alternates, in the order they run
// a module: A, B, then the floor.
func (o *Options) loadSpecs() []ExporterSpec {
	specs := []ExporterSpec{o.A}
	if o.B != nil {
		specs = append(specs, *o.B)
	}
	if o.Floor != nil {
		specs = append(specs, *o.Floor)
	}
	return specs
}

// rounds runs n rounds of every module on every exporter, alternating.
func (s *setup) rounds(ctx context.Context, o Options, exporters []*exporter, modules []Module, n int, d time.Duration) ([]ModuleReport, error) {
	reports := make([]ModuleReport, len(modules))
	for i, m := range modules {
		reports[i].Module = m.Name
	}
	for r := 1; r <= n; r++ {
		for i, m := range modules {
			for j, e := range exporters {
				st, err := round{exporter: e, module: m, concurrency: o.Concurrency, duration: d, scrapeTimeout: o.ScrapeTimeout}.run(ctx)
				if err != nil {
					return nil, fmt.Errorf("round %d, module %s, %s: %w", r, m.Name, e.spec.Name(), err)
				}
				s.logf("round %d/%d %-6s %-28s %8.0f probes/s %8.3f CPU-s/1k probes, %d failed", r, n, m.Name, e.spec.Name(),
					st.ProbesPerSecond(), st.CPUPer1000(), st.Failures)
				reports[i].stats(j, o).add(st)
			}
		}
	}
	return reports, ctx.Err()
}

// stats returns the figures of the j-th exporter of o.loadSpecs().
func (m *ModuleReport) stats(j int, o Options) *Stats {
	switch {
	case j == 0:
		return &m.A
	case j == 1 && o.B != nil:
		return &m.B
	}
	return &m.Floor
}

// runScale runs one wave per exporter, each exporter alone.
func (s *setup) runScale(ctx context.Context, o Options) ([]ScaleReport, error) {
	modules, err := s.targets.modules([]string{scaleModules[o.scaleProber()]})
	if err != nil {
		return nil, err
	}
	specs := []ExporterSpec{o.A}
	if o.B != nil {
		specs = append(specs, *o.B)
	}
	var out []ScaleReport
	for _, spec := range specs {
		st, err := s.scaleOne(ctx, o, spec, modules[0])
		if err != nil {
			return out, err
		}
		out = append(out, ScaleReport{Exporter: spec.Name(), ScaleStats: st})
	}
	return out, nil
}

func (s *setup) scaleOne(ctx context.Context, o Options, spec ExporterSpec, m Module) (ScaleStats, error) {
	e, err := s.start(ctx, spec, o.ScaleProbes, !o.ScalePlain)
	if err != nil {
		return ScaleStats{}, err
	}
	defer e.stop()
	s.logf("%s: %d %s probes of a target answering after %s, started over %s", spec.Name(), o.ScaleProbes, m.Name, o.ScaleDelay, o.ScaleRamp)
	w := wave{exporter: e, module: m, n: o.ScaleProbes, ramp: o.ScaleRamp, scrapeTimeout: o.ScaleTimeout, every: 250 * time.Millisecond}
	return w.run(ctx)
}
