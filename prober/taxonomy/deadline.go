package taxonomy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// cutShortReasons are the failures that running out of time produces
// under another name: a read ended by the deadline hands the parser a
// partial line (a malformed response), a connection closed as the
// deadline passed reads as an early EOF, and a body check or an expect
// stopped by the deadline did not finish. A failure whose cause is whole
// (a refused port, a status, an expired certificate) keeps its labels.
var cutShortReasons = []Reason{
	ReasonMalformedResponse,
	ReasonUnexpectedEOF,
	ReasonBodyRegex,
	ReasonBodyCEL,
	ReasonExpect,
	ReasonUnclassified,
}

// deadlineWins reports a failure of cutShortReasons as a timeout, in the
// same phase, when the probe is out of time: a probe that ran out of time
// is a timeout whatever step it was in. The labels it would have had stay
// in the message.
func deadlineWins(ctx context.Context, e *Error) *Error {
	if e == nil || !slices.Contains(cutShortReasons, e.Reason) {
		return e
	}
	reason, out := OutOfTime(ctx)
	if !out {
		return e
	}
	return Fail(ClassTimeout, reason, e.Phase, fmt.Errorf("the probe ran out of time; what it was doing failed as %w", e))
}

// OutOfTime reports whether ctx, a probe's context, has ended or reached
// its deadline, and the timeout reason that says which. The deadline is
// compared with the clock too: a read ended by a connection deadline set
// from ctx can return before ctx's own timer has fired.
func OutOfTime(ctx context.Context) (Reason, bool) {
	if ctx == nil {
		return "", false
	}
	if err := ctx.Err(); err != nil {
		if errors.Is(err, context.Canceled) {
			return ReasonCanceled, true
		}
		return ReasonDeadline, true
	}
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		return ReasonDeadline, true
	}
	return "", false
}
