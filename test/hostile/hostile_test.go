// Package hostile puts every prober that reads from the network (http,
// websocket, tcp and unix query_response, dns over udp, tcp, tls and
// https, grpc) in front of peers that misbehave on purpose: slowloris,
// endless headers, bodies, banners and header lists, oversized lines and
// frames, TLS that stalls half way, silence, malformed answers, redirect
// loops. Each peer is a loopback server (a socket in the test's directory
// for unix) the test starts; each probe goes through the collector's
// /probe handler in the test process, so that what it allocates can be
// read from runtime.MemStats. A probe must end by its deadline (with a
// margin a loaded CI machine cannot break: the load harness's overrun
// mode measures the tight figure), fail with the class and reason
// docs/error-classes.md documents, allocate less than its row's bound,
// keep less than maxRetained once it has ended, and leave no goroutine
// or open file behind. The rows are in the *_rows_test.go files.
package hostile

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sonde-exporter/sonde/collector"
	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/prober"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

const (
	// deadline is a row's module timeout, unless the row sets its own.
	deadline = time.Second
	// margin is how long past its deadline a probe may return here: far
	// more than the runtime needs to notice a deadline, enough for a
	// machine running other packages' tests under the race detector.
	// The load harness's overrun mode measures the real figure.
	margin = 2 * time.Second
	// settle is how long goroutines and open files may take to come back
	// down after a probe: the peer's side of the connection noticing
	// that the probe hung up, at its next read or write.
	settle = 10 * time.Second
	// MiB is a mebibyte, for the rows' memory bounds.
	MiB = 1 << 20
	// smallAlloc bounds what a probe may allocate when the peer sends
	// little: a few KiB of its own, the rest a generous allowance for
	// the other rows' probes and peers running alongside (those rows run
	// in parallel, and TotalAlloc is the whole process's).
	smallAlloc = 16 * MiB
	// headerAlloc bounds a probe reading an endless response header:
	// net/http's line reader grows its buffer by appending and then
	// copies the line, so one endless line costs about seven times the
	// 10 MiB limit on a response's header that sonde and blackbox share.
	headerAlloc = 96 * MiB
	// maxRetained bounds what a probe leaves behind once it has ended,
	// whatever the peer sent: its entry in the history, with its log.
	maxRetained = 1 * MiB
)

// row is one hostile peer in front of one prober.
type row struct {
	name    string
	prober  string
	section string                    // the prober's section of the module, YAML
	peer    func(t *testing.T) string // starts the peer, returns the target
	class   taxonomy.Class
	reason  taxonomy.Reason
	// timeout is the module's, when deadline is not enough for the probe
	// to get as far as the failure the row is about.
	timeout time.Duration
	// maxAlloc bounds the bytes the probe allocates (the TotalAlloc
	// delta over the probe, the peer's and the scrape's included).
	maxAlloc uint64
	// alone runs the row by itself, before the others, so that the
	// allocations measured are its own: the rows whose peer sends a lot.
	alone bool
}

// module is the row's module as it would be written in sonde.yml.
func (r row) module() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %s:\n    prober: %s\n    timeout: %s\n", r.moduleName(), r.prober, r.deadline())
	if r.section != "" {
		fmt.Fprintf(&b, "    %s:\n", r.prober)
		for line := range strings.SplitSeq(strings.TrimRight(r.section, "\n"), "\n") {
			b.WriteString("      " + line + "\n")
		}
	}
	return b.String()
}

// deadline is the row's module timeout.
func (r row) deadline() time.Duration {
	if r.timeout > 0 {
		return r.timeout
	}
	return deadline
}

func (r row) moduleName() string {
	return strings.NewReplacer("/", "_", " ", "_", "-", "_").Replace(r.name)
}

// allRows is every row, prober by prober.
func allRows() []row {
	var rows []row
	for _, of := range [][]row{httpRows(), websocketRows(), tcpRows(), unixRows(), dnsRows(), grpcRows()} {
		rows = append(rows, of...)
	}
	return rows
}

// TestHostile runs every row: first the rows that must run alone, one at
// a time, each checked for goroutines and open files left behind; then
// the others all at once, checked together when the last has ended.
func TestHostile(t *testing.T) {
	testkit.HoldTimingLock(t)
	rows := allRows()
	c := newCollector(t, rows)

	var together []row
	for _, r := range rows {
		if !r.alone {
			together = append(together, r)
			continue
		}
		t.Run(r.name, func(t *testing.T) {
			target := r.peer(t)
			before := takeCounts()
			probe(t, c, r, target)
			checkNoLeak(t, before)
		})
	}

	// The others run all at once. t.Parallel would run as many at a time
	// as the machine has cores: a row waits out its deadline, not a core.
	before := takeCounts()
	t.Run("together", func(t *testing.T) {
		var wg sync.WaitGroup
		for _, r := range together {
			wg.Go(func() {
				t.Run(r.name, func(t *testing.T) { probe(t, c, r, r.peer(t)) })
			})
		}
		wg.Wait()
	})
	// The peers of those rows have stopped: their tests' cleanups ran
	// when "together" returned.
	checkNoLeak(t, before)
}

// TestRowsAreDistinct keeps the table readable: every row has a name of
// its own (it names its module) and a bound.
func TestRowsAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range allRows() {
		if seen[r.moduleName()] {
			t.Errorf("two rows are named %q", r.moduleName())
		}
		seen[r.moduleName()] = true
		if r.maxAlloc == 0 || r.class == "" || r.reason == "" || r.peer == nil {
			t.Errorf("row %q lacks a bound, a class, a reason or a peer", r.name)
		}
	}
}

// newCollector loads every row's module and returns a collector serving
// them as sonde does at its default flags.
func newCollector(t *testing.T, rows []row) *collector.Collector {
	t.Helper()
	var src strings.Builder
	src.WriteString("modules:\n")
	for _, r := range rows {
		src.WriteString(r.module())
	}
	cfg, err := config.Load([]byte(src.String()))
	if err != nil {
		t.Fatalf("config.Load:\n%s\n%v", src.String(), err)
	}
	set, err := prober.NewSet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The main log formats what reaches it, as at the default flags,
	// and throws the text away.
	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c := collector.New(collector.Options{
		Logger:       logger,
		ProberLevel:  slog.LevelInfo,
		HistoryLimit: 10,
		Registerer:   prometheus.NewRegistry(),
	})
	c.SetModules(set)
	return c
}

// probe scrapes /probe for the row and checks the answer, the time it
// took and what it allocated.
func probe(t *testing.T, c *collector.Collector, r row, target string) {
	t.Helper()
	q := url.Values{"module": {r.moduleName()}, "target": {target}}
	req := httptest.NewRequest(http.MethodGet, "/probe?"+q.Encode(), nil)
	w := httptest.NewRecorder()

	var took time.Duration
	used := measure(r.alone, func() {
		start := time.Now()
		c.ServeHTTP(w, req)
		took = time.Since(start)
	})
	if w.Code != http.StatusOK {
		t.Fatalf("/probe answered %d: %s", w.Code, w.Body.String())
	}
	families := parse(t, w.Body.Bytes())
	if got := value(families, "probe_success", nil); got != 0 {
		t.Errorf("probe_success %v, want 0", got)
	}
	want := map[string]string{"class": string(r.class), "reason": string(r.reason)}
	if got := failures(families); len(got) != 1 || !matches(got[0], want) {
		t.Errorf("probe_failure_info %v, want one series with %v", got, want)
	}
	if took > r.deadline()+margin {
		t.Errorf("the probe took %v, more than its deadline %v and %v of margin", took.Round(time.Millisecond), r.deadline(), margin)
	}
	if used.allocated > r.maxAlloc {
		t.Errorf("the probe allocated %.1f MiB, more than its bound of %.0f MiB", float64(used.allocated)/MiB, float64(r.maxAlloc)/MiB)
	}
	if used.retained > maxRetained {
		t.Errorf("the probe left %.1f MiB behind, more than the %.0f MiB a probe may keep", float64(used.retained)/MiB, float64(maxRetained)/MiB)
	}
	t.Logf("%s: %v, %.2f MiB allocated (bound %.0f MiB), %.2f MiB retained, %v", r.name, took.Round(time.Millisecond),
		float64(used.allocated)/MiB, float64(r.maxAlloc)/MiB, float64(used.retained)/MiB, failures(families))
}

// usage is what one probe cost the heap.
type usage struct {
	// allocated is every byte allocated while it ran (TotalAlloc).
	allocated uint64
	// retained is the live heap after it, less the live heap before,
	// both right after a collection: what outlives the probe, its entry
	// in the history. Measured only for a probe that runs alone.
	retained int64
}

// measure runs probe and returns what it cost the heap.
func measure(alone bool, probe func()) usage {
	var before, after runtime.MemStats
	if alone {
		runtime.GC()
	}
	runtime.ReadMemStats(&before)
	probe()
	if alone {
		runtime.GC()
	}
	runtime.ReadMemStats(&after)
	u := usage{allocated: after.TotalAlloc - before.TotalAlloc}
	if alone {
		u.retained = int64(after.HeapAlloc) - int64(before.HeapAlloc)
	}
	return u
}

func parse(t *testing.T, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the answer: %v\n%s", err, body)
	}
	return families
}

// value returns the value of the family's series with the labels, or -1.
func value(families map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := families[name]
	if f == nil {
		return -1
	}
	for _, m := range f.GetMetric() {
		if matches(labelsOf(m), labels) {
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// failures returns the labels of every probe_failure_info series at 1.
func failures(families map[string]*dto.MetricFamily) []map[string]string {
	var out []map[string]string
	for _, m := range families["probe_failure_info"].GetMetric() {
		if m.GetGauge().GetValue() == 1 {
			out = append(out, labelsOf(m))
		}
	}
	return out
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// matches reports whether got has every label of want, with its value.
func matches(got, want map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// counts are the process's goroutines and open files at one moment.
type counts struct {
	goroutines, files int
}

func takeCounts() counts {
	runtime.GC() // finalizers close what was dropped without Close
	return counts{goroutines: runtime.NumGoroutine(), files: openFiles()}
}

// checkNoLeak waits, at most settle, for the goroutines and open files to
// come back to before, and fails the test with what is left if they do
// not.
func checkNoLeak(t *testing.T, before counts) {
	t.Helper()
	limit := time.Now().Add(settle)
	for {
		now := takeCounts()
		if now.goroutines <= before.goroutines && now.files <= before.files {
			return
		}
		if time.Now().After(limit) {
			var stacks bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&stacks, 1)
			t.Errorf("%d goroutines and %d open files after the probe, %d and %d before:\n%s",
				now.goroutines, now.files, before.goroutines, before.files, stacks.String())
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// openFiles counts the process's open file descriptors, or returns 0
// where /proc/self/fd cannot tell.
func openFiles() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(entries)
}
