package prober

import (
	"errors"
	"net"
	"strconv"
	"testing"

	"github.com/sonde-exporter/sonde/prober/dns"
	"github.com/sonde-exporter/sonde/prober/grpc"
	httpprober "github.com/sonde-exporter/sonde/prober/http"
	"github.com/sonde-exporter/sonde/prober/icmp"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
	"github.com/sonde-exporter/sonde/prober/tcp"
	"github.com/sonde-exporter/sonde/prober/websocket"
)

// FuzzParseTarget feeds the `target` URL parameter, which anyone who can
// reach /probe chooses, to the target parser of every prober. Each parser
// either reads a target a probe can use or refuses it as prober/
// invalid_target in phase setup (the collector answers that with HTTP 400);
// none panics, and none hands the prober a host it would then fail on in
// another way. The unix prober has no parser: any non-empty path is a
// socket address, and the kernel judges it when dialling.
func FuzzParseTarget(f *testing.F) {
	f.Fuzz(func(t *testing.T, target string, useTLS bool) {
		// tcp: host:port, the port a number or a service name.
		if host, port, err := tcp.SplitHostPort(target, "tcp"); checkRefusal(t, "tcp", target, err) {
			checkHostPort(t, "tcp", target, host, port)
		}
		// dns over udp, tcp and tls: host[:port] or [v6]:port.
		if host, port, err := dns.SplitTarget(target, "53"); checkRefusal(t, "dns", target, err) {
			checkHostPort(t, "dns", target, host, port)
			if dns.CheckHost(host) != nil {
				t.Fatalf("dns: target %q gave host %q, which checkHost refuses", target, host)
			}
		}
		// dns over https: a URL, or host[:port] that becomes one.
		if u, err := dns.ParseDoHTarget(target); checkRefusal(t, "doh", target, err) {
			if u.Scheme != "https" || u.Hostname() == "" || u.Path == "" {
				t.Fatalf("doh: target %q parsed as %q: want https, a host and a path", target, u)
			}
			if p := u.Port(); p != "" {
				checkPort(t, "doh", target, p)
			}
		}
		// grpc: host[:port], a scheme accepted and dropped.
		if host, port, err := grpc.ParseTarget(target, useTLS); checkRefusal(t, "grpc", target, err) {
			checkHostPort(t, "grpc", target, host, port)
		}
		// http: a URL, or host[:port][/path] that becomes one.
		if u, err := httpprober.ParseTarget(target); checkRefusal(t, "http", target, err) {
			if u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" {
				t.Fatalf("http: target %q parsed as %q: want http or https and a host", target, u)
			}
		}
		// websocket: a ws, wss, http or https URL without credentials.
		if u, err := websocket.ParseTarget(target); checkRefusal(t, "websocket", target, err) {
			if u.Scheme != "ws" && u.Scheme != "wss" || u.Hostname() == "" || u.User != nil {
				t.Fatalf("websocket: target %q parsed as %q", target, u.Redacted())
			}
			checkPort(t, "websocket", target, websocket.DefaultPort(u))
		}
		// icmp: a host name or an IP address, nothing more.
		checkRefusal(t, "icmp", target, icmp.CheckTarget(target))
	})
}

// checkRefusal reports whether err is nil (the target was read); any
// other error must be the one refusal every parser gives.
func checkRefusal(t *testing.T, prober, target string, err error) bool {
	t.Helper()
	if err == nil {
		return true
	}
	var perr *taxonomy.Error
	if !errors.As(err, &perr) {
		t.Fatalf("%s: target %q: error %v is a %T, not a *prober.Error", prober, target, err, err)
	}
	if perr.Class != taxonomy.ClassProber || perr.Reason != taxonomy.ReasonInvalidTarget || perr.Phase != taxonomy.PhaseSetup {
		t.Fatalf("%s: target %q refused as %s/%s in %s, want prober/invalid_target in setup: %v",
			prober, target, perr.Class, perr.Reason, perr.Phase, err)
	}
	return false
}

func checkHostPort(t *testing.T, prober, target, host, port string) {
	t.Helper()
	if host == "" {
		t.Fatalf("%s: target %q read with an empty host", prober, target)
	}
	checkPort(t, prober, target, port)
	// The dialer joins them again: that must give back one address.
	if h, p, err := net.SplitHostPort(net.JoinHostPort(host, port)); err != nil || h != host || p != port {
		t.Fatalf("%s: target %q read as host %q port %q, which do not join into an address (%v)", prober, target, host, port, err)
	}
}

func checkPort(t *testing.T, prober, target, port string) {
	t.Helper()
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		t.Fatalf("%s: target %q read with port %q, not a number from 1 to 65535", prober, target, port)
	}
}
