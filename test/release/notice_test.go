// Package release checks what sonde's release files say of sonde and of
// what it ships.
package release

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const root = "../.."

// releasePlatforms are the platforms `make release` builds (issue 20). The
// modules linked into sonde depend on the platform, so NOTICE must cover
// every one of them; the host's build, cgo and all, is checked as well.
var releasePlatforms = [][]string{
	{"GOOS=linux", "GOARCH=amd64"},
	{"GOOS=linux", "GOARCH=arm64"},
	{"GOOS=linux", "GOARCH=arm", "GOARM=7"},
	{"GOOS=linux", "GOARCH=ppc64le"},
	{"GOOS=linux", "GOARCH=s390x"},
	{"GOOS=linux", "GOARCH=riscv64"},
	{"GOOS=darwin", "GOARCH=amd64"},
	{"GOOS=darwin", "GOARCH=arm64"},
	{"GOOS=freebsd", "GOARCH=amd64"},
	{"GOOS=windows", "GOARCH=amd64"},
}

// linkedModule is a module whose packages the sonde binary links.
type linkedModule struct {
	path, dir string
	platforms []string // where it is linked, for the messages
}

// NOTICE names every module linked into sonde, each with licenses its
// license files bear out, and names no module sonde does not link: a new
// dependency, or one dropped, fails here rather than ship unlisted.
func TestNoticeNamesEveryLinkedModule(t *testing.T) {
	notice := readNotice(t)
	linked := linkedModules(t)
	for path, m := range linked {
		licenses, ok := notice[path]
		if !ok {
			where := "on " + strings.Join(m.platforms, ", ")
			if len(m.platforms) == len(releasePlatforms)+1 {
				where = "everywhere"
			}
			t.Errorf("NOTICE does not name %s, which sonde links %s: add it with its license and copyright, from %s",
				path, where, m.dir)
			continue
		}
		found, err := licensesIn(m.dir)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		for _, l := range licenses {
			if !slices.Contains(found, l) {
				t.Errorf("NOTICE says %s is under %s, but its license files in %s bear %v: check which license it has now",
					path, l, m.dir, found)
			}
		}
	}
	for path := range notice {
		if _, ok := linked[path]; !ok {
			t.Errorf("NOTICE names %s, which sonde no longer links on any release platform: remove it", path)
		}
	}
}

// noticeEntry is a component's first line in NOTICE: a module path and
// its licenses in parentheses, e.g. "go.yaml.in/yaml/v3 (Apache-2.0 AND MIT)".
// Indented lines (a component's own NOTICE text) never match.
var noticeEntry = regexp.MustCompile(`^([a-z0-9.-]+\.[a-z]+/\S+) \(([^)]+)\)$`)

// readNotice returns the modules NOTICE names, with their licenses.
func readNotice(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "NOTICE"))
	if err != nil {
		t.Fatalf("reading NOTICE: %v", err)
	}
	defer f.Close()
	modules := map[string][]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		m := noticeEntry.FindStringSubmatch(s.Text())
		if m == nil {
			continue
		}
		if _, dup := modules[m[1]]; dup {
			t.Errorf("NOTICE names %s twice", m[1])
		}
		modules[m[1]] = strings.Split(m[2], " AND ")
	}
	if err := s.Err(); err != nil {
		t.Fatalf("reading NOTICE: %v", err)
	}
	if len(modules) == 0 {
		t.Fatal("NOTICE names no module: has its format changed? Each starts a line as `module/path (SPDX-ID)`.")
	}
	return modules
}

// linkedModules returns the modules whose packages sonde's main package
// imports, directly or not, on the host and on every release platform:
// what the linker puts in the binary, as `go version -m` would list it,
// without building it ten times.
func linkedModules(t *testing.T) map[string]*linkedModule {
	t.Helper()
	linked := map[string]*linkedModule{}
	host := []string{}
	for _, env := range append([][]string{host}, releasePlatforms...) {
		name := "host"
		if len(env) > 0 {
			name = strings.Join(env, " ")
			env = append(env, "CGO_ENABLED=0") // as the release builds
		}
		cmd := exec.Command("go", "list", "-deps", "-f", `{{with .Module}}{{if not .Main}}{{.Path}}	{{.Dir}}{{end}}{{end}}`, ".")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps (%s): %v\n%s", name, err, stderrOf(err))
		}
		for line := range strings.Lines(string(out)) {
			path, dir, ok := strings.Cut(strings.TrimSpace(line), "\t")
			if !ok {
				continue
			}
			m := linked[path]
			if m == nil {
				m = &linkedModule{path: path, dir: dir}
				linked[path] = m
			}
			if !slices.Contains(m.platforms, name) {
				m.platforms = append(m.platforms, name)
			}
		}
	}
	if len(linked) == 0 {
		t.Fatal("go list found no module linked into sonde")
	}
	return linked
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// licenseFile matches the names modules give their license texts.
var licenseFile = regexp.MustCompile(`(?i)^(licen[cs]e|copying)`)

// licenseMarks tells the licenses NOTICE uses apart by a phrase of their
// text: enough to notice a module that changed its license, not a full
// classifier.
var licenseMarks = []struct {
	id    string
	marks []string
}{
	{"Apache-2.0", []string{"Apache License", "Version 2.0"}},
	{"MIT", []string{"Permission is hereby granted, free of charge"}},
	{"BSD-3-Clause", []string{"Redistribution and use in source and binary forms", "used to endorse or promote products derived"}},
	{"BSD-2-Clause", []string{"Redistribution and use in source and binary forms"}},
}

// licensesIn returns the licenses whose text the module's license files
// hold. A BSD text is one BSD license: the three-clause one when it has
// the clause on endorsements.
func licensesIn(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the module's files: %w", err)
	}
	var found []string
	for _, e := range entries {
		if e.IsDir() || !licenseFile.MatchString(e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading its license: %w", err)
		}
		found = append(found, licensesOf(string(data))...)
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("no license text found in %s", dir)
	}
	return found, nil
}

func licensesOf(text string) []string {
	text = strings.Join(strings.Fields(text), " ") // a phrase may wrap anywhere
	var found []string
	for _, l := range licenseMarks {
		if l.id == "BSD-2-Clause" && slices.Contains(found, "BSD-3-Clause") {
			continue
		}
		if containsAll(text, l.marks) {
			found = append(found, l.id)
		}
	}
	return found
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func TestLicensesOf(t *testing.T) {
	const (
		bsd2 = "Redistribution and use in source and binary forms, with or without modification, are permitted"
		bsd3 = bsd2 + " ... Neither the name of X nor the names of its contributors may be used to\n   endorse or promote products derived from this software"
		mit  = "Permission is hereby granted, free of charge, to any person obtaining a copy"
		asl  = "Apache License\n Version 2.0, January 2004"
	)
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"apache", asl, []string{"Apache-2.0"}},
		{"mit", mit, []string{"MIT"}},
		{"bsd-2", bsd2, []string{"BSD-2-Clause"}},
		{"bsd-3, wrapped", bsd3, []string{"BSD-3-Clause"}},
		{"two in one file", asl + "\n----\n" + mit, []string{"Apache-2.0", "MIT"}},
		{"none of these", "Business Source License 1.1", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := licensesOf(tc.text); !slices.Equal(got, tc.want) {
				t.Errorf("licensesOf = %v, want %v", got, tc.want)
			}
		})
	}
}
