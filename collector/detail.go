package collector

import (
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// The probe detail page, probe/detail?id=N: the probe's facts, a waterfall
// of its attempts and phases, and its log. The view model is built here;
// the template only lays it out. It is plain HTML and inline CSS, without
// scripts or external resources, so it works offline and under a strict
// Content-Security-Policy.

//go:embed templates/detail.html
var detailText string

var detailTemplate = template.Must(template.New("detail").Parse(detailText))

// pageCSP forbids scripts and every external resource on the pages.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// detailView is what the detail page shows.
type detailView struct {
	ID                       int64
	Module, Prober, Target   string
	Start, Duration, Timeout string
	Err                      *taxonomy.Error
	Message                  string // the failure's cause, if any
	Attempts                 int
	TraceID                  string
	Groups                   []attemptGroup
	Phases                   bool // whether any attempt recorded phases
	Ticks                    []tick
	Log                      string
}

// attemptGroup is one attempt's rows in the waterfall: its own bar, then
// one per phase.
type attemptGroup struct {
	Attempt bar
	Phases  []bar
}

// bar is one row of the waterfall. Left and Width are percentages of the
// waterfall's width, which spans the whole probe.
type bar struct {
	Kind        string // "attempt" or "phase"
	Label       string
	Phase       taxonomy.Phase // for a phase's bar
	Class       taxonomy.Class // for a failed attempt's bar
	Left, Width float64
	Millis      float64 // how long it took
	From        float64 // when it began, in milliseconds after the probe's start
}

// Classes are the bar's CSS classes: its kind, and its phase or failure.
func (b bar) Classes() string {
	classes := "bar " + b.Kind
	if b.Phase != "" {
		classes += " ph-" + cssName(string(b.Phase))
	}
	if b.Class != "" {
		classes += " failed"
	}
	return classes
}

// Style places the bar on its track.
func (b bar) Style() template.CSS {
	return template.CSS(fmt.Sprintf("left:%.2f%%;width:%.2f%%", b.Left, b.Width))
}

// Title is the bar's tooltip.
func (b bar) Title() string {
	return fmt.Sprintf("%s: %.2f ms, from %.2f ms after the probe's start", b.Label, b.Millis, b.From)
}

// cssName keeps the letters, digits and dashes of s.
func cssName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return -1
	}, strings.ToLower(s))
}

// tick is a time mark above the waterfall.
type tick struct {
	Left  float64
	Label string
}

// Style places the tick; the first and last are kept inside the axis.
func (t tick) Style() template.CSS {
	shift := -50.0
	switch t.Left {
	case 0:
		shift = 0
	case 100:
		shift = -100
	}
	return template.CSS(fmt.Sprintf("left:%.2f%%;transform:translateX(%.0f%%)", t.Left, shift))
}

// DetailPage shows one probe of the history: probe/detail?id=N.
func (c *Collector) DetailPage(w http.ResponseWriter, r *http.Request) {
	res, ok := c.probeByID(w, r.URL.Query().Get("id"))
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", pageCSP)
	if err := detailTemplate.Execute(w, newDetailView(res)); err != nil {
		c.logger.Error("Rendering the probe detail page failed", "id", res.ID, "err", err)
	}
}

// probeByID finds the probe the id names, or answers why it cannot.
func (c *Collector) probeByID(w http.ResponseWriter, text string) (*Result, bool) {
	if text == "" {
		http.Error(w, "Give id=N to choose a probe; ids are whole numbers, as linked from the landing page", http.StatusBadRequest)
		return nil, false
	}
	id, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		http.Error(w, "Invalid probe id: "+text+"; ids are whole numbers, as linked from the landing page", http.StatusBadRequest)
		return nil, false
	}
	res, ok := c.history.Get(id)
	if !ok {
		http.Error(w, "Probe not found; the history keeps only the most recent probes (--history.limit)", http.StatusNotFound)
	}
	return res, ok
}

func newDetailView(res *Result) detailView {
	v := detailView{
		ID:       res.ID,
		Target:   res.ShownTarget(),
		Start:    res.Start.UTC().Format("2006-01-02 15:04:05.000Z"),
		Duration: millis(res.Duration),
		Timeout:  res.Timeout.String(),
		Err:      res.Err,
		Attempts: len(res.Timeline()),
		TraceID:  res.TraceID(),
		Groups:   waterfallRows(res),
		Ticks:    ticks(waterfallSpan(res)),
		Log:      logText(res),
	}
	if res.Module != nil {
		v.Module, v.Prober = res.Module.Name, res.Module.Prober
	}
	if res.Err != nil && res.Err.Err != nil {
		v.Message = res.Err.Err.Error()
	}
	for _, g := range v.Groups {
		v.Phases = v.Phases || len(g.Phases) > 0
	}
	return v
}

// logText is the probe's log, or nothing for a result made without one.
func logText(res *Result) string {
	if res.log == nil {
		return ""
	}
	return res.Log()
}

func millis(d time.Duration) string { return fmt.Sprintf("%.2f ms", ms(d)) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// waterfallRows lays out every attempt and its phases on one time axis,
// from the probe's start to its end.
func waterfallRows(res *Result) []attemptGroup {
	origin, total := waterfallOrigin(res), waterfallSpan(res)
	var groups []attemptGroup
	for _, a := range res.Timeline() {
		g := attemptGroup{Attempt: place(origin, total, a.Start, a.End)}
		g.Attempt.Kind, g.Attempt.Label = "attempt", fmt.Sprintf("attempt %d", a.N)
		if a.Err != nil {
			g.Attempt.Class = a.Err.Class
			g.Attempt.Label += fmt.Sprintf(" failed: %s/%s", a.Err.Class, a.Err.Reason)
		}
		for _, s := range a.Spans {
			b := place(origin, total, s.Start, s.End)
			b.Kind, b.Phase, b.Label = "phase", s.Phase, spanLabel(s)
			g.Phases = append(g.Phases, b)
		}
		groups = append(groups, g)
	}
	return groups
}

func spanLabel(s probemetrics.Span) string {
	if s.Hop > 0 {
		return fmt.Sprintf("%s (hop %d)", s.Phase, s.Hop)
	}
	return string(s.Phase)
}

// waterfallOrigin is the left edge: the probe's start, or the first
// attempt's for a result that has no start.
func waterfallOrigin(res *Result) time.Time {
	if tl := res.Timeline(); res.Start.IsZero() && len(tl) > 0 {
		return tl[0].Start
	}
	return res.Start
}

// waterfallSpan is the time the waterfall's width stands for: the probe's
// duration, stretched if an attempt or phase ended after it.
func waterfallSpan(res *Result) time.Duration {
	origin, total := waterfallOrigin(res), res.Duration
	for _, a := range res.Timeline() {
		total = max(total, a.End.Sub(origin))
		for _, s := range a.Spans {
			total = max(total, s.End.Sub(origin))
		}
	}
	return total
}

// place positions the interval [start, end] on a waterfall that begins at
// origin and spans total, as percentages clamped to the waterfall.
func place(origin time.Time, total time.Duration, start, end time.Time) bar {
	b := bar{Millis: ms(end.Sub(start)), From: ms(start.Sub(origin))}
	if total <= 0 {
		return b
	}
	percent := func(t time.Time) float64 {
		return min(100, max(0, 100*float64(t.Sub(origin))/float64(total)))
	}
	b.Left = percent(start)
	b.Width = max(0, percent(end)-b.Left)
	return b
}

// ticks marks the quarters of the waterfall's span.
func ticks(total time.Duration) []tick {
	out := make([]tick, 0, 5)
	for i := range 5 {
		out = append(out, tick{Left: float64(25 * i), Label: millis(total * time.Duration(i) / 4)})
	}
	return out
}
