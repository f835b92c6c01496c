package collector

import (
	"context"
	"math"
	"slices"
	"time"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober"
)

// Retries are opt-in (retry.attempts, default 1) and honest: every attempt
// runs inside the probe's one deadline, the number of attempts and the
// classes of the failed ones are exported, and the first attempt's
// duration is kept apart so latency dashboards can use it.

// attempts is what the retry loop did.
type attempts struct {
	made   int
	failed map[prober.Class]int // failed attempts by class
	first  time.Duration        // the first attempt's duration
	tries  []Attempt            // each attempt's phases, for traces and the waterfall
}

// An Attempt is one try of a probe as it happened: when it ran, how it
// ended and the phases the prober recorded in it.
type Attempt struct {
	N     int // from 1
	Start time.Time
	End   time.Time
	Err   *prober.Error // nil when the attempt succeeded
	Spans []prober.Span
}

// runAttempts runs fn until it succeeds, fails in a way not worth another
// try, runs out of attempts, or would not have time for another. It
// returns the last attempt's metrics and failure. jitter returns a number
// in [0, 1) that spreads the backoffs.
func runAttempts(ctx context.Context, fn prober.Func, m *prober.Module, target string, timeout time.Duration, env probeEnv, jitter func() float64) (*prober.Sink, *prober.Error, attempts) {
	policy := m.Retry
	a := attempts{failed: map[prober.Class]int{}}
	for {
		sink, try := attempt(ctx, fn, m, target, env, a.made+1)
		a.made++
		if a.made == 1 {
			a.first = try.End.Sub(try.Start)
		}
		a.tries = append(a.tries, try)
		err := try.Err
		if err == nil {
			return sink, nil, a
		}
		a.failed[err.Class]++
		wait, again := nextAttempt(ctx, policy, a.made, err, timeout, jitter)
		if !again {
			return sink, err, a
		}
		env.logger.Warn("Attempt failed; trying again", "attempt", a.made, "class", err.Class, "reason", err.Reason,
			"phase", err.Phase, "err", err.Err, "backoff_seconds", wait.Seconds())
		if !sleep(ctx, wait) {
			return sink, err, a
		}
	}
}

// attempt runs the prober once, as attempt n, inside its own span.
func attempt(ctx context.Context, fn prober.Func, m *prober.Module, target string, env probeEnv, n int) (*prober.Sink, Attempt) {
	ctx, span := startAttemptSpan(ctx, env.tracer, n)
	sink := prober.NewSink()
	try := Attempt{N: n, Start: time.Now()}
	try.Err = prober.Classify(ctx, runProber(ctx, fn, target, m, sink, env), prober.PhaseUnknown)
	try.End = time.Now()
	try.Spans = sink.Spans()
	endAttemptSpan(ctx, env.tracer, span, &try)
	return sink, try
}

// nextAttempt decides whether attempt n's failure gets another attempt, and
// after how long. An attempt is not started with less time left than the
// floor: the smaller of 100ms and a tenth of the probe's timeout. A last
// attempt squeezed into less would fail as a timeout that says nothing
// about the target.
func nextAttempt(ctx context.Context, policy config.Retry, n int, err *prober.Error, timeout time.Duration, jitter func() float64) (time.Duration, bool) {
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
func retryable(policy config.Retry, err *prober.Error) bool {
	return slices.Contains(policy.On, string(err.Class)) && !slices.Contains(permanent, err.Reason)
}

// permanent are reasons no retry changes: a name that does not exist, a
// server without the health service, a redirect loop, a body over the
// limit, a DNS answer too big for UDP, a target the policy refuses.
var permanent = []prober.Reason{
	prober.ReasonNXDomain,
	prober.ReasonGRPCUnimplemented,
	prober.ReasonTooManyRedirects,
	prober.ReasonBodyTooLarge,
	prober.ReasonTruncated,
	prober.ReasonTargetDenied,
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
