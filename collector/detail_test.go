package collector

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }

func span(phase taxonomy.Phase, hop int, from, to float64) probemetrics.Span {
	return probemetrics.Span{Phase: phase, Hop: hop, Start: at(from), End: at(to)}
}

// wantBar is a bar's expected label and placement.
type wantBar struct {
	label       string
	left, width float64
}

func TestWaterfallRows(t *testing.T) {
	refused := taxonomy.Fail(taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect, nil)
	tests := []struct {
		name string
		res  *Result
		want [][]wantBar // per attempt: its bar, then its phases
	}{{
		name: "one attempt with phases",
		res: &Result{Start: t0, Duration: 100 * time.Millisecond, Attempts: attempts{tries: []Attempt{{
			N: 1, Start: at(0), End: at(100),
			Spans: []probemetrics.Span{span(taxonomy.PhaseResolve, 0, 0, 10), span(taxonomy.PhaseConnect, 0, 10, 30), span(taxonomy.PhaseProcessing, 0, 30, 90), span(taxonomy.PhaseTransfer, 0, 90, 100)},
		}}}},
		want: [][]wantBar{{{"attempt 1", 0, 100}, {"resolve", 0, 10}, {"connect", 10, 20}, {"processing", 30, 60}, {"transfer", 90, 10}}},
	}, {
		name: "a failed attempt, a backoff, then a redirect",
		res: &Result{Start: t0, Duration: 200 * time.Millisecond, Attempts: attempts{tries: []Attempt{
			{N: 1, Start: at(0), End: at(50), Err: refused, Spans: []probemetrics.Span{span(taxonomy.PhaseConnect, 0, 0, 50)}},
			{N: 2, Start: at(100), End: at(200), Spans: []probemetrics.Span{span(taxonomy.PhaseProcessing, 0, 100, 150), span(taxonomy.PhaseProcessing, 1, 150, 200)}},
		}}},
		want: [][]wantBar{
			{{"attempt 1 failed: connect/refused", 0, 25}, {"connect", 0, 25}},
			{{"attempt 2", 50, 50}, {"processing", 50, 25}, {"processing (hop 1)", 75, 25}},
		},
	}, {
		name: "a phase ending after the measured duration stretches the axis",
		res: &Result{Start: t0, Duration: 50 * time.Millisecond, Attempts: attempts{tries: []Attempt{
			{N: 1, Start: at(0), End: at(50), Spans: []probemetrics.Span{span(taxonomy.PhaseTransfer, 0, 0, 100)}},
		}}},
		want: [][]wantBar{{{"attempt 1", 0, 50}, {"transfer", 0, 100}}},
	}, {
		name: "a phase before the start is clamped",
		res: &Result{Start: t0, Duration: 100 * time.Millisecond, Attempts: attempts{tries: []Attempt{
			{N: 1, Start: at(0), End: at(100), Spans: []probemetrics.Span{span(taxonomy.PhaseResolve, 0, -10, 20)}},
		}}},
		want: [][]wantBar{{{"attempt 1", 0, 100}, {"resolve", 0, 20}}},
	}, {
		name: "no start: the first attempt's",
		res:  &Result{Duration: 10 * time.Millisecond, Attempts: attempts{tries: []Attempt{{N: 1, Start: at(0), End: at(10)}}}},
		want: [][]wantBar{{{"attempt 1", 0, 100}}},
	}, {
		name: "zero duration draws nothing, without dividing by zero",
		res:  &Result{Start: t0, Attempts: attempts{tries: []Attempt{{N: 1, Start: t0, End: t0, Spans: []probemetrics.Span{span(taxonomy.PhaseSetup, 0, 0, 0)}}}}},
		want: [][]wantBar{{{"attempt 1", 0, 0}, {"setup", 0, 0}}},
	}, {
		name: "no attempts",
		res:  &Result{Start: t0, Duration: time.Millisecond},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			groups := waterfallRows(tc.res)
			if len(groups) != len(tc.want) {
				t.Fatalf("%d attempt groups, want %d", len(groups), len(tc.want))
			}
			for i, g := range groups {
				got := append([]bar{g.Attempt}, g.Phases...)
				if len(got) != len(tc.want[i]) {
					t.Fatalf("attempt %d: %d bars, want %d", i+1, len(got), len(tc.want[i]))
				}
				for j, b := range got {
					w := tc.want[i][j]
					if b.Label != w.label || !near(b.Left, w.left) || !near(b.Width, w.width) {
						t.Errorf("attempt %d bar %d: %q at %.2f%% wide %.2f%%; want %q at %.2f%% wide %.2f%%",
							i+1, j, b.Label, b.Left, b.Width, w.label, w.left, w.width)
					}
				}
			}
		})
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestBarClassesAndStyle(t *testing.T) {
	b := bar{Kind: "phase", Phase: "tls", Left: 12.345, Width: 50}
	if got := b.Classes(); got != "bar phase ph-tls" {
		t.Errorf("classes %q", got)
	}
	if got := string(b.Style()); got != "left:12.35%;width:50.00%" {
		t.Errorf("style %q", got)
	}
	odd := bar{Kind: "attempt", Phase: `x" onload="y`, Class: taxonomy.ClassConnect}
	if got := odd.Classes(); got != "bar attempt ph-xonloady failed" {
		t.Errorf("classes %q", got)
	}
	if got := ticks(200 * time.Millisecond); len(got) != 5 || got[2].Label != "100.00 ms" || got[4].Left != 100 {
		t.Errorf("ticks %+v", got)
	}
}

// evilTarget has what a page must escape: markup, both quotes, an ampersand.
const evilTarget = `http://x/<script>alert("pwned")</script>'&`

func TestDetailPageEscapesAndShowsEverything(t *testing.T) {
	c, _ := newTestCollector(t, nil)
	cause := errors.New(`dial <b>"refused"</b>`)
	res := &Result{
		Module:   &core.Module{Name: `mod<i>"`, Module: config.Module{Prober: "http"}},
		Target:   evilTarget,
		Start:    t0,
		Duration: 80 * time.Millisecond,
		Timeout:  5 * time.Second,
		Err:      taxonomy.Fail(taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect, cause),
		Attempts: attempts{made: 2, tries: []Attempt{
			{N: 1, Start: at(0), End: at(20), Err: taxonomy.Fail(taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseConnect, nil),
				Spans: []probemetrics.Span{span(taxonomy.PhaseResolve, 0, 0, 5), span(taxonomy.PhaseConnect, 0, 5, 20)}},
			{N: 2, Start: at(40), End: at(80), Err: taxonomy.Fail(taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect, cause),
				Spans: []probemetrics.Span{span(taxonomy.PhaseConnect, 0, 40, 80)}},
		}},
		traceID: "4bf92f3577b34da6a3ce929d0e0e4736",
	}
	c.history.Add(res)
	path := fmt.Sprintf("/probe/detail?id=%d", res.ID)
	rec := httptest.NewRecorder()
	c.DetailPage(rec, httptest.NewRequest(http.MethodGet, path, nil))
	page := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, page)
	}
	for _, bad := range []string{"<script>", "<b>", "<i>", `"pwned"`, `"refused"`} {
		if strings.Contains(page, bad) {
			t.Errorf("the page does not escape %q", bad)
		}
	}
	for _, want := range []string{
		"&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;&#39;&amp;", // the target
		"mod&lt;i&gt;&#34;",                         // the module
		"dial &lt;b&gt;&#34;refused&#34;&lt;/b&gt;", // the error message
		"connect/refused in phase connect",
		"2025-03-01 12:00:00.000Z", "80.00 ms", "5s", "<td>2</td>",
		"Trace ID", "4bf92f3577b34da6a3ce929d0e0e4736",
		`class="bar attempt failed" style="left:0.00%;width:25.00%"`,
		"attempt 1 failed: timeout/deadline", "attempt 2 failed: connect/refused",
		`class="bar phase ph-resolve" style="left:0.00%;width:6.25%"`,
		`class="bar phase ph-connect" style="left:50.00%;width:50.00%"`,
		fmt.Sprintf(`href="../logs?id=%d"`, res.ID), `href="../"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(page, "recorded no phases") {
		t.Error("the page says no phases were recorded")
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}

	res.traceID = ""
	if page := get(t, c.DetailPage, path); strings.Contains(page, "Trace ID") {
		t.Error("the trace id row is shown without a trace")
	}
}

func TestDetailPageOfRealProbes(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer target.Close()
	c, _ := newTestCollector(t, nil)
	scrape(t, c, url.Values{"target": {target.URL + "/<script>"}}, nil)
	scrape(t, c, url.Values{"target": {closedPort(t)}}, nil)

	recent, _ := c.history.Lists()
	if len(recent) != 2 {
		t.Fatalf("%d probes in the history, want 2", len(recent))
	}
	failedID, okID := recent[0].ID, recent[1].ID
	landing := get(t, c.LandingPage, "/")
	for _, want := range []string{
		fmt.Sprintf(`href="probe/detail?id=%d"`, okID), fmt.Sprintf(`href="probe/detail?id=%d"`, failedID),
		fmt.Sprintf(`href="logs?id=%d"`, failedID), "<th>Attempts</th>", "<td>1</td>",
	} {
		if !strings.Contains(landing, want) {
			t.Errorf("the landing page lacks %q", want)
		}
	}
	ok := get(t, c.DetailPage, fmt.Sprintf("/probe/detail?id=%d", okID))
	for _, want := range []string{"Success", `class="bar attempt"`, "attempt 1", "Beginning probe", "&lt;script&gt;"} {
		if !strings.Contains(ok, want) {
			t.Errorf("the successful probe's page lacks %q", want)
		}
	}
	failed := get(t, c.DetailPage, fmt.Sprintf("/probe/detail?id=%d", failedID))
	for _, want := range []string{"connect/refused in phase connect", `class="bar attempt failed"`, "attempt 1 failed: connect/refused", "Probe failed"} {
		if !strings.Contains(failed, want) {
			t.Errorf("the failed probe's page lacks %q", want)
		}
	}
}

func TestDetailPageRefusals(t *testing.T) {
	c, _ := newTestCollector(t, nil)
	for path, want := range map[string]struct {
		code int
		text string
	}{
		"/probe/detail":        {http.StatusBadRequest, "whole numbers"},
		"/probe/detail?id=x":   {http.StatusBadRequest, "whole numbers"},
		"/probe/detail?id=1.5": {http.StatusBadRequest, "whole numbers"},
		"/probe/detail?id=99":  {http.StatusNotFound, "--history.limit"},
	} {
		rec := httptest.NewRecorder()
		c.DetailPage(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want.code || !strings.Contains(rec.Body.String(), want.text) {
			t.Errorf("%s: %d %q; want %d with %q", path, rec.Code, rec.Body, want.code, want.text)
		}
	}
}

func TestDetailPageWithoutPhases(t *testing.T) {
	c, _ := newTestCollector(t, nil)
	res := &Result{Module: &core.Module{Name: "m"}, Target: "t", Start: t0, Duration: time.Millisecond,
		Attempts: attempts{tries: []Attempt{{N: 1, Start: t0, End: at(1)}}}}
	c.history.Add(res)
	page := get(t, c.DetailPage, fmt.Sprintf("/probe/detail?id=%d", res.ID))
	if !strings.Contains(page, "recorded no phases") || !strings.Contains(page, `class="bar attempt" style="left:0.00%;width:100.00%"`) {
		t.Errorf("page:\n%s", page)
	}
}
