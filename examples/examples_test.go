// Package examples holds the files operators copy: alert rules, Prometheus
// configurations, a Grafana dashboard, Kubernetes manifests and CI recipes.
// Its tests keep them working; test/e2e runs them in a real Prometheus and
// Alertmanager.
package examples

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sonde-exporter/sonde/config"
)

// promtool finds Prometheus's promtool. Outside CI a missing promtool skips
// the test with a loud message; in CI (.ci/run installs Debian's prometheus
// package) it is a failure, so the rules are never left untested.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatal("promtool is not installed; .ci/run should have installed Debian's prometheus package")
	}
	t.Skip("SKIPPING: promtool is not installed, so the alert rules are not checked; install it with `apt-get install prometheus`")
	return ""
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %v: %v\n%s", args, err, out)
	}
}

// Every Prometheus configuration and rule file shipped is checked by
// promtool: `check config` also checks the rule files and file_sd targets
// files a configuration names.
var (
	prometheusConfigs = []string{"prometheus/prometheus.yml", "prometheus/prometheus-sharded.yml"}
	ruleFiles         = []string{"alerts.yml"}
)

// TestExampleFilesAreListed keeps the lists above complete, so that a new
// example file is not left unchecked.
func TestExampleFilesAreListed(t *testing.T) {
	configs, err := filepath.Glob("prometheus/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(configs)
	want := slices.Sorted(slices.Values(prometheusConfigs))
	if !slices.Equal(configs, want) {
		t.Errorf("prometheus/ has %v; the tests check %v", configs, want)
	}
}

func TestPrometheusConfigsAreValid(t *testing.T) {
	for _, file := range prometheusConfigs {
		t.Run(file, func(t *testing.T) {
			// promtool reads the files a configuration names relative to it.
			cmd := exec.Command(promtool(t), "check", "config", filepath.Base(file))
			cmd.Dir = filepath.Dir(file)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("promtool check config %s: %v\n%s", file, err, out)
			}
		})
	}
}

func TestAlertRulesAreValid(t *testing.T) {
	for _, file := range ruleFiles {
		t.Run(file, func(t *testing.T) {
			runPromtool(t, "check", "rules", file)
		})
	}
}

// TestPrometheusModulesExist checks that the modules the Prometheus
// configurations ask sonde for (params.module, and module labels of their
// targets files) are modules of sonde's example.yml, which they are meant
// to be used with.
func TestPrometheusModulesExist(t *testing.T) {
	cfg, err := config.LoadFile("../example.yml")
	if err != nil {
		t.Fatalf("loading example.yml: %v", err)
	}
	for _, file := range prometheusConfigs {
		var prom struct {
			ScrapeConfigs []struct {
				JobName     string              `yaml:"job_name"`
				MetricsPath string              `yaml:"metrics_path"`
				Params      map[string][]string `yaml:"params"`
				FileSD      []struct {
					Files []string `yaml:"files"`
				} `yaml:"file_sd_configs"`
			} `yaml:"scrape_configs"`
		}
		readYAML(t, file, &prom)
		for _, job := range prom.ScrapeConfigs {
			if job.MetricsPath != "/probe" {
				continue // sonde's own /metrics
			}
			modules := job.Params["module"]
			if len(modules) == 0 {
				t.Errorf("%s: job %s names no module; sonde would use http_2xx", file, job.JobName)
			}
			for _, sd := range job.FileSD {
				for _, pattern := range sd.Files {
					matches, err := filepath.Glob(filepath.Join(filepath.Dir(file), pattern))
					if err != nil || len(matches) == 0 {
						t.Errorf("%s: job %s: no targets file %s (%v)", file, job.JobName, pattern, err)
					}
					for _, m := range matches {
						var groups []struct {
							Labels map[string]string `yaml:"labels"`
						}
						readYAML(t, m, &groups)
						for _, g := range groups {
							if mod, ok := g.Labels["module"]; ok {
								modules = append(modules, mod)
							}
						}
					}
				}
			}
			for _, mod := range modules {
				if _, ok := cfg.Modules[mod]; !ok {
					t.Errorf("%s: job %s uses module %q, which example.yml does not define", file, job.JobName, mod)
				}
			}
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
}

// The unit tests in alerts.test.yml fire each alert from probe_failure_info
// series and check its labels and summary.
func TestAlertRulesFire(t *testing.T) {
	runPromtool(t, "test", "rules", "alerts.test.yml")
}
