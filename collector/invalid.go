package collector

import (
	"net"
	"net/url"
	"strings"

	"github.com/sonde-exporter/sonde/prober/core"
	httpprober "github.com/sonde-exporter/sonde/prober/http"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// A target the prober cannot use (prober/invalid_target in phase setup) is
// a failed probe, answered 200 with probe_success 0 as blackbox_exporter
// answers it. sonde refuses such a target before sending anything, where
// blackbox gets further with some of them: it tries to resolve whatever
// host it could cut out of the target, and fails after. Its answer then
// carries the resolve metrics, so sonde's carries them too, at 0: no
// lookup was made.

// invalidTarget reports whether err is the failure of a target that could
// not even be read.
func invalidTarget(err *taxonomy.Error) bool {
	return err != nil && err.Class == taxonomy.ClassProber && err.Reason == taxonomy.ReasonInvalidTarget && err.Phase == taxonomy.PhaseSetup
}

// addBlackboxResolveMetrics registers, at 0, the resolve metrics that
// blackbox_exporter would have exported for a target sonde refused in
// setup. Registering a family the prober already has leaves it alone.
func addBlackboxResolveMetrics(r *Result) {
	if !invalidTarget(r.Err) || !blackboxResolves(r.Module, r.Target) {
		return
	}
	// The names and help strings are the prober's (prober/resolve.go).
	r.Sink.Gauge("probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6")
	r.Sink.Gauge("probe_dns_lookup_time_seconds", "Returns the time taken for probe dns lookup in seconds")
	r.Sink.Gauge("probe_ip_addr_hash", "Specifies the hash of IP address. It's useful to detect if the IP address changes.")
	if r.Module.Prober == "http" {
		// blackbox adds the lookup's time to the resolve phase, which so
		// exists once it looked up (the other phases come with a request).
		r.Sink.GaugeVec("probe_http_duration_seconds", httpprober.DurationHelp, "phase").With(string(taxonomy.PhaseResolve))
	}
}

// blackboxResolves reports whether blackbox_exporter 0.28 would have tried
// to resolve target before failing: it reads a target only as far as it
// needs a host to resolve.
func blackboxResolves(m *core.Module, target string) bool {
	switch m.Prober {
	case "icmp", "dns":
		return true // the target is resolved as it is (dns: less a port)
	case "tcp":
		_, _, err := net.SplitHostPort(target)
		return err == nil // a bad port fails the dial, after the lookup
	case "http":
		if m.HTTP.SkipResolvePhaseWithProxy && proxied(m) {
			return false
		}
		return parsesAsBlackboxURL(target)
	case "grpc":
		return parsesAsBlackboxURL(target)
	}
	return false // unix resolves nothing; websocket is sonde's own
}

// parsesAsBlackboxURL reads a target as blackbox's http and grpc probers
// do: http:// is put before anything that does not start with http:// or
// https://, and only a URL that does not parse stops the probe before
// the lookup.
func parsesAsBlackboxURL(target string) bool {
	if !strings.HasPrefix(target, "http://") && !strings.HasPrefix(target, "https://") {
		target = "http://" + target
	}
	_, err := url.Parse(target)
	return err == nil
}

func proxied(m *core.Module) bool {
	c := m.HTTP.HTTPClientConfig.ProxyConfig
	return c.ProxyFromEnvironment || c.ProxyURL.URL != nil
}
