package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"text/template"

	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
)

// yml joins lines with newlines, so that a test's line numbers can be read
// off the slice: the first element is line 1.
func yml(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// mustLoad loads src and fails the test on any error.
func mustLoad(t *testing.T, src string) *Config {
	t.Helper()
	cfg, err := Load([]byte(src))
	if err != nil {
		t.Fatalf("Load: unexpected error:\n%v\nconfig:\n%s", err, src)
	}
	return cfg
}

// mustModule loads src and returns its module called name.
func mustModule(t *testing.T, src, name string) Module {
	t.Helper()
	cfg := mustLoad(t, src)
	m, ok := cfg.Modules[name]
	if !ok {
		t.Fatalf("module %q missing; have %v", name, moduleNames(cfg))
	}
	return m
}

func moduleNames(cfg *Config) []string {
	var names []string
	for n := range cfg.Modules {
		names = append(names, n)
	}
	return names
}

// problems splits a Load error into the single problems it reports, in
// order: Load joins them with errors.Join.
func problems(err error) []string {
	if err == nil {
		return nil
	}
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

// writeFile writes content to name inside dir and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tlsFiles are PEM files made for a test: a self-signed CA and a client
// certificate it signed, with its key.
type tlsFiles struct {
	CAFile, CertFile, KeyFile string
	CAPEM                     string
}

// writeTLSFiles generates a throw-away CA and client certificate in dir, so
// that no key material has to be checked in or fetched.
func writeTLSFiles(t *testing.T, dir string) tlsFiles {
	t.Helper()
	ca := testcert.NewCA(t, testcert.Spec{})
	certFile, keyFile := ca.Issue(t, testcert.Spec{Client: true}).WriteFiles(t, dir, "client")
	return tlsFiles{
		CAFile:   ca.WriteFile(t, dir, "ca.pem"),
		CertFile: certFile,
		KeyFile:  keyFile,
		CAPEM:    string(ca.PEM()),
	}
}

// renderTemplate fills the testdata template name with data and writes the
// result into dir, returning its path: fixtures that name files hold
// placeholders for paths that exist only while the test runs.
func renderTemplate(t *testing.T, name, dir string, data any) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := template.New(name).Option("missingkey=error").Funcs(template.FuncMap{
		// indent lets a multi-line value (a PEM) sit in a YAML block scalar.
		"indent": func(n int, s string) string {
			pad := strings.Repeat(" ", n)
			return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pad)
		},
	}).Parse(string(src))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, name, buf.String())
}

// forCompare returns a copy of cfg that reflect.DeepEqual can compare: a
// compiled CEL program holds functions, which never compare equal, so each
// one is replaced by its expression alone. Regexps compare as they are.
func forCompare(cfg *Config) *Config {
	out := &Config{Modules: map[string]Module{}}
	for name, m := range cfg.Modules {
		if p := m.HTTP.FailIfBodyJSONMatchesCEL; p != nil {
			m.HTTP.FailIfBodyJSONMatchesCEL = &CELProgram{expression: p.String()}
		}
		if p := m.HTTP.FailIfBodyJSONNotMatchesCEL; p != nil {
			m.HTTP.FailIfBodyJSONNotMatchesCEL = &CELProgram{expression: p.String()}
		}
		out.Modules[name] = m
	}
	return out
}

// assertEqual fails with both values printed when got != want.
func assertEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}
