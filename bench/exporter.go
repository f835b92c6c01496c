package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ExporterSpec is an exporter to measure: a label for the reports and its
// command line, to which the harness adds --config.file and
// --web.listen-address (and --web.config.file in scale mode), the flags
// sonde shares with blackbox_exporter.
type ExporterSpec struct {
	Label string
	Argv  []string
}

// ParseExporter reads an exporter's command line as given to --exporter
// or --vs: the binary and its arguments, separated by spaces.
func ParseExporter(label, command string) (ExporterSpec, error) {
	argv := strings.Fields(command)
	if len(argv) == 0 {
		return ExporterSpec{}, fmt.Errorf("%s: empty command", label)
	}
	return ExporterSpec{Label: label, Argv: argv}, nil
}

// Name is the label and the binary's name, e.g. "A (sonde)", or the label
// alone when the binary is named after it, e.g. "floor".
func (s ExporterSpec) Name() string {
	base := filepath.Base(s.Argv[0])
	if base == s.Label {
		return base
	}
	return fmt.Sprintf("%s (%s)", s.Label, base)
}

// exporter is a running exporter process.
type exporter struct {
	spec    ExporterSpec
	cmd     *exec.Cmd
	pid     int
	base    string         // scheme://127.0.0.1:port
	clients []*http.Client // over TLS, one HTTP/2 connection each
	// identity is set to scrape without Accept-Encoding: gzip, to tell
	// what compressing the answers costs.
	identity bool
	logFile  *os.File
	exited   chan struct{}
}

// launch says how to start an exporter: with which files, and how the
// harness reaches it.
type launch struct {
	dir       string         // for its log
	config    string         // --config.file
	webConfig string         // --web.config.file; empty to serve plain HTTP
	roots     *x509.CertPool // trusted for its certificate when webConfig is set
	scrapes   int            // how many scrapes may be in flight at once
	identity  bool           // scrape without asking for gzip
}

// streamsPerConn is how many scrapes the harness sends at once on one
// HTTP/2 connection: fewer than the 250 streams a Go server allows, so
// that no scrape waits in the harness for a free stream.
const streamsPerConn = 200

// startExporter starts the exporter and waits until it answers. The child
// inherits the harness's resource limits, which is how it gets the raised
// file limit.
func startExporter(ctx context.Context, spec ExporterSpec, l launch) (*exporter, error) {
	addr, err := freeAddress()
	if err != nil {
		return nil, err
	}
	args := append(spec.Argv[1:len(spec.Argv):len(spec.Argv)], "--config.file="+l.config, "--web.listen-address="+addr)
	scheme := "http"
	if l.webConfig != "" {
		args = append(args, "--web.config.file="+l.webConfig)
		scheme = "https"
	}
	logPath := filepath.Join(l.dir, fmt.Sprintf("exporter-%s.log", strings.ToLower(spec.Label)))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating the exporter's log: %w", err)
	}
	cmd := exec.Command(spec.Argv[0], args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", spec.Name(), err)
	}
	e := &exporter{
		spec: spec, cmd: cmd, pid: cmd.Process.Pid, base: scheme + "://" + addr,
		clients: scrapeClients(l), identity: l.identity, logFile: logFile, exited: make(chan struct{}),
	}
	go func() { _ = cmd.Wait(); close(e.exited) }()
	if err := e.waitReady(ctx, 30*time.Second); err != nil {
		e.stop()
		return nil, err
	}
	return e, nil
}

// scrapeClients are the harness's Prometheus: no transparent
// decompression, because it asks for gzip itself as Prometheus does. Over
// plain HTTP one client keeps a connection per concurrent scrape. Over TLS
// each client holds one HTTP/2 connection for streamsPerConn scrapes: a
// single shared pool would race to dial a connection whenever one fills
// up, throw the extra ones away and queue scrapes meanwhile, which would
// measure the harness and not the exporter.
func scrapeClients(l launch) []*http.Client {
	if l.webConfig == "" {
		return []*http.Client{{Transport: newTransport(l, l.scrapes+4)}}
	}
	clients := make([]*http.Client, (l.scrapes+streamsPerConn-1)/streamsPerConn)
	for i := range clients {
		clients[i] = &http.Client{Transport: newTransport(l, 1)}
	}
	return clients
}

func newTransport(l launch, conns int) *http.Transport {
	tr := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	}
	if l.webConfig != "" {
		tr.TLSClientConfig = &tls.Config{RootCAs: l.roots}
		tr.ForceAttemptHTTP2 = true
	}
	return tr
}

// client returns the client for the i-th concurrent scrape.
func (e *exporter) client(i int) *http.Client { return e.clients[i%len(e.clients)] }

// connect opens every client's connection ahead of a measurement, so that
// no scrape waits for a TLS handshake of the harness's.
func (e *exporter) connect(ctx context.Context) error {
	for i := range e.clients {
		if _, err := e.metricVia(ctx, e.clients[i], "go_goroutines"); err != nil {
			return fmt.Errorf("connecting to %s: %w", e.spec.Name(), err)
		}
	}
	return nil
}

// freeAddress returns a loopback address no one listens on right now.
func freeAddress() (string, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port for the exporter: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady polls /metrics, which both exporters serve, until it answers.
func (e *exporter) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		if _, err := e.metric(ctx, "go_goroutines"); err == nil {
			return nil
		}
		select {
		case <-e.exited:
			return fmt.Errorf("%s exited at start:\n%s", e.spec.Name(), e.logTail())
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer on %s within %s:\n%s", e.spec.Name(), e.base, limit, e.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// metric reads one unlabelled metric from the exporter's /metrics.
func (e *exporter) metric(ctx context.Context, name string) (float64, error) {
	return e.metricVia(ctx, e.clients[0], name)
}

func (e *exporter) metricVia(ctx context.Context, client *http.Client, name string) (float64, error) {
	body, err := e.exposition(ctx, client)
	if err != nil {
		return 0, err
	}
	v, ok := sampleValue(body, name)
	if !ok {
		return 0, fmt.Errorf("/metrics has no %s", name)
	}
	return v, nil
}

// exposition reads the exporter's /metrics.
func (e *exporter) exposition(ctx context.Context, client *http.Client) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics answered %s", resp.Status)
	}
	return body, nil
}

// stop ends the exporter: SIGTERM, then SIGKILL if it lingers.
func (e *exporter) stop() {
	defer e.logFile.Close()
	for _, c := range e.clients {
		c.CloseIdleConnections()
	}
	select {
	case <-e.exited:
		return
	default:
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(10 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.exited
	}
}

// logTail returns the end of the exporter's log, for error messages.
func (e *exporter) logTail() string {
	data, err := os.ReadFile(e.logFile.Name())
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const keep = 2000
	if len(data) > keep {
		data = data[len(data)-keep:]
	}
	return string(data)
}

// alive reports an error if the exporter has exited.
func (e *exporter) alive() error {
	select {
	case <-e.exited:
		return fmt.Errorf("%s exited:\n%s", e.spec.Name(), e.logTail())
	default:
		return nil
	}
}

// sampleValue finds `name value` (no labels) in a text or OpenMetrics
// exposition.
func sampleValue(exposition []byte, name string) (float64, bool) {
	for len(exposition) > 0 {
		line := exposition
		if i := bytes.IndexByte(exposition, '\n'); i >= 0 {
			line, exposition = exposition[:i], exposition[i+1:]
		} else {
			exposition = nil
		}
		rest, ok := bytes.CutPrefix(line, []byte(name))
		if !ok || len(rest) == 0 || rest[0] != ' ' {
			continue
		}
		fields := strings.Fields(string(rest))
		if len(fields) == 0 {
			return 0, false
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		return v, err == nil
	}
	return 0, false
}
