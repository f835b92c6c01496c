package collector

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const unusableTargetConfig = `
modules:
  http_2xx:
    prober: http
  tcp_connect:
    prober: tcp
  icmp:
    prober: icmp
  grpc:
    prober: grpc
  dns:
    prober: dns
    dns:
      query_name: example.com
`

// resolveMetrics are the families blackbox_exporter registers when it
// tries to resolve a target's host.
var resolveMetrics = []string{"probe_dns_lookup_time_seconds", "probe_ip_addr_hash", "probe_ip_protocol"}

// A target the prober cannot use is a failed probe answered 200, as
// blackbox_exporter answers it, with the resolve metrics exactly when
// blackbox exports them (checked against the blackbox_exporter 0.28
// binary, target by target), and sonde's message in the probe's log.
func TestUnusableTargetsAreFailedProbes(t *testing.T) {
	c := collectorFor(t, unusableTargetConfig)
	tests := []struct {
		module, target string
		resolved       bool   // blackbox tried to resolve before failing
		log            string // part of sonde's message
	}{
		{"tcp_connect", "localhost", false, "is not host:port"},
		{"tcp_connect", "localhost:99999", true, "a number from 1 to 65535"},
		{"tcp_connect", "localhost:0", true, "a number from 1 to 65535"},
		{"tcp_connect", "tcp://localhost:80", false, "is not host:port"},
		{"tcp_connect", "udp://localhost:80", false, "is not host:port"},
		{"tcp_connect", "[::1]", false, "is not host:port"},
		{"icmp", "localhost:80", true, "without a port or scheme"},
		{"icmp", "[::1]", true, "without a port or scheme"},
		{"icmp", "[127.0.0.1]", true, "without a port or scheme"},
		{"http_2xx", "ftp://localhost/", true, "is not supported by the http prober"},
		{"http_2xx", "http://", true, "has no host"},
		{"http_2xx", "http://[::1", false, "not a valid URL"},
		{"http_2xx", "http://a%zz/", false, "not a valid URL"},
		{"grpc", "grpc://localhost:80", true, "is not one a grpc target may have"},
		{"dns", "localhost:99999", true, "is not a port number"},
		{"dns", "tcp://localhost", true, "is not a port number"},
	}
	for _, tc := range tests {
		t.Run(tc.module+" "+tc.target, func(t *testing.T) {
			params := url.Values{"module": {tc.module}, "target": {tc.target}}
			resp, body := scrape(t, c, params, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200; body %q", resp.StatusCode, body)
			}
			metrics := parseMetrics(t, body)
			if got := metrics["probe_success"].value(); got != 0 {
				t.Errorf("probe_success = %v, want 0", got)
			}
			if f := metrics["probe_failure_info"]; f == nil || f.series[0].labels["class"] != "prober" ||
				f.series[0].labels["reason"] != "invalid_target" || f.series[0].labels["phase"] != "setup" {
				t.Errorf("probe_failure_info = %+v, want prober/invalid_target in setup", f)
			}
			for _, name := range resolveMetrics {
				f, ok := metrics[name]
				if ok != tc.resolved {
					t.Errorf("%s exported: %v, want %v as blackbox_exporter", name, ok, tc.resolved)
				}
				if ok && f.value() != 0 {
					t.Errorf("%s = %v, want 0: nothing was looked up", name, f.value())
				}
			}
			params.Set("debug", "true")
			if _, debug := scrape(t, c, params, nil); !strings.Contains(debug, tc.log) {
				t.Errorf("the probe's log does not say %q:\n%s", tc.log, debug)
			}
		})
	}
}
