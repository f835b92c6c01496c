package prober

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// dualStackServer serves handler on 127.0.0.1 and [::1] at the same port,
// so that a name resolving to either address reaches it. It skips the test
// when ::1 cannot be listened on.
func dualStackServer(t *testing.T, handler http.Handler) string {
	t.Helper()
	var ln4, ln6 net.Listener
	var err error
	for range 20 {
		ln4, err = net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln6, err = net.Listen("tcp6", net.JoinHostPort("::1", probertest.Port(t, ln4.Addr().String())))
		if err == nil {
			break
		}
		ln4.Close()
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Skipf("cannot listen on [::1]: %v", err)
		}
	}
	if err != nil {
		t.Skipf("no port free on both 127.0.0.1 and [::1]: %v", err)
	}
	srv := &http.Server{Handler: handler}
	var wg sync.WaitGroup
	for _, ln := range []net.Listener{ln4, ln6} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = srv.Serve(ln)
		}()
	}
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	return probertest.Port(t, ln4.Addr().String())
}

func fnvHash(ip string) float64 {
	parsed := net.ParseIP(ip)
	if v4 := parsed.To4(); v4 != nil {
		parsed = v4
	}
	h := fnv.New32a()
	h.Write(parsed)
	return float64(h.Sum32())
}

func TestHTTPIPProtocol(t *testing.T) {
	var (
		mu     sync.Mutex
		remote string
	)
	p := dualStackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		remote = host
		mu.Unlock()
	}))
	cases := []struct {
		name      string
		host      string
		preferred string
		fallback  bool
		want      failure
		wantIP    string // the address the server must have been reached at
	}{
		{"A only, ip6 preferred, fallback", "v4only.test", "", true, failure{}, "127.0.0.1"},
		{"A only, ip4 preferred, no fallback", "v4only.test", "ip4", false, failure{}, "127.0.0.1"},
		{"A only, ip6 preferred, no fallback", "v4only.test", "ip6", false, failure{taxonomy.ClassDNS, taxonomy.ReasonNoAddress, taxonomy.PhaseResolve}, ""},
		{"AAAA only, ip4 preferred, fallback", "v6only.test", "ip4", true, failure{}, "::1"},
		{"AAAA only, ip6 preferred, no fallback", "v6only.test", "ip6", false, failure{}, "::1"},
		{"AAAA only, ip4 preferred, no fallback", "v6only.test", "ip4", false, failure{taxonomy.ClassDNS, taxonomy.ReasonNoAddress, taxonomy.PhaseResolve}, ""},
		{"both, ip4 preferred", "both.test", "ip4", true, failure{}, "127.0.0.1"},
		{"both, ip6 preferred", "both.test", "ip6", true, failure{}, "::1"},
		{"both, ip6 by default, no fallback", "both.test", "", false, failure{}, "::1"},
		{"IPv4 literal, ip6 preferred, no fallback", "127.0.0.1", "ip6", false, failure{taxonomy.ClassDNS, taxonomy.ReasonNoAddress, taxonomy.PhaseResolve}, ""},
		{"IPv6 literal, ip4 preferred, fallback", "[::1]", "ip4", true, failure{}, "::1"},
		{"NXDOMAIN, fallback", "nx.test", "", true, failure{taxonomy.ClassDNS, taxonomy.ReasonNXDomain, taxonomy.PhaseResolve}, ""},
		{"NXDOMAIN, no fallback", "nx.test", "ip4", false, failure{taxonomy.ClassDNS, taxonomy.ReasonNXDomain, taxonomy.PhaseResolve}, ""},
		{"SERVFAIL, fallback", probertest.ServfailName, "", true, failure{taxonomy.ClassDNS, taxonomy.ReasonServFail, taxonomy.PhaseResolve}, ""},
		{"SERVFAIL, no fallback", probertest.ServfailName, "ip6", false, failure{taxonomy.ClassDNS, taxonomy.ReasonServFail, taxonomy.PhaseResolve}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			remote = ""
			mu.Unlock()
			m := newModule(t, func(h *config.HTTPProbe) {
				h.IPProtocol = tc.preferred
				h.IPProtocolFallback = tc.fallback
			})
			sink, err := probertest.Run(t, m, fmt.Sprintf("http://%s:%s/", tc.host, p))
			checkOutcome(t, err, tc.want)
			probertest.Value(t, sink, "probe_dns_lookup_time_seconds")
			probertest.Value(t, sink, "probe_http_duration_seconds", string(taxonomy.PhaseResolve))
			if tc.want != (failure{}) {
				probertest.Metric(t, sink, 0, "probe_ip_protocol")
				probertest.Metric(t, sink, 0, "probe_ip_addr_hash")
				probertest.Metric(t, sink, 0, "probe_http_status_code")
				return
			}
			family := 4.0
			if net.ParseIP(tc.wantIP).To4() == nil {
				family = 6
			}
			probertest.Metric(t, sink, family, "probe_ip_protocol")
			probertest.Metric(t, sink, fnvHash(tc.wantIP), "probe_ip_addr_hash")
			mu.Lock()
			defer mu.Unlock()
			if remote != tc.wantIP {
				t.Errorf("server reached from %q, want %q", remote, tc.wantIP)
			}
		})
	}
}

// A redirect to another host is resolved by the probe's transport, with
// the module's resolver and preferences.
func TestHTTPRedirectToAName(t *testing.T) {
	p := dualStackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-name":
			_, p, _ := net.SplitHostPort(r.Host)
			http.Redirect(w, r, fmt.Sprintf("http://v6only.test:%s/done", p), http.StatusFound)
		case "/to-nxdomain":
			http.Redirect(w, r, "http://nx.test/", http.StatusFound)
		case "/done":
			fmt.Fprint(w, "done")
		}
	}))
	m := newModule(t, func(h *config.HTTPProbe) { h.IPProtocol = "ip4" })

	sink, err := probertest.Run(t, m, fmt.Sprintf("http://127.0.0.1:%s/to-name", p))
	checkOutcome(t, err, failure{})
	probertest.Metric(t, sink, 1, "probe_http_redirects")
	// probe_ip_protocol describes the target, not where redirects led.
	probertest.Metric(t, sink, 4, "probe_ip_protocol")

	_, err = probertest.Run(t, m, fmt.Sprintf("http://127.0.0.1:%s/to-nxdomain", p))
	checkOutcome(t, err, failure{taxonomy.ClassDNS, taxonomy.ReasonNXDomain, taxonomy.PhaseResolve})
}
