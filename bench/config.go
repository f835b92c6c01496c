package bench

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Module is one module of the harness's configuration and the target it
// probes. The module is named after its prober (https is the http prober
// over TLS), which is how the reports name it too.
type Module struct {
	Name   string
	Target string
}

// The modules of a load run, in report order.
var loadModules = []string{"http", "https", "tcp", "icmp", "dns", "grpc"}

// scaleModules maps the probers scale mode can hold in flight to their
// modules: an HTTP request to a target that answers late, and a tcp probe
// that sends the same request and waits for the answer's status line
// (query_response), so that the probe waits on its connection the way a
// tcp probe of a slow banner does.
var scaleModules = map[string]string{"http": "http_slow", "tcp": "tcp_slow"}

// ScaleProbers returns the probers scale mode can measure.
func ScaleProbers() []string { return slices.Sorted(maps.Keys(scaleModules)) }

// LoadModules returns the names of the modules a load run can measure.
func LoadModules() []string { return slices.Clone(loadModules) }

// modules pairs the module names with their targets.
func (t *Targets) modules(names []string) ([]Module, error) {
	byName := map[string]string{
		"http": t.HTTP, "https": t.HTTPS, "tcp": t.TCP, "icmp": t.ICMP,
		"dns": t.DNS, "grpc": t.GRPC, "http_slow": t.Slow, "tcp_slow": t.SlowTCP, overrunModule: t.Trickle,
	}
	out := make([]Module, 0, len(names))
	for _, name := range names {
		target, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("unknown module %q; the harness has %s", name, strings.Join(loadModules, ", "))
		}
		out = append(out, Module{Name: name, Target: target})
	}
	return out, nil
}

// configTemplate is the one file both exporters load. It uses only what
// blackbox_exporter 0.23 (Debian bookworm's) already accepts, since sonde
// is a drop-in: the same file, unchanged, for both. Every module prefers
// IPv4 because every target listens on 127.0.0.1.
const configTemplate = `# Written by sonde's load harness; both exporters load it unchanged.
modules:
  http:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
  https:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      fail_if_not_ssl: true
      tls_config:
        ca_file: %q
  tcp:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
  icmp:
    prober: icmp
    timeout: 5s
    icmp:
      preferred_ip_protocol: ip4
  dns:
    prober: dns
    timeout: 5s
    dns:
      preferred_ip_protocol: ip4
      transport_protocol: udp
      query_name: %q
      query_type: A
      valid_rcodes: [NOERROR]
  grpc:
    prober: grpc
    timeout: 5s
    grpc:
      preferred_ip_protocol: ip4
  http_slow:
    prober: http
    timeout: %[3]s
    http:
      preferred_ip_protocol: ip4
  tcp_slow:
    prober: tcp
    timeout: %[3]s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - send: "GET /slow HTTP/1.0\r\n\r\n"
        - expect: "^HTTP/1\\.[01] 200"
  http_overrun:
    prober: http
    timeout: %[4]s
    http:
      preferred_ip_protocol: ip4
`

// writeConfig writes the exporters' configuration to dir. slowTimeout is
// the timeout of the scale modules, long enough for the slow target;
// overrunTimeout the deadline of overrun mode's probes.
func writeConfig(dir string, p *pki, slowTimeout, overrunTimeout time.Duration) (string, error) {
	path := filepath.Join(dir, "blackbox.yml")
	text := fmt.Sprintf(configTemplate, p.CAFile, strings.TrimSuffix(DNSName, "."), slowTimeout, overrunTimeout)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return "", fmt.Errorf("writing the exporter configuration: %w", err)
	}
	return path, nil
}

// writeWebConfig writes an exporter-toolkit web configuration that serves
// over TLS with the harness's certificate. Both exporters read it with
// --web.config.file; over TLS they speak HTTP/2, which scale mode needs to
// carry thousands of scrapes on a few connections.
func writeWebConfig(dir string, p *pki) (string, error) {
	path := filepath.Join(dir, "web.yml")
	text := fmt.Sprintf("tls_server_config:\n  cert_file: %q\n  key_file: %q\n", p.CertFile, p.KeyFile)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return "", fmt.Errorf("writing the web configuration: %w", err)
	}
	return path, nil
}
