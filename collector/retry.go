package collector

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// Retries are opt-in (retry.attempts, default 1) and honest: every attempt
// runs inside the probe's one deadline, the number of attempts and the
// classes of the failed ones are exported, and the first attempt's
// duration is kept apart so latency dashboards can use it.

// attempts is what the retry loop did.
type attempts struct {
	made   int
	failed map[taxonomy.Class]int // failed attempts by class
	first  time.Duration          // the first attempt's duration
	tries  []Attempt              // each attempt's phases, for traces and the waterfall
}

// An Attempt is one try of a probe as it happened: when it ran, how it
// ended and the phases the prober recorded in it.
type Attempt struct {
	N     int // from 1
	Start time.Time
	End   time.Time
	Err   *taxonomy.Error // nil when the attempt succeeded
	Spans []probemetrics.Span
}

// runAttempts runs fn until it succeeds, fails in a way not worth another
// try, runs out of attempts, or would not have time for another. It
// returns the last attempt's metrics and failure. jitter returns a number
// in [0, 1) that spreads the backoffs.
func runAttempts(ctx context.Context, fn core.Func, m *core.Module, target string, timeout time.Duration, env *probeEnv, jitter func() float64) (*probemetrics.Sink, *taxonomy.Error, attempts) {
	a := attempts{failed: map[taxonomy.Class]int{}}
	for {
		a.tries = append(a.tries, Attempt{N: a.made + 1})
		try := &a.tries[len(a.tries)-1]
		sink := attempt(ctx, fn, m, target, env, try)
		a.made++
		if a.made == 1 {
			a.first = try.End.Sub(try.Start)
		}
		err := try.Err
		if err == nil {
			return sink, nil, a
		}
		a.failed[err.Class]++
		if !retryAfter(ctx, &m.Retry, a.made, err, timeout, env.logger, jitter) {
			return sink, err, a
		}
	}
}

// retryAfter decides whether attempt n's failure gets another attempt and,
// if so, logs it and waits the backoff. It reports whether to go on. It is
// apart from runAttempts to keep that frame, which every probe's stack
// holds while the prober runs, small (TestInFlightStack in test/perf).
func retryAfter(ctx context.Context, policy *config.Retry, n int, err *taxonomy.Error, timeout time.Duration, logger *slog.Logger, jitter func() float64) bool {
	wait, again := nextAttempt(ctx, *policy, n, err, timeout, jitter)
	if !again {
		return false
	}
	logger.Warn("Attempt failed; trying again", "attempt", n, "class", err.Class, "reason", err.Reason,
		"phase", err.Phase, "err", err.Err, "backoff_seconds", wait.Seconds())
	// A sleep can overrun on a busy host: the floor is checked again
	// where the attempt would start, not only where the wait was chosen.
	return sleep(ctx, wait) && timeLeft(ctx) >= attemptFloor(timeout)
}

// timeLeft is what is left of ctx's deadline; a long time when it has none.
func timeLeft(ctx context.Context) time.Duration {
	if deadline, ok := ctx.Deadline(); ok {
		return time.Until(deadline)
	}
	return math.MaxInt64
}

// attempt runs the prober once, as attempt try.N, inside its own span, and
// records how it went in try. Attempts are filled in place rather than
// returned: they are large, and the frames of the functions that run the
// prober stay on its stack as long as it runs (TestInFlightStack in test/perf).
func attempt(ctx context.Context, fn core.Func, m *core.Module, target string, env *probeEnv, try *Attempt) *probemetrics.Sink {
	ctx, span := startAttemptSpan(ctx, env.tracer, try.N)
	sink := probemetrics.NewSink()
	try.Start = time.Now()
	try.Err = taxonomy.Classify(ctx, runProber(ctx, fn, target, m, sink, env), taxonomy.PhaseUnknown)
	try.End = time.Now()
	try.Spans = sink.Spans()
	endAttemptSpan(ctx, env.tracer, span, try)
	return sink
}

// nextAttempt decides whether attempt n's failure gets another attempt, and
// after how long. An attempt is not started with less time left than the
// floor: the smaller of 100ms and a tenth of the probe's timeout. A last
// attempt squeezed into less would fail as a timeout that says nothing
// about the target.
func nextAttempt(ctx context.Context, policy config.Retry, n int, err *taxonomy.Error, timeout time.Duration, jitter func() float64) (time.Duration, bool) {
	if n >= policy.Attempts || !retryable(policy, err) {
		return 0, false
	}
	wait := backoff(policy, n, jitter())
	deadline, ok := ctx.Deadline()
	if !ok {
		return wait, true
	}
	return wait, time.Until(deadline)-wait >= attemptFloor(timeout)
}

func attemptFloor(timeout time.Duration) time.Duration {
	return min(100*time.Millisecond, timeout/10)
}

// retryable: the class is listed in retry.on, and the failure is not one
// that a second attempt would meet again.
func retryable(policy config.Retry, err *taxonomy.Error) bool {
	return slices.Contains(policy.On, string(err.Class)) && !slices.Contains(permanent, err.Reason)
}

// permanent are reasons no retry changes: a name that does not exist, a
// server without the health service, a redirect loop, a body over the
// limit, a DNS answer too big for UDP, a target the policy refuses.
var permanent = []taxonomy.Reason{
	taxonomy.ReasonNXDomain,
	taxonomy.ReasonGRPCUnimplemented,
	taxonomy.ReasonTooManyRedirects,
	taxonomy.ReasonBodyTooLarge,
	taxonomy.ReasonTruncated,
	taxonomy.ReasonTargetDenied,
}

// backoff is the wait after attempt n (from 1): initial_backoff times
// multiplier^(n-1), capped at max_backoff, spread by ±jitter.
func backoff(policy config.Retry, n int, random float64) time.Duration {
	d := float64(policy.InitialBackoff) * math.Pow(policy.Multiplier, float64(n-1))
	d = min(d, float64(policy.MaxBackoff))
	d *= 1 + policy.Jitter*(2*random-1)
	return time.Duration(d)
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
