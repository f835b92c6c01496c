package probertest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// This file holds the websocket tests' servers.

// upgradeRecord is what a websocket test server saw of the upgrade
// requests that reached it.
type upgradeRecord struct {
	Mu       sync.Mutex
	Requests []*http.Request
}

func (r *upgradeRecord) add(req *http.Request) {
	r.Mu.Lock()
	defer r.Mu.Unlock()
	c := req.Clone(context.Background())
	c.Header = req.Header.Clone()
	r.Requests = append(r.Requests, c)
}

// Last returns the latest upgrade request, failing the test without one.
func (r *upgradeRecord) Last(t *testing.T) *http.Request {
	t.Helper()
	r.Mu.Lock()
	defer r.Mu.Unlock()
	if len(r.Requests) == 0 {
		t.Fatal("the server saw no upgrade request")
	}
	return r.Requests[len(r.Requests)-1]
}

// WSServer starts a server on loopback that records each upgrade request,
// upgrades it and hands the websocket to talk. The connection is closed
// when talk returns. talk runs in the server's goroutine, so it reports
// nothing to t: the probe's outcome is what tests check.
func WSServer(t *testing.T, talk func(c *websocket.Conn), o ServerOpts) (*httptest.Server, *upgradeRecord) {
	t.Helper()
	rec := &upgradeRecord{}
	// Any Origin is welcome: tests send one as a configured header.
	upgrader := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		// A server never outlives its test by much, whatever the probe does.
		c.NetConn().SetDeadline(time.Now().Add(5 * time.Second))
		if talk != nil {
			talk(c)
		}
	})
	return NewServer(t, h, o), rec
}

// WSURL turns an httptest server's URL into the websocket URL.
func WSURL(s *httptest.Server, path string) string {
	return "ws" + strings.TrimPrefix(s.URL, "http") + path
}

// WSSay writes text messages.
func WSSay(c *websocket.Conn, msgs ...string) {
	for _, m := range msgs {
		if c.WriteMessage(websocket.TextMessage, []byte(m)) != nil {
			return
		}
	}
}

// Drain reads until the peer goes away, so that the server neither speaks
// nor hangs up first.
func Drain(c *websocket.Conn) {
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
}

// Greeter says hello, then answers each message with "echo: " and the
// message, until the peer goes.
func Greeter(c *websocket.Conn) {
	WSSay(c, "hello sonde 1.2")
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		WSSay(c, "echo: "+string(msg))
	}
}

// GreetScript is a script for greeter: the greeting's name is sent back
// (a step's send may use its own expect's groups) and must come back
// echoed.
const GreetScript = `
query_response:
  - expect: "^hello (\\w+) ([0-9.]+)$"
    send: "ping ${1}"
    labels:
      - name: version
        value: "${2}"
  - expect: "^echo: ping sonde$"
`

// WSPhase returns a websocket phase duration, failing when it is missing.
func WSPhase(t *testing.T, sink *probemetrics.Sink, phase taxonomy.Phase) float64 {
	t.Helper()
	return Value(t, sink, "probe_websocket_duration_seconds", string(phase))
}

// WSPhases asserts which phase durations a probe exported.
func WSPhases(t *testing.T, sink *probemetrics.Sink, want ...taxonomy.Phase) {
	t.Helper()
	for _, p := range []taxonomy.Phase{taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseProcessing, taxonomy.PhaseTransfer} {
		_, ok := sink.Value("probe_websocket_duration_seconds", string(p))
		wanted := false
		for _, w := range want {
			wanted = wanted || w == p
		}
		if ok != wanted {
			t.Errorf("probe_websocket_duration_seconds{phase=%q} exported = %v, want %v", p, ok, wanted)
		}
	}
}
