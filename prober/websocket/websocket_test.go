package websocket

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	pconfig "github.com/prometheus/common/config"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

func TestWebsocketScript(t *testing.T) {
	s, rec := probertest.WSServer(t, probertest.Greeter, probertest.ServerOpts{})
	m := wsYAMLModule(t, probertest.GreetScript)
	sink, err := probertest.Run(t, m, probertest.WSURL(s, "/chat?room=1"))
	checkOutcome(t, err, failure{})

	probertest.Metric(t, sink, 101, "probe_websocket_status_code")
	probertest.Metric(t, sink, 1, "probe_websocket_connection_upgraded")
	probertest.Metric(t, sink, 0, "probe_websocket_failed_due_to_regex")
	probertest.Metric(t, sink, 1, "probe_expect_info", "1.2")
	probertest.Metric(t, sink, 4, "probe_ip_protocol")
	probertest.WSPhases(t, sink, taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseProcessing, taxonomy.PhaseTransfer)
	for _, p := range []taxonomy.Phase{taxonomy.PhaseConnect, taxonomy.PhaseProcessing, taxonomy.PhaseTransfer} {
		if probertest.WSPhase(t, sink, p) <= 0 {
			t.Errorf("phase %s took no time", p)
		}
	}
	probertest.Absent(t, sink, "probe_failed_due_to_regex", "probe_failed_due_to_bytes", "probe_tls_version_info")
	if got := rec.Last(t).URL.RequestURI(); got != "/chat?room=1" {
		t.Errorf("the upgrade request asked for %q, want /chat?room=1", got)
	}
}

func TestWebsocketWithoutScript(t *testing.T) {
	s, _ := probertest.WSServer(t, probertest.Drain, probertest.ServerOpts{})
	sink, err := probertest.Run(t, wsModule(t, nil), probertest.WSURL(s, "/"))
	checkOutcome(t, err, failure{})
	probertest.Metric(t, sink, 101, "probe_websocket_status_code")
	probertest.Metric(t, sink, 1, "probe_websocket_connection_upgraded")
	// Like blackbox_exporter: no script, no regex gauge and no transfer.
	probertest.Absent(t, sink, "probe_websocket_failed_due_to_regex", "probe_expect_info")
	probertest.WSPhases(t, sink, taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseProcessing)
}

// The probe ends with a close frame, so that the server sees a probe that
// finished rather than an abnormal closure.
func TestWebsocketClosesCleanly(t *testing.T) {
	closed := make(chan error, 1)
	s, _ := probertest.WSServer(t, func(c *websocket.Conn) {
		_, _, err := c.ReadMessage()
		closed <- err
	}, probertest.ServerOpts{})
	_, err := probertest.Run(t, wsModule(t, nil), probertest.WSURL(s, "/"))
	checkOutcome(t, err, failure{})
	select {
	case err := <-closed:
		if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Errorf("the server read %v, want a normal close frame", err)
		}
	case <-time.After(2 * time.Second):
		t.Error("the server saw no close")
	}
}

func TestWebsocketHTTPSchemes(t *testing.T) {
	ca := testcert.NewCA(t, testcert.Spec{})
	plain, _ := probertest.WSServer(t, probertest.Drain, probertest.ServerOpts{})
	secure, _ := probertest.WSServer(t, probertest.Drain, probertest.ServerOpts{TLS: true, CA: ca})
	m := wsModule(t, func(w *config.WebsocketProbe) { w.HTTPConfig.TLSConfig.CAFile = ca.File(t) })
	for _, target := range []string{plain.URL, secure.URL, strings.Replace(plain.URL, "http://", "WS://", 1)} {
		t.Run(target, func(t *testing.T) {
			sink, err := probertest.Run(t, m, target)
			checkOutcome(t, err, failure{})
			probertest.Metric(t, sink, 1, "probe_websocket_connection_upgraded")
		})
	}
}

func TestWebsocketInvalidTarget(t *testing.T) {
	m := wsModule(t, nil)
	for _, target := range []string{
		"ftp://example.com/",
		"example.com:80",
		"ws://",
		"ws:///path",
		"ws://example.com:0/",
		"ws://example.com:99999/",
		"ws://user:secret@example.com/",
		"ws://exa mple.com/",
		"ws://user:secret@exa mple.com/",
		"ftp://user:secret@example.com/",
		"",
	} {
		t.Run(target, func(t *testing.T) {
			sink, err := probertest.Run(t, m, target)
			e := checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup})
			if msg := e.Error(); !strings.Contains(msg, "ws://") && !strings.Contains(msg, "65535") && !strings.Contains(msg, "basic_auth") {
				t.Errorf("the message does not say how to write the target: %s", msg)
			}
			if strings.Contains(e.Error(), "secret") {
				t.Errorf("the message shows the URL's password: %s", e.Error())
			}
			probertest.Metric(t, sink, 0, "probe_websocket_status_code")
			probertest.Metric(t, sink, 0, "probe_websocket_connection_upgraded")
			probertest.Absent(t, sink, "probe_websocket_duration_seconds", "probe_ip_protocol")
		})
	}
}

func TestWebsocketHeadersAndAuth(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(secretFile, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	cases := []struct {
		name    string
		section string
		check   func(t *testing.T, r *http.Request)
	}{{
		name: "headers",
		section: `
headers:
  X-Single: one
  origin: https://example.com
http_config:
  headers:
    X-Multi: [a, b]
    X-Scalar: c`,
		check: func(t *testing.T, r *http.Request) {
			want := map[string][]string{"X-Single": {"one"}, "Origin": {"https://example.com"}, "X-Multi": {"a", "b"}, "X-Scalar": {"c"}}
			for name, values := range want {
				if got := r.Header.Values(name); strings.Join(got, ",") != strings.Join(values, ",") {
					t.Errorf("header %s = %q, want %q", name, got, values)
				}
			}
			if got := r.Header.Get("Authorization"); got != "" {
				t.Errorf("Authorization = %q, want none", got)
			}
		},
	}, {
		name: "basic_auth",
		section: `
http_config:
  basic_auth:
    username: probe
    password: pw`,
		check: func(t *testing.T, r *http.Request) {
			if got := r.Header.Get("Authorization"); got != basic("probe", "pw") {
				t.Errorf("Authorization = %q, want basic probe:pw", got)
			}
		},
	}, {
		name: "basic_auth password_file",
		section: `
http_config:
  basic_auth:
    username: probe
    password_file: ` + secretFile,
		check: func(t *testing.T, r *http.Request) {
			if got := r.Header.Get("Authorization"); got != basic("probe", "s3cret") {
				t.Errorf("Authorization = %q, want basic probe:s3cret", got)
			}
		},
	}, {
		name: "bearer_token",
		section: `
http_config:
  bearer_token: tok3n`,
		check: func(t *testing.T, r *http.Request) {
			if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer tok3n" {
				t.Errorf("Authorization = %q, want Bearer tok3n", got)
			}
		},
	}, {
		name: "basic_auth wins over bearer_token and headers",
		section: `
headers:
  Authorization: Custom x
http_config:
  bearer_token: tok3n
  basic_auth:
    username: probe
    password: pw`,
		check: func(t *testing.T, r *http.Request) {
			if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != basic("probe", "pw") {
				t.Errorf("Authorization = %q, want only basic probe:pw", got)
			}
		},
	}, {
		name: "Host header",
		section: `
headers:
  host: ws.example:8080`,
		check: func(t *testing.T, r *http.Request) {
			if r.Host != "ws.example:8080" {
				t.Errorf("Host = %q, want ws.example:8080", r.Host)
			}
		},
	}, {
		name: "no Host header",
		section: `
headers:
  X-Single: one`,
		check: func(t *testing.T, r *http.Request) {
			if !strings.HasPrefix(r.Host, "127.0.0.1:") {
				t.Errorf("Host = %q, want the URL's host, 127.0.0.1:port", r.Host)
			}
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, rec := probertest.WSServer(t, probertest.Drain, probertest.ServerOpts{})
			_, err := probertest.Run(t, wsYAMLModule(t, c.section), probertest.WSURL(s, "/"))
			checkOutcome(t, err, failure{})
			c.check(t, rec.Last(t))
		})
	}
}

func TestWebsocketCredentialsFileMissing(t *testing.T) {
	s, rec := probertest.WSServer(t, probertest.Drain, probertest.ServerOpts{})
	m := wsModule(t, func(w *config.WebsocketProbe) {
		w.HTTPConfig.BasicAuth = &pconfig.BasicAuth{Username: "probe", PasswordFile: filepath.Join(t.TempDir(), "missing")}
	})
	sink, err := probertest.Run(t, m, probertest.WSURL(s, "/"))
	checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonCredentials, taxonomy.PhaseSetup})
	probertest.Absent(t, sink, "probe_websocket_duration_seconds")
	rec.Mu.Lock()
	defer rec.Mu.Unlock()
	if len(rec.Requests) > 0 {
		t.Error("the target was contacted without credentials")
	}
}

// The hostname URL parameter sets the Host header and the TLS server name.
func TestWebsocketHostnameParameter(t *testing.T) {
	ca := testcert.NewCA(t, testcert.Spec{})
	spec := testcert.Named("ws.example")
	s, rec := probertest.WSServer(t, probertest.Drain, probertest.ServerOpts{TLS: true, CA: ca, Spec: &spec})
	m := wsModule(t, func(w *config.WebsocketProbe) { w.HTTPConfig.TLSConfig.CAFile = ca.File(t) })

	_, err := probertest.Run(t, m, probertest.WSURL(s, "/"))
	checkOutcome(t, err, failure{taxonomy.ClassTLS, taxonomy.ReasonCertHostnameMismatch, taxonomy.PhaseTLS})

	named, err := m.WithHostname("ws.example")
	if err != nil {
		t.Fatal(err)
	}
	_, err = probertest.Run(t, named, probertest.WSURL(s, "/"))
	checkOutcome(t, err, failure{})
	if got := rec.Last(t).Host; got != "ws.example" {
		t.Errorf("Host = %q, want ws.example", got)
	}

	// A parameter that disagrees with the module's own Host header is
	// refused before probing, as for http (the collector answers 400).
	own := wsModule(t, func(w *config.WebsocketProbe) { w.Headers = map[string]string{"Host": "other.example"} })
	if _, err := own.WithHostname("ws.example"); err == nil || !strings.Contains(err.Error(), `sets the Host header to "other.example"`) {
		t.Errorf("conflicting hostname: %v", err)
	}
	if _, err := own.WithHostname("other.example"); err != nil {
		t.Errorf("agreeing hostname: %v", err)
	}
}

func TestWebsocketTLS(t *testing.T) {
	ca := testcert.NewCA(t, testcert.Spec{})
	caFile, otherFile := ca.File(t), testcert.NewCA(t, testcert.Spec{}).File(t)
	onlyName := testcert.Named("ws.example")
	expired := testcert.Loopback().Expired()
	cases := []struct {
		name   string
		spec   *testcert.Spec
		module func(w *config.WebsocketProbe)
		want   failure
	}{
		{name: "verified", module: func(w *config.WebsocketProbe) { w.HTTPConfig.TLSConfig.CAFile = caFile }},
		{name: "unknown authority", module: func(w *config.WebsocketProbe) { w.HTTPConfig.TLSConfig.CAFile = otherFile },
			want: failure{taxonomy.ClassTLS, taxonomy.ReasonCertUnknownAuthority, taxonomy.PhaseTLS}},
		{name: "insecure_skip_verify", module: func(w *config.WebsocketProbe) { w.HTTPConfig.TLSConfig.InsecureSkipVerify = true }},
		{name: "expired", spec: &expired, module: func(w *config.WebsocketProbe) { w.HTTPConfig.TLSConfig.CAFile = caFile },
			want: failure{taxonomy.ClassTLS, taxonomy.ReasonCertExpired, taxonomy.PhaseTLS}},
		{name: "name mismatch", spec: &onlyName, module: func(w *config.WebsocketProbe) { w.HTTPConfig.TLSConfig.CAFile = caFile },
			want: failure{taxonomy.ClassTLS, taxonomy.ReasonCertHostnameMismatch, taxonomy.PhaseTLS}},
		{name: "server_name", spec: &onlyName, module: func(w *config.WebsocketProbe) {
			w.HTTPConfig.TLSConfig.CAFile = caFile
			w.HTTPConfig.TLSConfig.ServerName = "ws.example"
		}},
		{name: "Host header names the server", spec: &onlyName, module: func(w *config.WebsocketProbe) {
			w.HTTPConfig.TLSConfig.CAFile = caFile
			w.HTTPConfig.Headers = map[string]config.Strings{"Host": {"ws.example:443"}}
		}},
		{name: "server_name wins over Host", spec: &onlyName, module: func(w *config.WebsocketProbe) {
			w.HTTPConfig.TLSConfig.CAFile = caFile
			w.HTTPConfig.TLSConfig.ServerName = "localhost"
			w.Headers = map[string]string{"Host": "ws.example"}
		}, want: failure{taxonomy.ClassTLS, taxonomy.ReasonCertHostnameMismatch, taxonomy.PhaseTLS}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := probertest.WSServer(t, probertest.Drain, probertest.ServerOpts{TLS: true, CA: ca, Spec: c.spec})
			sink, err := probertest.Run(t, wsModule(t, c.module), probertest.WSURL(s, "/"))
			checkOutcome(t, err, c.want)
			if c.want != (failure{}) {
				probertest.WSPhases(t, sink, taxonomy.PhaseResolve, taxonomy.PhaseConnect)
				probertest.Metric(t, sink, 0, "probe_websocket_status_code")
				probertest.ChainSurvived(t, sink)
				return
			}
			probertest.WSPhases(t, sink, taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseProcessing)
			probertest.Metric(t, sink, 101, "probe_websocket_status_code")
			probertest.Metric(t, sink, 1, "probe_tls_version_info", "TLS 1.3")
			if v := probertest.Value(t, sink, "probe_ssl_earliest_cert_expiry"); v < float64(time.Now().Unix()) {
				t.Errorf("probe_ssl_earliest_cert_expiry = %v, want a time ahead", v)
			}
		})
	}
}

func TestWebsocketTLSToPlainServer(t *testing.T) {
	s, _ := probertest.WSServer(t, probertest.Drain, probertest.ServerOpts{})
	sink, err := probertest.Run(t, wsModule(t, nil), strings.Replace(s.URL, "http://", "wss://", 1))
	checkOutcome(t, err, failure{taxonomy.ClassTLS, taxonomy.ReasonHandshake, taxonomy.PhaseTLS})
	probertest.WSPhases(t, sink, taxonomy.PhaseResolve, taxonomy.PhaseConnect)
}

func TestWebsocketUpgradeRefused(t *testing.T) {
	s := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no websockets for you", http.StatusForbidden)
	}), probertest.ServerOpts{})
	m := wsYAMLModule(t, probertest.GreetScript)
	sink, err := probertest.Run(t, m, probertest.WSURL(s, "/"))
	e := checkOutcome(t, err, failure{taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus, taxonomy.PhaseValidate})
	if !strings.Contains(e.Error(), "403") {
		t.Errorf("the message does not name the status: %v", e)
	}
	probertest.Metric(t, sink, 403, "probe_websocket_status_code")
	probertest.Metric(t, sink, 0, "probe_websocket_connection_upgraded")
	probertest.Absent(t, sink, "probe_websocket_failed_due_to_regex")
	probertest.WSPhases(t, sink, taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseProcessing)
}

// An HTTP server that does not speak websocket answers the upgrade request
// like any other: with its page.
func TestWebsocketPlainHTTPServer(t *testing.T) {
	s := probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{})
	sink, err := probertest.Run(t, wsModule(t, nil), probertest.WSURL(s, "/"))
	checkOutcome(t, err, failure{taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus, taxonomy.PhaseValidate})
	probertest.Metric(t, sink, 200, "probe_websocket_status_code")
}

func TestWebsocketBadUpgradeResponses(t *testing.T) {
	cases := []struct {
		name   string
		answer string // sent after reading the upgrade request; "" closes
		reset  bool
		status float64
		want   failure
	}{
		{name: "101 without a valid accept key", status: 101,
			answer: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: wrong\r\n\r\n",
			want:   failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseProcessing}},
		{name: "101 without Upgrade", status: 101,
			answer: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n",
			want:   failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseProcessing}},
		{name: "not HTTP", answer: "SSH-2.0-OpenSSH_9.6\r\n",
			want: failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseProcessing}},
		{name: "bad header line", answer: "HTTP/1.1 101 Switching Protocols\r\nno colon here\r\n\r\n",
			want: failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseProcessing}},
		{name: "closed before answering",
			want: failure{taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, taxonomy.PhaseProcessing}},
		{name: "reset before answering", reset: true,
			want: failure{taxonomy.ClassConnect, taxonomy.ReasonReset, taxonomy.PhaseProcessing}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := probertest.RawServer(t, func(conn net.Conn) {
				if probertest.ReadRequest(conn) != nil {
					return
				}
				if c.reset {
					conn.(*net.TCPConn).SetLinger(0)
				}
				if c.answer == "" {
					conn.Close()
					return
				}
				io.WriteString(conn, c.answer)
				io.Copy(io.Discard, conn)
			})
			sink, err := probertest.Run(t, wsModule(t, nil), "ws://"+addr+"/")
			checkOutcome(t, err, c.want)
			probertest.Metric(t, sink, c.status, "probe_websocket_status_code")
			probertest.Metric(t, sink, 0, "probe_websocket_connection_upgraded")
			probertest.WSPhases(t, sink, taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseProcessing)
		})
	}
}

func TestWebsocketRefused(t *testing.T) {
	m := wsYAMLModule(t, probertest.GreetScript)
	sink, err := probertest.Run(t, m, "ws://"+testkit.ClosedTCPAddr(t)+"/")
	checkOutcome(t, err, failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect})
	// What a dashboard sees after a refused connection: the websocket
	// gauges at 0, the resolve metrics, and the phases that ran.
	probertest.Metric(t, sink, 0, "probe_websocket_status_code")
	probertest.Metric(t, sink, 0, "probe_websocket_connection_upgraded")
	probertest.Metric(t, sink, 4, "probe_ip_protocol")
	probertest.WSPhases(t, sink, taxonomy.PhaseResolve, taxonomy.PhaseConnect)
	probertest.Absent(t, sink, "probe_websocket_failed_due_to_regex", "probe_expect_info", "probe_tls_version_info")
}

func TestWebsocketResolve(t *testing.T) {
	s, _ := probertest.WSServer(t, probertest.Drain, probertest.ServerOpts{})
	p := probertest.Port(t, s.URL)
	cases := []struct {
		name     string
		host     string
		module   func(w *config.WebsocketProbe)
		want     failure
		protocol float64
	}{
		{name: "fallback to ip4", host: "v4only.test", protocol: 4},
		{name: "preferred ip4", host: "both.test", protocol: 4,
			module: func(w *config.WebsocketProbe) { w.IPProtocol = "ip4"; w.IPProtocolFallback = false }},
		{name: "no fallback", host: "v4only.test",
			module: func(w *config.WebsocketProbe) { w.IPProtocolFallback = false },
			want:   failure{taxonomy.ClassDNS, taxonomy.ReasonNoAddress, taxonomy.PhaseResolve}},
		{name: "nxdomain", host: "missing.test", want: failure{taxonomy.ClassDNS, taxonomy.ReasonNXDomain, taxonomy.PhaseResolve}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sink, err := probertest.Run(t, wsModule(t, c.module), "ws://"+net.JoinHostPort(c.host, p)+"/")
			checkOutcome(t, err, c.want)
			if c.want != (failure{}) {
				probertest.WSPhases(t, sink, taxonomy.PhaseResolve)
				probertest.Metric(t, sink, 0, "probe_websocket_status_code")
				return
			}
			probertest.Metric(t, sink, c.protocol, "probe_ip_protocol")
			probertest.Metric(t, sink, 1, "probe_websocket_connection_upgraded")
		})
	}
}

func TestWebsocketIPv6(t *testing.T) {
	s, _ := probertest.WSServer(t, probertest.Greeter, probertest.ServerOpts{Network: "tcp6"})
	m := wsYAMLModule(t, probertest.GreetScript)
	for _, target := range []string{probertest.WSURL(s, "/"), "ws://" + net.JoinHostPort("v6only.test", probertest.Port(t, s.URL)) + "/"} {
		t.Run(target, func(t *testing.T) {
			sink, err := probertest.Run(t, m, target)
			checkOutcome(t, err, failure{})
			probertest.Metric(t, sink, 6, "probe_ip_protocol")
			probertest.Metric(t, sink, 1, "probe_websocket_connection_upgraded")
		})
	}
}

func TestWebsocketScriptFailures(t *testing.T) {
	cases := []struct {
		name    string
		talk    func(c *websocket.Conn)
		section string
		want    failure
		regex   float64
		message string
	}{{
		name:    "message does not match",
		talk:    func(c *websocket.Conn) { probertest.WSSay(c, "goodbye"); probertest.Drain(c) },
		section: "query_response:\n  - expect: ^hello",
		want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonExpect, taxonomy.QueryStep(0)},
		regex:   1,
		message: "goodbye",
	}, {
		// blackbox semantics: expect judges the next message, not any later one.
		name:    "only the next message counts",
		talk:    func(c *websocket.Conn) { probertest.WSSay(c, "noise", "hello"); probertest.Drain(c) },
		section: "query_response:\n  - expect: ^hello",
		want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonExpect, taxonomy.QueryStep(0)},
		regex:   1,
	}, {
		name:    "empty message does not match",
		talk:    func(c *websocket.Conn) { probertest.WSSay(c, ""); probertest.Drain(c) },
		section: "query_response:\n  - expect: ^hello",
		want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonExpect, taxonomy.QueryStep(0)},
		regex:   1,
	}, {
		name:    "second expect fails",
		talk:    probertest.Greeter,
		section: "query_response:\n  - expect: ^hello\n  - send: ping\n  - expect: ^pong",
		want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonExpect, taxonomy.QueryStep(2)},
		regex:   1,
		message: "echo: ping",
	}, {
		name:    "expect_bytes differs",
		talk:    func(c *websocket.Conn) { probertest.WSSay(c, "hello!"); probertest.Drain(c) },
		section: "query_response:\n  - expect_bytes: hello",
		want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonExpect, taxonomy.QueryStep(0)},
	}, {
		name: "close frame while expecting",
		talk: func(c *websocket.Conn) {
			c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"))
		},
		section: "query_response:\n  - expect: ^hello",
		want:    failure{taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, taxonomy.QueryStep(0)},
		message: "bye",
	}, {
		name:    "hang-up without close frame",
		talk:    func(c *websocket.Conn) { probertest.WSSay(c, "hello"); c.NetConn().Close() },
		section: "query_response:\n  - expect: ^hello\n  - expect: ^more",
		want:    failure{taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, taxonomy.QueryStep(1)},
	}, {
		name:    "close while expecting bytes",
		talk:    func(c *websocket.Conn) { c.ReadMessage(); c.NetConn().Close() },
		section: "query_response:\n  - send: hi\n  - expect_bytes: hello",
		want:    failure{taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, taxonomy.QueryStep(1)},
	}, {
		name: "reset mid-script",
		talk: func(c *websocket.Conn) {
			c.ReadMessage()
			c.NetConn().(*net.TCPConn).SetLinger(0)
			c.NetConn().Close()
		},
		section: "query_response:\n  - send: hi\n  - expect: ^hello",
		want:    failure{taxonomy.ClassConnect, taxonomy.ReasonReset, taxonomy.QueryStep(1)},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := probertest.WSServer(t, c.talk, probertest.ServerOpts{})
			sink, err := probertest.Run(t, wsYAMLModule(t, c.section), probertest.WSURL(s, "/"))
			e := checkOutcome(t, err, c.want)
			if !strings.Contains(e.Error(), c.message) {
				t.Errorf("the message does not say %q: %v", c.message, e)
			}
			probertest.Metric(t, sink, c.regex, "probe_websocket_failed_due_to_regex")
			probertest.Metric(t, sink, 1, "probe_websocket_connection_upgraded")
			probertest.Absent(t, sink, "probe_failed_due_to_bytes")
			probertest.WSPhases(t, sink, taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseProcessing, taxonomy.PhaseTransfer)
		})
	}
}

func TestWebsocketExpectBytes(t *testing.T) {
	s, _ := probertest.WSServer(t, func(c *websocket.Conn) {
		c.WriteMessage(websocket.BinaryMessage, []byte{0x00, 0xff, 'o', 'k'})
		probertest.Drain(c)
	}, probertest.ServerOpts{})
	m := wsModule(t, func(w *config.WebsocketProbe) {
		w.QueryResponse = []config.QueryResponse{{ExpectBytes: "\x00\xffok"}}
	})
	sink, err := probertest.Run(t, m, probertest.WSURL(s, "/"))
	checkOutcome(t, err, failure{})
	probertest.Metric(t, sink, 0, "probe_websocket_failed_due_to_regex")
}

func TestWebsocketDeadline(t *testing.T) {
	const deadline = 300 * time.Millisecond
	ca := testcert.NewCA(t, testcert.Spec{})
	stalledUpgrade := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { probertest.Hold(r) }), probertest.ServerOpts{})
	silent, _ := probertest.WSServer(t, probertest.Drain, probertest.ServerOpts{})
	slowTLS := probertest.RawServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	secureSilent, _ := probertest.WSServer(t, probertest.Drain, probertest.ServerOpts{TLS: true, CA: ca})
	cases := []struct {
		name   string
		target string
		script string
		want   failure
		phases []taxonomy.Phase
	}{
		{name: "TLS handshake", target: "wss://" + slowTLS + "/",
			want: failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseTLS}, phases: []taxonomy.Phase{taxonomy.PhaseResolve, taxonomy.PhaseConnect}},
		{name: "upgrade", target: probertest.WSURL(stalledUpgrade, "/"),
			want: failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseProcessing}, phases: []taxonomy.Phase{taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseProcessing}},
		{name: "expect", target: probertest.WSURL(silent, "/"), script: "query_response:\n  - send: hi\n  - expect: ^never",
			want:   failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.QueryStep(1)},
			phases: []taxonomy.Phase{taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseProcessing, taxonomy.PhaseTransfer}},
		{name: "expect over TLS", target: probertest.WSURL(secureSilent, "/"), script: "query_response:\n  - expect_bytes: never",
			want:   failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.QueryStep(0)},
			phases: []taxonomy.Phase{taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseProcessing, taxonomy.PhaseTransfer}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			section := "http_config:\n  tls_config:\n    ca_file: " + ca.File(t) + "\n" + c.script
			sink, took, err := probertest.Probe(t, wsYAMLModule(t, section), c.target, deadline)
			checkOutcome(t, err, c.want)
			if took > deadline+200*time.Millisecond {
				t.Errorf("the probe took %v with a %v deadline", took, deadline)
			}
			probertest.WSPhases(t, sink, c.phases...)
			last := c.phases[len(c.phases)-1]
			if v := probertest.WSPhase(t, sink, last); v < (deadline / 2).Seconds() {
				t.Errorf("phase %s counts %vs, want the time up to the deadline", last, v)
			}
		})
	}
}

// A scrape abandoned mid-probe ends the probe at once.
func TestWebsocketCanceled(t *testing.T) {
	s, _ := probertest.WSServer(t, probertest.Drain, probertest.ServerOpts{})
	m := wsYAMLModule(t, "query_response:\n  - expect: ^never")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	err := probeWebsocket(ctx, probertest.WSURL(s, "/"), m, probemetrics.NewSink(), probertest.DiscardLogger)
	checkOutcome(t, err, failure{taxonomy.ClassTimeout, taxonomy.ReasonCanceled, taxonomy.QueryStep(0)})
	if took := time.Since(start); took > time.Second {
		t.Errorf("the cancelled probe took %v", took)
	}
}

func TestWebsocketPrepareRefuses(t *testing.T) {
	cases := map[string]string{
		"handshake header":   "headers:\n  Sec-WebSocket-Key: abc",
		"handshake header 2": "http_config:\n  headers:\n    connection: close",
		"two Host headers":   "headers:\n  Host: a.example\nhttp_config:\n  headers:\n    Host: b.example",
		"Host list":          "http_config:\n  headers:\n    Host: [a.example, b.example]",
		"secret reference":   "http_config:\n  basic_auth:\n    username: u\n    password_ref: vault",
	}
	for name, section := range cases {
		t.Run(name, func(t *testing.T) {
			m, err := loadSection(t, "websocket", section)
			if err == nil {
				t.Fatalf("the module was prepared: %+v", m.Websocket)
			}
			if !strings.Contains(err.Error(), "websocket") {
				t.Errorf("the error does not name the section: %v", err)
			}
		})
	}
}

func TestWebsocketStartTLSUnsupported(t *testing.T) {
	err := (&wsConversation{}).StartTLS(context.Background())
	var e *taxonomy.Error
	if !errors.As(err, &e) || e.Class != taxonomy.ClassProber || e.Reason != taxonomy.ReasonUnsupported {
		t.Fatalf("startTLS = %v, want prober/unsupported", err)
	}
}

// Every option blackbox_exporter's websocket section has, as its own
// documentation writes them, prepares and probes.
func TestWebsocketAllOptions(t *testing.T) {
	s, rec := probertest.WSServer(t, func(c *websocket.Conn) {
		if _, msg, err := c.ReadMessage(); err == nil && string(msg) == `{"op": "ping"}` {
			probertest.WSSay(c, `{"op": "pong"}`)
		}
		probertest.Drain(c)
	}, probertest.ServerOpts{TLS: true})
	m := wsYAMLModule(t, `
preferred_ip_protocol: ip4
ip_protocol_fallback: false
http_config:
  basic_auth:
    username: ws-user
    password: ws-password
  bearer_token: ws-bearer-token
  tls_config:
    insecure_skip_verify: true
    server_name: ws.example.com
  headers:
    Origin: https://example.com
    X-Multi: [a, b]
headers:
  Sec-WebSocket-Protocol: chat
query_response:
  - send: '{"op": "ping"}'
  - expect: '"op":\s*"pong"'
`)
	sink, err := probertest.Run(t, m, probertest.WSURL(s, "/"))
	checkOutcome(t, err, failure{})
	probertest.Metric(t, sink, 0, "probe_websocket_failed_due_to_regex")
	r := rec.Last(t)
	if got := r.Header.Get("Sec-WebSocket-Protocol"); got != "chat" {
		t.Errorf("Sec-WebSocket-Protocol = %q, want chat", got)
	}
	if got := r.Header.Get("Authorization"); !strings.HasPrefix(got, "Basic ") {
		t.Errorf("Authorization = %q, want basic_auth's", got)
	}
}

func probeWebsocket(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return m.Prepared.(*wsPrepared).Probe(ctx, target, m, sink, logger)
}
