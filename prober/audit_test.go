package prober

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	pconfig "github.com/prometheus/common/config"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// This file is the audit of the failure enum: one real scenario for every
// (prober, class) pair a prober can produce, and the checks that keep the
// matrix in docs/error-classes.md equal to the enum and to these scenarios.

// matrixDeadline is the probe deadline of the scenarios that wait for it.
const matrixDeadline = 300 * time.Millisecond

// matrixCase is a scenario in which prober fails with want.
type matrixCase struct {
	prober string
	want   failure
	run    func(t *testing.T) error
}

// name is the subtest's name, "<prober>/<class>".
func (c matrixCase) name() string { return c.prober + "/" + string(c.want.class) }

// testedInPackages are the scenarios a prober's package runs itself, as
// they reach into the prober: prober/icmp's TestICMPFailureScenarios
// opens ICMP sockets through its own hooks.
var testedInPackages = []string{"icmp/connect", "icmp/timeout", "icmp/assertion"}

// failureMatrix has one case per (prober, class) pair that a prober can
// produce; TestFailureMatrixTable checks the list against the matrix of
// docs/error-classes.md.
var failureMatrix = []matrixCase{
	// ---- http ----
	{"http", failure{taxonomy.ClassDNS, taxonomy.ReasonNXDomain, taxonomy.PhaseResolve}, func(t *testing.T) error {
		return runErr(t, newModule(t, nil), "http://nonexistent.test/")
	}},
	{"http", failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect}, func(t *testing.T) error {
		return runErr(t, newModule(t, nil), "http://"+testkit.ClosedTCPAddr(t))
	}},
	{"http", failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseProcessing}, func(t *testing.T) error {
		srv := probertest.NewServer(t, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { probertest.Hold(r) }), probertest.ServerOpts{})
		return probeErr(t, newModule(t, nil), srv.URL, matrixDeadline)
	}},
	{"http", failure{taxonomy.ClassTLS, taxonomy.ReasonCertUnknownAuthority, taxonomy.PhaseTLS}, func(t *testing.T) error {
		srv := probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{TLS: true}) // its CA is trusted nowhere
		return runErr(t, newModule(t, nil), srv.URL)
	}},
	{"http", failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseTransfer}, func(t *testing.T) error {
		addr := probertest.RawServer(t, probertest.Answer(func(c net.Conn) { io.WriteString(c, "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n") }))
		return runErr(t, newModule(t, nil), "http://"+addr)
	}},
	{"http", failure{taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus, taxonomy.PhaseValidate}, func(t *testing.T) error {
		srv := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }), probertest.ServerOpts{})
		return runErr(t, newModule(t, nil), srv.URL)
	}},
	{"http", failure{taxonomy.ClassAssertion, taxonomy.ReasonBodyRegex, taxonomy.PhaseValidate}, func(t *testing.T) error {
		srv := probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{})
		m := newModule(t, func(h *config.HTTPProbe) {
			h.FailIfBodyNotMatchesRegexp = []config.Regexp{config.MustNewRegexp("^healthy$")}
		})
		return runErr(t, m, srv.URL)
	}},
	{"http", failure{taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup}, func(t *testing.T) error {
		return runErr(t, newModule(t, nil), "ftp://example.test/")
	}},

	// ---- tcp ----
	{"tcp", failure{taxonomy.ClassDNS, taxonomy.ReasonNXDomain, taxonomy.PhaseResolve}, func(t *testing.T) error {
		return runErr(t, defaultModule(t, "tcp", nil), "nonexistent.test:25")
	}},
	{"tcp", failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect}, func(t *testing.T) error {
		return runErr(t, defaultModule(t, "tcp", nil), testkit.ClosedTCPAddr(t))
	}},
	{"tcp", failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.QueryStep(0)}, func(t *testing.T) error {
		addr := probertest.RawServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
		return probeErr(t, tcpScript(t, probertest.ExpectStep("^220 ")), addr, matrixDeadline)
	}},
	{"tcp", failure{taxonomy.ClassTLS, taxonomy.ReasonCertUnknownAuthority, taxonomy.PhaseTLS}, func(t *testing.T) error {
		addr := probertest.RawServer(t, tlsGreeter(t))
		m := defaultModule(t, "tcp", func(cm *config.Module) { cm.TCP.TLS = true })
		return runErr(t, m, addr)
	}},
	{"tcp", failure{taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, taxonomy.QueryStep(0)}, func(t *testing.T) error {
		addr := probertest.RawServer(t, func(c net.Conn) { c.Close() })
		return runErr(t, tcpScript(t, probertest.ExpectStep("^220 ")), addr)
	}},
	{"tcp", failure{taxonomy.ClassStatus, taxonomy.ReasonReplyCode, taxonomy.PhaseStartTLS}, func(t *testing.T) error {
		addr := probertest.RawServer(t, saying("554 5.7.1 no service for you\r\n"))
		m := defaultModule(t, "tcp", func(cm *config.Module) { cm.TCP.StartTLSPreset = "smtp" })
		return runErr(t, m, addr)
	}},
	{"tcp", failure{taxonomy.ClassAssertion, taxonomy.ReasonExpect, taxonomy.QueryStep(0)}, func(t *testing.T) error {
		addr := probertest.RawServer(t, saying("hello\r\n"))
		return runErr(t, tcpScript(t, probertest.ExpectStep("^bye")), addr)
	}},
	{"tcp", failure{taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup}, func(t *testing.T) error {
		return runErr(t, defaultModule(t, "tcp", nil), "example.test")
	}},

	// ---- unix ----
	{"unix", failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect}, func(t *testing.T) error {
		return runErr(t, defaultModule(t, "unix", nil), filepath.Join(t.TempDir(), "nobody.sock"))
	}},
	{"unix", failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.QueryStep(0)}, func(t *testing.T) error {
		path := unixServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
		return probeErr(t, unixScript(t, probertest.ExpectStep("^ready")), path, matrixDeadline)
	}},
	{"unix", failure{taxonomy.ClassTLS, taxonomy.ReasonCertUnknownAuthority, taxonomy.PhaseTLS}, func(t *testing.T) error {
		path := unixServer(t, tlsGreeter(t))
		m := defaultModule(t, "unix", func(cm *config.Module) {
			cm.Unix.TLS = true
			cm.Unix.TLSConfig.ServerName = "localhost"
		})
		return runErr(t, m, path)
	}},
	{"unix", failure{taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, taxonomy.QueryStep(0)}, func(t *testing.T) error {
		path := unixServer(t, func(c net.Conn) { c.Close() })
		return runErr(t, unixScript(t, probertest.ExpectStep("^ready")), path)
	}},
	{"unix", failure{taxonomy.ClassAssertion, taxonomy.ReasonExpect, taxonomy.QueryStep(0)}, func(t *testing.T) error {
		path := unixServer(t, saying("hello\n"))
		return runErr(t, unixScript(t, probertest.ExpectStep("^bye")), path)
	}},
	{"unix", failure{taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup}, func(t *testing.T) error {
		return runErr(t, defaultModule(t, "unix", nil), "")
	}},

	// ---- dns ----
	{"dns", failure{taxonomy.ClassDNS, taxonomy.ReasonNXDomain, taxonomy.PhaseResolve}, func(t *testing.T) error {
		return runErr(t, dnsModule(t, "query_name: example.test"), "nonexistent.test")
	}},
	{"dns", failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect}, func(t *testing.T) error {
		return runErr(t, dnsModule(t, "query_name: example.test"), testkit.ClosedUDPPort(t))
	}},
	{"dns", failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseQuery}, func(t *testing.T) error {
		s := probertest.NewDNSTestServer(t, "127.0.0.1")
		return probeErr(t, dnsModule(t, "query_name: silent.test"), s.Addr, matrixDeadline)
	}},
	{"dns", failure{taxonomy.ClassTLS, taxonomy.ReasonCertUnknownAuthority, taxonomy.PhaseTLS}, func(t *testing.T) error {
		s := probertest.NewDNSTestServer(t, "127.0.0.1")
		return runErr(t, dnsModule(t, "query_name: example.test\ndns_over_tls: true"), s.Dot)
	}},
	{"dns", failure{taxonomy.ClassProtocol, taxonomy.ReasonTruncated, taxonomy.PhaseQuery}, func(t *testing.T) error {
		s := probertest.NewDNSTestServer(t, "127.0.0.1")
		return runErr(t, dnsModule(t, "query_name: big.test"), s.Addr)
	}},
	{"dns", failure{taxonomy.ClassStatus, taxonomy.ReasonDNSRcode, taxonomy.PhaseValidate}, func(t *testing.T) error {
		s := probertest.NewDNSTestServer(t, "127.0.0.1")
		return runErr(t, dnsModule(t, "query_name: nx.test"), s.Addr)
	}},
	{"dns", failure{taxonomy.ClassAssertion, taxonomy.ReasonDNSRRs, taxonomy.PhaseValidate}, func(t *testing.T) error {
		s := probertest.NewDNSTestServer(t, "127.0.0.1")
		m := dnsModule(t, "query_name: example.test\nquery_type: A\nvalidate_answer_rrs:\n  fail_if_matches_regexp: ['192\\.0\\.2\\.1$']")
		return runErr(t, m, s.Addr)
	}},
	{"dns", failure{taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup}, func(t *testing.T) error {
		return runErr(t, dnsModule(t, "query_name: example.test"), "127.0.0.1:99999")
	}},

	// ---- websocket ----
	{"websocket", failure{taxonomy.ClassDNS, taxonomy.ReasonNXDomain, taxonomy.PhaseResolve}, func(t *testing.T) error {
		return runErr(t, wsModule(t, nil), "ws://nonexistent.test/")
	}},
	{"websocket", failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect}, func(t *testing.T) error {
		return runErr(t, wsModule(t, nil), "ws://"+testkit.ClosedTCPAddr(t))
	}},
	{"websocket", failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseProcessing}, func(t *testing.T) error {
		addr := probertest.RawServer(t, func(c net.Conn) { io.Copy(io.Discard, c) }) // never answers the upgrade
		return probeErr(t, wsModule(t, nil), "ws://"+addr+"/", matrixDeadline)
	}},
	{"websocket", failure{taxonomy.ClassTLS, taxonomy.ReasonCertUnknownAuthority, taxonomy.PhaseTLS}, func(t *testing.T) error {
		srv, _ := probertest.WSServer(t, nil, probertest.ServerOpts{TLS: true})
		return runErr(t, wsModule(t, nil), probertest.WSURL(srv, "/"))
	}},
	{"websocket", failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseProcessing}, func(t *testing.T) error {
		addr := probertest.RawServer(t, probertest.Answer(func(c net.Conn) { io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\n\r\n") }))
		return runErr(t, wsModule(t, nil), "ws://"+addr+"/")
	}},
	{"websocket", failure{taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus, taxonomy.PhaseValidate}, func(t *testing.T) error {
		srv := probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{}) // answers 200, not 101
		return runErr(t, wsModule(t, nil), probertest.WSURL(srv, "/"))
	}},
	{"websocket", failure{taxonomy.ClassAssertion, taxonomy.ReasonExpect, taxonomy.QueryStep(0)}, func(t *testing.T) error {
		srv, _ := probertest.WSServer(t, probertest.Greeter, probertest.ServerOpts{})
		m := wsModule(t, func(w *config.WebsocketProbe) {
			w.QueryResponse = []config.QueryResponse{probertest.ExpectStep("^bye")}
		})
		return runErr(t, m, probertest.WSURL(srv, "/"))
	}},
	{"websocket", failure{taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup}, func(t *testing.T) error {
		return runErr(t, wsModule(t, nil), "ftp://example.test/")
	}},

	// ---- icmp: the scenarios that open a socket are prober/icmp's TestICMPFailureScenarios ----
	{"icmp", failure{taxonomy.ClassDNS, taxonomy.ReasonNXDomain, taxonomy.PhaseResolve}, func(t *testing.T) error {
		return runErr(t, defaultModule(t, "icmp", nil), "nonexistent.test")
	}},
	{"icmp", failure{taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup}, func(t *testing.T) error {
		return runErr(t, defaultModule(t, "icmp", nil), "example.test:80")
	}},

	// ---- grpc ----
	{"grpc", failure{taxonomy.ClassDNS, taxonomy.ReasonNXDomain, taxonomy.PhaseResolve}, func(t *testing.T) error {
		return runErr(t, grpcModule(t, ""), "nonexistent.test:50051")
	}},
	{"grpc", failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect}, func(t *testing.T) error {
		return runErr(t, grpcModule(t, ""), testkit.ClosedTCPAddr(t))
	}},
	{"grpc", failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseCheck}, func(t *testing.T) error {
		srv := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{Health: probertest.StalledHealth{}})
		return probeErr(t, grpcModule(t, ""), srv.Addr, matrixDeadline)
	}},
	{"grpc", failure{taxonomy.ClassTLS, taxonomy.ReasonCertUnknownAuthority, taxonomy.PhaseTLS}, func(t *testing.T) error {
		srv := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{TLS: true})
		return runErr(t, grpcModule(t, probertest.GRPCTLSSection(t, testcert.NewCA(t, testcert.Spec{}))), srv.Addr)
	}},
	{"grpc", failure{taxonomy.ClassProtocol, taxonomy.ReasonGRPCUnimplemented, taxonomy.PhaseCheck}, func(t *testing.T) error {
		srv := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{NoHealth: true})
		return runErr(t, grpcModule(t, ""), srv.Addr)
	}},
	{"grpc", failure{taxonomy.ClassStatus, taxonomy.ReasonGRPCNotServing, taxonomy.PhaseCheck}, func(t *testing.T) error {
		srv := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{Health: probertest.FixedHealth{Status: healthpb.HealthCheckResponse_NOT_SERVING}})
		return runErr(t, grpcModule(t, ""), srv.Addr)
	}},
	{"grpc", failure{taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup}, func(t *testing.T) error {
		return runErr(t, grpcModule(t, ""), "grpc://example.test:443")
	}},
}

// TestFailureMatrix runs every scenario of failureMatrix and checks the
// exact class, reason and phase it fails with.
func TestFailureMatrix(t *testing.T) {
	for _, c := range failureMatrix {
		t.Run(c.name(), func(t *testing.T) {
			checkOutcome(t, c.run(t), c.want)
		})
	}
}

// runErr is run for scenarios that check only the error.
func runErr(t *testing.T, m *core.Module, target string) error {
	t.Helper()
	_, err := probertest.Run(t, m, target)
	return err
}

// probeErr is probe, with its deadline, for scenarios that wait for it. A
// probe must end by its deadline, give or take scheduling.
func probeErr(t *testing.T, m *core.Module, target string, timeout time.Duration) error {
	t.Helper()
	_, took, err := probertest.Probe(t, m, target, timeout)
	if took > timeout+500*time.Millisecond {
		t.Errorf("the probe took %v with a %v deadline", took, timeout)
	}
	return err
}

func tcpScript(t *testing.T, steps ...config.QueryResponse) *core.Module {
	t.Helper()
	return defaultModule(t, "tcp", func(cm *config.Module) { cm.TCP.QueryResponse = steps })
}

func unixScript(t *testing.T, steps ...config.QueryResponse) *core.Module {
	t.Helper()
	return defaultModule(t, "unix", func(cm *config.Module) { cm.Unix.QueryResponse = steps })
}

// saying is a peer that says text and hangs up.
func saying(text string) func(c net.Conn) {
	return func(c net.Conn) {
		io.WriteString(c, text)
		c.Close()
	}
}

// tlsGreeter is a peer that completes a TLS handshake, with a certificate
// for localhost from a CA no module trusts, and says hello.
func tlsGreeter(t *testing.T) func(c net.Conn) {
	t.Helper()
	cert := testcert.NewCA(t, testcert.Spec{}).Issue(t, testcert.Loopback())
	return func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert.TLS()}})
		if tc.Handshake() == nil {
			io.WriteString(tc, "hello\n")
		}
		tc.Close()
	}
}

// unixServer is rawServer on a unix socket: it returns the socket's path.
// The path is kept short, as a socket address holds at most 108 bytes.
func unixServer(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sonde")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	testkit.ServeConns(t, ln, handle)
	return path
}

// ---- the audit's fixes: failures that used to be unknown/unclassified ----

func TestAuditHTTPParseErrors(t *testing.T) {
	responses := map[string]string{
		"header without a colon":  "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
		"bad Content-Length":      "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
		"two Content-Lengths":     "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
		"unknown transfer coding": "HTTP/1.1 200 OK\r\nTransfer-Encoding: foo\r\n\r\n",
		"bad chunk":               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
		"unparsable Location":     "HTTP/1.1 302 Found\r\nLocation: http://[::1\r\nContent-Length: 0\r\n\r\n",
	}
	for name, resp := range responses {
		t.Run(name, func(t *testing.T) {
			addr := probertest.RawServer(t, probertest.Answer(func(c net.Conn) { io.WriteString(c, resp); c.Close() }))
			err := runErr(t, newModule(t, nil), "http://"+addr)
			checkOutcome(t, err, failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseTransfer})
		})
	}
}

func TestAuditHTTP2StreamReset(t *testing.T) {
	srv := probertest.NewServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(http.ErrAbortHandler) // an HTTP/2 server resets the stream
	}), probertest.ServerOpts{TLS: true, HTTP2: true})
	m := newModule(t, func(h *config.HTTPProbe) {
		h.HTTPClientConfig.EnableHTTP2 = true
		h.HTTPClientConfig.TLSConfig.InsecureSkipVerify = true
	})
	err := runErr(t, m, srv.URL)
	perr := checkOutcome(t, err, failure{taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, taxonomy.PhaseProcessing})
	if !strings.Contains(perr.Error(), "stream error") {
		t.Errorf("error %v is not the stream reset", perr)
	}
}

func TestAuditHTTPProxyRefusals(t *testing.T) {
	viaProxy := func(t *testing.T, scheme, addr string) *core.Module {
		u, err := url.Parse(scheme + "://" + addr)
		if err != nil {
			t.Fatal(err)
		}
		return newModule(t, func(h *config.HTTPProbe) { h.HTTPClientConfig.ProxyURL = pconfig.URL{URL: u} })
	}
	t.Run("CONNECT refused", func(t *testing.T) {
		proxy := probertest.RawServer(t, probertest.Answer(func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
		}))
		err := runErr(t, viaProxy(t, "http", proxy), "https://127.0.0.1:1/")
		perr := checkOutcome(t, err, failure{taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus, taxonomy.PhaseConnect})
		if !strings.Contains(perr.Error(), "407") {
			t.Errorf("error %v does not name the proxy's status", perr)
		}
	})
	// A SOCKS5 proxy that takes the connection without authentication,
	// reads the CONNECT command and answers it with code.
	socks := func(code byte) func(c net.Conn) {
		return func(c net.Conn) {
			r := bufio.NewReader(c)
			hello := make([]byte, 3)
			if _, err := io.ReadFull(r, hello); err != nil {
				return
			}
			c.Write([]byte{5, 0})
			command := make([]byte, 10) // an IPv4 target
			if _, err := io.ReadFull(r, command); err != nil {
				return
			}
			c.Write([]byte{5, code, 0, 1, 0, 0, 0, 0, 0, 0})
			io.Copy(io.Discard, r)
		}
	}
	for _, tc := range []struct {
		name  string
		serve func(c net.Conn)
		want  failure
	}{
		{"SOCKS5 connection refused", socks(5), failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect}},
		{"SOCKS5 host unreachable", socks(4), failure{taxonomy.ClassConnect, taxonomy.ReasonHostUnreachable, taxonomy.PhaseConnect}},
		{"SOCKS5 network unreachable", socks(3), failure{taxonomy.ClassConnect, taxonomy.ReasonNetworkUnreachable, taxonomy.PhaseConnect}},
		{"SOCKS5 not allowed by ruleset", socks(2), failure{taxonomy.ClassStatus, taxonomy.ReasonReplyCode, taxonomy.PhaseConnect}},
		{"not a SOCKS5 proxy", saying("HTTP/1.1 400 Bad Request\r\n\r\n"), failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseConnect}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := runErr(t, viaProxy(t, "socks5", probertest.RawServer(t, tc.serve)), "http://127.0.0.1:1/")
			checkOutcome(t, err, tc.want)
		})
	}
}

// TestAuditTLSRecordsGarbled: a peer that completes the handshake, then
// sends a record that does not decrypt. crypto/tls answers it with a
// "local error" alert of its own.
func TestAuditTLSRecordsGarbled(t *testing.T) {
	cert := testcert.NewCA(t, testcert.Spec{}).Issue(t, testcert.Loopback())
	addr := probertest.RawServer(t, func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert.TLS()}, MaxVersion: tls.VersionTLS12})
		if tc.Handshake() != nil {
			return
		}
		c.Write(append([]byte{23, 3, 3, 0, 32}, make([]byte, 32)...)) // application data with a bad MAC
		io.Copy(io.Discard, c)
	})
	m := defaultModule(t, "tcp", func(cm *config.Module) {
		cm.TCP.TLS = true
		cm.TCP.TLSConfig.InsecureSkipVerify = true
		cm.TCP.QueryResponse = []config.QueryResponse{probertest.ExpectStep("^hello")}
	})
	perr := checkOutcome(t, runErr(t, m, addr), failure{taxonomy.ClassTLS, taxonomy.ReasonHandshake, taxonomy.QueryStep(0)})
	if !strings.Contains(perr.Error(), "bad record MAC") {
		t.Errorf("error %v is not the garbled record", perr)
	}
}

func TestAuditUnixPaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	short, err := os.MkdirTemp("", "sonde")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(short)
	datagram := filepath.Join(short, "d.sock")
	pc, err := net.ListenPacket("unixgram", datagram)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	m := defaultModule(t, "unix", nil)
	for _, tc := range []struct {
		name, target string
		want         failure
	}{
		{"a file where a directory should be", filepath.Join(file, "app.sock"), failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect}},
		{"a datagram socket", datagram, failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect}},
		{"a path too long for a socket", "/run/" + strings.Repeat("x", 120) + ".sock", failure{taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkOutcome(t, runErr(t, m, tc.target), tc.want)
		})
	}
}

// TestAuditWebsocketBadFrames: frames gorilla/websocket refuses while a
// script waits for a message.
func TestAuditWebsocketBadFrames(t *testing.T) {
	for name, frame := range map[string][]byte{
		"reserved opcode":        {0x83, 1, 'x'},
		"reserved bits":          {0xc1, 1, 'x'},
		"masked by the server":   {0x81, 0x81, 1, 2, 3, 4, 'x'},
		"control frame too long": append([]byte{0x89, 126, 0, 126}, make([]byte, 126)...),
	} {
		t.Run(name, func(t *testing.T) {
			addr := probertest.RawServer(t, func(c net.Conn) {
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
					websocketAccept(req.Header.Get("Sec-WebSocket-Key")))
				c.Write(frame)
				io.Copy(io.Discard, c)
			})
			m := wsModule(t, func(w *config.WebsocketProbe) { w.QueryResponse = []config.QueryResponse{probertest.ExpectStep("x")} })
			checkOutcome(t, runErr(t, m, "ws://"+addr+"/"), failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.QueryStep(0)})
		})
	}
}

// TestAuditResolveCanceled: a scrape abandoned while the target resolves
// is canceled, not a resolver error.
func TestAuditResolveCanceled(t *testing.T) {
	m := defaultModule(t, "tcp", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(50*time.Millisecond, cancel)
	err := probeTCP(ctx, probertest.SilentName+":25", m, probemetrics.NewSink(), probertest.DiscardLogger)
	checkOutcome(t, err, failure{taxonomy.ClassTimeout, taxonomy.ReasonCanceled, taxonomy.PhaseResolve})
}

// ---- the matrix of docs/error-classes.md ----

const (
	matrixDoc     = "../docs/error-classes.md"
	matrixHeading = "## Matrix: which prober produces which failure"
	noFailure     = "—"
)

// matrixTable is the matrix as documented.
type matrixTable struct {
	probers     []string                          // the prober columns, in order
	equivalents map[taxonomy.ClassReason]string   // the http_equivalent cells
	cells       map[taxonomy.ClassReason][]string // a row's prober cells, in probers' order
}

// readMatrix parses the first table after matrixHeading.
func readMatrix(t *testing.T) matrixTable {
	t.Helper()
	doc, err := os.ReadFile(matrixDoc)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n"+matrixHeading+"\n")
	if !ok {
		t.Fatalf("%s has no section %q", matrixDoc, matrixHeading)
	}
	var rows [][]string
	for _, line := range strings.Split(section, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "## ") {
			break
		}
		if !strings.HasPrefix(line, "|") {
			if len(rows) > 0 {
				break // the table has ended
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	if len(rows) < 3 {
		t.Fatalf("the section %q has no table", matrixHeading)
	}
	header := rows[0]
	for i := range header {
		header[i] = strings.Trim(header[i], "`")
	}
	if len(header) < 2 || header[0] != "Class / reason" || header[1] != "http_equivalent" {
		t.Fatalf("the matrix's columns are %q; want Class / reason, http_equivalent, then the probers", header)
	}
	m := matrixTable{probers: header[2:], equivalents: map[taxonomy.ClassReason]string{}, cells: map[taxonomy.ClassReason][]string{}}
	rowName := regexp.MustCompile("^`([a-z_]+)`/`([a-z0-9_]+)`$")
	for _, row := range rows[2:] { // rows[1] is the delimiter row
		if len(row) != len(header) {
			t.Errorf("the row %q has %d cells, the header %d", row, len(row), len(header))
			continue
		}
		name := rowName.FindStringSubmatch(row[0])
		if name == nil {
			t.Errorf("the row %q does not start with `class`/`reason`", row)
			continue
		}
		key := taxonomy.ClassReason{Class: taxonomy.Class(name[1]), Reason: taxonomy.Reason(name[2])}
		if _, dup := m.cells[key]; dup {
			t.Errorf("the matrix has two rows for %s/%s", key.Class, key.Reason)
		}
		m.equivalents[key] = row[1]
		m.cells[key] = row[2:]
		for i, cell := range row[2:] {
			if cell == "" {
				t.Errorf("%s/%s: the %s cell is empty; write %s when the prober cannot produce it", key.Class, key.Reason, m.probers[i], noFailure)
			}
		}
	}
	return m
}

// TestFailureMatrixTable keeps the matrix of docs/error-classes.md honest:
// a row for every reason of the enum, its http_equivalent as the code
// says, a column for every prober, and a scenario in TestFailureMatrix for
// every (prober, class) the matrix says a prober produces, and no other.
func TestFailureMatrixTable(t *testing.T) {
	m := readMatrix(t)

	probers := slices.Clone(m.probers)
	slices.Sort(probers)
	if !slices.Equal(probers, Implemented()) {
		t.Errorf("the matrix's prober columns are %v; the probers are %v", m.probers, Implemented())
	}

	known := map[taxonomy.ClassReason]bool{}
	for _, cr := range taxonomy.AllReasons {
		known[cr] = true
		if _, ok := m.cells[cr]; !ok {
			t.Errorf("the matrix has no row for %s/%s", cr.Class, cr.Reason)
			continue
		}
		want := taxonomy.Fail(cr.Class, cr.Reason, taxonomy.PhaseSetup, nil).HTTPEquivalent()
		if got := strings.Trim(m.equivalents[cr], "`"); got != strconv.Itoa(want) {
			t.Errorf("%s/%s: http_equivalent is %q in the matrix, %d in the code", cr.Class, cr.Reason, m.equivalents[cr], want)
		}
	}
	for cr := range m.cells {
		if !known[cr] {
			t.Errorf("the matrix has a row for %s/%s, which is no reason of the enum", cr.Class, cr.Reason)
		}
	}

	documented := map[string]bool{} // "<prober>/<class>" with a cell that is not noFailure
	for cr, cells := range m.cells {
		for i, cell := range cells {
			if cell != noFailure && i < len(m.probers) {
				documented[m.probers[i]+"/"+string(cr.Class)] = true
			}
		}
	}
	tested := map[string]bool{}
	for _, c := range failureMatrix {
		if tested[c.name()] {
			t.Errorf("TestFailureMatrix has two scenarios for %s", c.name())
		}
		tested[c.name()] = true
		if !documented[c.name()] {
			t.Errorf("TestFailureMatrix has a scenario for %s, which the matrix says the prober cannot produce", c.name())
		}
		// The scenario's own reason must be documented for its prober.
		col := slices.Index(m.probers, c.prober)
		if cells, ok := m.cells[taxonomy.ClassReason{Class: c.want.class, Reason: c.want.reason}]; ok && col >= 0 && cells[col] == noFailure {
			t.Errorf("%s fails with %s/%s, which the matrix says %s cannot produce", c.name(), c.want.class, c.want.reason, c.prober)
		}
	}
	for _, name := range testedInPackages {
		tested[name] = true
	}
	for name := range documented {
		if !tested[name] {
			t.Errorf("the matrix says %s can happen, but TestFailureMatrix has no scenario for it", name)
		}
	}
}

// TestAllReasons keeps allReasons equal to the Reason constants errors.go
// declares, each with the class its comment names ("// dns: ...").
func TestAllReasons(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "taxonomy/errors.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	classComment := regexp.MustCompile(`^([a-z]+):`)
	var declared []taxonomy.ClassReason
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			if typ, ok := vs.Type.(*ast.Ident); !ok || typ.Name != "Reason" {
				continue
			}
			for i, name := range vs.Names {
				var lit *ast.BasicLit
				if i < len(vs.Values) {
					lit, _ = vs.Values[i].(*ast.BasicLit)
				}
				if lit == nil || lit.Kind != token.STRING {
					t.Errorf("%s is not a string literal", name.Name)
					continue
				}
				value, _ := strconv.Unquote(lit.Value)
				class := classComment.FindStringSubmatch(strings.TrimSpace(vs.Comment.Text()))
				if class == nil {
					t.Errorf("%s: its comment does not start with the class it belongs to (\"// dns: ...\")", name.Name)
					continue
				}
				declared = append(declared, taxonomy.ClassReason{Class: taxonomy.Class(class[1]), Reason: taxonomy.Reason(value)})
			}
		}
	}
	listed := map[taxonomy.ClassReason]int{}
	for _, cr := range taxonomy.AllReasons {
		listed[cr]++
		if listed[cr] == 2 {
			t.Errorf("allReasons (reasons.go) lists %s/%s twice", cr.Class, cr.Reason)
		}
	}
	for _, cr := range declared {
		if listed[cr] == 0 {
			t.Errorf("errors.go declares %s/%s, which allReasons (reasons.go) lacks", cr.Class, cr.Reason)
		}
		delete(listed, cr)
	}
	for cr := range listed {
		t.Errorf("allReasons (reasons.go) lists %s/%s, which errors.go does not declare", cr.Class, cr.Reason)
	}
}

// websocketAccept is the Sec-WebSocket-Accept answering key (RFC 6455).
func websocketAccept(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}
