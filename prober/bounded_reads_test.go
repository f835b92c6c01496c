package prober

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// Reads a hostile target can make unbounded, and checks that can outlast
// the deadline: every peer here is started by the test on loopback.

// totalAlloc is the bytes allocated by the process so far.
func totalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// endlessHeader answers a request with a status line and then one header
// line that never ends, until the connection breaks.
func endlessHeader(status string) func(c net.Conn) {
	return func(c net.Conn) {
		if probertest.ReadRequest(c) != nil {
			return
		}
		io.WriteString(c, status+"\r\nX-Endless: ")
		chunk := bytes.Repeat([]byte("a"), 64<<10)
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}
}

// An upgrade answered with a header that never ends is refused once the
// header passes the limit the http prober has, well before the deadline,
// and the probe allocates what reading that much costs net/textproto, as
// the http prober does for the same answer (a few times the limit: its
// line buffer grows by doubling). Unbounded, a probe allocated without
// end until its deadline.
func TestWebsocketUpgradeHeaderBounded(t *testing.T) {
	addr := probertest.RawServer(t, endlessHeader("HTTP/1.1 101 Switching Protocols"))
	m := wsModule(t, nil)
	const deadline = 10 * time.Second
	before := totalAlloc()
	sink, took, err := probertest.Probe(t, m, "ws://"+addr+"/", deadline)
	grew := totalAlloc() - before
	e := checkOutcome(t, err, failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseProcessing})
	if !strings.Contains(e.Error(), core.DescribeSize(core.MaxResponseHeader)) {
		t.Errorf("the message does not name the limit, %s: %v", core.DescribeSize(core.MaxResponseHeader), e)
	}
	if took >= deadline {
		t.Errorf("the probe took %v, until its deadline", took)
	}
	if limit := uint64(16 * core.MaxResponseHeader); grew > limit {
		t.Errorf("the probe allocated %d MiB, want at most %d MiB", grew>>20, limit>>20)
	}
	probertest.Metric(t, sink, 0, "probe_websocket_status_code")
	probertest.Metric(t, sink, 0, "probe_websocket_connection_upgraded")
}

// A large header under the limit still upgrades, and the limit is the
// handshake's alone: the message that follows reads past it.
func TestWebsocketLargeHeaderUnderLimit(t *testing.T) {
	header := http.Header{"X-Large": {strings.Repeat("h", 1<<20)}}
	msg := bytes.Repeat([]byte("a"), core.MaxResponseHeader+1<<20)
	upgrader := websocket.Upgrader{}
	s := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, header)
		if err != nil {
			return
		}
		defer c.Close()
		c.NetConn().SetDeadline(time.Now().Add(5 * time.Second))
		c.WriteMessage(websocket.TextMessage, msg)
		drain(c)
	}), probertest.ServerOpts{})
	m := wsYAMLModule(t, "query_response:\n  - expect: ^a+$")
	sink, err := probertest.Run(t, m, wsURL(s, "/"))
	checkOutcome(t, err, failure{})
	probertest.Metric(t, sink, 1, "probe_websocket_connection_upgraded")
}

// A server trickling its answer to the upgrade runs the probe out of time:
// that is a timeout, wherever the deadline cuts the header. A header name
// cut before its colon used to read as a malformed response.
func TestWebsocketUpgradeTrickledPastDeadline(t *testing.T) {
	const status = "HTTP/1.1 101 Switching Protocols\r\n"
	cases := []struct{ name, first, unit string }{
		{"whole header lines", status, "X-Slow: a\r\n"},
		{"a header name cut before its colon", status, "x"},
		{"a status line cut in its code", "HTTP/1.1 1", "0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			first, unit := c.first, c.unit
			addr := probertest.RawServer(t, func(c net.Conn) {
				if probertest.ReadRequest(c) != nil {
					return
				}
				io.WriteString(c, first)
				for {
					if _, err := io.WriteString(c, unit); err != nil {
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			})
			const deadline = 500 * time.Millisecond
			_, took, err := probertest.Probe(t, wsModule(t, nil), "ws://"+addr+"/", deadline)
			checkOutcome(t, err, failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseProcessing})
			if took > deadline+2*time.Second {
				t.Errorf("the probe took %v with a %v deadline", took, deadline)
			}
		})
	}
}

// slowText is text that slowRegexp scans slowly and never matches.
var (
	slowRegexp = `(\w+\s*)+[0-9]{4}!`
	slowText   = []byte("lorem ipsum dolor sit amet, consectetur adipiscing elit\n")
)

// slowBody returns slowText repeated so that slowRegexp takes about d to
// scan it on this machine (and under the race detector, which slows
// regexp down many times), within [256 KiB, 48 MiB].
func slowBody(t *testing.T, d time.Duration) []byte {
	t.Helper()
	re := regexp.MustCompile(slowRegexp)
	sample := bytes.Repeat(slowText, (256<<10)/len(slowText))
	start := time.Now()
	if re.Match(sample) {
		t.Fatal("the slow regexp matches its text")
	}
	took := max(time.Since(start), time.Microsecond)
	n := min(int(d/took)+1, (48<<20)/len(sample))
	return bytes.Repeat(sample, n)
}

// drainChecks waits until no check of the module runs any more, so that
// one abandoned by its probe does not eat the CPU of the next tests.
func drainChecks(t *testing.T, slots core.CheckSlots) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for range cap(slots) {
		select {
		case slots <- struct{}{}:
		case <-deadline:
			t.Fatal("a check still runs two minutes after its probe ended")
		}
	}
	for range cap(slots) {
		<-slots
	}
}

// A body regexp that would take longer than the deadline (here about five
// times as long) fails the probe at the deadline as a timeout; it used to
// run on and report success well past it.
func TestHTTPBodyRegexpStopsAtDeadline(t *testing.T) {
	const deadline = 300 * time.Millisecond
	body := slowBody(t, 5*deadline)
	s := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }), probertest.ServerOpts{})
	m := yamlModule(t, "fail_if_body_matches_regexp: ['"+slowRegexp+"']")
	t.Cleanup(func() { drainChecks(t, m.Prepared.(*httpPrepared).checks) })
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
	t.Cleanup(func() { drainChecks(t, m.Prepared.(*httpPrepared).checks) })
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

// An expect over a large message that would take longer than the deadline
// to match fails at the deadline as a timeout of its step.
func TestWebsocketExpectStopsAtDeadline(t *testing.T) {
	const deadline = 500 * time.Millisecond
	msg := slowBody(t, 5*deadline)
	msg = msg[:min(len(msg), maxMessage)]
	s, _ := wsServer(t, func(c *websocket.Conn) {
		c.WriteMessage(websocket.TextMessage, msg)
		drain(c)
	}, probertest.ServerOpts{})
	m := wsYAMLModule(t, "query_response:\n  - expect: '"+slowRegexp+"'")
	t.Cleanup(func() { drainChecks(t, m.Prepared.(*wsPrepared).checks) })
	_, took, err := probertest.Probe(t, m, wsURL(s, "/"), deadline)
	checkOutcome(t, err, failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.QueryStep(0)})
	if took > deadline+2*time.Second {
		t.Errorf("the probe took %v with a %v deadline", took, deadline)
	}
}

func TestCheckSlots(t *testing.T) {
	t.Run("a check that ends in time gives its failure", func(t *testing.T) {
		want := taxonomy.Failf(taxonomy.ClassAssertion, taxonomy.ReasonBodyRegex, taxonomy.PhaseValidate, "no")
		got := core.NewCheckSlots().Run(context.Background(), taxonomy.PhaseValidate, "the check", func() *taxonomy.Error { return want })
		if got != want {
			t.Errorf("run = %v, want %v", got, want)
		}
	})
	t.Run("a check past the deadline is abandoned and keeps its slot", func(t *testing.T) {
		slots := make(core.CheckSlots, 1)
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
		got := core.NewCheckSlots().Run(ctx, taxonomy.PhaseValidate, "the check", func() *taxonomy.Error { return nil })
		checkOutcome(t, got, failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseValidate})
	})
	t.Run("the scrape abandoned", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		release := make(chan struct{})
		defer close(release)
		got := core.NewCheckSlots().Run(ctx, taxonomy.QueryStep(2), "the check", func() *taxonomy.Error { <-release; return nil })
		checkOutcome(t, got, failure{taxonomy.ClassTimeout, taxonomy.ReasonCanceled, taxonomy.QueryStep(2)})
	})
	t.Run("a panic fails the check", func(t *testing.T) {
		got := core.NewCheckSlots().Run(context.Background(), taxonomy.PhaseValidate, "the check", func() *taxonomy.Error { panic("boom") })
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
