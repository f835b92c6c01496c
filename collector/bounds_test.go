package collector

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/sonde-exporter/sonde/internal/redact"
	"github.com/sonde-exporter/sonde/internal/testkit"
)

// maxLine is the longest a log line may be when its values are cut: a
// few values at their cap (the target tag, a location, an error), with
// the rest of the line.
const maxLine = 4*redact.MaxValue + 1024

// A 900 KB Location header, met on every hop, is logged cut, in the main
// log (its warnings and the failure) and in the probe's log, each cut
// value saying how long it was.
func TestHugeLocationIsCutInLogs(t *testing.T) {
	location := "/" + strings.Repeat("a", 900<<10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", location)
		w.WriteHeader(http.StatusFound)
	}))
	srv.Config.MaxHeaderBytes = 4 << 20 // the URL, and the Referer the client sends with it
	srv.Start()
	defer srv.Close()
	var mainLog testkit.SyncBuffer
	c, _ := hostileCollector(t, &mainLog, slog.LevelInfo, slog.LevelInfo)
	_, debug := scrape(t, c, url.Values{"target": {srv.URL}, "debug": {"true"}}, nil)
	marker := regexp.MustCompile(`…\[cut: 9216\d\d bytes\]`)
	for where, text := range map[string]string{"the main log": mainLog.String(), "the debug output": debug} {
		lines := strings.Split(text, "\n")
		for _, line := range lines {
			if len(line) > maxLine {
				t.Errorf("%s has a line of %d bytes: %.300s...", where, len(line), line)
			}
		}
		if n := len(marker.FindAllString(text, -1)); n < 10 {
			t.Errorf("%s says %d times that a location was cut, want at least once per redirect (10)", where, n)
		}
	}
	if !strings.Contains(mainLog.String(), `level=WARN msg="Following redirect"`) {
		t.Errorf("no redirect in the main log:\n%.2000s", mainLog.String())
	}
}

// A target of a megabyte kept in the history costs a few KiB: the target,
// the error message and the log's values are cut. /logs still finds the
// probe by the whole target.
func TestHistoryKeepsHugeTargetsCut(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.SetKeepAlivesEnabled(false) // no connection of the server's holds a request line
	srv.Start()
	defer srv.Close()
	huge := func(i int) string { return fmt.Sprintf("%d", i) + strings.Repeat("a", 1<<20) }
	for _, tc := range []struct {
		name, module string
		target       func(i int) string
	}{
		{"http, answered", "http_2xx", func(i int) string { return srv.URL + "/" + huge(i) }},
		{"http, without a host", "http_2xx", func(i int) string { return "http://alice:" + targetPassword + "@/" + huge(i) }},
		{"tcp, not host:port", "tcp_connect", func(i int) string { return huge(i) + ":x:y" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// What the test keeps of the main log and the spans is not
			// the history's.
			c, _ := hostileCollector(t, io.Discard, slog.LevelInfo, slog.LevelInfo)
			c.tracer = nil
			const probes = 20 // as many as the history keeps
			for i := range probes {
				scrape(t, c, url.Values{"module": {tc.module}, "target": {tc.target(i)}}, nil)
			}
			checkKeptCut(t, c.History(), probes-1, tc.target(probes-1))
			// What the history holds is what is freed when it goes.
			kept := liveHeap()
			c.history = NewHistory(0)
			perProbe := (int64(kept) - int64(liveHeap())) / probes
			t.Logf("each probe kept costs %d KiB", perProbe>>10)
			if perProbe > 48<<10 { // a few values at their cap; MiBs when whole
				t.Errorf("each probe kept in the history costs %d KiB", perProbe>>10)
			}
		})
	}
}

// checkKeptCut checks that the history keeps probe id of target cut, and
// finds it by the whole target.
func checkKeptCut(t *testing.T, h *History, id int64, target string) {
	t.Helper()
	r, ok := h.Get(id)
	if !ok {
		t.Fatal("the last probe is not kept")
	}
	if len(r.Target) > redact.MaxValue || len(r.ShownTarget()) > redact.MaxValue {
		t.Errorf("the history keeps a target of %d bytes, shown as %d", len(r.Target), len(r.ShownTarget()))
	}
	if r.Err != nil && len(r.Err.Error()) > redact.MaxValue+256 {
		t.Errorf("the history keeps an error message of %d bytes", len(r.Err.Error()))
	}
	for _, line := range strings.Split(r.Log(), "\n") {
		if len(line) > maxLine {
			t.Errorf("the kept log has a line of %d bytes: %.300s...", len(line), line)
		}
	}
	if got, ok := h.Earliest(target, ""); !ok || got != r {
		t.Errorf("/logs?target= no longer finds the probe of a huge target: %v", got)
	}
	if _, ok := h.Earliest(target[:len(target)-1], ""); ok {
		t.Error("/logs?target= finds the probe of a huge target by another target")
	}
}

// liveHeap is the size of the heap's live objects after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// The values of a probe's log are cut when they are kept, so that a long
// one does not stay in memory with the probe: strings, errors, groups;
// values made when the line is read (LogValuers) are cut as they are read.
func TestProbeLogCutsValues(t *testing.T) {
	long := strings.Repeat("x", 100<<10)
	log := &probeLog{}
	var main bytes.Buffer
	h := newProbeHandler(log, slog.NewJSONHandler(&main, nil), slog.LevelInfo, []slog.Attr{slog.String("module", "m")})
	logger := slog.New(h)
	logger.Warn("line", "s", long, "err", fmt.Errorf("failed: %s", long), slog.Group("g", "s", long), "lazy", lazyValue(long), "short", "ok")
	logger.Debug("debug line", "s", long)
	h.log.mu.Lock()
	for _, r := range log.records {
		r.Attrs(func(a slog.Attr) bool {
			if a.Value.Kind() == slog.KindString && len(a.Value.String()) > redact.MaxValue+64 {
				t.Errorf("the log keeps %s of %d bytes", a.Key, len(a.Value.String()))
			}
			if _, isErr := a.Value.Any().(error); isErr {
				t.Errorf("the log keeps the long error %s", a.Key)
			}
			return true
		})
	}
	h.log.mu.Unlock()
	for where, text := range map[string]string{"rendered": log.render(nil), "forwarded": main.String()} {
		if n := strings.Count(text, "…[cut: "); n < 4 {
			t.Errorf("%s: %d values say they were cut, want 4 or more:\n%.1000s", where, n, text)
		}
		for _, line := range strings.Split(text, "\n") {
			if len(line) > 6*redact.MaxValue {
				t.Errorf("%s: a line of %d bytes", where, len(line))
			}
		}
		if !strings.Contains(text, "short") {
			t.Errorf("%s lacks the short value:\n%.1000s", where, text)
		}
	}
}

type lazyValue string

func (v lazyValue) LogValue() slog.Value { return slog.StringValue(string(v)) }
