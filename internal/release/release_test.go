package release

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefaultTargets(t *testing.T) {
	var got []string
	for _, tg := range DefaultTargets {
		got = append(got, tg.ArchiveName("1.2.3"))
	}
	want := []string{
		"sonde-1.2.3.linux-amd64.tar.gz",
		"sonde-1.2.3.linux-arm64.tar.gz",
		"sonde-1.2.3.linux-armv7.tar.gz",
		"sonde-1.2.3.linux-ppc64le.tar.gz",
		"sonde-1.2.3.linux-s390x.tar.gz",
		"sonde-1.2.3.linux-riscv64.tar.gz",
		"sonde-1.2.3.darwin-amd64.tar.gz",
		"sonde-1.2.3.darwin-arm64.tar.gz",
		"sonde-1.2.3.freebsd-amd64.tar.gz",
		"sonde-1.2.3.windows-amd64.zip",
	}
	if !slices.Equal(got, want) {
		t.Errorf("archives of DefaultTargets:\n got %q\nwant %q", got, want)
	}
}

func TestTarget(t *testing.T) {
	for _, tc := range []struct {
		spec   string
		env    []string
		binary string
		dir    string
	}{
		{"linux/amd64", []string{"GOOS=linux", "GOARCH=amd64"}, "sonde", "sonde-1.0.linux-amd64"},
		{"linux/armv7", []string{"GOOS=linux", "GOARCH=arm", "GOARM=7"}, "sonde", "sonde-1.0.linux-armv7"},
		{"linux/riscv64", []string{"GOOS=linux", "GOARCH=riscv64"}, "sonde", "sonde-1.0.linux-riscv64"},
		{"windows/amd64", []string{"GOOS=windows", "GOARCH=amd64"}, "sonde.exe", "sonde-1.0.windows-amd64"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			tg, err := ParseTarget(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := tg.GoEnv(); !slices.Equal(got, tc.env) {
				t.Errorf("GoEnv() = %q, want %q", got, tc.env)
			}
			if got := tg.BinaryName(); got != tc.binary {
				t.Errorf("BinaryName() = %q, want %q", got, tc.binary)
			}
			if got := tg.ArchiveDir("1.0"); got != tc.dir {
				t.Errorf("ArchiveDir() = %q, want %q", got, tc.dir)
			}
			if tg.String() != tc.spec {
				t.Errorf("String() = %q, want %q", tg.String(), tc.spec)
			}
		})
	}
}

func TestParseTargetRefuses(t *testing.T) {
	for _, spec := range []string{"", "linux", "linux/", "/amd64", "linux/arm/7"} {
		if _, err := ParseTarget(spec); err == nil {
			t.Errorf("ParseTarget(%q) accepted it", spec)
		}
	}
}

func testStamp() Stamp {
	return Stamp{Version: "1.2.3", Revision: "abc1234", Branch: "main", BuildUser: "release@sonde", Date: time.Unix(1700000000, 0).UTC()}
}

func TestLDFlags(t *testing.T) {
	got := testStamp().LDFlags()
	for _, want := range []string{
		"-s -w ",
		"-X github.com/prometheus/common/version.Version=1.2.3 ",
		"-X github.com/prometheus/common/version.Revision=abc1234 ",
		"-X github.com/prometheus/common/version.Branch=main ",
		"-X github.com/prometheus/common/version.BuildUser=release@sonde ",
		"-X github.com/prometheus/common/version.BuildDate=20231114-22:13:20",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("LDFlags() = %q, lacks %q", got, want)
		}
	}
}

func TestStampCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Stamp)
		error string // "" when the stamp is fine
	}{
		{"complete", func(*Stamp) {}, ""},
		{"no version", func(s *Stamp) { s.Version = "" }, "version is empty"},
		{"no revision", func(s *Stamp) { s.Revision = " " }, "revision is empty"},
		{"space in branch", func(s *Stamp) { s.Branch = "my branch" }, "space or quote"},
		{"quote in user", func(s *Stamp) { s.BuildUser = "o'neil" }, "space or quote"},
		{"slash in version", func(s *Stamp) { s.Version = "1.0/x" }, "path separator"},
		{"no date", func(s *Stamp) { s.Date = time.Time{} }, "no date"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testStamp()
			tc.edit(&s)
			err := s.Check()
			switch {
			case tc.error == "" && err != nil:
				t.Errorf("Check() = %v, want nil", err)
			case tc.error != "" && (err == nil || !strings.Contains(err.Error(), tc.error)):
				t.Errorf("Check() = %v, want an error saying %q", err, tc.error)
			}
		})
	}
}

func TestParseEpoch(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1700000000", time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC), true},
		{" 0\n", time.Unix(0, 0).UTC(), true},
		{"", time.Time{}, false},
		{"-1", time.Time{}, false},
		{"2023-11-14", time.Time{}, false},
	} {
		got, err := ParseEpoch(tc.in)
		if (err == nil) != tc.ok || !got.Equal(tc.want) {
			t.Errorf("ParseEpoch(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func archiveFixture() []File {
	// Not in name order: the writers sort.
	return []File{
		{Name: "sonde", Mode: 0o755, Data: []byte("\x7fELF binary")},
		{Name: "example.yml", Mode: 0o600, Data: []byte("modules: {}\n")},
		{Name: "LICENSE", Mode: 0o644, Data: []byte("license\n")},
	}
}

// archiveEntry is what the tests compare of one entry.
type archiveEntry struct {
	name  string
	mode  fs.FileMode
	mtime time.Time
	data  string
}

func TestWriteTarGz(t *testing.T) {
	mtime := time.Unix(1700000000, 0)
	var a, b bytes.Buffer
	if err := WriteTarGz(&a, "sonde-1.0.linux-amd64", archiveFixture(), mtime); err != nil {
		t.Fatal(err)
	}
	reversed := archiveFixture()
	slices.Reverse(reversed)
	if err := WriteTarGz(&b, "sonde-1.0.linux-amd64", reversed, mtime); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the same files in another order made another archive")
	}
	// gzip header: no name, no time (MTIME 0), OS 255 (unknown).
	hdr := a.Bytes()[:10]
	if !bytes.Equal(hdr[4:8], []byte{0, 0, 0, 0}) || hdr[3] != 0 || hdr[9] != 255 {
		t.Errorf("gzip header % x: want no flags, MTIME 0 and OS 255", hdr)
	}
	got := readTarGz(t, a.Bytes())
	want := []archiveEntry{
		{"sonde-1.0.linux-amd64/", fs.ModeDir | 0o755, mtime, ""},
		{"sonde-1.0.linux-amd64/LICENSE", 0o644, mtime, "license\n"},
		{"sonde-1.0.linux-amd64/example.yml", 0o600, mtime, "modules: {}\n"},
		{"sonde-1.0.linux-amd64/sonde", 0o755, mtime, "\x7fELF binary"},
	}
	checkEntries(t, got, want)
}

func readTarGz(t *testing.T, data []byte) []archiveEntry {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var entries []archiveEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return entries
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d/%d (%q/%q), want 0/0 without names", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, archiveEntry{h.Name, h.FileInfo().Mode(), h.ModTime, string(body)})
	}
}

func TestWriteZip(t *testing.T) {
	mtime := time.Unix(1700000000, 0)
	var a, b bytes.Buffer
	if err := WriteZip(&a, "sonde-1.0.windows-amd64", archiveFixture(), mtime); err != nil {
		t.Fatal(err)
	}
	// The same instant in another zone: the zip's MS-DOS times must not move.
	if err := WriteZip(&b, "sonde-1.0.windows-amd64", archiveFixture(), mtime.In(time.FixedZone("X", 5*3600))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the same time in another zone made another zip")
	}
	zr, err := zip.NewReader(bytes.NewReader(a.Bytes()), int64(a.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var got []archiveEntry
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, archiveEntry{f.Name, f.Mode(), f.Modified, string(body)})
	}
	want := []archiveEntry{
		{"sonde-1.0.windows-amd64/", fs.ModeDir | 0o755, mtime, ""},
		{"sonde-1.0.windows-amd64/LICENSE", 0o644, mtime, "license\n"},
		{"sonde-1.0.windows-amd64/example.yml", 0o600, mtime, "modules: {}\n"},
		{"sonde-1.0.windows-amd64/sonde", 0o755, mtime, "\x7fELF binary"},
	}
	checkEntries(t, got, want)
}

func checkEntries(t *testing.T, got, want []archiveEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.name != w.name || g.mode != w.mode || !g.mtime.Equal(w.mtime) || g.data != w.data {
			t.Errorf("entry %d = {%s %v %v %q}, want {%s %v %v %q}", i, g.name, g.mode, g.mtime, g.data, w.name, w.mode, w.mtime, w.data)
		}
	}
}

func TestIsReleaseFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"sonde-1.0.linux-amd64.tar.gz", true},
		{"sonde-1.0.windows-amd64.zip", true},
		{"sonde_1.0_amd64.deb", true},
		{"sonde-1.0-1.x86_64.rpm", true},
		{"sonde-1.0-1.aarch64.rpm", true},
		{"sonde-1.0.1.linux-amd64.tar.gz", false}, // another version
		{"sonde_1.0.1_amd64.deb", false},
		{"sonde-1.0.1-1.x86_64.rpm", false},
		{"sonde-1.0.linux-amd64.tar", false},
		{"sha256sums.txt", false},
		{".build-linux-amd64-123", false},
	} {
		if got := IsReleaseFile(tc.name, "1.0"); got != tc.want {
			t.Errorf("IsReleaseFile(%q, 1.0) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestWriteSums(t *testing.T) {
	dist := t.TempDir()
	files := map[string]string{
		"sonde-1.0.linux-amd64.tar.gz": "tar",
		"sonde_1.0_amd64.deb":          "deb",
		"sonde-1.0-1.x86_64.rpm":       "rpm",
		"sonde-0.9.linux-amd64.tar.gz": "old", // another version's: not listed
		"notes.txt":                    "no",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dist, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteSums(dist, "1.0"); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dist, SumsFile))
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, name := range []string{"sonde-1.0-1.x86_64.rpm", "sonde-1.0.linux-amd64.tar.gz", "sonde_1.0_amd64.deb"} {
		sum := sha256.Sum256([]byte(files[name]))
		want.WriteString(hex.EncodeToString(sum[:]) + "  " + name + "\n")
	}
	if string(got) != want.String() {
		t.Errorf("%s:\n%s\nwant:\n%s", SumsFile, got, want.String())
	}
	if err := WriteSums(dist, "2.0"); err == nil || !strings.Contains(err.Error(), "no release file of version 2.0") {
		t.Errorf("WriteSums of a version with no file: %v", err)
	}
}

func TestPackageName(t *testing.T) {
	for _, tc := range []struct {
		format, arch, want string
	}{
		{"deb", "amd64", "sonde_1.0-rc.1_amd64.deb"},
		{"deb", "arm64", "sonde_1.0-rc.1_arm64.deb"},
		{"rpm", "amd64", "sonde-1.0-rc.1-1.x86_64.rpm"},
		{"rpm", "arm64", "sonde-1.0-rc.1-1.aarch64.rpm"},
		{"deb", "s390x", ""},
		{"apk", "amd64", ""},
	} {
		got, err := PackageName(tc.format, "1.0-rc.1", tc.arch)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("PackageName(%s, %s) = %q, %v; want %q", tc.format, tc.arch, got, err, tc.want)
		}
		if tc.want != "" && !IsReleaseFile(got, "1.0-rc.1") {
			t.Errorf("%s is not listed in %s", got, SumsFile)
		}
	}
}

func TestCheckSources(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "example.yml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := Release{Builder: Builder{Root: root}}
	err := r.CheckSources()
	if err == nil || !strings.Contains(err.Error(), "LICENSE, NOTICE") {
		t.Fatalf("CheckSources() without LICENSE and NOTICE = %v", err)
	}
	for _, name := range []string{"LICENSE", "NOTICE"} {
		if err := os.WriteFile(filepath.Join(root, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.CheckSources(); err != nil {
		t.Fatalf("CheckSources() with every file: %v", err)
	}
}

func TestWithoutVars(t *testing.T) {
	env := []string{"HOME=/root", "GOOS=plan9", "GOFLAGS=-race", "GOOSE=kept", "PATH=/bin"}
	got := withoutVars(env, buildEnvUnset)
	want := []string{"HOME=/root", "GOOSE=kept", "PATH=/bin"}
	if !slices.Equal(got, want) {
		t.Errorf("withoutVars() = %q, want %q", got, want)
	}
}
