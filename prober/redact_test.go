package prober

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit"
	httpprober "github.com/sonde-exporter/sonde/prober/http"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// password is what the targets below carry as their userinfo's password.
const password = "s3cr3t-PW"

// A password written in a target is masked wherever a prober puts the
// target, or a URL made from it, into its log or its error: a target the
// prober cannot read, one without a scheme (sent as basic auth), and a
// redirect resolved against it, for every prober.
func TestTargetPasswordIsMaskedInLogsAndErrors(t *testing.T) {
	http := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			w.Header().Set("Location", "/landed") // relative: resolved against the target
			w.WriteHeader(http.StatusFound)
		}
	}))
	defer http.Close()
	hostPort := strings.TrimPrefix(http.URL, "http://")
	listener := probertest.RawServer(t, func(c net.Conn) { c.Close() })
	udp := testkit.ClosedUDPPort(t)
	userinfo := "alice:" + password + "@"
	doh := func(m *config.Module) { m.DNS.TransportProtocol = "https" }

	tests := []struct {
		prober string
		target string
		mutate func(m *config.Module)
	}{
		{prober: "http", target: userinfo + hostPort + "/x"}, // http:// is added; the password is sent
		{prober: "http", target: "http://" + userinfo + hostPort + "/redirect"},
		{prober: "http", target: "http://" + userinfo + hostPort + "/redirect", mutate: func(m *config.Module) {
			m.HTTP.HTTPClientConfig.FollowRedirects = false
		}},
		{prober: "http", target: "http://" + userinfo + "host/%zz"},
		{prober: "http", target: "http://" + userinfo + "/x"},
		{prober: "http", target: "http://" + userinfo + "bad\x01host/x"},
		{prober: "http", target: "http://" + userinfo + udp + "/", mutate: func(m *config.Module) {
			m.HTTP.EnableHTTP3 = true
		}},
		{prober: "tcp", target: userinfo + listener},
		{prober: "tcp", target: userinfo + "host"},
		{prober: "tcp", target: userinfo + "bad\x01host:80"},
		{prober: "grpc", target: userinfo + listener},
		{prober: "grpc", target: "http://" + userinfo + listener},
		{prober: "grpc", target: "http://" + userinfo + "/x"},
		{prober: "grpc", target: userinfo + "host:x:y"},
		{prober: "dns", target: userinfo + "host:x"},
		{prober: "dns", target: userinfo + "bad\x01host"},
		{prober: "dns", target: "https://" + userinfo + "host/%zz", mutate: doh},
		{prober: "dns", target: userinfo + "host:x", mutate: doh},
		{prober: "dns", target: "https://" + userinfo + "/x", mutate: doh},
		{prober: "icmp", target: userinfo + "host"},
		{prober: "websocket", target: "ws://" + userinfo + hostPort + "/"},
		{prober: "websocket", target: "ws://" + userinfo + "host/%zz"},
		{prober: "websocket", target: "ws://" + userinfo + "/x"},
	}
	for _, tc := range tests {
		t.Run(tc.prober+" "+tc.target, func(t *testing.T) {
			m := defaultModule(t, tc.prober, func(cm *config.Module) {
				cm.DNS.QueryName = "example.test"
				cm.Timeout = 2 * time.Second
				if tc.mutate != nil {
					tc.mutate(cm)
				}
			})
			var log bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
			f, _ := m.Func()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := f(ctx, tc.target, m, probemetrics.NewSink(), logger)
			if err != nil && strings.Contains(err.Error(), password) {
				t.Errorf("the error shows the password: %v", err)
			}
			if strings.Contains(log.String(), password) {
				t.Errorf("the log shows the password:\n%s", log.String())
			}
		})
	}
}

// Masking keeps the failure's labels: only the text of its cause changes.
func TestHidePasswordKeepsTheLabels(t *testing.T) {
	target := "http://alice:" + password + "@/x"
	_, err := httpprober.ParseTarget(target)
	var e *taxonomy.Error
	if !errors.As(err, &e) || e.Class != taxonomy.ClassProber || e.Reason != taxonomy.ReasonInvalidTarget || e.Phase != taxonomy.PhaseSetup {
		t.Fatalf("parseHTTPTarget(%q) = %v", target, err)
	}
	if want := `target "http://alice:xxxxx@/x" has no host`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	_, err = httpprober.ParseTarget("http://alice@/x") // no password: the error as it was
	if !strings.Contains(err.Error(), `target "http://alice@/x" has no host`) {
		t.Errorf("error %q", err)
	}
}
