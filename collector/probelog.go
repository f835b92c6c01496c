package collector

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"time"
)

// probeLog keeps the log records of one probe, unformatted, for the debug
// output and the history; they are rendered only when someone reads them.
type probeLog struct {
	mu      sync.Mutex
	records []slog.Record
}

// typicalRecords is room for the lines a successful http or tcp probe
// logs (6), made at once: grown from nothing, the slice of records was
// reallocated several times per probe.
// Probes that log more (icmp and dns, about 10) grow it once. A record is
// about 300 bytes, held as long as the probe is in flight and then in the
// history, so more room would cost memory in scale.
const typicalRecords = 8

func (l *probeLog) add(r *slog.Record) {
	l.mu.Lock()
	if l.records == nil {
		l.records = make([]slog.Record, 0, typicalRecords)
	}
	l.records = append(l.records, r.Clone())
	l.mu.Unlock()
}

// render formats the records as logfmt lines, each tagged with the module
// and target like blackbox_exporter's probe logs, and the other tags.
func (l *probeLog) render(tags []slog.Attr) string {
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level:       slog.LevelDebug,
		ReplaceAttr: renderAttr,
	}).WithAttrs(tags)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.records {
		_ = h.Handle(context.Background(), r)
	}
	return buf.String()
}

// renderAttr writes times in UTC to the millisecond, and cuts what a
// LogValuer made (see boundRecord).
func renderAttr(_ []string, a slog.Attr) slog.Attr {
	if t, ok := a.Value.Any().(time.Time); ok && a.Key == slog.TimeKey {
		a.Value = slog.StringValue(t.UTC().Format("2006-01-02T15:04:05.000Z"))
		return a
	}
	return cutRendered(a)
}

// probeHandler is the slog.Handler a prober logs through. Every record goes
// to the probe's own log. Records at the --log.prober level or above are
// also written to the main log, at their own level, whatever --log.level
// says: as in blackbox_exporter 0.27 and later, the probe lines have a
// level of their own. Probers log their progress at debug, what an
// operator should look at (a redirect, a retry) at warn and failures at
// error, so the default (info) keeps successful probes out of the main log.
type probeHandler struct {
	log    *probeLog
	main   *mainForwarder
	level  slog.Level
	attrs  []slog.Attr
	groups []string
}

// mainForwarder writes a probe's records to the main log, tagged with the
// probe's tags. The tagged handler is made at the first record forwarded:
// most probes forward none, and tagging formats the tags ahead.
type mainForwarder struct {
	once   sync.Once
	main   slog.Handler
	tags   []slog.Attr
	tagged slog.Handler
}

func (f *mainForwarder) handler() slog.Handler {
	f.once.Do(func() { f.tagged = f.main.WithAttrs(f.tags) })
	return f.tagged
}

func newProbeHandler(log *probeLog, main slog.Handler, level slog.Level, tags []slog.Attr) *probeHandler {
	return &probeHandler{log: log, main: &mainForwarder{main: main, tags: tags}, level: level}
}

func (h *probeHandler) Enabled(context.Context, slog.Level) bool { return true }

// Forwards reports whether records at level reach the main log, whose
// lines name their source: probelog.Debug looks up its caller only then.
func (h *probeHandler) Forwards(level slog.Level) bool { return level >= h.level }

// Handle keeps the record and forwards it when its level is high enough.
// Records are a few hundred bytes and slog passes them by value: they are
// passed on by pointer and copied once, into the log, as a probe's stack
// must stay small (TestInFlightStack in test/perf).
func (h *probeHandler) Handle(ctx context.Context, r slog.Record) error {
	if len(h.attrs) > 0 || len(h.groups) > 0 {
		return h.handleOwn(ctx, &r)
	}
	return h.keep(ctx, &r)
}

func (h *probeHandler) handleOwn(ctx context.Context, r *slog.Record) error {
	out := h.own(r)
	return h.keep(ctx, &out)
}

func (h *probeHandler) keep(ctx context.Context, r *slog.Record) error {
	r = boundRecord(r)
	h.log.add(r)
	if r.Level < h.level {
		return nil
	}
	return h.forward(ctx, r)
}

// forward writes r to the main log too, with the values its LogValuers
// make cut as the probe's own log cuts them.
func (h *probeHandler) forward(ctx context.Context, r *slog.Record) error {
	return h.main.handler().Handle(ctx, cutLazy(r))
}

// own returns r with the handler's attributes and groups applied.
func (h *probeHandler) own(r *slog.Record) slog.Record {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(h.attrs...)
	var own []slog.Attr
	r.Attrs(func(a slog.Attr) bool {
		own = append(own, a)
		return true
	})
	out.AddAttrs(h.grouped(own)...)
	return out
}

func (h *probeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), h.grouped(attrs)...)
	return &c
}

// grouped nests attrs in the handler's open groups, if any.
func (h *probeHandler) grouped(attrs []slog.Attr) []slog.Attr {
	if len(h.groups) == 0 || len(attrs) == 0 {
		return attrs
	}
	args := make([]any, len(attrs))
	for i, a := range attrs {
		args[i] = a
	}
	g := slog.Group(h.groups[len(h.groups)-1], args...)
	for i := len(h.groups) - 2; i >= 0; i-- {
		g = slog.Group(h.groups[i], g)
	}
	return []slog.Attr{g}
}

func (h *probeHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.groups = append(append([]string(nil), h.groups...), name)
	return &c
}
