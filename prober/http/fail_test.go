package http

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
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

// The http metrics blackbox_exporter exports, at 0, even when the probe
// fails before a response.
var httpGauges = []string{
	"probe_http_content_length",
	"probe_http_uncompressed_body_length",
	"probe_http_redirects",
	"probe_http_ssl",
	"probe_http_status_code",
	"probe_http_version",
	"probe_failed_due_to_regex",
}

// checkPhases asserts that all five phases are exported, that the phases
// in zero are exactly 0, and that those in nonzero were timed.
func checkPhases(t *testing.T, sink *probemetrics.Sink, nonzero, zero []taxonomy.Phase) {
	t.Helper()
	for _, p := range slices.Concat(nonzero, zero) {
		probertest.Value(t, sink, "probe_http_duration_seconds", string(p))
	}
	for _, p := range nonzero {
		if v := probertest.PhaseSeconds(t, sink, p); v <= 0 {
			t.Errorf("phase %s = %v, want it timed", p, v)
		}
	}
	for _, p := range zero {
		probertest.Metric(t, sink, 0, "probe_http_duration_seconds", string(p))
	}
}

// unreachedPhases checks that the probe has no series for these phases.
func unreachedPhases(t *testing.T, sink *probemetrics.Sink, phases ...taxonomy.Phase) {
	t.Helper()
	for _, p := range phases {
		if _, ok := sink.Value("probe_http_duration_seconds", string(p)); ok {
			t.Errorf("probe_http_duration_seconds{phase=%q} is there; the probe never got that far", p)
		}
	}
}

func TestHTTPFailures(t *testing.T) {
	noTLS := []taxonomy.Phase{taxonomy.PhaseTLS}
	cases := []struct {
		name    string
		target  func(t *testing.T) string
		want    failure
		message string
		timed   []taxonomy.Phase // phases that must have a duration
		zero    []taxonomy.Phase // phases that must be exactly 0
		// unreached are the phases with no series: as in blackbox, a
		// phase is there once the probe got that far.
		unreached []taxonomy.Phase
		partial   bool // a response arrived: its metrics are not 0
		check     func(t *testing.T, s *probemetrics.Sink)
	}{
		{
			name:   "refused port",
			target: func(t *testing.T) string { return "http://" + testkit.ClosedTCPAddr(t) },
			want:   failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect},
			timed:  []taxonomy.Phase{taxonomy.PhaseConnect},
			zero:   []taxonomy.Phase{taxonomy.PhaseTLS, taxonomy.PhaseProcessing, taxonomy.PhaseTransfer},
		},
		{
			name:   "refused port over https",
			target: func(t *testing.T) string { return "https://" + testkit.ClosedTCPAddr(t) },
			want:   failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect},
			zero:   []taxonomy.Phase{taxonomy.PhaseTLS, taxonomy.PhaseProcessing, taxonomy.PhaseTransfer},
		},
		{
			name:      "NXDOMAIN",
			target:    func(*testing.T) string { return "http://nx.test/" },
			want:      failure{taxonomy.ClassDNS, taxonomy.ReasonNXDomain, taxonomy.PhaseResolve},
			timed:     []taxonomy.Phase{taxonomy.PhaseResolve},
			unreached: []taxonomy.Phase{taxonomy.PhaseConnect, taxonomy.PhaseTLS, taxonomy.PhaseProcessing, taxonomy.PhaseTransfer},
		},
		{
			name:      "SERVFAIL",
			target:    func(*testing.T) string { return "https://" + probertest.ServfailName + "/" },
			want:      failure{taxonomy.ClassDNS, taxonomy.ReasonServFail, taxonomy.PhaseResolve},
			zero:      []taxonomy.Phase{},
			unreached: []taxonomy.Phase{taxonomy.PhaseConnect, taxonomy.PhaseTLS, taxonomy.PhaseProcessing, taxonomy.PhaseTransfer},
		},
		{
			name: "5xx",
			target: func(t *testing.T) string {
				return probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.Error(w, "down", http.StatusServiceUnavailable)
				}), probertest.ServerOpts{}).URL
			},
			want:    failure{taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus, taxonomy.PhaseValidate},
			message: "503",
			partial: true,
			timed:   []taxonomy.Phase{taxonomy.PhaseConnect, taxonomy.PhaseProcessing, taxonomy.PhaseTransfer},
			zero:    noTLS,
		},
		{
			name: "peer closes without a response",
			target: func(t *testing.T) string {
				return "http://" + probertest.RawServer(t, probertest.Answer(func(c net.Conn) { c.Close() }))
			},
			want: failure{taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, taxonomy.PhaseProcessing},
			zero: []taxonomy.Phase{taxonomy.PhaseTLS, taxonomy.PhaseTransfer},
		},
		{
			name: "peer closes in the middle of the body",
			target: func(t *testing.T) string {
				return "http://" + probertest.RawServer(t, probertest.Answer(func(c net.Conn) {
					fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
					c.Close()
				}))
			},
			want:    failure{taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, taxonomy.PhaseTransfer},
			timed:   []taxonomy.Phase{taxonomy.PhaseTransfer},
			zero:    noTLS,
			partial: true,
			check: func(t *testing.T, s *probemetrics.Sink) {
				probertest.Metric(t, s, 200, "probe_http_status_code")
				probertest.Metric(t, s, 100, "probe_http_content_length")
				probertest.Metric(t, s, 10, "probe_http_uncompressed_body_length")
			},
		},
		{
			name: "peer sends garbage",
			target: func(t *testing.T) string {
				return "http://" + probertest.RawServer(t, probertest.Answer(func(c net.Conn) {
					fmt.Fprint(c, "SSH-2.0-OpenSSH_9.6\r\n\r\n")
				}))
			},
			want: failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseTransfer},
			zero: noTLS,
		},
		{
			name: "peer sends garbage to https",
			target: func(t *testing.T) string {
				return "https://" + probertest.RawServer(t, func(c net.Conn) {
					fmt.Fprint(c, "SSH-2.0-OpenSSH_9.6\r\n\r\n")
					_, _ = io.Copy(io.Discard, c)
				})
			},
			want:  failure{taxonomy.ClassTLS, taxonomy.ReasonHandshake, taxonomy.PhaseTLS},
			timed: []taxonomy.Phase{taxonomy.PhaseTLS},
			zero:  []taxonomy.Phase{taxonomy.PhaseProcessing, taxonomy.PhaseTransfer},
		},
		{
			name: "peer resets",
			target: func(t *testing.T) string {
				return "http://" + probertest.RawServer(t, probertest.Answer(func(c net.Conn) {
					_ = c.(*net.TCPConn).SetLinger(0)
					c.Close()
				}))
			},
			want: failure{taxonomy.ClassConnect, taxonomy.ReasonReset, taxonomy.PhaseProcessing},
			zero: []taxonomy.Phase{taxonomy.PhaseTLS, taxonomy.PhaseTransfer},
		},
		{
			name: "peer resets during the TLS handshake",
			target: func(t *testing.T) string {
				return "https://" + probertest.RawServer(t, func(c net.Conn) {
					buf := make([]byte, 1)
					_, _ = c.Read(buf)
					_ = c.(*net.TCPConn).SetLinger(0)
					c.Close()
				})
			},
			want: failure{taxonomy.ClassConnect, taxonomy.ReasonReset, taxonomy.PhaseTLS},
			zero: []taxonomy.Phase{taxonomy.PhaseProcessing, taxonomy.PhaseTransfer},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bothWays(t, func(t *testing.T, way func(*core.Module) *core.Module) {
				m := way(newModule(t, nil))
				sink, err := probertest.Run(t, m, tc.target(t))
				perr := checkOutcome(t, err, tc.want)
				if tc.message != "" && !strings.Contains(perr.Error(), tc.message) {
					t.Errorf("error %v does not mention %q", perr, tc.message)
				}
				checkPhases(t, sink, tc.timed, tc.zero)
				unreachedPhases(t, sink, tc.unreached...)
				probertest.Absent(t, sink, tlsFamilies...)
				if tc.check != nil {
					tc.check(t, sink)
				}
				if tc.partial {
					probertest.Metric(t, sink, 1.1, "probe_http_version")
					return
				}
				for _, name := range httpGauges {
					probertest.Metric(t, sink, 0, name)
				}
			})
		})
	}
}

func TestHTTPInvalidTargets(t *testing.T) {
	for _, target := range []string{"ftp://x", "http://", "http://[::1", "", "https:///path", "gopher://example.com:70/"} {
		t.Run(fmt.Sprintf("%q", target), func(t *testing.T) {
			sink, err := probertest.Run(t, newModule(t, nil), target)
			perr := checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup})
			msg := perr.Error()
			if !strings.Contains(msg, "http://") && !strings.Contains(msg, "http[s]://") {
				t.Errorf("message %q does not say how to write the target", msg)
			}
			// Nothing was attempted, but the http family is there, as
			// in blackbox, without the phases nothing reached.
			for _, name := range httpGauges {
				probertest.Metric(t, sink, 0, name)
			}
			unreachedPhases(t, sink, phases...)
		})
	}
}

// Deadline honesty: a probe of a peer that stalls ends by its deadline,
// as a timeout in the phase that stalled.
func TestHTTPDeadlines(t *testing.T) {
	const timeout = 300 * time.Millisecond
	const slack = 200 * time.Millisecond
	cases := []struct {
		name  string
		setup func(t *testing.T) (target string, m *core.Module)
		phase taxonomy.Phase
		timed []taxonomy.Phase // including the phase that stalled
		zero  []taxonomy.Phase
	}{
		{
			name: "listener that never answers TLS",
			setup: func(t *testing.T) (string, *core.Module) {
				addr := probertest.RawServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
				return "https://" + addr, newModule(t, nil)
			},
			phase: taxonomy.PhaseTLS,
			timed: []taxonomy.Phase{taxonomy.PhaseTLS},
			zero:  []taxonomy.Phase{taxonomy.PhaseProcessing, taxonomy.PhaseTransfer},
		},
		{
			name: "server that sleeps before the headers",
			setup: func(t *testing.T) (string, *core.Module) {
				srv := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					probertest.Hold(r)
				}), probertest.ServerOpts{})
				return srv.URL, newModule(t, nil)
			},
			phase: taxonomy.PhaseProcessing,
			timed: []taxonomy.Phase{taxonomy.PhaseProcessing},
			zero:  []taxonomy.Phase{taxonomy.PhaseTLS, taxonomy.PhaseTransfer},
		},
		{
			name: "https server that sleeps before the headers",
			setup: func(t *testing.T) (string, *core.Module) {
				ca := testcert.NewCA(t, testcert.Spec{})
				srv := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					probertest.Hold(r)
				}), probertest.ServerOpts{TLS: true, HTTP2: true, CA: ca})
				return srv.URL, newModule(t, func(h *config.HTTPProbe) { h.HTTPClientConfig.TLSConfig.CAFile = ca.File(t) })
			},
			phase: taxonomy.PhaseProcessing,
			timed: []taxonomy.Phase{taxonomy.PhaseTLS, taxonomy.PhaseProcessing},
			zero:  []taxonomy.Phase{taxonomy.PhaseTransfer},
		},
		{
			name: "server that stalls in the middle of the body",
			setup: func(t *testing.T) (string, *core.Module) {
				srv := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Length", "1000")
					fmt.Fprint(w, "the first part")
					w.(http.Flusher).Flush()
					probertest.Hold(r)
				}), probertest.ServerOpts{})
				return srv.URL, newModule(t, nil)
			},
			phase: taxonomy.PhaseTransfer,
			timed: []taxonomy.Phase{taxonomy.PhaseProcessing, taxonomy.PhaseTransfer},
			zero:  []taxonomy.Phase{taxonomy.PhaseTLS},
		},
		{
			name: "body checks on a body that stalls",
			setup: func(t *testing.T) (string, *core.Module) {
				srv := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					fmt.Fprint(w, "the first part")
					w.(http.Flusher).Flush()
					probertest.Hold(r)
				}), probertest.ServerOpts{})
				return srv.URL, newModule(t, func(h *config.HTTPProbe) { h.FailIfBodyMatchesRegexp = res("error") })
			},
			phase: taxonomy.PhaseTransfer,
			timed: []taxonomy.Phase{taxonomy.PhaseTransfer},
		},
		{
			name: "DNS server that never answers",
			setup: func(t *testing.T) (string, *core.Module) {
				return "http://" + probertest.SilentName + "/", newModule(t, nil)
			},
			phase: taxonomy.PhaseResolve,
			timed: []taxonomy.Phase{taxonomy.PhaseResolve},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target, m := tc.setup(t)
			sink, took, err := probertest.Probe(t, m, target, timeout)
			if took > timeout+slack {
				t.Errorf("probe took %v, more than its deadline %v + %v", took, timeout, slack)
			}
			checkOutcome(t, err, failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, tc.phase})
			checkPhases(t, sink, tc.timed, tc.zero)
		})
	}
}

// Phase timing is real: time spent in a phase shows in that phase.
func TestHTTPPhaseTimings(t *testing.T) {
	const pause = 100 * time.Millisecond
	t.Run("slow handshake", func(t *testing.T) {
		ca := testcert.NewCA(t, testcert.Spec{})
		cert := ca.Issue(t, testcert.Loopback()).TLS()
		var calls atomic.Int32
		srv := probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{TLS: true, Cert: &cert, TLSConf: func(c *tls.Config) {
			// Consulted for every client that sends a server name.
			c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				calls.Add(1)
				time.Sleep(pause)
				return &cert, nil
			}
		}})
		m := newModule(t, func(h *config.HTTPProbe) {
			h.HTTPClientConfig.TLSConfig.CAFile = ca.File(t)
			h.HTTPClientConfig.TLSConfig.ServerName = "localhost"
		})
		sink, err := probertest.Run(t, m, srv.URL)
		checkOutcome(t, err, failure{})
		if calls.Load() != 1 {
			t.Fatalf("GetCertificate called %d times, want 1", calls.Load())
		}
		if v := probertest.PhaseSeconds(t, sink, taxonomy.PhaseTLS); v < pause.Seconds() {
			t.Errorf("tls phase = %vs, want at least %v", v, pause)
		}
		if v := probertest.PhaseSeconds(t, sink, taxonomy.PhaseProcessing); v >= pause.Seconds() {
			t.Errorf("processing phase = %vs, want less than %v: the handshake leaked into it", v, pause)
		}
	})
	t.Run("slow handler", func(t *testing.T) {
		srv := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(pause)
			fmt.Fprint(w, "ok")
		}), probertest.ServerOpts{})
		sink, err := probertest.Run(t, newModule(t, nil), srv.URL)
		checkOutcome(t, err, failure{})
		if v := probertest.PhaseSeconds(t, sink, taxonomy.PhaseProcessing); v < pause.Seconds() {
			t.Errorf("processing phase = %vs, want at least %v", v, pause)
		}
		probertest.Metric(t, sink, 0, "probe_http_duration_seconds", string(taxonomy.PhaseTLS))
	})
	t.Run("slow body", func(t *testing.T) {
		srv := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "first")
			w.(http.Flusher).Flush()
			time.Sleep(pause)
			fmt.Fprint(w, "second")
		}), probertest.ServerOpts{})
		sink, err := probertest.Run(t, newModule(t, nil), srv.URL)
		checkOutcome(t, err, failure{})
		if v := probertest.PhaseSeconds(t, sink, taxonomy.PhaseTransfer); v < pause.Seconds() {
			t.Errorf("transfer phase = %vs, want at least %v", v, pause)
		}
		if v := probertest.PhaseSeconds(t, sink, taxonomy.PhaseProcessing); v >= pause.Seconds() {
			t.Errorf("processing phase = %vs, want less than %v", v, pause)
		}
	})
	t.Run("phases summed over redirects", func(t *testing.T) {
		srv := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(pause)
			if r.URL.Path == "/" {
				http.Redirect(w, r, "/next", http.StatusFound)
			}
		}), probertest.ServerOpts{})
		sink, err := probertest.Run(t, newModule(t, nil), srv.URL)
		checkOutcome(t, err, failure{})
		probertest.Metric(t, sink, 1, "probe_http_redirects")
		if v := probertest.PhaseSeconds(t, sink, taxonomy.PhaseProcessing); v < 2*pause.Seconds() {
			t.Errorf("processing phase = %vs, want at least %v over two requests", v, 2*pause)
		}
		// The redirect's body is never read: the time until the probe
		// ended, which includes the second request, is not its transfer.
		if v := probertest.PhaseSeconds(t, sink, taxonomy.PhaseTransfer); v >= pause.Seconds() {
			t.Errorf("transfer phase = %vs, want less than %v", v, pause)
		}
	})
}
