package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/sonde-exporter/sonde/assert"
	"github.com/sonde-exporter/sonde/collector"
	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/redact"
	"github.com/sonde-exporter/sonde/prober"
	"github.com/sonde-exporter/sonde/prober/core"
)

// Exit statuses of `sonde probe`, documented in docs/cli.md.
const (
	exitPassed = 0 // every target passed
	exitFailed = 1 // a probe, assertion or latency check failed more often than allowed
	exitUsage  = 2 // bad flags, configuration, assertion syntax, target or baseline file
)

// defaultProbeTimeout is the deadline of a module that sets none: the
// server would take the scrape's, which a one-shot run does not have.
const defaultProbeTimeout = 10 * time.Second

// probeFlags are the flags of `sonde probe`.
type probeFlags struct {
	configFile    string
	module        string
	targets       []string
	hostname      string
	timeout       time.Duration
	output        string
	concurrency   int
	asserts       []string
	repeat        int
	interval      time.Duration
	maxFailures   int
	baseline      string
	saveBaseline  string
	maxRegression percent
	debug         bool
}

func (p *probeFlags) addCommand(app *kingpin.Application) {
	cmd := app.Command(cmdProbe, "Probe targets with a module, as /probe does, without a server; for CI/CD gates. "+
		"Exit status: 0 all passed, 1 a probe, assertion or latency check failed, 2 a usage or configuration error.")
	cmd.Flag("config.file", "Configuration file (blackbox_exporter's format).").Default("blackbox.yml").StringVar(&p.configFile)
	cmd.Flag("module", "Module to probe with.").Default(collector.DefaultModule).StringVar(&p.module)
	cmd.Flag("target", "What to probe, as /probe's target parameter. Repeat for several, probed concurrently.").Required().StringsVar(&p.targets)
	cmd.Flag("hostname", "Probe as if the target were named this (Host header, TLS server name), as /probe's hostname parameter.").StringVar(&p.hostname)
	cmd.Flag("timeout", "The probe's deadline, e.g. 5s. Default: the module's timeout, else 10s.").DurationVar(&p.timeout)
	cmd.Flag("output", "What to print: text (a summary), json (one object per probe, one per line) or prometheus (the metrics /probe returns).").
		Default("text").EnumVar(&p.output, "text", "json", "prometheus")
	cmd.Flag("concurrency", "How many targets to probe at once.").Default("4").IntVar(&p.concurrency)
	cmd.Flag("assert", "A condition on the probe's metrics, e.g. 'probe_duration_seconds < 0.5'; repeatable, all must hold. Grammar: docs/cli.md.").StringsVar(&p.asserts)
	cmd.Flag("repeat", "How many times to probe every target; fewer once the runs left could not change the outcome.").Default("1").IntVar(&p.repeat)
	cmd.Flag("interval", "Pause between two runs, with --repeat.").Default("1s").DurationVar(&p.interval)
	cmd.Flag("max-failures", "How many of its --repeat runs a target may fail and still pass.").Default("0").IntVar(&p.maxFailures)
	cmd.Flag("baseline", "JSON file of latency figures (from --save-baseline) to compare with; a run slower by more than --max-regression fails.").StringVar(&p.baseline)
	cmd.Flag("save-baseline", "Write the latency figures of the targets that passed to this JSON file, keeping its other entries.").StringVar(&p.saveBaseline)
	cmd.Flag("max-regression", "How much slower than the baseline a run may be, in percent.").Default("20%").SetValue(&p.maxRegression)
	cmd.Flag("debug", "Print each probe's log to standard error.").BoolVar(&p.debug)
}

// runProbe runs `sonde probe` and returns its exit status.
func runProbe(p *probeFlags, stdout, stderr io.Writer) int {
	g, err := newGate(p, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "sonde probe: %v\n", err)
		return exitUsage
	}
	// An interrupted gate has not passed; the probes under way end as
	// timeout/canceled and are reported.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return g.run(ctx)
}

// gate is one `sonde probe`: the module made ready, the parsed
// assertions, the baseline, and where the results go.
type gate struct {
	flags      *probeFlags
	module     *core.Module
	timeout    time.Duration
	assertions []*assert.Assertion
	baseline   *baselineFile // nil without --baseline
	report     reporter
	stderr     io.Writer
}

// newGate checks everything that can be checked before probing, so that
// a usage or configuration error exits 2 without a probe being sent.
func newGate(p *probeFlags, stdout, stderr io.Writer) (*gate, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	assertions, err := parseAssertions(p.asserts)
	if err != nil {
		return nil, err
	}
	m, err := loadModule(p.configFile, p.module, p.hostname, stderr)
	if err != nil {
		return nil, err
	}
	g := &gate{flags: p, module: m, timeout: probeDeadline(p.timeout, m), assertions: assertions, stderr: stderr}
	if p.baseline != "" {
		if g.baseline, err = readBaseline(p.baseline, stderr); err != nil {
			return nil, err
		}
	}
	g.report = newReporter(p.output, stdout, stderr, len(p.targets)*p.repeat > 1)
	return g, nil
}

func (p *probeFlags) validate() error {
	switch {
	case p.concurrency < 1:
		return fmt.Errorf("--concurrency=%d: must be at least 1", p.concurrency)
	case p.repeat < 1:
		return fmt.Errorf("--repeat=%d: must be at least 1", p.repeat)
	case p.maxFailures < 0 || p.maxFailures >= p.repeat:
		return fmt.Errorf("--max-failures=%d: must be from 0 to %d, one less than --repeat, or the gate could never fail", p.maxFailures, p.repeat-1)
	case p.interval < 0:
		return fmt.Errorf("--interval=%s: must not be negative", p.interval)
	case p.timeout < 0:
		return fmt.Errorf("--timeout=%s: must not be negative", p.timeout)
	}
	for _, t := range p.targets {
		if t == "" {
			return errors.New("--target is empty")
		}
	}
	return nil
}

// parseAssertions parses every --assert, reporting all that do not parse.
func parseAssertions(srcs []string) ([]*assert.Assertion, error) {
	var out []*assert.Assertion
	var errs []error
	for _, src := range srcs {
		a, err := assert.Parse(src)
		if err != nil {
			errs = append(errs, fmt.Errorf("--assert: %w", err))
			continue
		}
		out = append(out, a)
	}
	return out, errors.Join(errs...)
}

// loadModule loads the configuration as the server does and prepares the
// module, refusing one whose prober sonde does not know (which /probe
// answers with 400 Unknown prober). The warnings about the module are
// printed to stderr: they may say why its probe fails.
func loadModule(path, name, hostname string, stderr io.Writer) (*core.Module, error) {
	cfg, err := config.LoadFile(path)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		if strings.Contains(w.Error(), fmt.Sprintf("module %q:", name)) {
			fmt.Fprintf(stderr, "%s: warning: %v\n", path, w)
		}
	}
	set, err := prober.NewSet(cfg)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	m, ok := set.Module(name)
	if !ok {
		return nil, fmt.Errorf("unknown module %q; the modules of %s are: %s", name, path, strings.Join(set.Names(), ", "))
	}
	if _, ok := m.Func(); !ok {
		return nil, fmt.Errorf("module %q uses unknown prober %q (sonde runs: %s)",
			name, m.Prober, strings.Join(prober.Implemented(), ", "))
	}
	m, err = m.WithHostname(hostname)
	if err != nil {
		return nil, fmt.Errorf("--hostname: %w", err)
	}
	return m, nil
}

// probeDeadline is --timeout, else the module's timeout, else 10s.
func probeDeadline(flag time.Duration, m *core.Module) time.Duration {
	switch {
	case flag > 0:
		return flag
	case m.Timeout > 0:
		return m.Timeout
	}
	return defaultProbeTimeout
}

// run probes every target --repeat times and returns the exit status.
func (g *gate) run(ctx context.Context) int {
	tallies := make([]tally, len(g.flags.targets))
	ran := 0
	for run := 1; run <= g.flags.repeat; run++ {
		if run > 1 && !sleep(ctx, g.flags.interval) {
			break
		}
		outcomes := g.probeAll(ctx, run)
		ran = run
		for i, o := range outcomes {
			g.report.outcome(o)
			tallies[i].add(o)
		}
		if invalidTargets(outcomes, g.stderr) {
			return exitUsage
		}
		if g.decided(tallies, g.flags.repeat-run) {
			break
		}
	}
	interrupted := ctx.Err() != nil
	status := g.verdict(tallies, interrupted, ran)
	// An interrupted gate has not passed, so it leaves the baseline alone.
	if g.flags.saveBaseline != "" && !interrupted {
		if err := g.save(tallies); err != nil {
			fmt.Fprintf(g.stderr, "sonde probe: %v\n", err)
			return exitUsage
		}
	}
	return status
}

// invalidTargets reports the targets the prober could not even read. The
// server answers them as failed probes (probe_success 0, as blackbox
// does); for a gate they are typos in its command line, so usage errors.
func invalidTargets(outcomes []*outcome, stderr io.Writer) bool {
	found := false
	for _, o := range outcomes {
		if bad := o.invalidTarget(); bad != nil {
			fmt.Fprintf(stderr, "sonde probe: target %q cannot be probed as given: %v\n", o.res.ShownTarget(), bad.Err)
			found = true
		}
	}
	return found
}

// probeAll probes every target once, at most --concurrency at a time,
// and returns the outcomes in the order of the targets.
func (g *gate) probeAll(ctx context.Context, run int) []*outcome {
	outcomes := make([]*outcome, len(g.flags.targets))
	slots := make(chan struct{}, g.flags.concurrency)
	var wg sync.WaitGroup
	for i, target := range g.flags.targets {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			outcomes[i] = g.probeOne(ctx, target, run)
		})
	}
	wg.Wait()
	return outcomes
}

// probeOne runs one probe through collector.Run, the code path of every
// /probe, and judges it: success, assertions, baseline.
func (g *gate) probeOne(ctx context.Context, target string, run int) *outcome {
	// The probe's log is kept in its result whatever the main logger
	// does; --debug prints it.
	res := collector.Run(ctx, g.module, target, g.timeout, slog.New(slog.DiscardHandler), slog.LevelDebug)
	o := newOutcome(res, run)
	env := assert.Env{Samples: o.samples, Now: time.Now()}
	for _, a := range g.assertions {
		o.checks = append(o.checks, newCheck(a, a.Eval(env)))
	}
	if res.Success() {
		o.comparisons = g.baseline.compare(g.module.Name, target, o.samples, float64(g.flags.maxRegression))
	}
	if g.flags.debug {
		fmt.Fprintf(g.stderr, "Logs for the probe of %s (run %d):\n%s\n", res.ShownTarget(), run, res.Log())
	}
	return o
}

// tally is what the runs of one target came to.
type tally struct {
	target   string
	runs     int
	failures int
	passed   []*outcome // for the baseline
}

func (t *tally) add(o *outcome) {
	t.target = o.target
	t.runs++
	if o.passed() {
		t.passed = append(t.passed, o)
	} else {
		t.failures++
	}
}

// decided reports whether the runs left could no longer change the exit
// status, so that a gate does not wait out --interval for nothing: a
// target has already failed more runs than --max-failures allows, or
// every target would pass even if it failed all the runs left. A pass
// decided early still runs on with --save-baseline, whose medians the
// later runs feed.
func (g *gate) decided(tallies []tally, left int) bool {
	passes := true
	for _, t := range tallies {
		if t.failures > g.flags.maxFailures {
			return true
		}
		if t.failures+left > g.flags.maxFailures {
			passes = false
		}
	}
	return passes && g.flags.saveBaseline == ""
}

// verdict reports, per target, whether it failed more runs than
// --max-failures allows, and returns the exit status. ran is how many
// runs were made, fewer than --repeat when the outcome was decided early.
func (g *gate) verdict(tallies []tally, interrupted bool, ran int) int {
	var failed []string
	tolerated := 0
	for _, t := range tallies {
		if t.failures > g.flags.maxFailures {
			failed = append(failed, fmt.Sprintf("%s failed %d of %d runs (at most %d allowed)", redact.Target(t.target), t.failures, t.runs, g.flags.maxFailures))
		} else {
			tolerated += t.failures
		}
	}
	switch {
	case interrupted:
		g.report.summary(false, "interrupted")
		return exitFailed
	case len(failed) > 0:
		for _, f := range failed {
			g.report.summary(false, f)
		}
		if ran < g.flags.repeat {
			g.report.summary(false, g.stoppedEarly(ran, "pass"))
		}
		return exitFailed
	}
	msg := fmt.Sprintf("%d of %d targets passed", len(tallies), len(tallies))
	if tolerated > 0 {
		msg += fmt.Sprintf(" (%d failed runs tolerated by --max-failures=%d)", tolerated, g.flags.maxFailures)
	}
	if ran < g.flags.repeat {
		msg += "; " + g.stoppedEarly(ran, "fail")
	}
	g.report.summary(true, msg)
	return exitPassed
}

// stoppedEarly says why the runs after ran were not made: none of them
// could make the gate do otherwise.
func (g *gate) stoppedEarly(ran int, otherwise string) string {
	return fmt.Sprintf("stopped after run %d of %d: the runs left could not make the gate %s", ran, g.flags.repeat, otherwise)
}

// sleep waits d, or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
