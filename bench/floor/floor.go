// Package floor is the load harness's floor: for each module of the
// harness's configuration, only the network work one probe needs (resolve,
// connect, TLS, request, read), with no exporter around it. It serves
// /probe as an exporter does, so that the harness scrapes and measures it
// the same way as sonde and blackbox_exporter; what sonde spends above it
// is what sonde adds to the network work itself. Per prober:
//
//   - http: a fresh connection, a GET written by hand with Connection:
//     close, the answer read by net/http's ReadResponse to its end.
//   - https: the same after a full TLS handshake that verifies the chain;
//     when the server picks h2, one stream on x/net's HTTP/2 framer.
//   - tcp: connect, and close.
//   - dns: a connected UDP socket, the query packed once at start with a
//     fresh ID per probe, and only the answer's header read (ID, QR,
//     rcode).
//   - icmp: one echo request and its reply, on a socket kept between
//     probes (a raw one with a kernel filter on its identifier as root,
//     else a ping socket).
//   - grpc: the health service's Check as one HTTP/2 stream on the
//     framer, its status and the SERVING answer checked.
//
// Its answer is the two series the harness reads, uncompressed: no
// metrics of the probe, no failure classification, no log, no history.
package floor

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// probeFunc does one probe's network work against target.
type probeFunc func(ctx context.Context, target string) error

// Floor answers /probe for the modules of one configuration file.
type Floor struct {
	probes map[string]probeFunc
}

// moduleConfig is the little of a module the floor reads: which work it
// stands for, the CA of an https module and the name a dns module asks for.
type moduleConfig struct {
	Prober string `yaml:"prober"`
	HTTP   struct {
		TLSConfig struct {
			CAFile string `yaml:"ca_file"`
		} `yaml:"tls_config"`
	} `yaml:"http"`
	DNS struct {
		QueryName string `yaml:"query_name"`
	} `yaml:"dns"`
}

// Load reads the harness's configuration file.
func Load(path string) (*Floor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the configuration: %w", err)
	}
	var file struct {
		Modules map[string]moduleConfig `yaml:"modules"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	f := &Floor{probes: map[string]probeFunc{}}
	for name, m := range file.Modules {
		p, err := probeFor(m)
		if err != nil {
			return nil, fmt.Errorf("module %q: %w", name, err)
		}
		f.probes[name] = p
	}
	return f, nil
}

func probeFor(m moduleConfig) (probeFunc, error) {
	switch m.Prober {
	case "http":
		if m.HTTP.TLSConfig.CAFile == "" {
			return probeHTTP(nil), nil
		}
		roots, err := loadRoots(m.HTTP.TLSConfig.CAFile)
		if err != nil {
			return nil, err
		}
		return probeHTTP(roots), nil
	case "tcp":
		return probeTCP, nil
	case "dns":
		return probeDNS(m.DNS.QueryName)
	case "icmp":
		return probeICMP(), nil
	case "grpc":
		return probeGRPC, nil
	}
	return nil, fmt.Errorf("the floor has no %q prober", m.Prober)
}

func loadRoots(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", path)
	}
	return roots, nil
}

// ServeHTTP runs one probe per /probe request, within the scrape's timeout,
// and answers the two series the harness reads.
func (f *Floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/metrics" {
		// The harness waits for go_goroutines before it starts.
		fmt.Fprintln(w, "go_goroutines 1")
		return
	}
	q := r.URL.Query()
	probe, ok := f.probes[q.Get("module")]
	if !ok {
		http.Error(w, "unknown module", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), scrapeTimeout(r))
	defer cancel()
	start := time.Now()
	err := probe(ctx, q.Get("target"))
	success := 1
	if err != nil {
		success = 0
	}
	fmt.Fprintf(w, "probe_success %d\nprobe_duration_seconds %g\n", success, time.Since(start).Seconds())
}

func scrapeTimeout(r *http.Request) time.Duration {
	s, err := strconv.ParseFloat(r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"), 64)
	if err != nil || s <= 0 {
		s = 120
	}
	return time.Duration(s * float64(time.Second))
}

// dial opens a fresh TCP connection to a host:port whose host may be a
// name, as every probe does, bound to ctx's deadline.
func dial(ctx context.Context, hostport string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	addr, err := resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(addr, port))
	if err != nil {
		return nil, err
	}
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	return conn, nil
}

// resolve returns the first IPv4 address of host, as a module preferring
// ip4 would use.
func resolve(ctx context.Context, host string) (string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return host, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil {
		return "", err
	}
	return ips[0].String(), nil
}
