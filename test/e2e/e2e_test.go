package e2e

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

const (
	examplePrometheus = "../../examples/prometheus/prometheus.yml"
	exampleAlerts     = "../../examples/alerts.yml"
)

// testFor is the `for:` every alert rule gets in the test: long enough
// that an alert passes through pending, short enough for a test.
const testFor = "1s"

// sondeConfig holds the modules examples/prometheus/prometheus.yml names,
// set up for the local targets: the test CA trusted, a DNS question the
// local server answers, IPv4 loopback everywhere.
const sondeConfig = `
modules:
  http_2xx:
    prober: http
    http:
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: %[1]s
  http_2xx_retry:
    prober: http
    retry:
      attempts: 3
      initial_backoff: 10ms
      max_backoff: 20ms
      on: [connect, timeout, protocol]
    http:
      preferred_ip_protocol: ip4
  tcp_connect:
    prober: tcp
    tcp:
      preferred_ip_protocol: ip4
  dns_udp:
    prober: dns
    dns:
      preferred_ip_protocol: ip4
      transport_protocol: udp
      query_name: sonde.test
      query_type: A
      valid_rcodes: [NOERROR]
  icmp:
    prober: icmp
    icmp:
      preferred_ip_protocol: ip4
  grpc_plain:
    prober: grpc
    grpc:
      preferred_ip_protocol: ip4
`

// shortenFor rewrites every `for:` of a rule file to testFor, leaving the
// expressions, labels and annotations as shipped.
func shortenFor(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == "for" {
					n.Content[i+1].Value = testFor
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatalf("writing the rules: %v", err)
	}
	return out
}

// stack is sonde, Prometheus and Alertmanager set up from the examples,
// probing the local targets.
type stack struct {
	prom    promAPI
	targets targets
	hook    *webhook
}

func startStack(t *testing.T) *stack {
	t.Helper()
	// Look the tools up first, so a machine without them skips at once.
	tool(t, "prometheus", "prometheus")
	tool(t, "prometheus-alertmanager", "prometheus-alertmanager")

	dir := t.TempDir()
	tg := startTargets(t)
	ca := writeFile(t, dir, "ca.pem", tg.caPEM)
	sonde := startSonde(t, "sonde", fmt.Sprintf(sondeConfig, ca))

	hook := &webhook{}
	hookSrv := httptest.NewServer(hook)
	t.Cleanup(hookSrv.Close)
	am := startAlertmanager(t, hookSrv.URL+"/")

	rules := writeFile(t, dir, "alerts.yml", shortenFor(t, exampleAlerts))
	// The targets file has the shape of examples/prometheus/targets: a
	// group whose module label overrides the job's module.
	httpSD := writeFile(t, dir, "http.yml", marshalYAML(t, []any{
		map[string]any{"targets": []string{tg.flaky}, "labels": map[string]string{"module": "http_2xx_retry"}},
	}))
	cfg := rewritePromConfig(t, readYAML(t, examplePrometheus), promSetup{
		targets: map[string][]string{
			"sonde_http": {tg.healthy, tg.refused, tg.expired, tg.slow, tg.secure},
			"sonde_tcp":  {tg.tcp},
			"sonde_dns":  {tg.dns},
			"sonde_icmp": {tg.icmp},
			"sonde_grpc": {tg.grpc},
			"sonde":      {sonde},
		},
		fileSD:       map[string]string{"sonde_http": httpSD},
		sonde:        func(map[string]any) (string, error) { return sonde, nil },
		rules:        []string{rules},
		alertmanager: am,
	})
	prom := startPrometheus(t, "prometheus", cfg)
	return &stack{prom: prom, targets: tg, hook: hook}
}

// TestEndToEnd probes the local targets through sonde with the example
// Prometheus configuration and alert rules, and checks what Prometheus
// stored, what reached Alertmanager's receiver, and that every panel of the
// example dashboard has data.
func TestEndToEnd(t *testing.T) {
	s := startStack(t)
	tg := s.targets

	t.Run("probe results", func(t *testing.T) {
		for _, tc := range []struct {
			name, job, instance, module string
			success                     float64
			attempts                    float64
			class, reason, phase        string // the failure; empty for a success
		}{
			{"healthy", "sonde_http", tg.healthy, "http_2xx", 1, 1, "", "", ""},
			{"refused", "sonde_http", tg.refused, "http_2xx", 0, 1, "connect", "refused", "connect"},
			{"expired certificate", "sonde_http", tg.expired, "http_2xx", 0, 1, "tls", "cert_expired", "tls"},
			{"slower than the scrape timeout", "sonde_http", tg.slow, "http_2xx", 0, 1, "timeout", "deadline", "processing"},
			{"valid certificate", "sonde_http", tg.secure, "http_2xx", 1, 1, "", "", ""},
			// From the targets file, whose module label picks a module
			// with retries: the second attempt passes.
			{"flaky, retried", "sonde_http", tg.flaky, "http_2xx_retry", 1, 2, "", "", ""},
			{"tcp", "sonde_tcp", tg.tcp, "tcp_connect", 1, 1, "", "", ""},
			{"dns", "sonde_dns", tg.dns, "dns_udp", 1, 1, "", "", ""},
			{"grpc", "sonde_grpc", tg.grpc, "grpc_plain", 1, 1, "", "", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				sel := fmt.Sprintf(`{job=%q, instance=%q}`, tc.job, tc.instance)
				eventually(t, dataTimeout, "probe_success"+sel, func() error {
					got, err := s.prom.query("probe_success" + sel)
					if err != nil {
						return err
					}
					if len(got) != 1 || got[0].Value != tc.success || got[0].Metric["module"] != tc.module {
						return fmt.Errorf("want one series of module %s at %g, got %s", tc.module, tc.success, describe(got))
					}
					return nil
				})
				eventually(t, dataTimeout, "probe_attempts"+sel, func() error {
					got, err := s.prom.query("probe_attempts" + sel)
					if err != nil {
						return err
					}
					if len(got) != 1 || got[0].Value != tc.attempts {
						return fmt.Errorf("want %g, got %s", tc.attempts, describe(got))
					}
					return nil
				})
				eventually(t, dataTimeout, "probe_failure_info"+sel, func() error {
					got, err := s.prom.query("probe_failure_info" + sel)
					if err != nil {
						return err
					}
					if tc.class == "" {
						if len(got) != 0 {
							return fmt.Errorf("want none, got %s", describe(got))
						}
						return nil
					}
					if len(got) != 1 || got[0].Value != 1 || got[0].Metric["class"] != tc.class ||
						got[0].Metric["reason"] != tc.reason || got[0].Metric["phase"] != tc.phase {
						return fmt.Errorf("want one series {class=%q, reason=%q, phase=%q} 1, got %s", tc.class, tc.reason, tc.phase, describe(got))
					}
					return nil
				})
			})
		}
	})

	// The TLS metrics describe the chain presented, also when it failed
	// to verify, and the OCSP response stapled to the valid one.
	t.Run("tls and ocsp metrics", func(t *testing.T) {
		for _, tc := range []struct {
			query string
			want  float64
		}{
			{fmt.Sprintf(`probe_tls_verified{instance=%q}`, tg.secure), 1},
			{fmt.Sprintf(`probe_tls_verified{instance=%q}`, tg.expired), 0},
			{fmt.Sprintf(`probe_tls_cert_not_after_timestamp_seconds{instance=%q, position="0"}`, tg.secure), float64(tg.secureNotAfter.Unix())},
			{fmt.Sprintf(`probe_tls_cert_not_after_timestamp_seconds{instance=%q, position="0"}`, tg.expired), float64(tg.expiredNotAfter.Unix())},
			{fmt.Sprintf(`probe_ssl_earliest_cert_expiry{instance=%q}`, tg.expired), float64(tg.expiredNotAfter.Unix())},
			// The chain sent is the leaf and the CA.
			{fmt.Sprintf(`count(probe_tls_cert_not_after_timestamp_seconds{instance=%q})`, tg.secure), 2},
			{fmt.Sprintf(`probe_tls_ocsp_stapled{instance=%q}`, tg.secure), 1},
			{fmt.Sprintf(`probe_tls_ocsp_status{instance=%q, status="good"}`, tg.secure), 1},
			{fmt.Sprintf(`probe_tls_ocsp_stapled{instance=%q}`, tg.expired), 0},
		} {
			eventually(t, dataTimeout, tc.query, func() error {
				got, err := s.prom.query(tc.query)
				if err != nil {
					return err
				}
				if len(got) != 1 || got[0].Value != tc.want {
					return fmt.Errorf("want one series at %g, got %s", tc.want, describe(got))
				}
				return nil
			})
		}
	})

	// ICMP needs ping sockets or CAP_NET_RAW, which the machine may not
	// grant: only that the probe ran is checked.
	t.Run("icmp probed", func(t *testing.T) {
		eventually(t, dataTimeout, "probe_success of the icmp job", func() error {
			got, err := s.prom.query(fmt.Sprintf(`probe_success{job="sonde_icmp", instance=%q, module="icmp"}`, tg.icmp))
			if err != nil {
				return err
			}
			if len(got) != 1 {
				return fmt.Errorf("want one series, got %s", describe(got))
			}
			return nil
		})
	})

	// The retried target's failed first attempts are counted; its class is
	// whatever sonde makes of a connection closed unanswered.
	t.Run("failed attempts", func(t *testing.T) {
		eventually(t, dataTimeout, "probe_failed_attempts of the flaky target", func() error {
			got, err := s.prom.query(fmt.Sprintf(`sum(probe_failed_attempts{instance=%q})`, tg.flaky))
			if err != nil {
				return err
			}
			if len(got) != 1 || got[0].Value != 1 {
				return fmt.Errorf("want 1 failed attempt per probe, got %s", describe(got))
			}
			return nil
		})
	})

	t.Run("alerts reach Alertmanager", func(t *testing.T) {
		for _, want := range []map[string]string{
			{"alertname": "ProbeCertificateRejected", "instance": tg.expired, "job": "sonde_http", "class": "tls", "reason": "cert_expired", "phase": "tls", "severity": "page"},
			{"alertname": "ProbeCannotConnect", "instance": tg.refused, "class": "connect", "reason": "refused", "phase": "connect", "severity": "page"},
			{"alertname": "ProbeTimingOut", "instance": tg.slow, "class": "timeout", "phase": "processing", "severity": "ticket"},
			{"alertname": "ProbeNeedsRetries", "instance": tg.flaky, "severity": "info"},
		} {
			t.Run(want["alertname"], func(t *testing.T) {
				eventually(t, dataTimeout, "the webhook receives "+want["alertname"], func() error {
					if _, ok := s.hook.find(want); !ok {
						return fmt.Errorf("want an alert with labels %v; received %v", want, s.hook.received())
					}
					return nil
				})
			})
		}
		// A healthy target raises nothing.
		if a, ok := s.hook.find(map[string]string{"instance": tg.healthy}); ok {
			t.Errorf("an alert for the healthy target: %v", a)
		}
	})

	t.Run("dashboard panels have data", func(t *testing.T) {
		checkDashboardQueries(t, s.prom, filepath.Join("..", "..", dashboardPath))
	})
}
