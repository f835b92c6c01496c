package collector

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sonde-exporter/sonde/internal/testkit"
)

const hostileConfig = `
modules:
  http_2xx:
    prober: http
    timeout: 5s
  tcp_connect:
    prober: tcp
    timeout: 5s
`

// hostileCollector serves hostileConfig, logging to mainLog with probe
// lines from proberLevel on, and tracing into spans.
func hostileCollector(t testing.TB, mainLog io.Writer, mainLevel, proberLevel slog.Level) (*Collector, *tracetest.InMemoryExporter) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(mainLog, &slog.HandlerOptions{Level: mainLevel}))
	return collectorWithSpans(t, hostileConfig, Options{HistoryLimit: 20, Logger: logger, ProberLevel: proberLevel})
}

// targetPassword is the password the targets below carry.
const targetPassword = "s3cr3t-PW"

// A password in a target is masked everywhere sonde shows the target: the
// pages, the debug output, the probe's log, the main log (every probe line
// with --log.prober=debug), and the traces. The targets are those
// url.Parse reads no password from: without a scheme (sent as basic auth
// all the same), with an invalid escape, without a host; and a relative
// redirect, resolved against the target.
func TestTargetPasswordIsShownNowhere(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			w.Header().Set("Location", "/landed")
			w.WriteHeader(http.StatusFound)
		}
	}))
	defer srv.Close()
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	userinfo := "alice:" + targetPassword + "@"
	for _, tc := range []struct {
		target, module string
		want           string // what the main log must show, masked
	}{
		{target: userinfo + hostPort + "/x", want: `target=alice:xxxxx@` + hostPort + "/x"},
		{target: "http://" + userinfo + hostPort + "/%zz", want: `parse \"http://alice:xxxxx@` + hostPort + `/%zz\"`},
		{target: "http://" + userinfo + "/x", want: `target \"http://alice:xxxxx@/x\" has no host`},
		{target: "http://" + userinfo + hostPort + "/redirect", want: `location=http://alice:xxxxx@` + hostPort + "/landed"},
		{target: userinfo + "host", module: "tcp_connect", want: `target \"alice:xxxxx@host\" needs a host and a port`},
	} {
		t.Run(tc.target, func(t *testing.T) {
			var mainLog testkit.SyncBuffer
			c, spans := hostileCollector(t, &mainLog, slog.LevelDebug, slog.LevelDebug)
			params := url.Values{"target": {tc.target}}
			if tc.module != "" {
				params.Set("module", tc.module)
			}
			scrape(t, c, params, nil)
			params.Set("debug", "true")
			_, debug := scrape(t, c, params, nil)
			// A scrape refused before probing logs its URL at debug.
			scrape(t, c, url.Values{"module": {"nope"}, "target": {tc.target}}, nil)

			shown := map[string]string{"the debug output": debug, "the main log": mainLog.String()}
			shown["/"] = get(t, c.LandingPage, "/")
			shown["/logs by target"] = get(t, c.LogsPage, "/logs?"+url.Values{"target": {tc.target}}.Encode())
			for _, id := range []string{"0", "1"} {
				shown["/logs?id="+id] = get(t, c.LogsPage, "/logs?id="+id)
				shown["/probe/detail?id="+id] = get(t, c.DetailPage, "/probe/detail?id="+id)
			}
			shown["the spans"] = fmt.Sprintf("%+v", spans.GetSpans())
			for where, text := range shown {
				if i := strings.Index(text, targetPassword); i >= 0 {
					t.Errorf("%s shows the password: ...%s...", where, text[max(0, i-200):min(len(text), i+100)])
				}
			}
			if !strings.Contains(mainLog.String(), tc.want) {
				t.Errorf("the main log does not show %s:\n%s", tc.want, mainLog.String())
			}
		})
	}
}

// With the default flags the main log has the probes' warnings, among
// them each redirect followed: its location has no password either.
func TestRedirectWarningHasNoPassword(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "landed", http.StatusFound)
		}
	}))
	defer srv.Close()
	var mainLog testkit.SyncBuffer
	c, _ := hostileCollector(t, &mainLog, slog.LevelInfo, slog.LevelInfo)
	target := strings.Replace(srv.URL, "://", "://alice:"+targetPassword+"@", 1) + "/redirect"
	scrape(t, c, url.Values{"target": {target}}, nil)
	log := mainLog.String()
	if !strings.Contains(log, `level=WARN msg="Following redirect"`) || strings.Contains(log, targetPassword) {
		t.Errorf("the main log:\n%s", log)
	}
}
