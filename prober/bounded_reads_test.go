package prober

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
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
		if readRequest(c) != nil {
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
// and the probe's memory stays near what reading that much costs
// net/textproto (the http prober's cost for the same answer). Unbounded,
// a probe held hundreds of megabytes by its deadline.
func TestWebsocketUpgradeHeaderBounded(t *testing.T) {
	addr := rawServer(t, endlessHeader("HTTP/1.1 101 Switching Protocols"))
	m := wsModule(t, nil)
	const deadline = 10 * time.Second
	before := totalAlloc()
	sink, took, err := probe(t, m, "ws://"+addr+"/", deadline)
	grew := totalAlloc() - before
	e := checkOutcome(t, err, failure{ClassProtocol, ReasonMalformedResponse, PhaseProcessing})
	if !strings.Contains(e.Error(), describeSize(maxResponseHeader)) {
		t.Errorf("the message does not name the limit, %s: %v", describeSize(maxResponseHeader), e)
	}
	if took >= deadline {
		t.Errorf("the probe took %v, until its deadline", took)
	}
	if limit := uint64(10 * maxResponseHeader); grew > limit {
		t.Errorf("the probe allocated %d MiB, want at most %d MiB", grew>>20, limit>>20)
	}
	metric(t, sink, 0, "probe_websocket_status_code")
	metric(t, sink, 0, "probe_websocket_connection_upgraded")
}

// A large header under the limit still upgrades, and the limit is the
// handshake's alone: the message that follows reads past it.
func TestWebsocketLargeHeaderUnderLimit(t *testing.T) {
	header := http.Header{"X-Large": {strings.Repeat("h", 1<<20)}}
	msg := bytes.Repeat([]byte("a"), maxResponseHeader+1<<20)
	upgrader := websocket.Upgrader{}
	s := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, header)
		if err != nil {
			return
		}
		defer c.Close()
		c.NetConn().SetDeadline(time.Now().Add(5 * time.Second))
		c.WriteMessage(websocket.TextMessage, msg)
		drain(c)
	}), serverOpts{})
	m := wsYAMLModule(t, "query_response:\n  - expect: ^a+$")
	sink, err := run(t, m, wsURL(s, "/"))
	checkOutcome(t, err, failure{})
	metric(t, sink, 1, "probe_websocket_connection_upgraded")
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
			addr := rawServer(t, func(c net.Conn) {
				if readRequest(c) != nil {
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
			_, took, err := probe(t, wsModule(t, nil), "ws://"+addr+"/", deadline)
			checkOutcome(t, err, failure{ClassTimeout, ReasonDeadline, PhaseProcessing})
			if took > deadline+2*time.Second {
				t.Errorf("the probe took %v with a %v deadline", took, deadline)
			}
		})
	}
}
