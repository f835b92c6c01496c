package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/prometheus/common/expfmt"
	"go.opentelemetry.io/otel/trace"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/redact"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/probelog"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// Result is one finished probe: its metrics, its log and why it failed.
type Result struct {
	ID       int64 // given by the History
	numbered bool  // ID is set
	Module   *core.Module
	Target   string // as given; cut if very long once in the history (see bound)
	Start    time.Time
	Duration time.Duration
	Timeout  time.Duration
	Err      *taxonomy.Error    // nil on success, else the last attempt's failure
	Sink     *probemetrics.Sink // the last attempt's metrics and the common ones
	Attempts attempts
	log      *probeLog
	tags     []slog.Attr // the attributes of every log line: see logTags
	traceID  string      // the probe's trace, when tracing is on
	shown    string      // the target as shown, once known: see ShownTarget
	cut      cutTarget   // set when the history cut Target: see History.Add
}

// ShownTarget is the target as logs, traces and pages show it: a password
// in it is masked, as it would be anywhere else, and a very long one is
// cut (redact.Target).
func (r *Result) ShownTarget() string {
	if r.shown == "" {
		return redact.Target(r.Target)
	}
	return r.shown
}

// Timeline returns the probe's attempts with their phases, oldest first.
func (r *Result) Timeline() []Attempt { return r.Attempts.tries }

// TraceID returns the id of the probe's trace, or "" when it was not traced.
func (r *Result) TraceID() string { return r.traceID }

// Success reports whether the probe succeeded.
func (r *Result) Success() bool { return r.Err == nil }

// A Runner runs probes: the one code path every probe takes, whether from
// /probe or from `sonde probe`.
type Runner struct {
	Logger      *slog.Logger // the main logger
	ProberLevel slog.Level   // --log.prober: probe lines at this level or above reach Logger
	Tracer      trace.Tracer // nil when tracing is off
}

// Run probes target with module m within timeout and returns the result,
// with the common metrics set: probe_success, probe_duration_seconds,
// probe_timeout_seconds and, on failure, probe_failure_info. ctx bounds
// the probe too (a scrape that is abandoned cancels it).
func Run(ctx context.Context, m *core.Module, target string, timeout time.Duration, logger *slog.Logger, proberLevel slog.Level) *Result {
	return Runner{Logger: logger, ProberLevel: proberLevel}.Run(ctx, NoID, m, target, timeout)
}

// NoID is the id of a probe kept in no history.
const NoID = -1

// Run runs one probe; id (from History.NewID, or NoID) tags its log lines
// and its trace.
//
// Every probe's goroutine holds Run's frame and those below it for as long
// as the prober runs, and a goroutine's stack doubles, and stays doubled,
// when the deepest call of the probe does not fit. So the work before and
// after the probe is done in functions of their own (begin, finish), whose
// frames are gone while the prober runs; TestInFlightStack in test/perf
// holds the stack a waiting probe keeps.
func (rn Runner) Run(ctx context.Context, id int64, m *core.Module, target string, timeout time.Duration) *Result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx, r, env := rn.begin(ctx, id, m, target, timeout)
	r.Start = time.Now()
	r.Sink, r.Err, r.Attempts = runAttempts(ctx, proberOf(m), m, target, timeout, &env, rand.Float64)
	r.Duration = time.Since(r.Start)
	r.finish(&env)
	return r
}

// begin starts the probe's span and log, and returns its Result to fill.
func (rn Runner) begin(ctx context.Context, id int64, m *core.Module, target string, timeout time.Duration) (context.Context, *Result, probeEnv) {
	tracer := tracerOrNone(rn.Tracer)
	ctx, span := startProbeSpan(ctx, tracer, id, m, target)
	r := &Result{ID: id, numbered: id != NoID, Module: m, Target: target, Timeout: timeout, log: &probeLog{}, shown: redact.Target(target)}
	if sc := span.SpanContext(); sc.HasTraceID() {
		r.traceID = sc.TraceID().String()
	}
	r.tags = logTags(r)
	env := probeEnv{
		logger: slog.New(newProbeHandler(r.log, rn.Logger.Handler(), rn.ProberLevel, r.tags)),
		tracer: tracer,
		span:   span,
	}
	probelog.Debug(env.logger, "Beginning probe", "probe", m.Prober, "timeout_seconds", timeout.Seconds())
	return ctx, r, env
}

// finish sets the common metrics, ends the span and logs how the probe
// ended.
func (r *Result) finish(env *probeEnv) {
	r.record()
	endProbeSpan(env.span, r)
	if r.Err != nil {
		env.logger.Error("Probe failed", "duration_seconds", r.Duration.Seconds(), "class", r.Err.Class, "reason", r.Err.Reason, "phase", r.Err.Phase, "err", r.Err.Err)
		return
	}
	probelog.Debug(env.logger, "Probe succeeded", "duration_seconds", r.Duration.Seconds())
}

// probeEnv is what the attempts of one probe share.
type probeEnv struct {
	logger *slog.Logger // the probe's own log
	tracer trace.Tracer
	span   trace.Span // the probe's
}

// logTags are the attributes of each of a probe's log lines: the module
// and target as blackbox_exporter tags them, and the probe id and trace id
// that lead to /probe/detail and to the trace.
func logTags(r *Result) []slog.Attr {
	tags := make([]slog.Attr, 2, 4)
	tags[0], tags[1] = slog.String("module", r.Module.Name), slog.String("target", r.ShownTarget())
	if r.numbered {
		tags = append(tags, slog.Int64("probe_id", r.ID))
	}
	if r.traceID != "" {
		tags = append(tags, slog.String("trace_id", r.traceID))
	}
	return tags
}

// proberOf returns the module's prober. Only a module whose prober sonde
// runs gets this far: /probe answers 400 Unknown prober for any other, and
// `sonde probe` refuses it before probing.
func proberOf(m *core.Module) core.Func {
	fn, _ := m.Func()
	return fn
}

// runProber calls fn and turns a panic into a failed probe, so that a bug
// met by one target costs that probe, not the process or the scrape. The
// panic is logged at error level, which every --log.prober lets through to
// the main log: it is a bug in sonde.
func runProber(ctx context.Context, fn core.Func, target string, m *core.Module, sink *probemetrics.Sink, env *probeEnv) (err error) {
	defer func() {
		if v := recover(); v != nil {
			stack := string(debug.Stack())
			env.logger.Error("The prober panicked; this is a bug in sonde, please report it", "panic", v, "stack", stack)
			err = taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInternal, taxonomy.PhaseUnknown, "the prober panicked: %v", v)
		}
	}()
	return fn(ctx, target, m, sink, env.logger)
}

func (r *Result) record() {
	success := 0.0
	if r.Err == nil {
		success = 1
	}
	r.Sink.Set("probe_success", "Displays whether or not the probe was a success", success)
	r.Sink.Set("probe_duration_seconds", "Returns how long the probe took to complete in seconds", r.Duration.Seconds())
	r.Sink.Set("probe_timeout_seconds", "Returns the time the probe was allowed to take, in seconds", r.Timeout.Seconds())
	r.Sink.Set("probe_attempts", "How many attempts the probe made; more than 1 only with retry.attempts above 1", float64(r.Attempts.made))
	r.Sink.Set("probe_first_attempt_duration_seconds", "How long the first attempt took, in seconds: the latency of one try, whatever the retries", r.Attempts.first.Seconds())
	failed := r.Sink.GaugeVec("probe_failed_attempts", "How many attempts of this probe failed, by failure class", "class")
	for class, n := range r.Attempts.failed {
		failed.With(string(class)).Set(float64(n))
	}
	addBlackboxResolveMetrics(r)
	if r.Err != nil {
		r.Sink.GaugeVec("probe_failure_info", "Why the probe failed: class, reason and phase, from the set documented in docs/error-classes.md",
			"class", "reason", "phase").
			With(string(r.Err.Class), string(r.Err.Reason), string(r.Err.Phase)).Set(1)
	}
}

// Log returns the probe's log lines as text.
func (r *Result) Log() string { return r.log.render(r.tags) }

// DebugOutput is what `debug=true` answers and /logs shows: the probe's
// log, the metrics it returned and the module it ran, in blackbox's layout.
func (r *Result) DebugOutput() string {
	var buf bytes.Buffer
	buf.WriteString("Logs for the probe:\n")
	buf.WriteString(r.Log())
	buf.WriteString("\n\n\nMetrics that would have been returned:\n")
	if err := r.writeText(&buf); err != nil {
		fmt.Fprintf(&buf, "Error rendering metrics: %v\n", err)
	}
	buf.WriteString("\n\n\nModule configuration:\n")
	if c, err := config.Marshal(r.Module.Module); err != nil {
		fmt.Fprintf(&buf, "Error rendering the module: %v\n", err)
	} else {
		buf.Write(c)
	}
	return buf.String()
}

func (r *Result) writeText(buf *bytes.Buffer) error {
	mfs, err := r.Sink.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	var errs []error
	for _, mf := range mfs {
		errs = append(errs, enc.Encode(mf))
	}
	return errors.Join(errs...)
}
