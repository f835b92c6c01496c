package probemetrics

import (
	"slices"
	"time"

	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// A Span is one phase of an attempt as it happened: where the time went,
// for the probe's trace and its waterfall. The phase metrics keep only the
// durations; a span keeps the wall-clock start and end, so that gaps and
// overlaps (a redirect, a second TLS handshake after STARTTLS) stay
// visible. Hop is 0 except for HTTP redirects, where it counts the
// requests made before this one.
type Span struct {
	Phase taxonomy.Phase
	Hop   int
	Start time.Time
	End   time.Time
}

// Duration is how long the phase took.
func (s Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// typicalSpans is room for the phases of one attempt of most probes.
const typicalSpans = 6

// Span records that phase ran from start until end. Probers call it where
// they measure the phase for its metric, with the same clock readings.
func (s *Sink) Span(phase taxonomy.Phase, hop int, start, end time.Time) {
	if start.IsZero() || end.Before(start) {
		return
	}
	s.mu.Lock()
	if s.spans == nil {
		s.spans = make([]Span, 0, typicalSpans)
	}
	s.spans = append(s.spans, Span{Phase: phase, Hop: hop, Start: start, End: end})
	s.mu.Unlock()
}

// Spans returns the recorded phases in the order they started.
func (s *Sink) Spans() []Span {
	s.mu.Lock()
	out := slices.Clone(s.spans)
	s.mu.Unlock()
	slices.SortStableFunc(out, func(a, b Span) int { return a.Start.Compare(b.Start) })
	return out
}
