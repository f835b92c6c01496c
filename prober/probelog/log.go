// Package probelog writes a probe's progress lines: debug records that
// almost never leave the probe's own log, so that they cost next to
// nothing when nobody reads them.
package probelog

import (
	"context"
	"log/slog"
	"runtime"
	"time"
)

// Debug logs msg at debug level through l's handler, as l.Debug does, but
// looks up the caller only when the line will reach a log that shows it.
// slog.Logger calls runtime.Callers for every record it makes, whatever
// the handler does with it, and a probe's progress lines are debug records
// that almost never leave the probe's own log (which names no source): every
// probe would pay for a lookup on lines nobody reads. The collector's probe
// handler says which levels it copies to the main log (Forwards).
func Debug(l *slog.Logger, msg string, args ...any) {
	ctx := context.Background()
	if !l.Enabled(ctx, slog.LevelDebug) {
		return
	}
	var pc uintptr
	if f, ok := l.Handler().(forwarder); !ok || f.Forwards(slog.LevelDebug) {
		var pcs [1]uintptr
		runtime.Callers(2, pcs[:]) // runtime.Callers, Debug: skipped
		pc = pcs[0]
	}
	r := slog.NewRecord(time.Now(), slog.LevelDebug, msg, pc)
	r.Add(args...)
	_ = l.Handler().Handle(ctx, r)
}

// forwarder is a handler that keeps records to itself below some level.
type forwarder interface {
	Forwards(level slog.Level) bool
}
