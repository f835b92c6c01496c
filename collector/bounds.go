package collector

import (
	"errors"
	"hash/fnv"
	"log/slog"
	"strings"

	"github.com/sonde-exporter/sonde/internal/redact"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// What a target can make sonde write or keep is bounded: every value of a
// probe's log is cut at redact.MaxValue, in the probe's own log (kept in
// the history, shown by debug=true and /logs) and on the lines copied to
// the main log; the history keeps a target and an error message cut the
// same way. A cut value says so, and how long it was. The /probe answer
// is not cut: its labels are the prober's.

// boundRecord returns r, or a copy with its values cut when one is too
// long. Strings and errors are cut as the record is kept, so that a long
// one does not stay in memory with the probe's log; a LogValuer, which
// makes its value only when the line is written, is cut then (see
// cutLazy).
func boundRecord(r *slog.Record) *slog.Record {
	long := false
	r.Attrs(func(a slog.Attr) bool {
		_, long = boundAttr(a)
		return !long
	})
	if !long {
		return r
	}
	return cutRecord(r)
}

// cutRecord returns a copy of r with its values cut. It is apart, and not
// inlined, so that the copy's slog.Record is not on the stack of every
// probe that logs (TestInFlightStack in test/perf holds that stack).
//
//go:noinline
func cutRecord(r *slog.Record) *slog.Record {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		a, _ = boundAttr(a)
		out.AddAttrs(a)
		return true
	})
	return &out
}

// boundAttr returns a with its value cut, and whether it was. An error
// too long becomes its cut text.
func boundAttr(a slog.Attr) (slog.Attr, bool) {
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); len(s) > redact.MaxValue {
			return slog.String(a.Key, redact.Cut(s, redact.MaxValue)), true
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			if msg := err.Error(); len(msg) > redact.MaxValue {
				return slog.String(a.Key, redact.Cut(msg, redact.MaxValue)), true
			}
		}
	case slog.KindGroup:
		return boundGroup(a)
	}
	return a, false
}

func boundGroup(a slog.Attr) (slog.Attr, bool) {
	attrs := a.Value.Group()
	var out []slog.Attr
	for i, member := range attrs {
		cut, long := boundAttr(member)
		if long && out == nil {
			out = append(make([]slog.Attr, 0, len(attrs)), attrs[:i]...)
		}
		if out != nil {
			out = append(out, cut)
		}
	}
	if out == nil {
		return a, false
	}
	return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}, true
}

// cutLazy returns r with the values its LogValuers make, cut, for a
// handler that writes r now (the main log's), or r itself when it has
// none.
func cutLazy(r *slog.Record) slog.Record {
	lazy := false
	r.Attrs(func(a slog.Attr) bool {
		lazy = a.Value.Kind() == slog.KindLogValuer
		return !lazy
	})
	if !lazy {
		return r.Clone()
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Value.Kind() == slog.KindLogValuer {
			a.Value = a.Value.Resolve()
			a, _ = boundAttr(a)
		}
		out.AddAttrs(a)
		return true
	})
	return out
}

// cutRendered cuts, as the probe's log is rendered, the values LogValuers
// made: its ReplaceAttr sees them resolved.
func cutRendered(a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindString && len(a.Value.String()) > redact.MaxValue {
		a.Value = slog.StringValue(redact.Cut(a.Value.String(), redact.MaxValue))
	}
	return a
}

// cutTarget is what the history keeps of a target it cut, to tell it
// from others: its length and a hash of it.
type cutTarget struct {
	length int // 0: the target was not cut
	sum    uint64
}

func newCutTarget(target string) cutTarget {
	h := fnv.New64a()
	h.Write([]byte(target))
	return cutTarget{length: len(target), sum: h.Sum64()}
}

// isTarget reports whether r is a probe of target.
func (r *Result) isTarget(target string) bool {
	if r.cut.length == 0 {
		return r.Target == target
	}
	return len(target) == r.cut.length && newCutTarget(target) == r.cut
}

// bound cuts what r would keep of a hostile target for as long as the
// history keeps it: a target of a megabyte, and error messages quoting
// it, cost a few KiB. Its log was cut as it was written, and now gets
// text of its own (see probeLog.compact). Its answer has been written.
func (r *Result) bound() {
	if len(r.Target) > redact.MaxValue {
		r.shown = r.ShownTarget()
		r.cut = newCutTarget(r.Target)
		if r.Target = redact.Cut(r.Target, redact.MaxValue); r.Target == r.shown {
			r.Target = r.shown // one copy, when there was no password to mask
		}
	}
	if r.log != nil {
		r.log.compact()
	}
	last := r.Err
	r.Err = boundError(r.Err)
	for i := range r.Attempts.tries {
		if a := &r.Attempts.tries[i]; a.Err == last {
			a.Err = r.Err
		} else {
			a.Err = boundError(a.Err)
		}
	}
}

// boundError returns err, or a copy with its cause cut to its text if that
// is too long.
func boundError(err *taxonomy.Error) *taxonomy.Error {
	if err == nil || err.Err == nil {
		return err
	}
	msg := err.Err.Error()
	if len(msg) <= redact.MaxValue {
		return err
	}
	cut := *err
	cut.Err = errors.New(redact.Cut(msg, redact.MaxValue))
	return &cut
}

// compact gives the log text of its own: every string value is copied
// into one block, and every error becomes its text there. A value a
// prober logs is often a substring of something much larger it read or
// parsed (the host of a target, the protocol of a status line), which
// would stay in memory as long as the history keeps the probe: a
// megabyte target or status line each time. One allocation per probe.
func (l *probeLog) compact() {
	l.mu.Lock()
	defer l.mu.Unlock()
	size := 0
	for i := range l.records {
		l.records[i].Attrs(func(a slog.Attr) bool {
			size += textSize(a)
			return true
		})
	}
	if size == 0 {
		return
	}
	var block strings.Builder
	block.Grow(size)
	for i := range l.records {
		l.records[i] = ownRecord(&l.records[i], &block)
	}
}

// textSize is the length of the text a's value is, or holds.
func textSize(a slog.Attr) int {
	switch a.Value.Kind() {
	case slog.KindString:
		return len(a.Value.String())
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			return len(err.Error())
		}
	case slog.KindGroup:
		n := 0
		for _, member := range a.Value.Group() {
			n += textSize(member)
		}
		return n
	}
	return 0
}

// ownRecord returns r with its text copied into block.
func ownRecord(r *slog.Record, block *strings.Builder) slog.Record {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	var stack [8]slog.Attr
	attrs := stack[:0]
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, ownAttr(a, block))
		return true
	})
	out.AddAttrs(attrs...)
	return out
}

// ownAttr returns a with its text copied into block. The block has room
// for it all, so the text already written never moves.
func ownAttr(a slog.Attr, block *strings.Builder) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		return slog.String(a.Key, appendText(block, a.Value.String()))
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			return slog.String(a.Key, appendText(block, err.Error()))
		}
	case slog.KindGroup:
		members := a.Value.Group()
		owned := make([]slog.Attr, len(members))
		for i, member := range members {
			owned[i] = ownAttr(member, block)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(owned...)}
	}
	return a
}

// appendText writes s to block and returns the copy.
func appendText(block *strings.Builder, s string) string {
	start := block.Len()
	block.WriteString(s)
	return block.String()[start:]
}
