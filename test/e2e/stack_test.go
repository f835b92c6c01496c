package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/internal/testkit"
	"go.yaml.in/yaml/v3"
)

// Every process listens on a port the kernel picks, which the test reads
// from its log: at --log.level=info, where exporter-toolkit says it.

// startSonde runs the built sonde with a configuration file written by the
// test, with blackbox_exporter's flags.
func startSonde(t *testing.T, name, config string) string {
	t.Helper()
	bin := sondeBinary(t)
	cfg := writeFile(t, t.TempDir(), "sonde.yml", []byte(config))
	p := start(t, name, bin, "--config.file="+cfg, "--web.listen-address="+testkit.AnyPort, "--log.level=info")
	addr := p.listenAddress(t)
	p.waitReady(t, "http://"+addr+"/-/ready")
	return addr
}

// startPrometheus runs Prometheus with its own data directory and the
// given configuration.
func startPrometheus(t *testing.T, name string, config []byte) promAPI {
	t.Helper()
	bin := tool(t, "prometheus", "prometheus")
	dir := t.TempDir()
	cfg := writeFile(t, dir, "prometheus.yml", config)
	p := start(t, name, bin,
		"--config.file="+cfg,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+testkit.AnyPort,
		// Alerts go out at once when they fire; a failed send is retried
		// within a second instead of Prometheus's default minute.
		"--rules.alert.resend-delay=1s",
		"--log.level=info",
	)
	addr := p.listenAddress(t)
	p.waitReady(t, "http://"+addr+"/-/ready")
	return promAPI{base: "http://" + addr}
}

// startAlertmanager runs Alertmanager, clustering off, with a route that
// sends every alert at once, each in its own group, to webhook.
func startAlertmanager(t *testing.T, webhook string) string {
	t.Helper()
	bin := tool(t, "prometheus-alertmanager", "prometheus-alertmanager")
	dir := t.TempDir()
	cfg, err := yaml.Marshal(map[string]any{
		"route": map[string]any{
			"receiver":        "test",
			"group_by":        []string{"..."},
			"group_wait":      "0s",
			"group_interval":  "1s",
			"repeat_interval": "1h",
		},
		"receivers": []any{map[string]any{
			"name":            "test",
			"webhook_configs": []any{map[string]any{"url": webhook, "send_resolved": false}},
		}},
	})
	if err != nil {
		t.Fatalf("writing the Alertmanager configuration: %v", err)
	}
	path := writeFile(t, dir, "alertmanager.yml", cfg)
	p := start(t, "alertmanager", bin,
		"--config.file="+path,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+testkit.AnyPort,
		"--cluster.listen-address=",
		"--log.level=info",
	)
	addr := p.listenAddress(t)
	p.waitReady(t, "http://"+addr+"/-/ready")
	return addr
}

// promAPI queries a Prometheus through its HTTP API.
type promAPI struct{ base string }

// sample is one series of an instant query's answer.
type sample struct {
	Metric map[string]string
	Value  float64
}

// apiResponse is the envelope of every answer of the HTTP API.
type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

func (p promAPI) get(path string, params url.Values) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := p.base + path + "?" + params.Encode()
	status, body, err := httpGet(ctx, u)
	if err != nil {
		return nil, err
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("GET %s: %d, not the API's JSON: %w: %s", path, status, err, trimmed(body))
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("GET %s: %s: %s", path, r.ErrorType, r.Error)
	}
	return r.Data, nil
}

// query runs an instant query. A scalar answer is returned as one sample
// without labels.
func (p promAPI) query(q string) ([]sample, error) {
	data, err := p.get("/api/v1/query", url.Values{"query": {q}})
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	var d struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	switch d.ResultType {
	case "vector":
		var rows []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(d.Result, &rows); err != nil {
			return nil, fmt.Errorf("query %s: %w", q, err)
		}
		out := make([]sample, 0, len(rows))
		for _, r := range rows {
			v, err := parseValue(r.Value)
			if err != nil {
				return nil, fmt.Errorf("query %s: %w", q, err)
			}
			out = append(out, sample{Metric: r.Metric, Value: v})
		}
		return out, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(d.Result, &v); err != nil {
			return nil, fmt.Errorf("query %s: %w", q, err)
		}
		f, err := parseValue(v)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", q, err)
		}
		return []sample{{Metric: map[string]string{}, Value: f}}, nil
	default:
		return nil, fmt.Errorf("query %s: a %s answer, not an instant vector", q, d.ResultType)
	}
}

func parseValue(v [2]any) (float64, error) {
	s, ok := v[1].(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", v[1])
	}
	return strconv.ParseFloat(s, 64)
}

// labelValues returns the values of label on the series matching match.
func (p promAPI) labelValues(label, match string) ([]string, error) {
	data, err := p.get("/api/v1/label/"+label+"/values", url.Values{"match[]": {match}})
	if err != nil {
		return nil, fmt.Errorf("values of %s for %s: %w", label, match, err)
	}
	var values []string
	if err := json.Unmarshal(data, &values); err != nil {
		return nil, fmt.Errorf("values of %s for %s: %w", label, match, err)
	}
	return values, nil
}

// activeTarget is a target Prometheus scrapes, after relabeling.
type activeTarget struct {
	Labels    map[string]string `json:"labels"`
	ScrapeURL string            `json:"scrapeUrl"`
	Health    string            `json:"health"`
	LastError string            `json:"lastError"`
}

func (p promAPI) activeTargets() ([]activeTarget, error) {
	data, err := p.get("/api/v1/targets", url.Values{"state": {"active"}})
	if err != nil {
		return nil, fmt.Errorf("targets: %w", err)
	}
	var d struct {
		Active []activeTarget `json:"activeTargets"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("targets: %w", err)
	}
	return d.Active, nil
}

// describe lists samples for an error message.
func describe(samples []sample) string {
	var parts []string
	for _, s := range samples {
		var labels []string
		for k, v := range s.Metric {
			labels = append(labels, k+"="+strconv.Quote(v))
		}
		sort.Strings(labels)
		parts = append(parts, fmt.Sprintf("{%s} %g", strings.Join(labels, ","), s.Value))
	}
	if len(parts) == 0 {
		return "no series"
	}
	return strings.Join(parts, "; ")
}

// readYAML reads a shipped YAML file into generic maps, for rewriting the
// few fields a test must change (addresses, targets, intervals) while
// keeping everything else as shipped.
func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	return doc
}

func marshalYAML(t *testing.T, v any) []byte {
	t.Helper()
	out, err := yaml.Marshal(v)
	if err != nil {
		t.Fatalf("writing YAML: %v", err)
	}
	return out
}

// promSetup says how to point a shipped Prometheus configuration at the
// test's processes.
type promSetup struct {
	// targets replace the static targets of each job, by job name. Every
	// job of the configuration must be listed, so that a job added to the
	// example is not left untested.
	targets map[string][]string
	// fileSD replaces the files of each job's file_sd_configs.
	fileSD map[string]string
	// sonde gives the address that a relabel rule writing __address__
	// should write, from the rule.
	sonde func(rule map[string]any) (string, error)
	// rules replaces rule_files; alertmanager the Alertmanagers' targets.
	rules        []string
	alertmanager string
}

// rewritePromConfig turns a shipped Prometheus configuration into one for
// the test: 1s intervals, the test's targets and addresses. The relabeling,
// params and everything else stay as shipped, so they are what is tested.
func rewritePromConfig(t *testing.T, cfg map[string]any, s promSetup) []byte {
	t.Helper()
	global, _ := cfg["global"].(map[string]any)
	if global == nil {
		global = map[string]any{}
	}
	// The scrape timeout is the probe's deadline plus sonde's 0.5s offset.
	global["scrape_interval"], global["scrape_timeout"], global["evaluation_interval"] = "1s", "1s", "1s"
	cfg["global"] = global
	if _, ok := cfg["rule_files"]; ok || len(s.rules) > 0 {
		cfg["rule_files"] = s.rules
	}
	if alerting, ok := cfg["alerting"].(map[string]any); ok {
		for _, am := range list(alerting["alertmanagers"]) {
			for _, sc := range list(asMap(am)["static_configs"]) {
				asMap(sc)["targets"] = []string{s.alertmanager}
			}
		}
	}
	for _, job := range list(cfg["scrape_configs"]) {
		job := asMap(job)
		name, _ := job["job_name"].(string)
		targets, ok := s.targets[name]
		if !ok {
			t.Fatalf("the configuration has a job %q the test gives no targets: add it to the test", name)
		}
		if _, ok := job["static_configs"]; ok {
			job["static_configs"] = []any{map[string]any{"targets": targets}}
		}
		for _, sd := range list(job["file_sd_configs"]) {
			file, ok := s.fileSD[name]
			if !ok {
				t.Fatalf("job %q reads targets files; the test gives none", name)
			}
			asMap(sd)["files"] = []string{file}
		}
		for _, rule := range list(job["relabel_configs"]) {
			rule := asMap(rule)
			if rule["target_label"] != "__address__" {
				continue
			}
			addr, err := s.sonde(rule)
			if err != nil {
				t.Fatalf("job %q: %v", name, err)
			}
			rule["replacement"] = addr
		}
	}
	return marshalYAML(t, cfg)
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	if m == nil {
		return map[string]any{}
	}
	return m
}

// webhook collects the alerts Alertmanager sends.
type webhook struct {
	mu     sync.Mutex
	alerts []map[string]string // the labels of each firing alert received
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var msg struct {
		Alerts []struct {
			Status string            `json:"status"`
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range msg.Alerts {
		if a.Status == "firing" {
			w.alerts = append(w.alerts, a.Labels)
		}
	}
}

// find returns the first alert received that has all the labels of want.
func (w *webhook) find(want map[string]string) (map[string]string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.alerts {
		match := true
		for k, v := range want {
			if a[k] != v {
				match = false
				break
			}
		}
		if match {
			return a, true
		}
	}
	return nil, false
}

func (w *webhook) received() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var names []string
	for _, a := range w.alerts {
		names = append(names, a["alertname"]+"("+a["instance"]+")")
	}
	return names
}
