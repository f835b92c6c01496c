package prober

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// This file holds the websocket tests' own servers and module builders.

// upgradeRecord is what a websocket test server saw of the upgrade
// requests that reached it.
type upgradeRecord struct {
	mu       sync.Mutex
	requests []*http.Request
}

func (r *upgradeRecord) add(req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := req.Clone(context.Background())
	c.Header = req.Header.Clone()
	r.requests = append(r.requests, c)
}

// last returns the latest upgrade request, failing the test without one.
func (r *upgradeRecord) last(t *testing.T) *http.Request {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.requests) == 0 {
		t.Fatal("the server saw no upgrade request")
	}
	return r.requests[len(r.requests)-1]
}

// wsServer starts a server on loopback that records each upgrade request,
// upgrades it and hands the websocket to talk. The connection is closed
// when talk returns. talk runs in the server's goroutine, so it reports
// nothing to t: the probe's outcome is what tests check.
func wsServer(t *testing.T, talk func(c *websocket.Conn), o probertest.ServerOpts) (*httptest.Server, *upgradeRecord) {
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
	return probertest.NewServer(t, h, o), rec
}

// wsURL turns an httptest server's URL into the websocket URL.
func wsURL(s *httptest.Server, path string) string {
	return "ws" + strings.TrimPrefix(s.URL, "http") + path
}

// say writes text messages.
func say(c *websocket.Conn, msgs ...string) {
	for _, m := range msgs {
		if c.WriteMessage(websocket.TextMessage, []byte(m)) != nil {
			return
		}
	}
}

// drain reads until the peer goes away, so that the server neither speaks
// nor hangs up first.
func drain(c *websocket.Conn) {
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
}

// greeter says hello, then answers each message with "echo: " and the
// message, until the peer goes.
func greeter(c *websocket.Conn) {
	say(c, "hello sonde 1.2")
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		say(c, "echo: "+string(msg))
	}
}

// greetScript is a script for greeter: the greeting's name is sent back
// (a step's send may use its own expect's groups) and must come back
// echoed.
const greetScript = `
query_response:
  - expect: "^hello (\\w+) ([0-9.]+)$"
    send: "ping ${1}"
    labels:
      - name: version
        value: "${2}"
  - expect: "^echo: ping sonde$"
`

// wsModule is defaultModule for the websocket prober.
func wsModule(t *testing.T, mutate func(w *config.WebsocketProbe)) *core.Module {
	t.Helper()
	return defaultModule(t, "websocket", func(m *config.Module) {
		if mutate != nil {
			mutate(&m.Websocket)
		}
	})
}

// wsYAMLModule loads a websocket module from its `websocket:` section.
func wsYAMLModule(t *testing.T, section string) *core.Module {
	t.Helper()
	return sectionModule(t, "websocket", section)
}

// wsPhase returns a websocket phase duration, failing when it is missing.
func wsPhase(t *testing.T, sink *probemetrics.Sink, phase taxonomy.Phase) float64 {
	t.Helper()
	return probertest.Value(t, sink, "probe_websocket_duration_seconds", string(phase))
}

// wsPhases asserts which phase durations a probe exported.
func wsPhases(t *testing.T, sink *probemetrics.Sink, want ...taxonomy.Phase) {
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
