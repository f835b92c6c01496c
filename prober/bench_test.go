package prober

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// The per-probe path, piece by piece: the sink a probe fills, each
// prober against an in-process target on loopback, the classification of
// failures and the module lookup. The load harness (bench/) measures the
// same path through a running exporter; these say where its time goes:
//
//	go test ./prober -run '^$' -bench 'Sink|Probe|Classify|Lookup' -benchmem -cpuprofile cpu.out

// benchSection prepares a module from its YAML section, loaded as the
// exporter loads it (defaults, regexps compiled), resolving with the
// system resolver: every target here is an IP address.
func benchSection(b *testing.B, prober, section string) *core.Module {
	b.Helper()
	var sb strings.Builder
	fmt.Fprintf(&sb, "modules:\n  bench:\n    prober: %s\n    timeout: 5s\n", prober)
	if section != "" {
		fmt.Fprintf(&sb, "    %s:\n", prober)
		for _, line := range strings.Split(strings.Trim(section, "\n"), "\n") {
			sb.WriteString("      " + line + "\n")
		}
	}
	cfg, err := config.Load([]byte(sb.String()))
	if err != nil {
		b.Fatalf("config.Load:\n%s\n%v", sb.String(), err)
	}
	m, err := NewModule("bench", cfg.Modules["bench"])
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// benchProbes runs the module's prober against target in a loop, each
// probe with a fresh sink and its metrics gathered, as the exporter does.
func benchProbes(b *testing.B, m *core.Module, target string) {
	b.Helper()
	fn, ok := m.Func()
	if !ok {
		b.Fatalf("prober %q is not implemented", m.Prober)
	}
	b.ReportAllocs()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		sink := probemetrics.NewSink()
		err := fn(ctx, target, m, sink, probertest.DiscardLogger)
		cancel()
		if err != nil {
			b.Fatalf("probe failed: %v", err)
		}
		if _, err := sink.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHTTPProbe runs the http prober against an httptest server:
// plain, with a body regexp, and over TLS (a fresh handshake each time,
// verified against the server's certificate through tls_config.ca_file).
func BenchmarkHTTPProbe(b *testing.B) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "healthy\n") })
	b.Run("plain", func(b *testing.B) {
		srv := httptest.NewServer(handler)
		defer srv.Close()
		benchProbes(b, benchSection(b, "http", "preferred_ip_protocol: ip4"), srv.URL)
	})
	b.Run("body_regexp", func(b *testing.B) {
		srv := httptest.NewServer(handler)
		defer srv.Close()
		m := benchSection(b, "http", "preferred_ip_protocol: ip4\nfail_if_body_not_matches_regexp: [\"health(y|ier)\"]")
		benchProbes(b, m, srv.URL)
	})
	b.Run("https", func(b *testing.B) {
		srv := httptest.NewTLSServer(handler)
		defer srv.Close()
		caFile := filepath.Join(b.TempDir(), "ca.pem")
		cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(caFile, cert, 0o600); err != nil {
			b.Fatal(err)
		}
		m := benchSection(b, "http", fmt.Sprintf("preferred_ip_protocol: ip4\ntls_config:\n  ca_file: %q", caFile))
		benchProbes(b, m, srv.URL)
	})
}

// BenchmarkTCPProbe connects to a listener that accepts and closes.
func BenchmarkTCPProbe(b *testing.B) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	benchProbes(b, benchSection(b, "tcp", "preferred_ip_protocol: ip4"), ln.Addr().String())
}

// BenchmarkDNSProbe asks a miekg/dns server over UDP for an A record.
func BenchmarkDNSProbe(b *testing.B) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) }, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A:   net.IPv4(127, 0, 0, 1),
		})
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	defer srv.Shutdown()
	m := benchSection(b, "dns", "preferred_ip_protocol: ip4\nquery_name: bench.test\nquery_type: A\nvalid_rcodes: [NOERROR]")
	benchProbes(b, m, pc.LocalAddr().String())
}

// BenchmarkGRPCProbe checks the standard health service over plaintext.
func BenchmarkGRPCProbe(b *testing.B) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	benchProbes(b, benchSection(b, "grpc", "preferred_ip_protocol: ip4"), ln.Addr().String())
}

// BenchmarkICMPProbe pings 127.0.0.1 once per probe, one probe at a time;
// BenchmarkICMPConcurrency measures many at once.
func BenchmarkICMPProbe(b *testing.B) {
	m := benchSection(b, "icmp", "preferred_ip_protocol: ip4")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := probeICMP(ctx, "127.0.0.1", m, probemetrics.NewSink(), probertest.DiscardLogger); err != nil {
		b.Skipf("this process cannot ping 127.0.0.1: %v", err)
	}
	benchProbes(b, m, "127.0.0.1")
}

// BenchmarkClassify turns the errors probes commonly end with into
// classes and reasons; it runs on every failed probe and attempt.
func BenchmarkClassify(b *testing.B) {
	refused := &net.OpError{Op: "dial", Net: "tcp4", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	for _, bc := range []struct {
		name string
		ctx  context.Context
		err  error
	}{
		{"classified", context.Background(), taxonomy.Failf(taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus, taxonomy.PhaseValidate, "status code %d", 500)},
		{"refused", context.Background(), fmt.Errorf("connecting to 127.0.0.1:1: %w", refused)},
		{"nxdomain", context.Background(), &net.DNSError{Err: "no such host", Name: "nx.example", IsNotFound: true}},
		{"deadline", expired, fmt.Errorf("reading: %w", os.ErrDeadlineExceeded)},
		{"unrecognised", context.Background(), errors.New("something nobody expected")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if taxonomy.Classify(bc.ctx, bc.err, taxonomy.PhaseConnect) == nil {
					b.Fatal("not classified")
				}
			}
		})
	}
}

// BenchmarkModuleLookup finds a module by name in a configuration of 200,
// and its prober, as every scrape does first.
func BenchmarkModuleLookup(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("modules:\n")
	for i := range 200 {
		fmt.Fprintf(&sb, "  module_%03d:\n    prober: tcp\n", i)
	}
	cfg, err := config.Load([]byte(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	set, err := NewSet(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m, ok := set.Module("module_137")
		if !ok {
			b.Fatal("module not found")
		}
		if _, ok := m.Func(); !ok {
			b.Fatal("no prober")
		}
	}
}
