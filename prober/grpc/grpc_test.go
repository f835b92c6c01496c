package grpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// tlsMetrics are the TLS families, present only after a completed handshake.
var tlsMetrics = []string{"probe_ssl_earliest_cert_expiry", "probe_ssl_last_chain_expiry_timestamp_seconds",
	"probe_ssl_last_chain_info", "probe_tls_version_info", "probe_tls_cipher_info"}

// grpcPhases asserts the phases probe_grpc_duration_seconds has series for.
func grpcPhases(t *testing.T, sink *probemetrics.Sink, want ...taxonomy.Phase) {
	t.Helper()
	var got []string
	mfs, _ := sink.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "probe_grpc_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got = append(got, m.GetLabel()[0].GetValue())
		}
	}
	wantNames := make([]string, len(want))
	for i, p := range want {
		wantNames[i] = string(p)
	}
	sort.Strings(got)
	sort.Strings(wantNames)
	if !slices.Equal(got, wantNames) {
		t.Errorf("probe_grpc_duration_seconds phases = %v, want %v", got, wantNames)
	}
}

// servingSeries asserts that every serving status has its series, 1 for
// received and 0 for the others ("" when none was received).
func servingSeries(t *testing.T, sink *probemetrics.Sink, received string) {
	t.Helper()
	for _, s := range []string{"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"} {
		want := 0.0
		if s == received {
			want = 1
		}
		probertest.Metric(t, sink, want, "probe_grpc_healthcheck_response", s)
	}
}

func TestGRPCServingStatus(t *testing.T) {
	srv := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{})
	srv.Health.SetServingStatus("svc.A", healthpb.HealthCheckResponse_SERVING)
	srv.Health.SetServingStatus("svc.B", healthpb.HealthCheckResponse_NOT_SERVING)
	cases := []struct {
		name     string
		whole    healthpb.HealthCheckResponse_ServingStatus // the whole server's status ("")
		service  string
		want     failure
		received string  // the serving_status series at 1
		code     float64 // probe_grpc_status_code
	}{
		{"whole server serving", healthpb.HealthCheckResponse_SERVING, "", failure{}, "SERVING", 0},
		{"whole server not serving", healthpb.HealthCheckResponse_NOT_SERVING, "",
			failure{taxonomy.ClassStatus, taxonomy.ReasonGRPCNotServing, taxonomy.PhaseCheck}, "NOT_SERVING", 0},
		{"whole server unknown", healthpb.HealthCheckResponse_UNKNOWN, "",
			failure{taxonomy.ClassStatus, taxonomy.ReasonGRPCNotServing, taxonomy.PhaseCheck}, "UNKNOWN", 0},
		{"service serving", healthpb.HealthCheckResponse_NOT_SERVING, "svc.A", failure{}, "SERVING", 0},
		{"service not serving", healthpb.HealthCheckResponse_SERVING, "svc.B",
			failure{taxonomy.ClassStatus, taxonomy.ReasonGRPCNotServing, taxonomy.PhaseCheck}, "NOT_SERVING", 0},
		{"unknown service", healthpb.HealthCheckResponse_SERVING, "svc.C",
			failure{taxonomy.ClassStatus, taxonomy.ReasonGRPCServiceUnknown, taxonomy.PhaseCheck}, "", float64(codes.NotFound)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv.Health.SetServingStatus("", tc.whole)
			m := grpcModule(t, fmt.Sprintf("service: %q", tc.service))
			sink, err := probertest.Run(t, m, srv.Addr)
			perr := checkOutcome(t, err, tc.want)
			if perr != nil && tc.service != "" && !strings.Contains(perr.Error(), tc.service) {
				t.Errorf("the message does not name the service %q: %v", tc.service, perr)
			}
			servingSeries(t, sink, tc.received)
			probertest.Metric(t, sink, tc.code, "probe_grpc_status_code")
			probertest.Metric(t, sink, 0, "probe_grpc_ssl")
			probertest.Metric(t, sink, 4, "probe_ip_protocol")
			grpcPhases(t, sink, taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseCheck)
			if probertest.Value(t, sink, "probe_grpc_duration_seconds", string(taxonomy.PhaseCheck)) <= 0 {
				t.Error("the check phase took no time")
			}
			probertest.Absent(t, sink, tlsMetrics...)
		})
	}
}

// TestGRPCAnswers covers health services that answer a status of their
// own, and servers without one.
func TestGRPCAnswers(t *testing.T) {
	cases := []struct {
		name     string
		opts     probertest.GRPCServerOpts
		want     failure
		code     codes.Code
		received string
		message  string
	}{
		{name: "no health service", opts: probertest.GRPCServerOpts{NoHealth: true},
			want: failure{taxonomy.ClassProtocol, taxonomy.ReasonGRPCUnimplemented, taxonomy.PhaseCheck}, code: codes.Unimplemented,
			message: "the server does not implement grpc.health.v1.Health"},
		{name: "service unknown", opts: probertest.GRPCServerOpts{Health: probertest.FixedHealth{Status: healthpb.HealthCheckResponse_SERVICE_UNKNOWN}},
			want: failure{taxonomy.ClassStatus, taxonomy.ReasonGRPCServiceUnknown, taxonomy.PhaseCheck}, received: "SERVICE_UNKNOWN"},
		{name: "status outside the enum", opts: probertest.GRPCServerOpts{Health: probertest.FixedHealth{Status: 7}},
			want: failure{taxonomy.ClassStatus, taxonomy.ReasonGRPCNotServing, taxonomy.PhaseCheck}, message: "answered 7"},
		{name: "permission denied", opts: probertest.GRPCServerOpts{Health: probertest.AnsweringHealth{Err: probertest.GRPCError(codes.PermissionDenied, "not you")}},
			want: failure{taxonomy.ClassStatus, taxonomy.ReasonGRPCStatus, taxonomy.PhaseCheck}, code: codes.PermissionDenied,
			message: "PERMISSION_DENIED: not you"},
		{name: "unauthenticated", opts: probertest.GRPCServerOpts{Health: probertest.AnsweringHealth{Err: probertest.GRPCError(codes.Unauthenticated, "who are you")}},
			want: failure{taxonomy.ClassStatus, taxonomy.ReasonGRPCStatus, taxonomy.PhaseCheck}, code: codes.Unauthenticated,
			message: "UNAUTHENTICATED"},
		{name: "unavailable answered", opts: probertest.GRPCServerOpts{Health: probertest.AnsweringHealth{Err: probertest.GRPCError(codes.Unavailable, "draining")}},
			want: failure{taxonomy.ClassStatus, taxonomy.ReasonGRPCStatus, taxonomy.PhaseCheck}, code: codes.Unavailable,
			message: "UNAVAILABLE: draining"},
		{name: "internal", opts: probertest.GRPCServerOpts{Health: probertest.AnsweringHealth{Err: probertest.GRPCError(codes.Internal, "oops")}},
			want: failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseCheck}, code: codes.Internal,
			message: "INTERNAL: oops"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := probertest.NewGRPCServer(t, tc.opts)
			sink, err := probertest.Run(t, grpcModule(t, ""), srv.Addr)
			perr := checkOutcome(t, err, tc.want)
			if !strings.Contains(perr.Error(), tc.message) {
				t.Errorf("message %q does not say %q", perr.Error(), tc.message)
			}
			probertest.Metric(t, sink, float64(tc.code), "probe_grpc_status_code")
			servingSeries(t, sink, tc.received)
			grpcPhases(t, sink, taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseCheck)
		})
	}
}

func TestGRPCTLS(t *testing.T) {
	srv := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{TLS: true})

	t.Run("verified", func(t *testing.T) {
		sink, err := probertest.Run(t, grpcModule(t, probertest.GRPCTLSSection(t, srv.CA)), srv.Addr)
		checkOutcome(t, err, failure{})
		probertest.Metric(t, sink, 1, "probe_grpc_ssl")
		servingSeries(t, sink, "SERVING")
		grpcPhases(t, sink, taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseTLS, taxonomy.PhaseCheck)
		if probertest.Value(t, sink, "probe_grpc_duration_seconds", string(taxonomy.PhaseTLS)) <= 0 {
			t.Error("the tls phase took no time")
		}
		probertest.Metric(t, sink, 1, "probe_tls_version_info", "TLS 1.3")
		for _, name := range tlsMetrics {
			if !slices.Contains(probertest.FamilyNames(sink), name) {
				t.Errorf("%s is missing after a completed handshake", name)
			}
		}
		if sni := srv.LastCall(t).Sni; sni != "127.0.0.1" && sni != "" {
			t.Errorf("the server saw SNI %q", sni) // Go sends no SNI for an IP address
		}
	})

	failures := []struct {
		name    string
		section string
		want    failure
	}{
		{"unknown authority", probertest.GRPCTLSSection(t, testcert.NewCA(t, testcert.Spec{})),
			failure{taxonomy.ClassTLS, taxonomy.ReasonCertUnknownAuthority, taxonomy.PhaseTLS}},
		{"name mismatch", probertest.GRPCTLSSection(t, srv.CA, "  server_name: other.example"),
			failure{taxonomy.ClassTLS, taxonomy.ReasonCertHostnameMismatch, taxonomy.PhaseTLS}},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			sink, err := probertest.Run(t, grpcModule(t, tc.section), srv.Addr)
			checkOutcome(t, err, tc.want)
			probertest.Metric(t, sink, 0, "probe_grpc_ssl")
			probertest.Metric(t, sink, float64(codes.Unavailable), "probe_grpc_status_code")
			servingSeries(t, sink, "")
			grpcPhases(t, sink, taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseTLS, taxonomy.PhaseCheck)
			probertest.Metric(t, sink, 0, "probe_grpc_duration_seconds", string(taxonomy.PhaseCheck))
			probertest.ChainSurvived(t, sink)
		})
	}

	t.Run("check fails after the handshake", func(t *testing.T) {
		bare := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{TLS: true, NoHealth: true})
		sink, err := probertest.Run(t, grpcModule(t, probertest.GRPCTLSSection(t, bare.CA)), bare.Addr)
		checkOutcome(t, err, failure{taxonomy.ClassProtocol, taxonomy.ReasonGRPCUnimplemented, taxonomy.PhaseCheck})
		probertest.Metric(t, sink, 1, "probe_grpc_ssl")
		for _, name := range tlsMetrics {
			if !slices.Contains(probertest.FamilyNames(sink), name) {
				t.Errorf("%s is missing after a completed handshake", name)
			}
		}
	})

	t.Run("tls to a plaintext server", func(t *testing.T) {
		plain := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{})
		_, err := probertest.Run(t, grpcModule(t, probertest.GRPCTLSSection(t, srv.CA)), plain.Addr)
		checkOutcome(t, err, failure{taxonomy.ClassTLS, taxonomy.ReasonHandshake, taxonomy.PhaseTLS})
	})

	t.Run("plaintext to a tls server", func(t *testing.T) {
		_, err := probertest.Run(t, grpcModule(t, ""), srv.Addr)
		// The TLS server closes the connection on the HTTP/2 preface: a
		// FIN, or a reset when it closes before reading all of it.
		var perr *taxonomy.Error
		if !errors.As(err, &perr) {
			t.Fatalf("err = %v, want a *prober.Error", err)
		}
		got := failure{perr.Class, perr.Reason, perr.Phase}
		if got != (failure{taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, taxonomy.PhaseCheck}) && got != (failure{taxonomy.ClassConnect, taxonomy.ReasonReset, taxonomy.PhaseCheck}) {
			t.Errorf("failure = %s, want protocol/unexpected_eof or connect/reset in phase check", got)
		}
		if !strings.Contains(perr.Error(), "is tls set as the server expects") {
			t.Errorf("the message does not suggest tls: %v", perr)
		}
	})
}

// TestGRPCHostnameIgnored: as in blackbox, the hostname URL parameter
// changes nothing for grpc: the :authority is the target and TLS verifies
// the target's host, or tls_config.server_name.
func TestGRPCHostnameIgnored(t *testing.T) {
	ca := testcert.NewCA(t, testcert.Spec{})
	spec := testcert.Named("grpc.test")
	srv := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{TLS: true, CA: ca, Spec: &spec})
	plain := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{})

	cases := []struct {
		name     string
		server   *probertest.GRPCTestServer
		section  string
		hostname string
		want     failure
		sni      string
	}{
		{name: "plaintext", server: plain, hostname: "api.test"},
		{name: "tls verifies the target, not hostname", server: srv, section: probertest.GRPCTLSSection(t, ca), hostname: "grpc.test",
			want: failure{taxonomy.ClassTLS, taxonomy.ReasonCertHostnameMismatch, taxonomy.PhaseTLS}},
		{name: "server_name", server: srv, section: probertest.GRPCTLSSection(t, ca, "  server_name: grpc.test"), hostname: "front.test", sni: "grpc.test"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := grpcModule(t, tc.section).WithHostname(tc.hostname)
			if err != nil {
				t.Fatal(err)
			}
			_, err = probertest.Run(t, m, tc.server.Addr)
			checkOutcome(t, err, tc.want)
			if tc.want != (failure{}) {
				return
			}
			call := tc.server.LastCall(t)
			if call.Authority != tc.server.Addr {
				t.Errorf("the server saw :authority %q, want the target %q", call.Authority, tc.server.Addr)
			}
			if call.Sni != tc.sni {
				t.Errorf("the server saw SNI %q, want %q", call.Sni, tc.sni)
			}
		})
	}
}

func TestGRPCMetadata(t *testing.T) {
	srv := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{})
	m := grpcModule(t, `
metadata:
  x-probe: [one, two]
  X-Tenant: [blue]
  trace-bin: ["\x00\x01"]`)
	_, err := probertest.Run(t, m, srv.Addr)
	checkOutcome(t, err, failure{})
	md := srv.LastCall(t).Md
	for key, want := range map[string][]string{"x-probe": {"one", "two"}, "x-tenant": {"blue"}, "trace-bin": {"\x00\x01"}} {
		if got := md.Get(key); !slices.Equal(got, want) {
			t.Errorf("the server saw %s = %q, want %q", key, got, want)
		}
	}
	// grpc-go's User-Agent, as blackbox's client sends it (a grpc-go
	// server adds its own version after it).
	if ua := md.Get("user-agent"); len(ua) != 1 || !strings.HasPrefix(ua[0], grpcUserAgent) {
		t.Errorf("the server saw user-agent %q, want %s", ua, grpcUserAgent)
	}
}

// TestGRPCLargeRequest sends a header block and a request message larger
// than an HTTP/2 frame, which go out as CONTINUATION and several DATA
// frames.
func TestGRPCLargeRequest(t *testing.T) {
	srv := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{})
	service := "svc." + strings.Repeat("s", 40<<10)
	srv.Health.SetServingStatus(service, healthpb.HealthCheckResponse_SERVING)
	big := strings.Repeat("v", 50<<10)
	m := grpcModule(t, fmt.Sprintf("service: %q\nmetadata:\n  x-big: [%q, %q]", service, big, "after"))
	_, err := probertest.Run(t, m, srv.Addr)
	checkOutcome(t, err, failure{})
	if got := srv.LastCall(t).Md.Get("x-big"); !slices.Equal(got, []string{big, "after"}) {
		t.Errorf("the server saw x-big with %d values, want the two sent intact", len(got))
	}
}

// TestGRPCDeadlineSent checks that the call carries the probe's remaining
// time as grpc-timeout, so that the server can give up when sonde does.
func TestGRPCDeadlineSent(t *testing.T) {
	srv := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{})
	const timeout = 3 * time.Second
	_, _, err := probertest.Probe(t, grpcModule(t, ""), srv.Addr, timeout)
	checkOutcome(t, err, failure{})
	if d := srv.LastCall(t).Deadline; d <= timeout-time.Second || d > timeout {
		t.Errorf("the server saw %v left of the call, want a little under %v", d, timeout)
	}
}

// TestGRPCMetadataReserved checks that gRPC's own headers in metadata load
// and are not sent, as in blackbox: grpc-go drops them.
func TestGRPCMetadataReserved(t *testing.T) {
	srv := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{})
	m := grpcModule(t, `
metadata:
  content-type: [text/plain]
  ":authority": [elsewhere.test]
  x-kept: ["yes"]`)
	_, err := probertest.Run(t, m, srv.Addr)
	checkOutcome(t, err, failure{})
	call := srv.LastCall(t)
	if ct := call.Md.Get("content-type"); !slices.Equal(ct, []string{"application/grpc"}) {
		t.Errorf("the server saw content-type %q", ct)
	}
	if call.Authority != srv.Addr {
		t.Errorf("the server saw :authority %q, want %q", call.Authority, srv.Addr)
	}
	if got := call.Md.Get("x-kept"); !slices.Equal(got, []string{"yes"}) {
		t.Errorf("the server saw x-kept %q", got)
	}
}

// TestGRPCUnsendableCall: a module whose call cannot be sent loads, as in
// blackbox, and each probe resolves the target and then fails, without
// connecting, with INTERNAL, as grpc-go fails the call.
func TestGRPCUnsendableCall(t *testing.T) {
	srv := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{})
	for section, want := range map[string]struct {
		failure failure
		message string
	}{
		"metadata:\n  \"bad key\": [x]":                         {failure{taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseCheck}, `key "bad key" has the character ' '`},
		"metadata:\n  x-ok: [\"a\\nb\"]":                        {failure{taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseCheck}, "outside printable ASCII"},
		fmt.Sprintf("service: %q", strings.Repeat("s", 70<<10)): {failure{taxonomy.ClassProber, taxonomy.ReasonUnsupported, taxonomy.PhaseCheck}, "initial window"},
	} {
		m, err := loadSection(t, "grpc", section)
		if err != nil {
			t.Fatalf("%.60q does not load: %v", section, err)
		}
		sink, err := probertest.Run(t, m, srv.Addr)
		if e := checkOutcome(t, err, want.failure); e != nil && !strings.Contains(e.Error(), want.message) {
			t.Errorf("%.60q: %v, want it to say %q", section, e, want.message)
		}
		probertest.Metric(t, sink, float64(codes.Internal), "probe_grpc_status_code")
		probertest.Present(t, sink, "probe_ip_protocol")
		select {
		case call := <-srv.Calls:
			t.Errorf("%.60q: the server saw a call, with metadata %v", section, call.Md)
		default:
		}
	}
}

// TestGRPCDeadline probes servers that never answer with a short deadline:
// the probe must return on time and say where the time went.
func TestGRPCDeadline(t *testing.T) {
	silent := func(c net.Conn) { _, _ = io.Copy(io.Discard, c) } // accepts, reads, never speaks
	stalled := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{Health: probertest.StalledHealth{}})
	cases := []struct {
		name    string
		section string
		addr    string
		phase   taxonomy.Phase
	}{
		{"no HTTP/2 preface", "", probertest.RawServer(t, silent), taxonomy.PhaseCheck},
		{"no TLS handshake", "tls: true", probertest.RawServer(t, silent), taxonomy.PhaseTLS},
		{"health check never answered", "", stalled.Addr, taxonomy.PhaseCheck},
	}
	const timeout = 300 * time.Millisecond
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sink, took, err := probertest.Probe(t, grpcModule(t, tc.section), tc.addr, timeout)
			if took > timeout+200*time.Millisecond {
				t.Errorf("the probe took %v with a %v deadline", took, timeout)
			}
			checkOutcome(t, err, failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, tc.phase})
			probertest.Metric(t, sink, float64(codes.DeadlineExceeded), "probe_grpc_status_code")
			servingSeries(t, sink, "")
			if d := probertest.Value(t, sink, "probe_grpc_duration_seconds", string(tc.phase)); d < (timeout / 2).Seconds() {
				t.Errorf("phase %s counts %vs, want the time spent waiting", tc.phase, d)
			}
		})
	}
}

func TestGRPCConnectionFailures(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		sink, err := probertest.Run(t, grpcModule(t, ""), testkit.ClosedTCPAddr(t))
		checkOutcome(t, err, failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect})
		probertest.Metric(t, sink, float64(codes.Unavailable), "probe_grpc_status_code")
		probertest.Metric(t, sink, 0, "probe_grpc_ssl")
		servingSeries(t, sink, "")
		grpcPhases(t, sink, taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseCheck)
		probertest.Metric(t, sink, 0, "probe_grpc_duration_seconds", string(taxonomy.PhaseCheck))
		probertest.Absent(t, sink, tlsMetrics...)
	})

	t.Run("reset", func(t *testing.T) {
		addr := probertest.RawServer(t, func(c net.Conn) {
			buf := make([]byte, 24) // the HTTP/2 client preface
			_, _ = io.ReadFull(c, buf)
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		})
		_, err := probertest.Run(t, grpcModule(t, ""), addr)
		checkOutcome(t, err, failure{taxonomy.ClassConnect, taxonomy.ReasonReset, taxonomy.PhaseCheck})
	})

	t.Run("not HTTP/2", func(t *testing.T) {
		addr := probertest.RawServer(t, func(c net.Conn) {
			_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			_, _ = io.Copy(io.Discard, c)
		})
		sink, err := probertest.Run(t, grpcModule(t, ""), addr)
		checkOutcome(t, err, failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseCheck})
		probertest.Metric(t, sink, float64(codes.Unavailable), "probe_grpc_status_code")
	})
}

func TestGRPCResolve(t *testing.T) {
	srv := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{})
	_, port, _ := net.SplitHostPort(srv.Addr)

	t.Run("name", func(t *testing.T) {
		sink, err := probertest.Run(t, grpcModule(t, ""), net.JoinHostPort("v4only.test", port))
		checkOutcome(t, err, failure{})
		probertest.Metric(t, sink, 4, "probe_ip_protocol")
		if srv.LastCall(t).Authority != "v4only.test:"+port {
			t.Error("the :authority is not the target's name and port")
		}
	})

	t.Run("no such name", func(t *testing.T) {
		sink, err := probertest.Run(t, grpcModule(t, ""), net.JoinHostPort("missing.test", port))
		checkOutcome(t, err, failure{taxonomy.ClassDNS, taxonomy.ReasonNXDomain, taxonomy.PhaseResolve})
		grpcPhases(t, sink, taxonomy.PhaseResolve)
		probertest.Absent(t, sink, "probe_grpc_healthcheck_response")
		probertest.Metric(t, sink, 0, "probe_grpc_status_code")
		probertest.Metric(t, sink, 0, "probe_grpc_ssl")
		probertest.Metric(t, sink, 0, "probe_ip_protocol")
	})

	t.Run("no address of the family", func(t *testing.T) {
		m := grpcModule(t, "preferred_ip_protocol: ip6\nip_protocol_fallback: false")
		_, err := probertest.Run(t, m, net.JoinHostPort("v4only.test", port))
		checkOutcome(t, err, failure{taxonomy.ClassDNS, taxonomy.ReasonNoAddress, taxonomy.PhaseResolve})
	})
}

func TestGRPCIPv6(t *testing.T) {
	srv := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{Network: "tcp6"})
	sink, err := probertest.Run(t, grpcModule(t, "preferred_ip_protocol: ip6\nip_protocol_fallback: false"), srv.Addr)
	checkOutcome(t, err, failure{})
	probertest.Metric(t, sink, 6, "probe_ip_protocol")
	if call := srv.LastCall(t); call.Authority != srv.Addr {
		t.Errorf("the server saw :authority %q, want %q", call.Authority, srv.Addr)
	}
}

// TestGRPCSourceAddress runs the probe from a chosen source address. The
// grpc section has no source_ip_address yet, so the endpoint is built
// here as the probe would build it from one.
func TestGRPCSourceAddress(t *testing.T) {
	srv := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{})
	host, port, _ := net.SplitHostPort(srv.Addr)
	m := grpcModule(t, "")
	e := netdial.Endpoint{Network: "tcp", Host: host, Port: port, Protocol: "ip4", Source: "127.0.0.2"}
	sink := probemetrics.NewSink()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := m.Prepared.(*grpcPrepared).probeEndpoint(ctx, m, e, newGRPCMetrics(sink), sink, probertest.DiscardLogger)
	checkOutcome(t, err, failure{})
	if ip := srv.LastCall(t).Peer.(*net.TCPAddr).IP.String(); ip != "127.0.0.2" {
		t.Errorf("the server saw the probe come from %s, want 127.0.0.2", ip)
	}
}

func TestParseGRPCTarget(t *testing.T) {
	cases := []struct {
		target     string
		tls        bool
		host, port string // "" for an invalid target
	}{
		{"grpc.example:50051", false, "grpc.example", "50051"},
		{"grpc.example", false, "grpc.example", "80"},
		{"grpc.example", true, "grpc.example", "443"},
		{"http://grpc.example:50051", true, "grpc.example", "50051"},
		{"https://grpc.example", false, "grpc.example", "80"}, // the scheme does not choose TLS
		{"HTTPS://grpc.example:9/some/path", false, "grpc.example", "9"},
		{"[2001:db8::1]:50051", false, "2001:db8::1", "50051"},
		{"[2001:db8::1]", true, "2001:db8::1", "443"},
		{"2001:db8::1", false, "2001:db8::1", "80"},
		{"grpc.example:https", false, "", ""}, // as in blackbox, the port is a number
		{"grpc://grpc.example:50051", false, "", ""},
		{"grpc.example:0", false, "", ""},
		{"grpc.example:70000", false, "", ""},
		{"grpc.example:nosuchservice", false, "", ""},
		{":50051", false, "", ""},
		{"", false, "", ""},
		{"http://", false, "", ""},
		{"a:b:c", false, "", ""},
	}
	for _, tc := range cases {
		host, port, err := ParseTarget(tc.target, tc.tls)
		if tc.host == "" {
			var perr *taxonomy.Error
			if !errors.As(err, &perr) || perr.Reason != taxonomy.ReasonInvalidTarget || perr.Phase != taxonomy.PhaseSetup {
				t.Errorf("%q: err = %v, want prober/invalid_target in phase setup", tc.target, err)
			}
			continue
		}
		if err != nil || host != tc.host || port != tc.port {
			t.Errorf("%q (tls %v) = %q, %q, %v; want %q, %q", tc.target, tc.tls, host, port, err, tc.host, tc.port)
		}
	}
}

// TestGRPCInvalidTarget checks the probe refuses a target before any
// network activity, as the collector answers those with HTTP 400.
func TestGRPCInvalidTarget(t *testing.T) {
	_, err := probertest.Run(t, grpcModule(t, ""), "grpc://127.0.0.1:1")
	checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup})
}

func TestGRPCDefaults(t *testing.T) {
	// A module with no grpc section at all probes with blackbox's defaults.
	srv := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{})
	_, err := probertest.Run(t, defaultModule(t, "grpc", nil), srv.Addr)
	checkOutcome(t, err, failure{})
}

func TestCodeName(t *testing.T) {
	for c, want := range map[codes.Code]string{
		codes.OK: "OK", codes.PermissionDenied: "PERMISSION_DENIED", codes.DeadlineExceeded: "DEADLINE_EXCEEDED",
		codes.Unimplemented: "UNIMPLEMENTED",
	} {
		if got := codeName(c); got != want {
			t.Errorf("codeName(%d) = %q, want %q", c, got, want)
		}
	}
}

// TestGRPCHTTPSServer probes a TLS server that knows no ALPN and answers
// HTTP/1.1: the message says the handshake did not agree to h2. (A Go
// HTTPS server without HTTP/2 refuses the handshake itself, as RFC 7301
// lets it: a tls failure.)
func TestGRPCHTTPSServer(t *testing.T) {
	ca := testcert.NewCA(t, testcert.Spec{})
	cert := ca.Issue(t, testcert.Loopback())
	addr := probertest.RawServer(t, func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert.TLS()}})
		_, _ = io.WriteString(tc, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
		_, _ = io.Copy(io.Discard, tc)
	})
	sink, err := probertest.Run(t, grpcModule(t, probertest.GRPCTLSSection(t, ca)), addr)
	perr := checkOutcome(t, err, failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseCheck})
	if !strings.Contains(perr.Error(), "did not agree to h2 by ALPN") {
		t.Errorf("the message does not say the handshake chose no h2: %v", perr)
	}
	probertest.Metric(t, sink, 1, "probe_grpc_ssl")
}

// TestGRPCNotAGRPCServer probes an HTTP/2 server that is not a gRPC server:
// gRPC reads its HTTP statuses as gRPC ones.
func TestGRPCNotAGRPCServer(t *testing.T) {
	cases := []struct {
		status int
		want   failure
		code   codes.Code
	}{
		{http.StatusNotFound, failure{taxonomy.ClassProtocol, taxonomy.ReasonGRPCUnimplemented, taxonomy.PhaseCheck}, codes.Unimplemented},
		{http.StatusServiceUnavailable, failure{taxonomy.ClassStatus, taxonomy.ReasonGRPCStatus, taxonomy.PhaseCheck}, codes.Unavailable},
		{http.StatusInternalServerError, failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseCheck}, codes.Unknown},
	}
	for _, tc := range cases {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "not here", tc.status)
			}))
			srv.Config.Protocols = new(http.Protocols)
			srv.Config.Protocols.SetUnencryptedHTTP2(true)
			srv.Start()
			t.Cleanup(srv.Close)
			sink, err := probertest.Run(t, grpcModule(t, ""), srv.Listener.Addr().String())
			perr := checkOutcome(t, err, tc.want)
			if !strings.Contains(perr.Error(), fmt.Sprint(tc.status)) {
				t.Errorf("the message does not quote the HTTP status: %v", perr)
			}
			probertest.Metric(t, sink, float64(tc.code), "probe_grpc_status_code")
		})
	}
}

func probeGRPC(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return m.Prepared.(*grpcPrepared).Probe(ctx, target, m, sink, logger)
}
