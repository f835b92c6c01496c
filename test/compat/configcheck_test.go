package compat

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// bbeModule is the module whose configurations the config check reads, at
// the version the suite compares with.
const bbeModule = "github.com/prometheus/blackbox_exporter@v0.28.0"

// shippedConfigs are BBE's example configurations. Its tests do not load
// them, but they ship as working examples: valid.
var shippedConfigs = []string{"blackbox.yml", "example.yml"}

// pendingConfigs are the configuration files on which sonde's verdict (or
// its serving them) still differs from BBE's, with why. The test fails on
// an entry that no longer differs, so that it only shrinks.
var pendingConfigs = map[string]string{}

// bbeSource is where the Go module cache holds BBE's source, downloaded
// (or found) by the go command, never copied into the repository.
func bbeSource(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", bbeModule)
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v\n%s", bbeModule, err, out)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatalf("reading go mod download's answer: %v\n%s", err, out)
	}
	if mod.Dir == "" {
		t.Fatalf("go mod download %s gave no directory: %s", bbeModule, mod.Error)
	}
	return mod.Dir
}

// expectedVerdicts reads BBE's config/config_test.go for the verdict BBE's
// own tests expect of each file of config/testdata: valid for the files
// TestLoadConfig loads, invalid for those TestLoadBadConfigs lists.
func expectedVerdicts(t *testing.T, src string) map[string]bool {
	t.Helper()
	path := filepath.Join(src, "config", "config_test.go")
	file, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatalf("parsing BBE's %s: %v", path, err)
	}
	verdicts := map[string]bool{}
	for _, decl := range file.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok {
			continue
		}
		var valid bool
		switch fn.Name.Name {
		case "TestLoadConfig":
			valid = true
		case "TestLoadBadConfigs":
			valid = false
		default:
			continue
		}
		ast.Inspect(fn, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			if s, err := strconv.Unquote(lit.Value); err == nil && strings.HasPrefix(s, "testdata/") && strings.HasSuffix(s, ".yml") {
				verdicts["config/"+s] = valid
			}
			return true
		})
	}
	if len(verdicts) == 0 {
		t.Fatalf("found no verdict in BBE's %s: has it changed shape?", path)
	}
	return verdicts
}

// verdict is one file's row of the config check table.
type verdict struct {
	file             string
	expected         bool // what BBE's own tests (or its shipping it) say
	bbe, sonde       bool
	bbeOut, sondeOut string
}

func validity(ok bool) string {
	if ok {
		return "valid"
	}
	return "invalid"
}

// TestConfigCheckMatchesBlackbox runs --config.check of both exporters on
// every file of BBE's config/testdata and its shipped examples: sonde must
// give BBE's verdict, which must be the one BBE's tests expect.
func TestConfigCheckMatchesBlackbox(t *testing.T) {
	bbeBin := blackboxBinary(t)
	sondePath := sondeBin.Path(t)
	src := bbeSource(t)
	expected := expectedVerdicts(t, src)

	testdata, err := filepath.Glob(filepath.Join(src, "config", "testdata", "*.yml"))
	if err != nil || len(testdata) == 0 {
		t.Fatalf("listing BBE's config/testdata: %v (%d files)", err, len(testdata))
	}
	var files []string
	for _, path := range testdata {
		rel, _ := filepath.Rel(src, path)
		files = append(files, rel)
		if _, ok := expected[rel]; !ok {
			t.Errorf("BBE's config_test.go gives no verdict for %s", rel)
		}
	}
	for _, name := range shippedConfigs {
		files = append(files, name)
		expected[name] = true
	}
	sort.Strings(files)

	// Each check is a process start: a few at once, as most of the time
	// is spent starting them.
	rows := make([]verdict, len(files))
	var wg sync.WaitGroup
	slots := make(chan struct{}, 4)
	for i, rel := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			path := filepath.Join(src, rel)
			v := verdict{file: rel, expected: expected[rel]}
			v.bbe, v.bbeOut = configCheck(bbeBin, path)
			v.sonde, v.sondeOut = configCheck(sondePath, path)
			rows[i] = v
		}()
	}
	wg.Wait()
	t.Logf("config check verdicts:\n%s", formatVerdicts(rows))

	for _, v := range rows {
		if v.bbe != v.expected {
			t.Errorf("%s: BBE says %s, its tests expect %s: is the binary BBE 0.28?\n%s", v.file, validity(v.bbe), validity(v.expected), v.bbeOut)
		}
		why, isPending := pendingConfigs[v.file]
		switch {
		case v.sonde != v.bbe && isPending:
			t.Logf("PENDING %s: sonde says %s, BBE %s: %s", v.file, validity(v.sonde), validity(v.bbe), why)
		case v.sonde != v.bbe:
			t.Errorf("%s: sonde says %s, BBE says %s:\n%s", v.file, validity(v.sonde), validity(v.bbe), v.sondeOut)
		case isPending:
			t.Errorf("%s is pending but sonde now agrees with BBE: remove it from pendingConfigs", v.file)
		}
	}
}

func formatVerdicts(rows []verdict) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-74s %-9s %-9s %-9s\n", "file", "expected", "BBE", "sonde")
	for _, v := range rows {
		fmt.Fprintf(&b, "%-74s %-9s %-9s %-9s\n", v.file, validity(v.expected), validity(v.bbe), validity(v.sonde))
	}
	return b.String()
}

// TestServesShippedConfigs starts sonde on BBE's shipped examples and
// checks that it is healthy and lists every module of the file on /config.
func TestServesShippedConfigs(t *testing.T) {
	sondePath := sondeBin.Path(t)
	src := bbeSource(t)
	for _, name := range shippedConfigs {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(src, name)
			want := moduleNames(t, path)
			if why, isPending := pendingConfigs[name]; isPending {
				if ok, _ := configCheck(sondePath, path); !ok {
					t.Skipf("PENDING: sonde cannot serve %s yet: %s", name, why)
				}
				t.Errorf("%s is pending but sonde now loads it: remove it from pendingConfigs", name)
			}
			e := startExporter(t, "sonde", sondePath, path)
			status, body, err := get(t.Context(), e.base+"/config", nil)
			if err != nil || status != 200 {
				t.Fatalf("GET /config: %d, %v", status, err)
			}
			var served struct {
				Modules map[string]yaml.Node `yaml:"modules"`
			}
			if err := yaml.Unmarshal([]byte(body), &served); err != nil {
				t.Fatalf("/config is not YAML: %v", err)
			}
			for _, m := range want {
				if _, ok := served.Modules[m]; !ok {
					t.Errorf("/config does not list module %s of %s", m, name)
				}
			}
		})
	}
}

// moduleNames lists the modules a configuration file defines.
func moduleNames(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	var cfg struct {
		Modules map[string]yaml.Node `yaml:"modules"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	names := make([]string, 0, len(cfg.Modules))
	for name := range cfg.Modules {
		names = append(names, name)
	}
	slices.Sort(names)
	if len(names) == 0 {
		t.Fatalf("%s defines no module", path)
	}
	return names
}
