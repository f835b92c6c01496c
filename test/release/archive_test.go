package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// The archive the tests build: one platform, not all of them, which
// `make release` alone does (minutes of cross-building).
const archiveTarget = "linux/amd64"

// TestArchiveReproducible builds the linux/amd64 archive twice from the same
// commit into two directories and wants the same bytes, then checks what
// the archive holds and what its binary says of itself.
func TestArchiveReproducible(t *testing.T) {
	dir, revision := sourceTree(t)
	version := treeVersion(t, dir)
	first, second := t.TempDir(), t.TempDir()
	for _, dist := range []string{first, second} {
		makeIn(t, dir, "release", "DIST="+dist, "RELEASE_TARGETS="+archiveTarget)
	}
	name := fmt.Sprintf("sonde-%s.linux-amd64.tar.gz", version)
	for _, file := range []string{name, "sha256sums.txt"} {
		if !bytes.Equal(readFile(t, filepath.Join(first, file)), readFile(t, filepath.Join(second, file))) {
			t.Errorf("%s differs between two builds of the same commit", file)
		}
	}
	if got := distFiles(t, first); !slices.Equal(got, []string{"sha256sums.txt", name}) {
		t.Errorf("release wrote %q, want the archive and sha256sums.txt only", got)
	}

	archive := readFile(t, filepath.Join(first, name))
	checkSums(t, first, map[string][]byte{name: archive})
	entries := readArchive(t, archive)
	checkArchiveEntries(t, dir, version, entries)
	checkVersionOutput(t, entries[fmt.Sprintf("sonde-%s.linux-amd64/sonde", version)].data, version, revision)
}

// distFiles lists a release directory, sorted.
func distFiles(t *testing.T, dist string) []string {
	t.Helper()
	entries, err := os.ReadDir(dist)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// checkSums wants dist/sha256sums.txt to list exactly these files, with
// their SHA-256, in sha256sum's format and name order.
func checkSums(t *testing.T, dist string, files map[string][]byte) {
	t.Helper()
	var want strings.Builder
	for _, name := range slices.Sorted(maps.Keys(files)) {
		sum := sha256.Sum256(files[name])
		fmt.Fprintf(&want, "%s  %s\n", hex.EncodeToString(sum[:]), name)
	}
	if got := string(readFile(t, filepath.Join(dist, "sha256sums.txt"))); got != want.String() {
		t.Errorf("sha256sums.txt:\n%s\nwant:\n%s", got, want.String())
	}
}

// tarEntry is one entry of an archive, in the order the archive has it.
type tarEntry struct {
	index int
	hdr   *tar.Header
	data  []byte
}

func readArchive(t *testing.T, data []byte) map[string]tarEntry {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if gz.Name != "" || !gz.ModTime.IsZero() {
		t.Errorf("gzip header names %q at %v: want neither, which would differ between builds", gz.Name, gz.ModTime)
	}
	tr := tar.NewReader(gz)
	entries := map[string]tarEntry{}
	for i := 0; ; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			return entries
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = tarEntry{i, h, body}
	}
}

// checkArchiveEntries wants the directory, then LICENSE, NOTICE,
// example.yml and the binary under it, in that (name) order, owned by 0/0,
// with fixed modes and the commit's time, the shipped files as the tree has
// them.
func checkArchiveEntries(t *testing.T, tree, version string, entries map[string]tarEntry) {
	t.Helper()
	top := fmt.Sprintf("sonde-%s.linux-amd64/", version)
	want := []struct {
		name string
		mode fs.FileMode
		from string // the tree's file it copies, if any
	}{
		{top, fs.ModeDir | 0o755, ""},
		{top + "LICENSE", 0o644, "LICENSE"},
		{top + "NOTICE", 0o644, "NOTICE"},
		{top + "example.yml", 0o644, "example.yml"},
		{top + "sonde", 0o755, ""},
	}
	if len(entries) != len(want) {
		var names []string
		for name := range entries {
			names = append(names, name)
		}
		t.Errorf("archive holds %q, want %d entries", names, len(want))
	}
	mtime := time.Unix(commitEpoch, 0)
	for i, w := range want {
		e, ok := entries[w.name]
		if !ok {
			t.Errorf("archive lacks %s", w.name)
			continue
		}
		h := e.hdr
		if e.index != i {
			t.Errorf("%s is entry %d, want %d (entries in name order)", w.name, e.index, i)
		}
		if mode := h.FileInfo().Mode(); mode != w.mode {
			t.Errorf("%s: mode %v, want %v", w.name, mode, w.mode)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d (%q:%q), want 0:0", w.name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !h.ModTime.Equal(mtime) {
			t.Errorf("%s: time %v, want the commit's, %v", w.name, h.ModTime, mtime)
		}
		if w.from != "" && !bytes.Equal(e.data, readFile(t, filepath.Join(tree, w.from))) {
			t.Errorf("%s is not the tree's %s", w.name, w.from)
		}
	}
}

// checkVersionOutput runs the archive's binary, where this machine can, and
// wants --version to show the stamps the Makefile takes from git, the fixed
// build user and the commit's time.
func checkVersionOutput(t *testing.T, binary []byte, version, revision string) {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Logf("not running the linux/amd64 binary on %s/%s", runtime.GOOS, runtime.GOARCH)
		return
	}
	path := filepath.Join(t.TempDir(), "sonde")
	if err := os.WriteFile(path, binary, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("sonde --version: %v\n%s", err, out)
	}
	for _, want := range []string{
		fmt.Sprintf("sonde, version %s (branch: %s, revision: %s)\n", version, commitBranch, revision),
		"build user:       release@sonde\n",
		"build date:       " + commitBuildDate + "\n",
		"platform:         linux/amd64\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("sonde --version lacks %q:\n%s", want, out)
		}
	}
}
