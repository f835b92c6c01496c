// Package compat runs blackbox_exporter 0.28 (BBE), the reference sonde
// replaces, and sonde side by side on one generated configuration and
// compares what they answer: to every scenario's /probe (status, metric
// families, label sets, deterministic values) and to --config.check of
// BBE's own test configurations.
//
// A difference fails the test unless it is one of sonde's documented
// additions (sondeOnly), a documented difference (documented, each naming
// its section of docs/blackbox-differences.md) or a known gap still to be
// fixed (pending). Every peer the probes talk to is started here on
// loopback.
//
// BBE is the binary `make blackbox-exporter` builds into .cache/ (or
// $COMPAT_BLACKBOX_EXPORTER); `make test` builds it first. Without it the
// tests skip, saying how to get it, except in CI (CI set), where they fail.
package compat

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/internal/testkit"
	"golang.org/x/net/icmp"
)

// sondeBin is sonde, built once for the package's tests.
var sondeBin = testkit.SondeBinary(repoRoot)

func TestMain(m *testing.M) {
	code := m.Run()
	sondeBin.Remove()
	os.Exit(code)
}

// workers is how many scenarios are probed at once: most scenarios wait on
// loopback or on a short deadline, not on the CPU, but each probe costs
// both exporters and the peers some CPU, and two cores are all CI has.
const workers = 12

// peers are every server the scenarios probe.
type peers struct {
	pki    *pki
	http   *httpPeers
	stream *streamPeers
	dns    *dnsPeers
	grpc   *grpcPeers
	files  files
}

// files are what modules read from disk besides the certificates.
type files struct {
	body     string // a request body for body_file
	password string // the basic auth password, for password_file
	token    string // the bearer token, for bearer_token_file
}

func writeFiles(t *testing.T) files {
	t.Helper()
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatalf("writing %s: %v", name, err)
		}
		return path
	}
	return files{
		body:     write("body.txt", "from=body_file"),
		password: write("password", "s3cret\n"),
		token:    write("token", "compat-token\n"),
	}
}

func startPeers(t *testing.T) *peers {
	t.Helper()
	p := newPKI(t)
	return &peers{
		pki:    p,
		http:   startHTTPPeers(t, p),
		stream: startStreamPeers(t, p),
		dns:    startDNSPeers(t, p),
		grpc:   startGRPCPeers(t, p),
		files:  writeFiles(t),
	}
}

// result is what came of one scenario.
type result struct {
	skipped string // why the scenario did not run; "" when it ran
	took    time.Duration
	deltas  []delta
	bbe     answer
	sonde   answer
}

// TestProbesMatchBlackbox probes every scenario through both exporters and
// fails on each difference that is neither documented nor pending.
func TestProbesMatchBlackbox(t *testing.T) {
	bbeBin := blackboxBinary(t)
	sondePath := sondeBin.Path(t)
	pe := startPeers(t)
	scenarios := allScenarios(pe)
	cfg, refused := loadableConfig(t, bbeBin, sondePath, scenarios)
	bbe := startExporter(t, "bbe", bbeBin, cfg)
	sonde := startExporter(t, "sonde", sondePath, cfg)

	have := machineLimits()
	for _, s := range scenarios {
		if s.target == "" && !s.noTarget && unmetNeeds(s, have) == "" {
			t.Fatalf("scenario %s has an empty target: the peer it names was not started", s.name)
		}
	}
	results := runScenarios(scenarios, have, refused, bbe, sonde)
	negotiated, negotiatedResults := negotiate(t.Context(), bbe, sonde, pe.http.plain+"/")
	scenarios = append(scenarios, negotiated...)
	maps.Copy(results, negotiatedResults)

	j := &judge{matched: map[*allowance]bool{}, ran: map[string]bool{}}
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) { j.judge(t, s, results[s.name]) })
	}
	if len(j.unexplained) > 0 {
		t.Errorf("%d deltas are neither documented nor pending:\n%s", len(j.unexplained), formatDeltas(j.unexplained, noNote))
	}
	checkExporterMetrics(t, bbe, sonde)
	checkAllowancesUsed(t, j.matched, j.ran)
	logAccepted(t, results, scenarios)
}

// judge holds what the scenarios' verdicts add up to: which allowances
// were used, which scenarios ran, and the deltas nothing explains.
type judge struct {
	matched     map[*allowance]bool
	ran         map[string]bool
	unexplained []delta
}

// judge fails the scenario's subtest on each delta neither documented nor
// pending, showing both answers.
func (j *judge) judge(t *testing.T, s scenario, r result) {
	if r.skipped != "" {
		t.Skip("SKIPPING: " + r.skipped)
	}
	j.ran[s.name] = true
	t.Logf("BBE %s; sonde %s; %v", outcome(r.bbe), outcome(r.sonde), r.took.Round(time.Millisecond))
	var bad []delta
	for _, d := range r.deltas {
		if a := explain(d); a != nil {
			j.matched[a] = true
			continue
		}
		bad = append(bad, d)
	}
	if len(bad) > 0 {
		j.unexplained = append(j.unexplained, bad...)
		t.Errorf("target %q: deltas neither documented nor pending:\n%s\nBBE answered %d:\n%s\nsonde answered %d:\n%s",
			s.target, formatDeltas(bad, noNote), r.bbe.status, tail(r.bbe.body, 3000), r.sonde.status, tail(r.sonde.body, 3000))
	}
}

// runScenarios probes every scenario on both exporters, workers at a time,
// and compares their answers.
func runScenarios(scenarios []scenario, have map[string]string, refused map[string]delta, bbe, sonde *exporter) map[string]result {
	var mu sync.Mutex
	results := make(map[string]result, len(scenarios))
	jobs := make(chan scenario)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range jobs {
				r := result{deltas: []delta{refused[s.name]}}
				if _, ok := refused[s.name]; !ok {
					r = runScenario(s, have, bbe, sonde)
				}
				mu.Lock()
				results[s.name] = r
				mu.Unlock()
			}
		}()
	}
	for _, s := range scenarios {
		jobs <- s
	}
	close(jobs)
	wg.Wait()
	return results
}

// runScenario asks both exporters at the same moment, as two Prometheus
// servers scraping the same target would.
func runScenario(s scenario, have map[string]string, bbe, sonde *exporter) result {
	if why := unmetNeeds(s, have); why != "" {
		return result{skipped: why}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	var r result
	var wg sync.WaitGroup
	for _, side := range []struct {
		e   *exporter
		out *answer
	}{{bbe, &r.bbe}, {sonde, &r.sonde}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			*side.out = ask(ctx, side.e, s)
		}()
	}
	wg.Wait()
	r.took = time.Since(start)
	r.deltas = compareAnswers(s.name, r.bbe, r.sonde)
	if s.statusOnly {
		r.deltas = compareStatus(s.name, r.bbe, r.sonde)
	}
	return r
}

func ask(ctx context.Context, e *exporter, s scenario) answer {
	status, body, err := e.probe(ctx, s.query(), s.scrapeTimeout())
	a := answer{status: status, body: body, err: err}
	if err == nil && status == 200 && !s.statusOnly {
		a.expo, _ = parseExposition(body)
	}
	return a
}

// loadableConfig writes the scenarios' configuration, which BBE must
// accept (else a scenario is wrong), and leaves out the modules sonde
// refuses: each is a delta of its scenario, since sonde promises to load
// any configuration BBE loads. It returns the file and those deltas.
func loadableConfig(t *testing.T, bbeBin, sondeBin string, scenarios []scenario) (string, map[string]delta) {
	t.Helper()
	cfg := writeConfig(t, scenarios)
	if ok, out := configCheck(bbeBin, cfg); !ok {
		t.Fatalf("blackbox_exporter refuses the generated configuration, so a scenario is wrong:\n%s", out)
	}
	ok, out := configCheck(sondeBin, cfg)
	if ok {
		return cfg, nil
	}
	refused := map[string]delta{}
	for _, m := range refusedModule.FindAllStringSubmatch(out, -1) {
		refused[m[1]] = delta{scenario: m[1], kind: deltaConfig, family: "", bbe: "loads", sonde: "refuses: " + oneLine(m[2])}
	}
	if len(refused) == 0 {
		t.Fatalf("sonde refuses the generated configuration and names no module:\n%s", out)
	}
	var kept []scenario
	for _, s := range scenarios {
		if _, ok := refused[s.name]; !ok {
			kept = append(kept, s)
		}
	}
	cfg = writeConfig(t, kept)
	if ok, out := configCheck(sondeBin, cfg); !ok {
		t.Fatalf("sonde refuses the generated configuration even without the modules it named:\n%s", out)
	}
	return cfg, refused
}

// refusedModule finds the modules sonde's --config.check names, with why.
var refusedModule = regexp.MustCompile(`module "([^"]+)": (.*)`)

// configCheck runs bin --config.check on path: whether it passed, and what
// it said.
func configCheck(bin, path string) (bool, string) {
	out, err := exec.Command(bin, "--config.check", "--config.file="+path).CombinedOutput()
	return err == nil, string(out)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// machineLimits says what this machine cannot do, by need, with why.
func machineLimits() map[string]string {
	limits := map[string]string{}
	if !ipv6Loopback() {
		limits["ipv6"] = "this machine has no IPv6 loopback (::1)"
	}
	if err := icmpPermitted(); err != nil {
		limits["icmp"] = "ICMP sockets are not permitted here (" + err.Error() + "); both exporters need them: run as root, with CAP_NET_RAW, or with net.ipv4.ping_group_range covering the user"
	}
	return limits
}

// icmpPermitted tells whether this process may send ICMP echo requests
// the way the exporters do: over a raw socket, or else over an
// unprivileged datagram socket.
func icmpPermitted() error {
	raw, rawErr := net.ListenPacket("ip4:icmp", "127.0.0.1")
	if rawErr == nil {
		raw.Close()
		return nil
	}
	dgram, err := icmp.ListenPacket("udp4", "127.0.0.1")
	if err == nil {
		dgram.Close()
		return nil
	}
	return fmt.Errorf("raw: %v; datagram: %v", rawErr, err)
}

func noNote(delta) string { return "" }

// outcome sums up an answer for the verbose log: its status and, for a
// probe that ran, probe_success.
func outcome(a answer) string {
	switch {
	case a.err != nil:
		return a.err.Error()
	case a.expo == nil:
		return fmt.Sprintf("%d", a.status)
	}
	return fmt.Sprintf("%d success=%s", a.status, describeFamily(a.expo["probe_success"]))
}

// logAccepted prints the documented and the pending deltas this run saw,
// so that the lead's list of what is left to fix (and of what is kept on
// purpose) is in every verbose run.
func logAccepted(t *testing.T, results map[string]result, scenarios []scenario) {
	var documented, pending []delta
	for _, s := range scenarios {
		for _, d := range results[s.name].deltas {
			switch a := explain(d); {
			case a == nil:
			case a.why != "":
				pending = append(pending, d)
			default:
				documented = append(documented, d)
			}
		}
	}
	if len(documented) > 0 {
		t.Logf("%d documented deltas (docs/blackbox-differences.md):\n%s", len(documented), formatDeltas(documented, func(d delta) string {
			return "#" + explain(d).section
		}))
	}
	if len(pending) > 0 {
		t.Logf("%d pending deltas (known, not fixed yet):\n%s", len(pending), formatDeltas(pending, func(d delta) string {
			return strings.TrimSpace(explain(d).why)
		}))
	}
}
