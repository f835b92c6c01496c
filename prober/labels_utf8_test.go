package prober

import (
	"bytes"
	"io"
	"net"
	"testing"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
)

// Label values are made valid UTF-8 once, in the sink: bytes captured from
// a target into probe_expect_info would otherwise make Prometheus refuse
// the whole scrape.
func TestLabelValuesAreValidUTF8(t *testing.T) {
	// Latin-1, and bytes no encoding has; each run of invalid bytes
	// becomes one U+FFFD, as strings.ToValidUTF8 makes it.
	const invalid = "caf\xe9 \xff\xfe"
	t.Run("sink", func(t *testing.T) {
		sink := probemetrics.NewSink()
		v := sink.GaugeVec("probe_expect_info", "Explicit content matched", "a", "b")
		v.With(invalid, "ok").Set(1)
		v.With(invalid, "ok").Set(2) // the same series, not another
		probertest.Metric(t, sink, 2, "probe_expect_info", "caf\uFFFD \uFFFD", "ok")
		checkExposition(t, sink)
	})
	t.Run("tcp expect", func(t *testing.T) {
		addr := probertest.RawServer(t, func(c net.Conn) {
			defer c.Close()
			io.WriteString(c, "220 "+invalid+" ready\r\n")
			io.Copy(io.Discard, c)
		})
		m := defaultModule(t, "tcp", func(cm *config.Module) {
			cm.TCP.QueryResponse = []config.QueryResponse{{
				Expect: config.MustNewRegexp(`^220 (.+) ready$`),
				Labels: []config.Label{{Name: "banner", Value: "${1}"}},
			}}
		})
		sink, err := probertest.Run(t, m, addr)
		checkOutcome(t, err, failure{})
		probertest.Metric(t, sink, 1, "probe_expect_info", "caf\uFFFD \uFFFD")
		checkExposition(t, sink)
	})
	t.Run("websocket expect", func(t *testing.T) {
		s, _ := probertest.WSServer(t, func(c *websocket.Conn) {
			c.WriteMessage(websocket.BinaryMessage, []byte("version "+invalid))
			probertest.Drain(c)
		}, probertest.ServerOpts{})
		m := wsModule(t, func(w *config.WebsocketProbe) {
			w.QueryResponse = []config.QueryResponse{{
				Expect: config.MustNewRegexp(`^version (.+)$`),
				Labels: []config.Label{{Name: "version", Value: "${1}"}},
			}}
		})
		sink, err := probertest.Run(t, m, probertest.WSURL(s, "/"))
		checkOutcome(t, err, failure{})
		probertest.Metric(t, sink, 1, "probe_expect_info", "caf\uFFFD \uFFFD")
		checkExposition(t, sink)
	})
}

// checkExposition checks that each way the sink is written is valid UTF-8
// that Prometheus' text parser reads.
func checkExposition(t *testing.T, sink *probemetrics.Sink) {
	t.Helper()
	text, ok := sink.AppendText(nil, false)
	if !ok {
		t.Fatal("AppendText refused the sink")
	}
	var viaExpfmt bytes.Buffer
	mfs, _ := sink.Gather()
	enc := expfmt.NewEncoder(&viaExpfmt, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Errorf("expfmt refuses the family %s: %v", mf.GetName(), err)
		}
	}
	for name, body := range map[string][]byte{"AppendText": text, "expfmt": viaExpfmt.Bytes()} {
		if !utf8.Valid(body) {
			t.Errorf("%s wrote invalid UTF-8:\n%q", name, body)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		if _, err := parser.TextToMetricFamilies(bytes.NewReader(body)); err != nil {
			t.Errorf("Prometheus' parser refuses what %s wrote: %v\n%q", name, err, body)
		}
	}
}
