package http

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/prober/check"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// Reads a hostile target can make unbounded, and checks that can outlast
// the deadline: every peer here is started by the test on loopback.

// A body regexp that would take longer than the deadline (here about five
// times as long) fails the probe at the deadline as a timeout; it used to
// run on and report success well past it.
func TestHTTPBodyRegexpStopsAtDeadline(t *testing.T) {
	const deadline = 300 * time.Millisecond
	body := probertest.SlowBody(t, 5*deadline)
	s := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }), probertest.ServerOpts{})
	m := yamlModule(t, "fail_if_body_matches_regexp: ['"+probertest.SlowRegexp+"']")
	t.Cleanup(func() { probertest.DrainChecks(t, m.Prepared.(*httpPrepared).checks) })
	sink, took, err := probertest.Probe(t, m, s.URL, deadline)
	checkOutcome(t, err, failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseValidate})
	if took > deadline+2*time.Second {
		t.Errorf("the probe took %v with a %v deadline", took, deadline)
	}
	probertest.Metric(t, sink, 1, "probe_failed_due_to_regex")
	probertest.Metric(t, sink, float64(len(body)), "probe_http_uncompressed_body_length")
}

// A CEL check cut off by the deadline is a timeout, not a failed check.
func TestHTTPBodyCELStopsAtDeadline(t *testing.T) {
	var doc strings.Builder
	doc.WriteString(`{"items":[0`)
	for i := 1; i < 100000; i++ {
		fmt.Fprintf(&doc, ",%d", i)
	}
	doc.WriteString("]}")
	body := doc.String()
	s := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }), probertest.ServerOpts{})
	// Quadratic in the items: far longer than any deadline here.
	m := yamlModule(t, "fail_if_body_json_not_matches_cel: 'body.items.all(x, body.items.exists(y, y == x))'")
	t.Cleanup(func() { probertest.DrainChecks(t, m.Prepared.(*httpPrepared).checks) })
	const deadline = 300 * time.Millisecond
	sink, took, err := probertest.Probe(t, m, s.URL, deadline)
	checkOutcome(t, err, failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseValidate})
	if took > deadline+2*time.Second {
		t.Errorf("the probe took %v with a %v deadline", took, deadline)
	}
	probertest.Metric(t, sink, 1, "probe_failed_due_to_cel")
	probertest.Metric(t, sink, 0, "probe_failed_due_to_regex")
}

// Body checks that end in time give what they always gave.
func TestHTTPBodyChecksInTime(t *testing.T) {
	s := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"status":"up"}`)
	}), probertest.ServerOpts{})
	cases := []struct {
		section string
		want    failure
		regex   float64
	}{
		{"fail_if_body_matches_regexp: [up]", failure{taxonomy.ClassAssertion, taxonomy.ReasonBodyRegex, taxonomy.PhaseValidate}, 1},
		{"fail_if_body_not_matches_regexp: [up]", failure{}, 0},
		{"fail_if_header_matches: [{header: Content-Type, regexp: json}]", failure{}, 0},
		{"fail_if_header_not_matches: [{header: Content-Type, regexp: json}]", failure{taxonomy.ClassAssertion, taxonomy.ReasonHeaderRegex, taxonomy.PhaseValidate}, 1},
		{"fail_if_body_json_matches_cel: 'body.status == \"up\"'", failure{taxonomy.ClassAssertion, taxonomy.ReasonBodyCEL, taxonomy.PhaseValidate}, 0},
		{"fail_if_body_json_not_matches_cel: 'body.status == \"up\"'", failure{}, 0},
	}
	for _, c := range cases {
		t.Run(c.section, func(t *testing.T) {
			sink, err := probertest.Run(t, yamlModule(t, c.section), s.URL)
			checkOutcome(t, err, c.want)
			probertest.Metric(t, sink, c.regex, "probe_failed_due_to_regex")
		})
	}
}

func TestCheckSlots(t *testing.T) {
	t.Run("a check that ends in time gives its failure", func(t *testing.T) {
		want := taxonomy.Failf(taxonomy.ClassAssertion, taxonomy.ReasonBodyRegex, taxonomy.PhaseValidate, "no")
		got := check.NewSlots().Run(context.Background(), taxonomy.PhaseValidate, "the check", func() *taxonomy.Error { return want })
		if got != want {
			t.Errorf("run = %v, want %v", got, want)
		}
	})
	t.Run("a check past the deadline is abandoned and keeps its slot", func(t *testing.T) {
		slots := make(check.Slots, 1)
		release := make(chan struct{})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		got := slots.Run(ctx, taxonomy.PhaseValidate, "the check", func() *taxonomy.Error { <-release; return nil })
		checkOutcome(t, got, failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseValidate})
		if len(slots) != 1 {
			t.Fatal("the abandoned check gave up its slot while it runs")
		}
		// The next check waits for the slot, and fails if its own
		// deadline comes first.
		ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel2()
		ran := false
		got = slots.Run(ctx2, taxonomy.PhaseValidate, "the next check", func() *taxonomy.Error { ran = true; return nil })
		e := checkOutcome(t, got, failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseValidate})
		if ran || !strings.Contains(e.Error(), "waiting") {
			t.Errorf("the next check ran (%v) or does not say it waited: %v", ran, e)
		}
		close(release)
		got = slots.Run(context.Background(), taxonomy.PhaseValidate, "a later check", func() *taxonomy.Error { return nil })
		if got != nil {
			t.Errorf("a check after the abandoned one ended: %v", got)
		}
	})
	t.Run("a check ending past the deadline does not succeed", func(t *testing.T) {
		ctx := deadlineOnly{Context: context.Background(), deadline: time.Now().Add(-time.Millisecond)}
		got := check.NewSlots().Run(ctx, taxonomy.PhaseValidate, "the check", func() *taxonomy.Error { return nil })
		checkOutcome(t, got, failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseValidate})
	})
	t.Run("the scrape abandoned", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		release := make(chan struct{})
		defer close(release)
		got := check.NewSlots().Run(ctx, taxonomy.QueryStep(2), "the check", func() *taxonomy.Error { <-release; return nil })
		checkOutcome(t, got, failure{taxonomy.ClassTimeout, taxonomy.ReasonCanceled, taxonomy.QueryStep(2)})
	})
	t.Run("a panic fails the check", func(t *testing.T) {
		got := check.NewSlots().Run(context.Background(), taxonomy.PhaseValidate, "the check", func() *taxonomy.Error { panic("boom") })
		var e *taxonomy.Error
		if !errors.As(got, &e) || e.Reason != taxonomy.ReasonInternal {
			t.Errorf("run = %v, want prober/internal", got)
		}
	})
}

// deadlineOnly is a context whose deadline has passed and which does not
// say so yet.
type deadlineOnly struct {
	context.Context
	deadline time.Time
}

func (c deadlineOnly) Deadline() (time.Time, bool) { return c.deadline, true }
