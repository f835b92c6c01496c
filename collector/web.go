package collector

import (
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/prometheus/common/version"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober"
	"github.com/sonde-exporter/sonde/prober/core"
)

// Links on the pages are relative, so they work under any route prefix.
var landing = template.Must(template.New("landing").Parse(`<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>sonde</title>
<style>
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
.fail { color: #b00; font-weight: bold; }
</style></head>
<body>
<h1>sonde</h1>
<p>A Prometheus multi-target prober, compatible with blackbox_exporter. Version {{.Version}}.</p>
<ul>
<li><a href="metrics">Metrics</a> of the exporter itself</li>
<li><a href="config">Configuration</a> as loaded (secrets hidden)</li>
<li><a href="-/healthy">Health</a></li>
</ul>
{{if .Warnings}}<h2>Configuration warnings</h2>
<p>The configuration loaded, as blackbox_exporter would load it, and its modules probe as blackbox would probe them, but sonde found these problems (<code>--config.strict</code> refuses such a file):</p>
<ul>{{range .Warnings}}<li>{{.}}</li>{{end}}</ul>
{{end}}<h2>Modules</h2>
<table>
<tr><th>Module</th><th>Prober</th><th>Timeout</th><th>Try it</th></tr>
{{range .Modules}}<tr><td>{{.Name}}</td><td>{{.Prober}}{{if not .Runs}} (unknown: its scrapes are answered 400){{end}}</td><td>{{if .Timeout}}{{.Timeout}}{{else}}scrape timeout{{end}}</td>
<td><form action="probe" method="get"><input type="hidden" name="module" value="{{.Name}}"><input name="target" placeholder="target" size="30"><input type="hidden" name="debug" value="true"><button>Debug probe</button></form></td></tr>
{{else}}<tr><td colspan="4">No modules are configured.</td></tr>{{end}}
</table>
{{template "probes" .Failed}}
{{template "probes" .Recent}}
</body></html>
{{define "probes"}}<h2>{{.Title}}</h2>
<table>
<tr><th>Time</th><th>Module</th><th>Target</th><th>Result</th><th>Duration</th><th>Attempts</th><th>Details</th><th>Log</th></tr>
{{range .Rows}}<tr><td>{{.Start.UTC.Format "2006-01-02 15:04:05Z"}}</td><td>{{.Module.Name}}</td><td>{{.ShownTarget}}</td>
<td>{{if .Err}}<span class="fail">Failure</span> {{.Err.Class}}/{{.Err.Reason}} in {{.Err.Phase}}{{else}}Success{{end}}</td>
<td>{{printf "%.3fs" .Duration.Seconds}}</td><td>{{len .Timeline}}</td><td><a href="probe/detail?id={{.ID}}">Waterfall</a></td><td><a href="logs?id={{.ID}}">Logs</a></td></tr>
{{else}}<tr><td colspan="8">None yet.</td></tr>{{end}}
</table>{{end}}
`))

type moduleRow struct {
	Name, Prober string
	Timeout      string
	Runs         bool
}

type probeTable struct {
	Title string
	Rows  []*Result
}

// LandingPage lists the modules and the recent probes, failed ones apart.
func (c *Collector) LandingPage(w http.ResponseWriter, r *http.Request) {
	set := c.Modules()
	var modules []moduleRow
	for _, name := range set.Names() {
		m, _ := set.Module(name)
		row := moduleRow{Name: name, Prober: m.Prober, Runs: prober.IsImplemented(m.Prober)}
		if m.Timeout > 0 {
			row.Timeout = m.Timeout.String()
		}
		modules = append(modules, row)
	}
	recent, failed := c.history.Lists()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", pageCSP)
	err := landing.Execute(w, map[string]any{
		"Version":  version.Version,
		"Warnings": configWarnings(set),
		"Modules":  modules,
		"Failed":   probeTable{Title: "Recent failed probes", Rows: failed},
		"Recent":   probeTable{Title: "Recent probes", Rows: recent},
	})
	if err != nil {
		c.logger.Error("Rendering the landing page failed", "err", err)
	}
}

// configWarnings are the warnings of the configuration in use, as text.
func configWarnings(set *core.Set) []string {
	if set.Config == nil {
		return nil
	}
	out := make([]string, len(set.Config.Warnings))
	for i, w := range set.Config.Warnings {
		out[i] = w.Error()
	}
	return out
}

// ConfigPage shows the configuration as loaded, with defaults filled in
// and secrets replaced by <secret>. Its warnings come first, as YAML
// comments, so the page still loads as a configuration.
func (c *Collector) ConfigPage(w http.ResponseWriter, r *http.Request) {
	set := c.Modules()
	cfg := set.Config
	if cfg == nil {
		cfg = &config.Config{}
	}
	out, err := config.Marshal(cfg)
	if err != nil {
		http.Error(w, "rendering the configuration: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, warning := range configWarnings(set) {
		io.WriteString(w, "# warning: "+strings.ReplaceAll(warning, "\n", " ")+"\n")
	}
	w.Write(out)
}

// LogsPage shows the debug output of a past probe, chosen by ?id=N or by
// ?target=T[&module=M], answered as blackbox_exporter answers: the same
// refusals, in the same order, with the same words.
func (c *Collector) LogsPage(w http.ResponseWriter, r *http.Request) {
	res, status, msg := c.logsOf(r.URL.Query())
	if res == nil {
		http.Error(w, msg, status)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, res.DebugOutput())
}

// logsOf finds the probe /logs is asked for, or says why not: an id that
// is not a number counts as none, a target takes the probe of it kept
// longest (of any module unless module is given).
func (c *Collector) logsOf(q url.Values) (res *Result, status int, msg string) {
	id, err := strconv.ParseInt(q.Get("id"), 10, 64)
	if err != nil {
		id = -1
	}
	target, module := q.Get("target"), q.Get("module")
	switch {
	case err == nil && target != "":
		return nil, http.StatusBadRequest, "Probe id and target can't be defined at the same time"
	case id == -1 && target == "":
		return nil, http.StatusBadRequest, "Probe id or target must be defined as http query parameters"
	case target == "" && module != "":
		return nil, http.StatusBadRequest, "Probe module filter only works in conjunction with target parameter"
	case target != "":
		if res, ok := c.history.Earliest(target, module); ok {
			return res, http.StatusOK, ""
		}
		return nil, http.StatusNotFound, "Probe target not found"
	}
	if res, ok := c.history.Get(id); ok {
		return res, http.StatusOK, ""
	}
	return nil, http.StatusNotFound, "Probe id not found"
}
