package prober

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/dns"
	httpprober "github.com/sonde-exporter/sonde/prober/http"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
	"github.com/sonde-exporter/sonde/prober/tcp"
)

// Every prober records the phases it measures as spans, with the clock
// readings its phase metrics are computed from. These tests run each
// prober against a loopback server and check the spans against the run
// and against the metrics.

// timelineCase is one probe whose spans are checked.
type timelineCase struct {
	name  string
	setup func(t *testing.T) (*core.Module, string) // the module and the target
	want  failure
	// spans are the phases expected, as "phase/hop", in any order.
	spans []string
	// metrics maps a phase to the series holding its duration: the sum
	// of the phase's spans must equal it. Phases not listed are not
	// compared (their metric is not a plain duration).
	metrics map[taxonomy.Phase]gauge
	check   func(t *testing.T, sink *probemetrics.Sink, spans []probemetrics.Span)
}

// gauge names one series: a family and its label values.
type gauge struct {
	name   string
	labels []string
}

// phaseSeries maps each phase to family{phase=...}; as maps a phase to
// another label value (dns's query phase is exported as "request").
func phaseSeries(family string, phases ...taxonomy.Phase) map[taxonomy.Phase]gauge {
	m := map[taxonomy.Phase]gauge{}
	for _, p := range phases {
		m[p] = gauge{family, []string{string(p)}}
	}
	return m
}

func runTimelineCases(t *testing.T, cases []timelineCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, target := tc.setup(t)
			sink, spans, before, after, err := probeTimed(t, m, target)
			checkOutcome(t, err, tc.want)
			checkSpanSet(t, spans, tc.spans)
			checkSpansWithin(t, spans, before, after)
			checkSpanMetrics(t, sink, spans, tc.metrics)
			if tc.check != nil {
				tc.check(t, sink, spans)
			}
		})
	}
}

// probeTimed runs one probe and returns its spans and the times taken
// just before and just after it ran.
func probeTimed(t *testing.T, m *core.Module, target string) (*probemetrics.Sink, []probemetrics.Span, time.Time, time.Time, error) {
	t.Helper()
	f, ok := m.Func()
	if !ok {
		t.Fatalf("prober %q is not implemented", m.Prober)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sink := probemetrics.NewSink()
	before := time.Now()
	err := f(ctx, target, m, sink, probertest.DiscardLogger)
	after := time.Now()
	return sink, sink.Spans(), before, after, err
}

func spanKey(s probemetrics.Span) string { return fmt.Sprintf("%s/%d", s.Phase, s.Hop) }

func checkSpanSet(t *testing.T, spans []probemetrics.Span, want []string) {
	t.Helper()
	got := make([]string, len(spans))
	for i, s := range spans {
		got[i] = spanKey(s)
	}
	want = slices.Clone(want)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("spans = %v, want %v", got, want)
	}
}

func checkSpansWithin(t *testing.T, spans []probemetrics.Span, before, after time.Time) {
	t.Helper()
	for _, s := range spans {
		if s.End.Before(s.Start) {
			t.Errorf("span %s ends %v before it starts", spanKey(s), s.Start.Sub(s.End))
		}
		if s.Start.Before(before) || s.End.After(after) {
			t.Errorf("span %s (%v to %v) is not within the probe's run (%v to %v)",
				spanKey(s), s.Start, s.End, before, after)
		}
	}
}

// checkSpanMetrics compares each listed phase's spans, summed over hops,
// with its metric.
func checkSpanMetrics(t *testing.T, sink *probemetrics.Sink, spans []probemetrics.Span, metrics map[taxonomy.Phase]gauge) {
	t.Helper()
	for phase, s := range metrics {
		got := probertest.Value(t, sink, s.name, s.labels...)
		if want := phaseTotal(spans, phase); math.Abs(got-want) > 1e-6 {
			t.Errorf("%s%v = %v, but the %s spans last %v", s.name, s.labels, got, phase, want)
		}
	}
}

// phaseTotal is how long the spans of phase last, in seconds.
func phaseTotal(spans []probemetrics.Span, phase taxonomy.Phase) float64 {
	var d time.Duration
	for _, s := range spans {
		if s.Phase == phase {
			d += s.Duration()
		}
	}
	return d.Seconds()
}

// namedSpec is a server certificate for v4only.test, the test zone's name
// for 127.0.0.1: a target by that name has a resolve phase.
func namedSpec() *testcert.Spec {
	return new(testcert.Named("v4only.test"))
}

// named is hostport with its host replaced by v4only.test.
func named(t *testing.T, hostport string) string {
	t.Helper()
	return net.JoinHostPort("v4only.test", probertest.Port(t, hostport))
}

// httpModuleIP4 is an http module that resolves to IPv4, as the test
// servers listen there, trusting ca when it is not nil.
func httpModuleIP4(t *testing.T, ca *testcert.CA) *core.Module {
	t.Helper()
	return newModule(t, func(h *config.HTTPProbe) {
		h.IPProtocol = "ip4"
		if ca != nil {
			h.HTTPClientConfig.TLSConfig.CAFile = ca.File(t)
		}
	})
}

var httpSeries = phaseSeries("probe_http_duration_seconds", httpprober.Phases()...)

func TestTimelineHTTP(t *testing.T) {
	redirecting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			http.Redirect(w, r, "/next", http.StatusFound)
			return
		}
		fmt.Fprint(w, "ok")
	})
	runTimelineCases(t, []timelineCase{
		{
			name: "plain",
			setup: func(t *testing.T) (*core.Module, string) {
				srv := probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{})
				return httpModuleIP4(t, nil), "http://" + named(t, srv.URL) + "/"
			},
			spans:   []string{"resolve/0", "connect/0", "processing/0", "transfer/0"},
			metrics: httpSeries,
			check: func(t *testing.T, sink *probemetrics.Sink, spans []probemetrics.Span) {
				probertest.Metric(t, sink, phaseTotal(spans, taxonomy.PhaseResolve), "probe_dns_lookup_time_seconds")
			},
		},
		{
			name: "an IP literal is not resolved",
			setup: func(t *testing.T) (*core.Module, string) {
				return httpModuleIP4(t, nil), probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{}).URL
			},
			spans:   []string{"connect/0", "processing/0", "transfer/0"},
			metrics: phaseSeries("probe_http_duration_seconds", taxonomy.PhaseConnect, taxonomy.PhaseTLS, taxonomy.PhaseProcessing, taxonomy.PhaseTransfer),
		},
		{
			name: "https",
			setup: func(t *testing.T) (*core.Module, string) {
				ca := testcert.NewCA(t, testcert.Spec{})
				srv := probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{TLS: true, CA: ca, Spec: namedSpec()})
				return httpModuleIP4(t, ca), "https://" + named(t, srv.URL) + "/"
			},
			spans:   []string{"resolve/0", "connect/0", "tls/0", "processing/0", "transfer/0"},
			metrics: httpSeries,
		},
		{
			name: "one redirect",
			setup: func(t *testing.T) (*core.Module, string) {
				srv := probertest.NewServer(t, redirecting, probertest.ServerOpts{})
				return httpModuleIP4(t, nil), "http://" + named(t, srv.URL) + "/"
			},
			// The redirect's body is never read: no transfer for hop 0.
			// Its host is the target's, resolved already: no resolve for hop 1.
			spans:   []string{"resolve/0", "connect/0", "processing/0", "connect/1", "processing/1", "transfer/1"},
			metrics: httpSeries,
			check:   checkHopsInOrder,
		},
		{
			name: "https with one redirect",
			setup: func(t *testing.T) (*core.Module, string) {
				ca := testcert.NewCA(t, testcert.Spec{})
				srv := probertest.NewServer(t, redirecting, probertest.ServerOpts{TLS: true, CA: ca, Spec: namedSpec()})
				return httpModuleIP4(t, ca), "https://" + named(t, srv.URL) + "/"
			},
			spans: []string{"resolve/0", "connect/0", "tls/0", "processing/0",
				"connect/1", "tls/1", "processing/1", "transfer/1"},
			metrics: httpSeries,
			check:   checkHopsInOrder,
		},
		{
			// net/http's Transport makes the handshake, and the query
			// within it, once the chain verified: the handshake's tls
			// phase is what comes before and after the query.
			name:  "https with an OCSP query",
			setup: func(t *testing.T) (*core.Module, string) { return ocspTarget(t, probertest.OKHandler) },
			spans: []string{"connect/0", "tls/0", "ocsp/0", "tls/0", "processing/0", "transfer/0"},
			metrics: func() map[taxonomy.Phase]gauge {
				m := phaseSeries("probe_http_duration_seconds", taxonomy.PhaseConnect, taxonomy.PhaseTLS, taxonomy.PhaseProcessing, taxonomy.PhaseTransfer)
				m[taxonomy.PhaseOCSP] = gauge{name: "probe_tls_ocsp_duration_seconds"}
				return m
			}(),
		},
		{
			// Every handshake asks (the module's cache may answer); the
			// metrics are the last handshake's.
			name:  "https with an OCSP query and one redirect",
			setup: func(t *testing.T) (*core.Module, string) { return ocspTarget(t, redirecting) },
			spans: []string{"connect/0", "tls/0", "ocsp/0", "tls/0", "processing/0",
				"connect/1", "tls/1", "ocsp/1", "tls/1", "processing/1", "transfer/1"},
			metrics: phaseSeries("probe_http_duration_seconds", taxonomy.PhaseConnect, taxonomy.PhaseTLS, taxonomy.PhaseProcessing, taxonomy.PhaseTransfer),
			check: func(t *testing.T, sink *probemetrics.Sink, spans []probemetrics.Span) {
				checkHopsInOrder(t, sink, spans)
				for _, s := range spans {
					if s.Phase == taxonomy.PhaseOCSP && s.Hop == 1 {
						probertest.Metric(t, sink, s.Duration().Seconds(), "probe_tls_ocsp_duration_seconds")
					}
				}
			},
		},
		{
			name: "connection refused",
			setup: func(t *testing.T) (*core.Module, string) {
				return httpModuleIP4(t, nil), "http://" + named(t, testkit.ClosedTCPAddr(t)) + "/"
			},
			want:    failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect},
			spans:   []string{"resolve/0", "connect/0"},
			metrics: httpSeries,
		},
	})
}

// ocspTarget is an https server behind handler whose certificate names an
// OCSP responder, and a module that asks it.
func ocspTarget(t *testing.T, handler http.Handler) (*core.Module, string) {
	t.Helper()
	ca := testcert.NewCA(t, testcert.Spec{})
	var answer func(http.ResponseWriter)
	r := probertest.NewOCSPResponder(t, func(w http.ResponseWriter) { answer(w) })
	leaf := ca.Issue(t, probertest.WithOCSP(r.URL))
	answer = signed(ocsp.Good)(t, ca, leaf)
	srv := probertest.NewServer(t, handler, probertest.ServerOpts{TLS: true, Cert: new(leaf.TLS())})
	return (&ocspEnv{ca: ca}).module(t, probertest.OCSPPolicy(config.OCSPQuery)), srv.URL + "/"
}

// checkHopsInOrder asserts that every span of a request lies after every
// span of the request before it.
func checkHopsInOrder(t *testing.T, _ *probemetrics.Sink, spans []probemetrics.Span) {
	t.Helper()
	for _, a := range spans {
		for _, b := range spans {
			if a.Hop < b.Hop && a.End.After(b.Start) {
				t.Errorf("span %s ends after span %s starts", spanKey(a), spanKey(b))
			}
		}
	}
}

// tcpModuleIP4 is a tcp module resolving to IPv4, changed by mutate.
func tcpModuleIP4(t *testing.T, mutate func(c *config.TCPProbe)) *core.Module {
	t.Helper()
	return defaultModule(t, "tcp", func(cm *config.Module) {
		cm.TCP.IPProtocol = "ip4"
		mutate(&cm.TCP)
	})
}

// tlsPeer serves TLS for v4only.test at once, then says hello.
func tlsPeer(t *testing.T, ca *testcert.CA) func(c net.Conn) {
	cert := ca.Issue(t, *namedSpec())
	return func(c net.Conn) {
		defer c.Close()
		p := probertest.NewPeer(t, c)
		p.StartTLS(&tls.Config{Certificates: []tls.Certificate{cert.TLS()}})
		p.Say("hello")
	}
}

// starttlsPeer greets in plaintext, then switches to TLS when asked.
func starttlsPeer(t *testing.T, ca *testcert.CA) func(c net.Conn) {
	cert := ca.Issue(t, *namedSpec())
	return func(c net.Conn) {
		defer c.Close()
		p := probertest.NewPeer(t, c)
		p.Say("220 ready")
		if p.Hear("STARTTLS") {
			p.Say("220 go ahead")
			p.StartTLS(&tls.Config{Certificates: []tls.Certificate{cert.TLS()}})
			p.Say("250 secure")
		}
	}
}

var tcpSeries = phaseSeries("probe_tcp_duration_seconds", tcp.Phases()...)

func TestTimelineTCP(t *testing.T) {
	ca := testcert.NewCA(t, testcert.Spec{})
	runTimelineCases(t, []timelineCase{
		{
			name: "tls",
			setup: func(t *testing.T) (*core.Module, string) {
				addr := probertest.RawServer(t, tlsPeer(t, ca))
				return tcpModuleIP4(t, func(c *config.TCPProbe) {
					c.TLS = true
					c.TLSConfig.CAFile = ca.File(t)
					c.QueryResponse = []config.QueryResponse{probertest.ExpectStep("^hello")}
				}), named(t, addr)
			},
			spans:   []string{"resolve/0", "connect/0", "tls/0", "query/0"},
			metrics: tcpSeries,
		},
		{
			name: "query_response",
			setup: func(t *testing.T) (*core.Module, string) {
				addr := probertest.RawServer(t, func(c net.Conn) {
					defer c.Close()
					p := probertest.NewPeer(t, c)
					p.Say("220 ready")
					if p.Hear("HELO sonde") {
						p.Say("250 hi")
					}
				})
				return tcpModuleIP4(t, func(c *config.TCPProbe) {
					c.QueryResponse = []config.QueryResponse{probertest.ExpectStep("^220"), probertest.SendStep("HELO sonde"), probertest.ExpectStep("^250")}
				}), named(t, addr)
			},
			spans:   []string{"resolve/0", "connect/0", "query/0"},
			metrics: tcpSeries,
		},
		{
			// The query metric leaves out the handshake inside the
			// script; the query span is the conversation as it happened,
			// with the tls span inside it.
			name: "starttls step",
			setup: func(t *testing.T) (*core.Module, string) {
				addr := probertest.RawServer(t, starttlsPeer(t, ca))
				return tcpModuleIP4(t, func(c *config.TCPProbe) {
					c.TLSConfig.CAFile = ca.File(t)
					c.QueryResponse = []config.QueryResponse{probertest.ExpectStep("^220 ready"), probertest.SendStep("STARTTLS"),
						{Expect: config.MustNewRegexp("^220 go"), StartTLS: true}, probertest.ExpectStep("^250 secure")}
				}), named(t, addr)
			},
			spans:   []string{"resolve/0", "connect/0", "query/0", "tls/0"},
			metrics: phaseSeries("probe_tcp_duration_seconds", taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseTLS),
			check: func(t *testing.T, sink *probemetrics.Sink, spans []probemetrics.Span) {
				query, tls := only(t, spans, taxonomy.PhaseQuery), only(t, spans, taxonomy.PhaseTLS)
				if tls.Start.Before(query.Start) || tls.End.After(query.End) {
					t.Errorf("the tls span (%v to %v) is not inside the query span (%v to %v)", tls.Start, tls.End, query.Start, query.End)
				}
				got := probertest.Value(t, sink, "probe_tcp_duration_seconds", string(taxonomy.PhaseQuery))
				if want := (query.Duration() - tls.Duration()).Seconds(); math.Abs(got-want) > 1e-6 {
					t.Errorf("query phase %v, want the query span less the tls span, %v", got, want)
				}
			},
		},
		{
			name: "connection refused",
			setup: func(t *testing.T) (*core.Module, string) {
				return tcpModuleIP4(t, func(*config.TCPProbe) {}), named(t, testkit.ClosedTCPAddr(t))
			},
			want:    failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect},
			spans:   []string{"resolve/0", "connect/0"},
			metrics: phaseSeries("probe_tcp_duration_seconds", taxonomy.PhaseResolve, taxonomy.PhaseConnect),
		},
	})
}

// only returns the one span of phase.
func only(t *testing.T, spans []probemetrics.Span, phase taxonomy.Phase) probemetrics.Span {
	t.Helper()
	var found []probemetrics.Span
	for _, s := range spans {
		if s.Phase == phase {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s spans, want 1", len(found), phase)
	}
	return found[0]
}

func TestTimelineUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, "hello\n")
			}()
		}
	}()
	runTimelineCases(t, []timelineCase{{
		name: "query_response",
		setup: func(t *testing.T) (*core.Module, string) {
			return defaultModule(t, "unix", func(cm *config.Module) {
				cm.Unix.QueryResponse = []config.QueryResponse{probertest.ExpectStep("^hello")}
			}), path
		},
		spans: []string{"connect/0", "query/0"},
	}})
}

func dnsModuleIP4(t *testing.T, extra ...string) *core.Module {
	t.Helper()
	return dnsModule(t, strings.Join(append([]string{"query_name: example.test", "query_type: A", "preferred_ip_protocol: ip4"}, extra...), "\n"))
}

// dnsSeries maps the phases to probe_dns_duration_seconds, where the query
// phase is called request.
func dnsSeries(phases ...taxonomy.Phase) map[taxonomy.Phase]gauge {
	m := phaseSeries("probe_dns_duration_seconds", phases...)
	m[taxonomy.PhaseQuery] = gauge{"probe_dns_duration_seconds", []string{dns.RequestPhase}}
	return m
}

func TestTimelineDNS(t *testing.T) {
	s := probertest.NewDNSTestServer(t, "127.0.0.1")
	runTimelineCases(t, []timelineCase{
		{
			name:    "udp",
			setup:   func(t *testing.T) (*core.Module, string) { return dnsModuleIP4(t), named(t, s.Addr) },
			spans:   []string{"resolve/0", "connect/0", "query/0"},
			metrics: dnsSeries(taxonomy.PhaseResolve, taxonomy.PhaseConnect),
			check: func(t *testing.T, sink *probemetrics.Sink, spans []probemetrics.Span) {
				probertest.Metric(t, sink, phaseTotal(spans, taxonomy.PhaseResolve), "probe_dns_lookup_time_seconds")
			},
		},
		{
			name: "tcp",
			setup: func(t *testing.T) (*core.Module, string) {
				return dnsModuleIP4(t, "transport_protocol: tcp"), named(t, s.Addr)
			},
			spans:   []string{"resolve/0", "connect/0", "query/0"},
			metrics: dnsSeries(taxonomy.PhaseResolve, taxonomy.PhaseConnect),
		},
		{
			name: "over tls",
			setup: func(t *testing.T) (*core.Module, string) {
				// The server's certificate is for localhost.
				return dnsModuleIP4(t, "dns_over_tls: true", "tls_config: {ca_file: "+s.CA.File(t)+", server_name: localhost}"), named(t, s.Dot)
			},
			spans:   []string{"resolve/0", "connect/0", "tls/0", "query/0"},
			metrics: dnsSeries(taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseTLS),
		},
		{
			name: "over https",
			setup: func(t *testing.T) (*core.Module, string) {
				doh := strings.Replace(s.Doh, "127.0.0.1", "v4only.test", 1)
				return dnsModuleIP4(t, "transport_protocol: https", "tls_config: {ca_file: "+s.CA.File(t)+", server_name: localhost}"), doh
			},
			spans:   []string{"resolve/0", "connect/0", "tls/0", "query/0"},
			metrics: dnsSeries(taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseTLS),
		},
	})
}

func TestTimelineGRPC(t *testing.T) {
	plain := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{})
	secure := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{TLS: true, Spec: namedSpec()})
	grpcSeries := phaseSeries("probe_grpc_duration_seconds", taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseTLS, taxonomy.PhaseCheck)
	runTimelineCases(t, []timelineCase{
		{
			name: "plain",
			setup: func(t *testing.T) (*core.Module, string) {
				return grpcModule(t, "preferred_ip_protocol: ip4"), named(t, plain.Addr)
			},
			spans:   []string{"resolve/0", "connect/0", "check/0"},
			metrics: phaseSeries("probe_grpc_duration_seconds", taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseCheck),
		},
		{
			name: "tls",
			setup: func(t *testing.T) (*core.Module, string) {
				return grpcModule(t, probertest.GRPCTLSSection(t, secure.CA, "preferred_ip_protocol: ip4")), named(t, secure.Addr)
			},
			spans:   []string{"resolve/0", "connect/0", "tls/0", "check/0"},
			metrics: grpcSeries,
		},
	})
}

func TestTimelineWebsocket(t *testing.T) {
	ca := testcert.NewCA(t, testcert.Spec{})
	wsSeries := phaseSeries("probe_websocket_duration_seconds", taxonomy.PhaseResolve, taxonomy.PhaseConnect, taxonomy.PhaseProcessing, taxonomy.PhaseTransfer)
	module := func(t *testing.T) *core.Module {
		return wsYAMLModule(t, probertest.GreetScript+"preferred_ip_protocol: ip4\nhttp_config:\n  tls_config:\n    ca_file: "+ca.File(t))
	}
	runTimelineCases(t, []timelineCase{
		{
			name: "ws",
			setup: func(t *testing.T) (*core.Module, string) {
				srv, _ := probertest.WSServer(t, probertest.Greeter, probertest.ServerOpts{})
				return module(t), "ws://" + named(t, srv.URL) + "/"
			},
			spans:   []string{"resolve/0", "connect/0", "processing/0", "transfer/0"},
			metrics: wsSeries,
		},
		{
			// The connect phase counts the handshake, as blackbox's does;
			// the spans tell the two apart.
			name: "wss",
			setup: func(t *testing.T) (*core.Module, string) {
				srv, _ := probertest.WSServer(t, probertest.Greeter, probertest.ServerOpts{TLS: true, CA: ca, Spec: namedSpec()})
				return module(t), "wss://" + named(t, srv.URL) + "/"
			},
			spans:   []string{"resolve/0", "connect/0", "tls/0", "processing/0", "transfer/0"},
			metrics: phaseSeries("probe_websocket_duration_seconds", taxonomy.PhaseResolve, taxonomy.PhaseProcessing, taxonomy.PhaseTransfer),
			check: func(t *testing.T, sink *probemetrics.Sink, spans []probemetrics.Span) {
				got := probertest.Value(t, sink, "probe_websocket_duration_seconds", string(taxonomy.PhaseConnect))
				if want := phaseTotal(spans, taxonomy.PhaseConnect) + phaseTotal(spans, taxonomy.PhaseTLS); math.Abs(got-want) > 1e-6 {
					t.Errorf("connect phase %v, want the connect and tls spans, %v", got, want)
				}
			},
		},
	})
}
