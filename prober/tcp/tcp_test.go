package tcp

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// tcpEnv is what a case sees of its test: a CA and a server certificate
// for localhost issued by it.
type tcpEnv struct {
	t    *testing.T
	ca   *testcert.CA
	cert *testcert.Cert
}

func (e *tcpEnv) serverTLS() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{e.cert.TLS()}}
}

type tcpCase struct {
	name    string
	serve   func(e *tcpEnv, p *probertest.Peer) // the server's side; none: listen and say nothing
	module  func(c *config.TCPProbe, e *tcpEnv)
	target  func(addr string) string // the listener's address when nil
	timeout time.Duration            // 2s when zero
	want    failure
	message string
	metrics map[string]float64
	absent  []string
	check   func(t *testing.T, s *probemetrics.Sink)
}

func runTCPCases(t *testing.T, cases []tcpCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := &tcpEnv{t: t, ca: testcert.NewCA(t, testcert.Spec{})}
			e.cert = e.ca.Issue(t, testcert.Loopback())
			addr := probertest.RawServer(t, func(c net.Conn) {
				defer c.Close()
				if tc.serve != nil {
					tc.serve(e, probertest.NewPeer(t, c))
					return
				}
				io.Copy(io.Discard, c)
			})
			m := defaultModule(t, "tcp", func(cm *config.Module) {
				cm.TCP.TLSConfig.CAFile = e.ca.File(t)
				if tc.module != nil {
					tc.module(&cm.TCP, e)
				}
			})
			target := addr
			if tc.target != nil {
				target = tc.target(addr)
			}
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 2 * time.Second
			}
			sink, took, err := probeTCPWithin(t, m, target, timeout)
			if tc.timeout != 0 && took > timeout+200*time.Millisecond {
				t.Errorf("the probe took %v with a %v deadline", took, timeout)
			}
			perr := checkOutcome(t, err, tc.want)
			if tc.message != "" && (perr == nil || !strings.Contains(perr.Error(), tc.message)) {
				t.Errorf("error %v does not say %q", err, tc.message)
			}
			for name, want := range tc.metrics {
				probertest.Metric(t, sink, want, name)
			}
			probertest.Absent(t, sink, tc.absent...)
			if tc.check != nil {
				tc.check(t, sink)
			}
		})
	}
}

func probeTCPWithin(t *testing.T, m *core.Module, target string, timeout time.Duration) (*probemetrics.Sink, time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	sink := probemetrics.NewSink()
	start := time.Now()
	err := probeTCP(ctx, target, m, sink, probertest.DiscardLogger)
	probertest.Observe(t, sink)
	return sink, time.Since(start), err
}

func steps(qr ...config.QueryResponse) func(c *config.TCPProbe, _ *tcpEnv) {
	return func(c *config.TCPProbe, _ *tcpEnv) { c.QueryResponse = qr }
}

func TestTCPConnect(t *testing.T) {
	runTCPCases(t, []tcpCase{
		{
			name:    "connect only",
			metrics: map[string]float64{"probe_failed_due_to_regex": 0, "probe_failed_due_to_bytes": 0, "probe_ip_protocol": 4},
			absent:  []string{"probe_ssl_earliest_cert_expiry", "probe_expect_info"},
			check: func(t *testing.T, s *probemetrics.Sink) {
				if v := probertest.Value(t, s, "probe_tcp_duration_seconds", "connect"); v <= 0 {
					t.Errorf("connect phase %v, want > 0", v)
				}
			},
		},
		{
			name:    "refused: only the common metrics",
			target:  func(string) string { return testkit.ClosedTCPAddr(t) },
			want:    failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect},
			metrics: map[string]float64{"probe_ip_protocol": 4},
			absent:  []string{"probe_failed_due_to_regex", "probe_failed_due_to_bytes"},
		},
		{
			name:   "a service name for the port",
			target: func(string) string { return "127.0.0.1:nonexistent-service" },
			want:   failure{taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup},
		},
		{
			name:    "no port",
			target:  func(string) string { return "example.com" },
			want:    failure{taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup},
			message: "is not host:port",
		},
		{
			name:   "port zero",
			target: func(string) string { return "127.0.0.1:0" },
			want:   failure{taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup},
		},
		{
			name:   "source address",
			module: func(c *config.TCPProbe, _ *tcpEnv) { c.SourceIPAddress = "127.0.0.9" },
			serve: func(e *tcpEnv, p *probertest.Peer) {
				if ip := p.C.RemoteAddr().(*net.TCPAddr).IP.String(); ip != "127.0.0.9" {
					e.t.Errorf("the server saw the probe from %s", ip)
				}
			},
		},
	})
}

func TestTCPQueryResponse(t *testing.T) {
	runTCPCases(t, []tcpCase{
		{
			name: "expect, send with a group, labels",
			serve: func(e *tcpEnv, p *probertest.Peer) {
				p.Say("220 mail.example ESMTP Postfix 3.7")
				if p.Hear("EHLO mail.example") {
					p.Say("250 ok")
				}
			},
			module: steps(
				config.QueryResponse{
					Expect: config.MustNewRegexp(`^220 (\S+) ESMTP (.+)$`),
					Send:   "EHLO ${1}",
					Labels: []config.Label{{Name: "host", Value: "${1}"}, {Name: "software", Value: "${2}"}},
				},
				probertest.ExpectStep("^250 "),
			),
			metrics: map[string]float64{"probe_failed_due_to_regex": 0},
			check: func(t *testing.T, s *probemetrics.Sink) {
				probertest.Metric(t, s, 1, "probe_expect_info", "mail.example", "Postfix 3.7")
				if v := probertest.Value(t, s, "probe_tcp_duration_seconds", "query"); v <= 0 {
					t.Errorf("query phase %v", v)
				}
			},
		},
		{
			name:   "expect skips lines until one matches",
			serve:  func(e *tcpEnv, p *probertest.Peer) { p.Say("noise", "more noise", "READY") },
			module: steps(probertest.ExpectStep("^READY$")),
		},
		{
			name: "lines read together are kept for the next step",
			serve: func(e *tcpEnv, p *probertest.Peer) {
				io.WriteString(p.C, "first\r\nsecond\r\n") // one write, likely one read
				io.Copy(io.Discard, p.C)
			},
			module: steps(probertest.ExpectStep("^first$"), probertest.ExpectStep("^second$")),
		},
		{
			name: "a prompt without a newline",
			serve: func(e *tcpEnv, p *probertest.Peer) {
				io.WriteString(p.C, "login: ")
				if p.Hear("admin") {
					p.Say("welcome")
				}
			},
			// The last expect keeps the probe until the server has heard it.
			module: steps(config.QueryResponse{Expect: config.MustNewRegexp("login: $"), Send: "admin"}, probertest.ExpectStep("^welcome$")),
		},
		{
			name:    "no line matches before the peer closes",
			serve:   func(e *tcpEnv, p *probertest.Peer) { p.Say("220 hello", "421 go away") },
			module:  steps(probertest.ExpectStep("^220"), probertest.ExpectStep("^250")),
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonExpect, taxonomy.QueryStep(1)},
			message: `step 1: expect "^250" matched nothing before the input ended; last read: "421 go away"`,
			metrics: map[string]float64{"probe_failed_due_to_regex": 1},
		},
		{
			name: "the peer resets the connection",
			serve: func(e *tcpEnv, p *probertest.Peer) {
				p.C.(*net.TCPConn).SetLinger(0) // close with RST
				p.Say("220 hi")
				time.Sleep(50 * time.Millisecond)
			},
			module: steps(probertest.ExpectStep("^220"), probertest.ExpectStep("^250")),
			want:   failure{taxonomy.ClassConnect, taxonomy.ReasonReset, taxonomy.QueryStep(1)},
		},
		{
			name:    "the peer closes at once",
			serve:   func(e *tcpEnv, p *probertest.Peer) {},
			module:  steps(probertest.ExpectStep("^SSH-")),
			want:    failure{taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, taxonomy.QueryStep(0)},
			metrics: map[string]float64{"probe_failed_due_to_regex": 1},
		},
		{
			name:    "the peer says nothing: the deadline names the step",
			serve:   func(e *tcpEnv, p *probertest.Peer) { p.Say("220 hi"); time.Sleep(time.Second) },
			module:  steps(probertest.ExpectStep("^220"), probertest.SendStep("PING"), probertest.ExpectStep("^PONG")),
			timeout: 300 * time.Millisecond,
			want:    failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.QueryStep(2)},
		},
		{
			name: "a line without end",
			serve: func(e *tcpEnv, p *probertest.Peer) {
				chunk := strings.Repeat("x", 64<<10)
				for i := 0; i < 20; i++ {
					if _, err := io.WriteString(p.C, chunk); err != nil {
						return
					}
				}
			},
			module: steps(probertest.ExpectStep("^never$")),
			want:   failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.QueryStep(0)},
		},
		{
			name:    "expect_bytes",
			serve:   func(e *tcpEnv, p *probertest.Peer) { p.C.Write([]byte{0x16, 0x03, 0x01}) },
			module:  steps(config.QueryResponse{ExpectBytes: "\x16\x03"}),
			metrics: map[string]float64{"probe_failed_due_to_bytes": 0},
		},
		{
			name:    "expect_bytes mismatch",
			serve:   func(e *tcpEnv, p *probertest.Peer) { p.C.Write([]byte("HTTP")) },
			module:  steps(config.QueryResponse{ExpectBytes: "\x16\x03"}),
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonExpect, taxonomy.QueryStep(0)},
			metrics: map[string]float64{"probe_failed_due_to_bytes": 1},
		},
		{
			name:   "expect_bytes cut short",
			serve:  func(e *tcpEnv, p *probertest.Peer) { p.C.Write([]byte{0x16}) },
			module: steps(config.QueryResponse{ExpectBytes: "\x16\x03"}),
			want:   failure{taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, taxonomy.QueryStep(0)},
		},
	})
}

func TestTCPTLS(t *testing.T) {
	runTCPCases(t, []tcpCase{
		{
			name: "tls from the start",
			serve: func(e *tcpEnv, p *probertest.Peer) {
				p.StartTLS(e.serverTLS())
				p.Say("hello over tls")
			},
			module: func(c *config.TCPProbe, _ *tcpEnv) {
				c.TLS = true
				c.QueryResponse = []config.QueryResponse{probertest.ExpectStep("^hello over tls$")}
			},
			check: func(t *testing.T, s *probemetrics.Sink) {
				probertest.Metric(t, s, 1, "probe_tls_version_info", "TLS 1.3")
				if v := probertest.Value(t, s, "probe_tcp_duration_seconds", "tls"); v <= 0 {
					t.Errorf("tls phase %v", v)
				}
				probertest.Value(t, s, "probe_ssl_earliest_cert_expiry")
			},
		},
		{
			name:   "tls with a name the certificate does not have",
			serve:  func(e *tcpEnv, p *probertest.Peer) { p.StartTLS(e.serverTLS()) },
			module: func(c *config.TCPProbe, _ *tcpEnv) { c.TLS = true; c.TLSConfig.ServerName = "other.example" },
			want:   failure{taxonomy.ClassTLS, taxonomy.ReasonCertHostnameMismatch, taxonomy.PhaseTLS},
			absent: []string{"probe_failed_due_to_regex"},
			check:  func(t *testing.T, s *probemetrics.Sink) { probertest.ChainSurvived(t, s) },
		},
		{
			name:    "a server that never answers the handshake",
			serve:   func(e *tcpEnv, p *probertest.Peer) { time.Sleep(time.Second) },
			module:  func(c *config.TCPProbe, _ *tcpEnv) { c.TLS = true },
			timeout: 300 * time.Millisecond,
			want:    failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseTLS},
		},
		{
			name: "starttls step",
			serve: func(e *tcpEnv, p *probertest.Peer) {
				p.Say("220 ready")
				if p.Hear("STARTTLS") {
					p.Say("220 go ahead")
					p.StartTLS(e.serverTLS())
					p.Say("250 secure")
				}
			},
			module: steps(probertest.ExpectStep("^220 ready"), probertest.SendStep("STARTTLS"), config.QueryResponse{Expect: config.MustNewRegexp("^220 go"), StartTLS: true}, probertest.ExpectStep("^250 secure")),
			check: func(t *testing.T, s *probemetrics.Sink) {
				probertest.Metric(t, s, 1, "probe_tls_version_info", "TLS 1.3")
			},
		},
		{
			name: "plaintext injected before the handshake",
			serve: func(e *tcpEnv, p *probertest.Peer) {
				p.Say("220 ready")
				if p.Hear("STARTTLS") {
					io.WriteString(p.C, "220 go ahead\r\n250 injected\r\n")
					p.StartTLS(e.serverTLS())
				}
			},
			module:  steps(probertest.ExpectStep("^220 ready"), probertest.SendStep("STARTTLS"), config.QueryResponse{Expect: config.MustNewRegexp("^220 go"), StartTLS: true}),
			want:    failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseTLS},
			message: "plaintext after agreeing to start TLS",
		},
	})
}

// The STARTTLS presets, each against a server speaking its protocol.
func TestTCPStartTLSPresets(t *testing.T) {
	preset := func(name string, after ...config.QueryResponse) func(c *config.TCPProbe, _ *tcpEnv) {
		return func(c *config.TCPProbe, _ *tcpEnv) {
			c.StartTLSPreset = name
			c.QueryResponse = after
		}
	}
	smtp := func(ehlo ...string) func(e *tcpEnv, p *probertest.Peer) {
		return func(e *tcpEnv, p *probertest.Peer) {
			p.Say("220-mail.example ESMTP", "220 welcome")
			if !p.Hear("EHLO " + presetHelo) {
				return
			}
			p.Say(ehlo...)
			if line, _ := p.R.ReadString('\n'); strings.TrimSpace(line) == "STARTTLS" {
				p.Say("220 2.0.0 Ready to start TLS")
				p.StartTLS(e.serverTLS())
				if p.Hear("NOOP") {
					p.Say("250 2.0.0 Ok")
				}
			}
		}
	}
	runTCPCases(t, []tcpCase{
		{
			name:   "smtp, then a script over TLS",
			serve:  smtp("250-mail.example", "250-PIPELINING", "250-STARTTLS", "250 8BITMIME"),
			module: preset("smtp", probertest.SendStep("NOOP"), probertest.ExpectStep("^250 ")),
			check: func(t *testing.T, s *probemetrics.Sink) {
				probertest.Metric(t, s, 1, "probe_tls_version_info", "TLS 1.3")
			},
		},
		{
			name:    "smtp without STARTTLS on offer",
			serve:   smtp("250-mail.example", "250 8BITMIME"),
			module:  preset("smtp"),
			want:    failure{taxonomy.ClassTLS, taxonomy.ReasonStartTLSRefused, taxonomy.PhaseStartTLS},
			message: "the server does not offer STARTTLS",
			absent:  []string{"probe_tls_version_info"},
		},
		{
			name:    "smtp greeting refusing service",
			serve:   func(e *tcpEnv, p *probertest.Peer) { p.Say("554 no service for you") },
			module:  preset("smtp"),
			want:    failure{taxonomy.ClassStatus, taxonomy.ReasonReplyCode, taxonomy.PhaseStartTLS},
			message: `the greeting was "554 no service for you", not a 220 reply`,
		},
		{
			name: "smtp STARTTLS answered with an error",
			serve: func(e *tcpEnv, p *probertest.Peer) {
				p.Say("220 hi")
				p.Hear("EHLO " + presetHelo)
				p.Say("250-hi", "250 STARTTLS")
				p.Hear("STARTTLS")
				p.Say("454 4.7.0 TLS not available")
			},
			module: preset("smtp"),
			want:   failure{taxonomy.ClassTLS, taxonomy.ReasonStartTLSRefused, taxonomy.PhaseStartTLS},
		},
		{
			name:    "smtp server silent after the greeting",
			serve:   func(e *tcpEnv, p *probertest.Peer) { p.Say("220 hi"); time.Sleep(time.Second) },
			module:  preset("smtp"),
			timeout: 300 * time.Millisecond,
			want:    failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseStartTLS},
		},
		{
			name:   "smtp garbage",
			serve:  func(e *tcpEnv, p *probertest.Peer) { p.Say("SSH-2.0-OpenSSH_9.6") },
			module: preset("smtp"),
			want:   failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseStartTLS},
		},
		{
			name: "imap",
			serve: func(e *tcpEnv, p *probertest.Peer) {
				p.Say("* OK [CAPABILITY IMAP4rev1 STARTTLS] ready")
				if p.Hear("s1 STARTTLS") {
					p.Say("* CAPABILITY IMAP4rev1", "s1 OK Begin TLS negotiation now")
					p.StartTLS(e.serverTLS())
				}
			},
			module: preset("imap"),
		},
		{
			name: "imap refusing",
			serve: func(e *tcpEnv, p *probertest.Peer) {
				p.Say("* OK ready")
				p.Hear("s1 STARTTLS")
				p.Say("s1 BAD STARTTLS not supported")
			},
			module: preset("imap"),
			want:   failure{taxonomy.ClassTLS, taxonomy.ReasonStartTLSRefused, taxonomy.PhaseStartTLS},
		},
		{
			name: "pop3",
			serve: func(e *tcpEnv, p *probertest.Peer) {
				p.Say("+OK POP3 ready")
				if p.Hear("STLS") {
					p.Say("+OK begin TLS")
					p.StartTLS(e.serverTLS())
				}
			},
			module: preset("pop3"),
		},
		{
			name: "ftp",
			serve: func(e *tcpEnv, p *probertest.Peer) {
				p.Say("220-FTP server", "220 ready")
				if p.Hear("AUTH TLS") {
					p.Say("234 AUTH TLS OK")
					p.StartTLS(e.serverTLS())
				}
			},
			module: preset("ftp"),
		},
		{
			name: "postgres",
			serve: func(e *tcpEnv, p *probertest.Peer) {
				req := make([]byte, 8)
				if _, err := io.ReadFull(p.R, req); err != nil || string(req) != string(postgresSSLRequest) {
					e.t.Errorf("SSLRequest %x, %v", req, err)
					return
				}
				p.C.Write([]byte("S"))
				p.StartTLS(e.serverTLS())
			},
			module: preset("postgres"),
			check: func(t *testing.T, s *probemetrics.Sink) {
				probertest.Metric(t, s, 1, "probe_tls_version_info", "TLS 1.3")
			},
		},
		{
			name: "postgres without TLS",
			serve: func(e *tcpEnv, p *probertest.Peer) {
				io.ReadFull(p.R, make([]byte, 8))
				p.C.Write([]byte("N"))
			},
			module: preset("postgres"),
			want:   failure{taxonomy.ClassTLS, taxonomy.ReasonStartTLSRefused, taxonomy.PhaseStartTLS},
		},
	})
}

func TestTCPHostnameSetsServerName(t *testing.T) {
	ca := testcert.NewCA(t, testcert.Spec{})
	cert := ca.Issue(t, testcert.Named("svc.example"))
	addr := probertest.RawServer(t, func(c net.Conn) {
		defer c.Close()
		tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert.TLS()}}).Handshake()
	})
	m := defaultModule(t, "tcp", func(cm *config.Module) {
		cm.TCP.TLS = true
		cm.TCP.TLSConfig.CAFile = ca.File(t)
	})
	_, _, err := probeTCPWithin(t, m, addr, 2*time.Second)
	checkOutcome(t, err, failure{taxonomy.ClassTLS, taxonomy.ReasonCertHostnameMismatch, taxonomy.PhaseTLS})
	named, err := m.WithHostname("svc.example")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = probeTCPWithin(t, named, addr, 2*time.Second)
	checkOutcome(t, err, failure{})
}

func TestTCPOverIPv6(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("cannot listen on [::1]: %v", err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.WriteString(c, "hello\n")
			c.Close()
		}
	}()
	m := defaultModule(t, "tcp", func(cm *config.Module) {
		cm.TCP.QueryResponse = []config.QueryResponse{probertest.ExpectStep("^hello")}
	})
	sink, _, err := probeTCPWithin(t, m, ln.Addr().String(), 2*time.Second)
	checkOutcome(t, err, failure{})
	probertest.Metric(t, sink, 6, "probe_ip_protocol")
}

func probeTCP(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return m.Prepared.(*tcpPrepared).Probe(ctx, target, m, sink, logger)
}
