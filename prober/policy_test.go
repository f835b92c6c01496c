package prober

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	pconfig "github.com/prometheus/common/config"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/dns"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/policy"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// The target policy: a module's targets block and the global deny lists,
// probed against real servers on loopback. alias2.test resolves to
// 127.0.0.2, which Linux serves on loopback like 127.0.0.1.

const denyPrivate = "--probe.deny-private"

// policyModule prepares a module of prober with the given targets block,
// changed by mutate, resolving with the test DNS server.
func policyModule(t *testing.T, prober string, targets config.Targets, mutate func(cm *config.Module), opts ...core.Option) *core.Module {
	t.Helper()
	cm := config.DefaultModule()
	cm.Prober = prober
	cm.Targets = targets
	if mutate != nil {
		mutate(&cm)
	}
	m, err := NewModule("test", cm, append([]core.Option{core.WithResolver(probertest.TestResolver(t))}, opts...)...)
	if err != nil {
		t.Fatalf("NewModule: %v", err)
	}
	return m
}

// denied asserts a target_denied failure in phase, whose message holds
// every fragment of want.
func denied(t *testing.T, err error, phase taxonomy.Phase, want ...string) {
	t.Helper()
	perr := checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, phase})
	for _, w := range want {
		if !strings.Contains(perr.Error(), w) {
			t.Errorf("the message %q lacks %q", perr.Error(), w)
		}
	}
}

// notDenied asserts that the policy let a target through; the probe may
// still fail for other reasons (an icmp socket the test may not open).
func notDenied(t *testing.T, err error) {
	t.Helper()
	var perr *taxonomy.Error
	if errors.As(err, &perr) && perr.Reason == taxonomy.ReasonTargetDenied {
		t.Fatalf("the target was refused: %v", err)
	}
}

// listenOn starts an HTTP server with handler on one loopback address.
func listenOn(t *testing.T, ip string, handler http.Handler) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp4", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	s := httptest.NewUnstartedServer(handler)
	s.Listener.Close()
	s.Listener = ln
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// policyCase is one prober with a real server on 127.0.0.1: target names
// its server by a host name.
type policyCase struct {
	prober string
	mutate func(cm *config.Module)
	target func(t *testing.T, host string) string
}

// everyProber covers the probers that dial a host. icmp's allowed probe
// needs an ICMP socket; without one it fails with permission_denied,
// after the policy has let it through.
var everyProber = []policyCase{
	{"http", nil, func(t *testing.T, host string) string {
		return "http://" + net.JoinHostPort(host, probertest.Port(t, probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{}).URL)) + "/"
	}},
	{"tcp", nil, func(t *testing.T, host string) string {
		return net.JoinHostPort(host, probertest.Port(t, probertest.RawServer(t, saying("hello\n"))))
	}},
	{"dns", func(cm *config.Module) { cm.DNS.QueryName = "example.test" }, func(t *testing.T, host string) string {
		return net.JoinHostPort(host, probertest.Port(t, probertest.NewDNSTestServer(t, "127.0.0.1").Addr))
	}},
	{"dns", func(cm *config.Module) {
		cm.DNS.QueryName = "example.test"
		cm.DNS.TransportProtocol = "https"
		cm.DNS.TLSConfig.InsecureSkipVerify = true
	}, func(t *testing.T, host string) string {
		u, err := url.Parse(probertest.NewDNSTestServer(t, "127.0.0.1").Doh)
		if err != nil {
			t.Fatal(err)
		}
		u.Host = net.JoinHostPort(host, u.Port())
		return u.String()
	}},
	{"grpc", nil, func(t *testing.T, host string) string {
		return net.JoinHostPort(host, probertest.Port(t, probertest.NewGRPCServer(t, probertest.GRPCServerOpts{}).Addr))
	}},
	{"websocket", nil, func(t *testing.T, host string) string {
		srv, _ := probertest.WSServer(t, nil, probertest.ServerOpts{})
		return "ws://" + net.JoinHostPort(host, probertest.Port(t, srv.URL)) + "/"
	}},
	{"icmp", nil, func(_ *testing.T, host string) string { return host }},
}

// Every prober that dials checks the address it is about to dial: a name
// resolving into a denied range is refused after the lookup, and one
// resolving elsewhere is probed.
func TestTargetPolicyEveryProber(t *testing.T) {
	deny := config.Targets{Deny: []string{"127.0.0.2/32"}}
	for _, c := range everyProber {
		name := c.prober
		if c.prober == "dns" {
			name += "/" + transportName(c.mutate)
		}
		t.Run(name, func(t *testing.T) {
			m := policyModule(t, c.prober, deny, c.mutate)
			_, err := probertest.Run(t, m, c.target(t, "alias2.test"))
			denied(t, err, taxonomy.PhaseResolve, `address 127.0.0.2 of "alias2.test" is denied by targets.deny entry "127.0.0.2/32" of module "test"`)

			_, err = probertest.Run(t, m, c.target(t, "v4only.test"))
			if c.prober == "icmp" {
				notDenied(t, err)
				return
			}
			checkOutcome(t, err, failure{})
		})
	}
}

// transportName names a dns case by its transport.
func transportName(mutate func(cm *config.Module)) string {
	cm := config.DefaultModule()
	mutate(&cm)
	return dns.TransportOf(&cm.DNS).String()
}

// An IP-literal target is its own address, and is checked as one.
func TestTargetPolicyIPLiterals(t *testing.T) {
	srv := listenOn(t, "127.0.0.2", probertest.OKHandler)
	m := policyModule(t, "http", config.Targets{Deny: []string{"127.0.0.0/30"}}, nil)
	_, err := probertest.Run(t, m, srv.URL)
	denied(t, err, taxonomy.PhaseResolve, `address 127.0.0.2 is denied by targets.deny entry "127.0.0.0/30"`)

	// The same server, with a module that does not deny it.
	_, err = probertest.Run(t, policyModule(t, "http", config.Targets{Deny: []string{"10.0.0.0/8"}}, nil), srv.URL)
	checkOutcome(t, err, failure{})

	// An IPv4-mapped IPv6 literal is the IPv4 address.
	tcp := policyModule(t, "tcp", config.Targets{Deny: []string{"127.0.0.2"}}, nil)
	_, err = probertest.Run(t, tcp, "[::ffff:127.0.0.2]:"+probertest.Port(t, srv.URL))
	denied(t, err, taxonomy.PhaseResolve, "address 127.0.0.2 is denied")
}

// Name rules are checked before the lookup; an allow list of names lets
// nothing else through, IP literals included.
func TestTargetPolicyNameRules(t *testing.T) {
	srv := probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{})
	at := func(host string) string { return "http://" + net.JoinHostPort(host, probertest.Port(t, srv.URL)) + "/" }
	for _, tc := range []struct {
		name    string
		targets config.Targets
		target  string
		want    failure
		message string
	}{
		{"denied by a pattern", config.Targets{Deny: []string{"alias?.test"}}, at("alias2.test"),
			failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseSetup}, `host "alias2.test" is denied by targets.deny entry "alias?.test" of module "test"`},
		{"deny patterns ignore case and a trailing dot", config.Targets{Deny: []string{"*.TEST"}}, at("V4ONLY.test."),
			failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseSetup}, `host "V4ONLY.test." is denied by targets.deny entry "*.TEST"`},
		{"a star stops at a dot", config.Targets{Deny: []string{"*.test"}}, at("v4only.test"),
			failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseSetup}, ""},
		{"a star does not cross a dot", config.Targets{Allow: []string{"*.test"}, Deny: []string{"*.v4only.test"}}, at("v4only.test"),
			failure{}, ""},
		{"allowed by a pattern", config.Targets{Allow: []string{"v4*.test"}}, at("v4only.test"),
			failure{}, ""},
		{"not in the allow list", config.Targets{Allow: []string{"v6only.test"}}, at("v4only.test"),
			failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseSetup}, `host "v4only.test" matches no targets.allow entry of module "test"`},
		{"an IP literal against an allow list of names", config.Targets{Allow: []string{"*.test"}}, at("127.0.0.1"),
			failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseResolve}, `address 127.0.0.1 matches no targets.allow entry of module "test"`},
		{"allowed by its address", config.Targets{Allow: []string{"127.0.0.1"}}, at("v4only.test"),
			failure{}, ""},
		{"neither name nor address allowed", config.Targets{Allow: []string{"v6only.test", "127.0.0.1"}}, at("alias2.test"),
			failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseResolve}, `address 127.0.0.2 of "alias2.test" matches no targets.allow entry`},
		{"deny wins over allow", config.Targets{Allow: []string{"*.test", "127.0.0.0/8"}, Deny: []string{"127.0.0.2"}}, at("alias2.test"),
			failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseResolve}, `denied by targets.deny entry "127.0.0.2"`},
		{"an allowed name resolving into a denied range", config.Targets{Allow: []string{"alias2.test"}, Deny: []string{"127.0.0.2"}}, at("alias2.test"),
			failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseResolve}, ""},
		{"behind NAT64", config.Targets{Deny: []string{"127.0.0.2"}}, at("nat64.test"),
			failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseResolve}, `address 64:ff9b::7f00:2 of "nat64.test" is denied`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := probertest.Run(t, policyModule(t, "http", tc.targets, nil), tc.target)
			perr := checkOutcome(t, err, tc.want)
			if perr != nil && !strings.Contains(perr.Error(), tc.message) {
				t.Errorf("the message %q lacks %q", perr.Error(), tc.message)
			}
		})
	}
}

// Every hop of a redirect chain is checked: its scheme and name when the
// redirect arrives, its address when it is dialled. The hop is refused
// before anything is sent to it.
func TestTargetPolicyRedirects(t *testing.T) {
	var reached atomic.Int32
	inner := listenOn(t, "127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reached.Add(1)
		io.WriteString(w, "inner")
	}))
	innerPort := probertest.Port(t, inner.URL)
	// The outer server redirects twice: to itself, then to ?to=.
	chain := func(t *testing.T, o probertest.ServerOpts) *httptest.Server {
		return probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/" {
				http.Redirect(w, r, "/next?"+r.URL.RawQuery, http.StatusFound)
				return
			}
			http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
		}), o)
	}
	outer := chain(t, probertest.ServerOpts{})
	outerTLS := chain(t, probertest.ServerOpts{TLS: true})
	insecure := func(cm *config.Module) { cm.HTTP.HTTPClientConfig.TLSConfig.InsecureSkipVerify = true }
	for _, tc := range []struct {
		name    string
		targets config.Targets
		start   *httptest.Server
		to      string
		want    failure
		message []string
	}{
		{"a name resolving into a denied range", config.Targets{Deny: []string{"127.0.0.2"}}, outer, "http://alias2.test:" + innerPort + "/",
			failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseResolve}, []string{`address 127.0.0.2 of "alias2.test" is denied by targets.deny entry "127.0.0.2"`}},
		{"an IP literal in a denied range", config.Targets{Deny: []string{"127.0.0.2"}}, outer, inner.URL + "/",
			failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseResolve}, []string{"redirect to " + inner.URL + "/", "address 127.0.0.2 is denied"}},
		{"a denied name", config.Targets{Deny: []string{"alias2.test"}}, outer, "http://alias2.test:" + innerPort + "/",
			failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseProcessing}, []string{"redirect to http://alias2.test:" + innerPort + "/", `host "alias2.test" is denied`}},
		{"a name the allow list lacks", config.Targets{Allow: []string{"127.0.0.1"}}, outer, "http://alias2.test:" + innerPort + "/",
			failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseResolve}, []string{`address 127.0.0.2 of "alias2.test" matches no targets.allow entry`}},
		{"a scheme not allowed", config.Targets{Schemes: []string{"https"}}, outerTLS, "http://alias2.test:" + innerPort + "/",
			failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseProcessing}, []string{`scheme "http" is not in targets.schemes [https]`}},
		{"allowed", config.Targets{Deny: []string{"10.0.0.0/8"}, Schemes: []string{"http", "https"}}, outerTLS, "http://alias2.test:" + innerPort + "/",
			failure{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := reached.Load()
			m := policyModule(t, "http", tc.targets, insecure)
			_, err := probertest.Run(t, m, tc.start.URL+"/?to="+url.QueryEscape(tc.to))
			perr := checkOutcome(t, err, tc.want)
			for _, w := range tc.message {
				if !strings.Contains(perr.Error(), w) {
					t.Errorf("the message %q lacks %q", perr.Error(), w)
				}
			}
			if hit := reached.Load() - before; (tc.want == failure{}) != (hit == 1) {
				t.Errorf("the redirect's server got %d requests", hit)
			}
		})
	}
}

// --probe.deny-private refuses loopback, private and metadata addresses,
// literal or resolved, and a module's allow list cannot override it.
func TestDenyPrivate(t *testing.T) {
	srv := probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{})
	private := core.WithDenied(denyPrivate, policy.PrivateRanges())
	for _, tc := range []struct {
		name    string
		prober  string
		targets config.Targets
		target  string
		message string
	}{
		{"loopback", "http", config.Targets{}, srv.URL,
			"address 127.0.0.1 is denied by --probe.deny-private (loopback)"},
		{"the metadata service", "http", config.Targets{}, "http://169.254.169.254/latest/meta-data/",
			"address 169.254.169.254 is denied by --probe.deny-private (cloud metadata service)"},
		{"a name for the metadata service", "http", config.Targets{}, "http://metadata.test/",
			`address 169.254.169.254 of "metadata.test" is denied by --probe.deny-private (cloud metadata service)`},
		{"a module's allow list", "http", config.Targets{Allow: []string{"127.0.0.0/8"}}, srv.URL,
			"denied by --probe.deny-private (loopback)"},
		{"IPv4-mapped", "tcp", config.Targets{}, "[::ffff:127.0.0.1]:" + probertest.Port(t, srv.URL),
			"address 127.0.0.1 is denied by --probe.deny-private (loopback)"},
		{"behind NAT64", "tcp", config.Targets{}, "nat64.test:80",
			`address 64:ff9b::7f00:2 of "nat64.test" is denied by --probe.deny-private (loopback)`},
		{"icmp", "icmp", config.Targets{}, "169.254.169.254", "(cloud metadata service)"},
		{"IPv6 loopback", "icmp", config.Targets{}, "::1", "address ::1 is denied by --probe.deny-private (loopback)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := probertest.Run(t, policyModule(t, tc.prober, tc.targets, nil, private), tc.target)
			denied(t, err, taxonomy.PhaseResolve, tc.message)
		})
	}
	t.Run("off by default", func(t *testing.T) {
		_, err := probertest.Run(t, policyModule(t, "http", config.Targets{}, nil), srv.URL)
		checkOutcome(t, err, failure{})
	})
}

// The proxy is the operator's choice: its address is not checked, the
// target's still is.
func TestTargetPolicyProxyIsExempt(t *testing.T) {
	proxy := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/away" {
			http.Redirect(w, r, "http://127.0.0.1:1/", http.StatusFound)
			return
		}
		io.WriteString(w, "via the proxy")
	}), probertest.ServerOpts{})
	proxyURL, err := url.Parse(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	viaProxy := func(skipResolve bool) func(cm *config.Module) {
		return func(cm *config.Module) {
			cm.HTTP.HTTPClientConfig.ProxyURL = pconfig.URL{URL: proxyURL}
			cm.HTTP.SkipResolvePhaseWithProxy = skipResolve
		}
	}
	private := core.WithDenied(denyPrivate, policy.PrivateRanges())
	for _, tc := range []struct {
		name        string
		skipResolve bool
		targets     config.Targets
		target      string
		want        failure
	}{
		{"a public target through a private proxy", false, config.Targets{}, "http://192.0.2.10/", failure{}},
		{"a private target", false, config.Targets{}, "http://127.0.0.1:1/", failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseResolve}},
		{"a private target, resolved by the proxy", true, config.Targets{}, "http://127.0.0.1:1/", failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseResolve}},
		{"a denied name, resolved by the proxy", true, config.Targets{Deny: []string{"*.internal"}}, "http://db.internal/", failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseSetup}},
		{"a name, resolved by the proxy", true, config.Targets{}, "http://db.internal/", failure{}},
		{"a redirect to a private address", false, config.Targets{}, "http://192.0.2.10/away", failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseResolve}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := probertest.Run(t, policyModule(t, "http", tc.targets, viaProxy(tc.skipResolve), private), tc.target)
			checkOutcome(t, err, tc.want)
		})
	}
}

func TestTargetPolicySchemes(t *testing.T) {
	srv := probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{})
	ws, _ := probertest.WSServer(t, nil, probertest.ServerOpts{})
	for _, tc := range []struct {
		name, prober string
		schemes      []string
		target       string
		want         failure
	}{
		{"http refused", "http", []string{"https"}, srv.URL, failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseSetup}},
		{"http allowed", "http", []string{"http"}, srv.URL, failure{}},
		{"a host without a scheme is http", "http", []string{"https"}, strings.TrimPrefix(srv.URL, "http://"), failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseSetup}},
		{"ws refused", "websocket", []string{"wss"}, probertest.WSURL(ws, "/"), failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseSetup}},
		{"http:// is ws://", "websocket", []string{"wss"}, ws.URL + "/", failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseSetup}},
		{"ws allowed", "websocket", []string{"ws"}, probertest.WSURL(ws, "/"), failure{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := policyModule(t, tc.prober, config.Targets{Schemes: tc.schemes}, nil)
			_, err := probertest.Run(t, m, tc.target)
			if perr := checkOutcome(t, err, tc.want); perr != nil && !strings.Contains(perr.Error(), "is not in targets.schemes") {
				t.Errorf("the message %q does not name targets.schemes", perr.Error())
			}
		})
	}
}

// A unix module's rules are path patterns; the global deny lists, of
// addresses, do not concern it.
func TestTargetPolicyUnix(t *testing.T) {
	socket := unixServer(t, saying("hello\n"))
	dir := filepath.Dir(socket)
	allowDir := config.Targets{Allow: []string{dir + "/*.sock"}}
	for _, tc := range []struct {
		name    string
		targets config.Targets
		target  string
		want    failure
		message string
	}{
		{"allowed", allowDir, socket, failure{}, ""},
		{"outside the allowed directory", allowDir, filepath.Join(os.TempDir(), "other.sock"),
			failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseSetup}, "matches no targets.allow entry"},
		{"a path that climbs out", allowDir, dir + "/x/../s.sock",
			failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseSetup}, "is not in its clean form " + fmt.Sprintf("%q", socket)},
		{"denied", config.Targets{Deny: []string{socket}}, socket,
			failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseSetup}, fmt.Sprintf("path %q is denied by targets.deny entry", socket)},
		{"deny wins", config.Targets{Allow: []string{dir + "/*"}, Deny: []string{dir + "/s.*"}}, socket,
			failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseSetup}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := probertest.Run(t, policyModule(t, "unix", tc.targets, nil, core.WithDenied(denyPrivate, policy.PrivateRanges())), tc.target)
			perr := checkOutcome(t, err, tc.want)
			if perr != nil && !strings.Contains(perr.Error(), tc.message) {
				t.Errorf("the message %q lacks %q", perr.Error(), tc.message)
			}
		})
	}
}

// A module without rules, and without a global list, carries no policy:
// probes pay nothing for the feature.
func TestNoPolicyWithoutRules(t *testing.T) {
	if m := policyModule(t, "http", config.Targets{}, nil); m.Policy != nil {
		t.Errorf("a module without rules has a policy: %+v", m.Policy)
	}
	if m := policyModule(t, "http", config.Targets{}, nil, core.WithDenied(denyPrivate, policy.PrivateRanges())); m.Policy == nil {
		t.Error("a global deny list did not reach the module")
	}
}

// A module built in code with a rule the configuration would refuse is
// refused when it is prepared, naming the entry.
func TestNewModuleRefusesBadRules(t *testing.T) {
	cm := config.DefaultModule()
	cm.Prober = "http"
	cm.Targets = config.Targets{Deny: []string{"10.0.0.1/8"}, Schemes: []string{"ftp"}}
	_, err := NewModule("bad", cm)
	if err == nil {
		t.Fatal("NewModule accepted bad rules")
	}
	for _, want := range []string{`module "bad"`, "targets.deny[0]", "targets.schemes[0]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
}

// NewSet gives every module the global lists.
func TestNewSetDeniesForEveryModule(t *testing.T) {
	cfg, err := config.Load([]byte("modules:\n  a:\n    prober: http\n  b:\n    prober: tcp\n"))
	if err != nil {
		t.Fatal(err)
	}
	set, err := NewSet(cfg, core.WithResolver(probertest.TestResolver(t)), core.WithDenied(denyPrivate, policy.PrivateRanges()))
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]string{"a": "http://127.0.0.1:1/", "b": "127.0.0.1:1"}
	for _, name := range set.Names() {
		m, _ := set.Module(name)
		_, err := probertest.Run(t, m, targets[name])
		denied(t, err, taxonomy.PhaseResolve, "--probe.deny-private (loopback)")
	}
}
