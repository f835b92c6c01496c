package check

import (
	"context"
	"errors"
	"runtime"

	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// Slots bounds how many of one module's response checks (regexps
// and CEL over a body, a header or a message) run at once. A check is
// work that cannot be stopped halfway: Go's regexp takes no context, nor
// does the JSON decoding before a CEL expression. So a check runs on a
// goroutine of its own, and a probe whose time runs out stops waiting for
// it and fails as a timeout; the check runs on to its end, holding its
// slot. A target sending bodies that take longer than the deadline to
// check then keeps at most cap(slots) checks of the module running, in
// the background or not, whatever the probe rate, rather than one per
// probe. A nil Slots bounds nothing.
type Slots chan struct{}

// NewSlots has one slot per core sonde may use: checks are CPU work, and
// more of them at once would not end sooner.
func NewSlots() Slots {
	return make(Slots, max(2, runtime.GOMAXPROCS(0)))
}

// Run runs check, described by what ("the body regexps"), and returns
// its failure, or a timeout in phase once ctx is out of time: a check
// that ends past the deadline does not make the probe succeed.
func (s Slots) Run(ctx context.Context, phase taxonomy.Phase, what string, check func() *taxonomy.Error) *taxonomy.Error {
	if _, out := taxonomy.OutOfTime(ctx); out {
		return checkTimedOut(ctx, phase, "no time was left for "+what)
	}
	if s != nil {
		select {
		case s <- struct{}{}:
		case <-ctx.Done():
			return checkTimedOut(ctx, phase, "waiting for earlier checks of the module to end before "+what+" could run")
		}
	}
	done := make(chan *taxonomy.Error, 1)
	go func() {
		if s != nil {
			defer func() { <-s }()
		}
		done <- recovered(check)
	}()
	select {
	case err := <-done:
		if _, out := taxonomy.OutOfTime(ctx); out {
			return checkTimedOut(ctx, phase, what+" ended past the deadline")
		}
		return err
	case <-ctx.Done():
		return checkTimedOut(ctx, phase, what+" did not end before the deadline")
	}
}

// recovered runs check, turning a panic into a failure: on a goroutine of
// its own, it is out of reach of the collector's recover.
func recovered(check func() *taxonomy.Error) (err *taxonomy.Error) {
	defer func() {
		if v := recover(); v != nil {
			err = taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInternal, taxonomy.PhaseValidate, "a check panicked: %v", v)
		}
	}()
	return check()
}

func checkTimedOut(ctx context.Context, phase taxonomy.Phase, why string) *taxonomy.Error {
	reason, out := taxonomy.OutOfTime(ctx)
	if !out {
		reason = taxonomy.ReasonDeadline // not met: every caller saw ctx out of time
	}
	return taxonomy.Fail(taxonomy.ClassTimeout, reason, phase, errors.New(why))
}
