package websocket

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sonde-exporter/sonde/prober/check"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// An upgrade answered with a header that never ends is refused once the
// header passes the limit the http prober has, well before the deadline,
// and the probe allocates what reading that much costs net/textproto, as
// the http prober does for the same answer (a few times the limit: its
// line buffer grows by doubling). Unbounded, a probe allocated without
// end until its deadline.
func TestWebsocketUpgradeHeaderBounded(t *testing.T) {
	addr := probertest.RawServer(t, probertest.EndlessHeader("HTTP/1.1 101 Switching Protocols"))
	m := wsModule(t, nil)
	const deadline = 10 * time.Second
	before := probertest.TotalAlloc()
	sink, took, err := probertest.Probe(t, m, "ws://"+addr+"/", deadline)
	grew := probertest.TotalAlloc() - before
	e := checkOutcome(t, err, failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseProcessing})
	if !strings.Contains(e.Error(), check.DescribeSize(core.MaxResponseHeader)) {
		t.Errorf("the message does not name the limit, %s: %v", check.DescribeSize(core.MaxResponseHeader), e)
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
		probertest.Drain(c)
	}), probertest.ServerOpts{})
	m := wsYAMLModule(t, "query_response:\n  - expect: ^a+$")
	sink, err := probertest.Run(t, m, probertest.WSURL(s, "/"))
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

// An expect over a large message that would take longer than the deadline
// to match fails at the deadline as a timeout of its step.
func TestWebsocketExpectStopsAtDeadline(t *testing.T) {
	const deadline = 500 * time.Millisecond
	msg := probertest.SlowBody(t, 5*deadline)
	msg = msg[:min(len(msg), maxMessage)]
	s, _ := probertest.WSServer(t, func(c *websocket.Conn) {
		c.WriteMessage(websocket.TextMessage, msg)
		probertest.Drain(c)
	}, probertest.ServerOpts{})
	m := wsYAMLModule(t, "query_response:\n  - expect: '"+probertest.SlowRegexp+"'")
	t.Cleanup(func() { probertest.DrainChecks(t, m.Prepared.(*wsPrepared).checks) })
	_, took, err := probertest.Probe(t, m, probertest.WSURL(s, "/"), deadline)
	checkOutcome(t, err, failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.QueryStep(0)})
	if took > deadline+2*time.Second {
		t.Errorf("the probe took %v with a %v deadline", took, deadline)
	}
}
