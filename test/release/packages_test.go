package release

import (
	"archive/tar"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// packagesDist is the release directory of `make release packages` for
// linux/amd64 only, made once for the tests that read or install the
// packages.
var packagesDist struct {
	once sync.Once
	dir  string
	err  error
}

func builtPackages(t *testing.T) (dist, tree string) {
	t.Helper()
	tree, _ = sourceTree(t)
	packagesDist.once.Do(func() {
		packagesDist.dir, packagesDist.err = os.MkdirTemp("", "sonde-release-packages-")
		if packagesDist.err != nil {
			return
		}
		// A failing make fails the test that asked first; the others see
		// the directory without packages and fail on that.
		makeIn(t, tree, "release", "packages", "DIST="+packagesDist.dir, "RELEASE_TARGETS="+archiveTarget, "PACKAGE_ARCHES=amd64")
	})
	if packagesDist.err != nil {
		t.Fatal(packagesDist.err)
	}
	return packagesDist.dir, tree
}

// packageFiles are the names of version's amd64 archive, deb and rpm.
func packageFiles(version string) (archive, deb, rpm string) {
	return fmt.Sprintf("sonde-%s.linux-amd64.tar.gz", version),
		fmt.Sprintf("sonde_%s_amd64.deb", version),
		fmt.Sprintf("sonde-%s-1.x86_64.rpm", version)
}

// packagedFile is a file both packages install, and where it comes from.
type packagedFile struct {
	path   string
	mode   fs.FileMode
	from   string // the tree's file it copies; "" for the binary
	config bool   // a config file kept when changed (dpkg conffile, rpm %config(noreplace))
}

// packaged lists every file of the package of format (deb or rpm): the same
// for both but for where the unit's defaults file lives.
func packaged(format string) []packagedFile {
	defaults := "/etc/default/sonde"
	if format == "rpm" {
		defaults = "/etc/sysconfig/sonde"
	}
	return []packagedFile{
		{"/usr/bin/sonde", 0o755, "", false},
		{"/etc/sonde/config.yml", 0o644, "example.yml", true},
		{defaults, 0o644, "packaging/sonde.default", true},
		{"/usr/lib/systemd/system/sonde.service", 0o644, "packaging/sonde.service", false},
		{"/usr/share/doc/sonde/LICENSE", 0o644, "LICENSE", false},
		{"/usr/share/doc/sonde/NOTICE", 0o644, "NOTICE", false},
	}
}

// TestPackages checks the amd64 deb and rpm: the same bytes when made
// twice, listed in sha256sums.txt with the archive, holding the archive's
// binary and the tree's configuration, unit and scripts, config files
// marked as kept on upgrade.
func TestPackages(t *testing.T) {
	dpkgDeb := tool(t, "dpkg-deb", "dpkg")
	dist, tree := builtPackages(t)
	version := treeVersion(t, tree)
	archive, deb, rpm := packageFiles(version)

	again := t.TempDir()
	makeIn(t, tree, "packages", "DIST="+again, "PACKAGE_ARCHES=amd64")
	for _, name := range []string{deb, rpm} {
		if !bytes.Equal(readFile(t, filepath.Join(dist, name)), readFile(t, filepath.Join(again, name))) {
			t.Errorf("%s differs between two builds of the same commit", name)
		}
	}
	checkSums(t, dist, map[string][]byte{
		archive: readFile(t, filepath.Join(dist, archive)),
		deb:     readFile(t, filepath.Join(dist, deb)),
		rpm:     readFile(t, filepath.Join(dist, rpm)),
	})
	binary := readArchive(t, readFile(t, filepath.Join(dist, archive)))[fmt.Sprintf("sonde-%s.linux-amd64/sonde", version)].data
	if len(binary) == 0 {
		t.Fatalf("%s holds no binary", archive)
	}

	t.Run("deb", func(t *testing.T) {
		checkDeb(t, dpkgDeb, filepath.Join(dist, deb), tree, version, binary)
	})
	t.Run("rpm", func(t *testing.T) {
		checkRPM(t, tool(t, "rpm", "rpm"), filepath.Join(dist, rpm), tree, version, binary)
	})
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// debVersion is the deb's Version for a VERSION such as 0.1.0-dev: nfpm
// makes the semver pre-release sort before the release (~), and appends the
// package's revision.
func debVersion(version string) string {
	return strings.Replace(version, "-", "~", 1) + "-1"
}

func checkDeb(t *testing.T, dpkgDeb, deb, tree, version string, binary []byte) {
	got := run(t, dpkgDeb, "--show", "--showformat=${Package} ${Version} ${Architecture}\n", deb)
	if want := fmt.Sprintf("sonde %s amd64\n", debVersion(version)); got != want {
		t.Errorf("deb's package, version, architecture: %q, want %q", got, want)
	}

	files := map[string]*tar.Header{}
	data := map[string][]byte{}
	tr := tar.NewReader(strings.NewReader(run(t, dpkgDeb, "--fsys-tarfile", deb)))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("deb's %s belongs to %d:%d, want root", h.Name, h.Uid, h.Gid)
		}
		if h.Typeflag == tar.TypeReg {
			path := strings.TrimPrefix(h.Name, ".")
			files[path] = h
			data[path], _ = io.ReadAll(tr)
		}
	}
	var conffiles []string
	for _, f := range packaged("deb") {
		h, ok := files[f.path]
		if !ok {
			t.Errorf("deb lacks %s", f.path)
			continue
		}
		delete(files, f.path)
		if mode := fs.FileMode(h.Mode).Perm(); mode != f.mode {
			t.Errorf("deb's %s: mode %v, want %v", f.path, mode, f.mode)
		}
		want := binary
		if f.from != "" {
			want = readFile(t, filepath.Join(tree, f.from))
		}
		if !bytes.Equal(data[f.path], want) {
			t.Errorf("deb's %s is not %s", f.path, cmp.Or(f.from, "the release archive's binary"))
		}
		if f.config {
			conffiles = append(conffiles, f.path)
		}
	}
	for path := range files {
		t.Errorf("deb holds %s, which it should not", path)
	}
	slices.Sort(conffiles)
	if got, want := run(t, dpkgDeb, "--info", deb, "conffiles"), strings.Join(conffiles, "\n")+"\n"; got != want {
		t.Errorf("deb's conffiles:\n%s\nwant:\n%s", got, want)
	}
	for script, from := range map[string]string{
		"preinst": "deb-preinst", "postinst": "deb-postinst", "prerm": "deb-prerm", "postrm": "deb-postrm",
	} {
		got := run(t, dpkgDeb, "--info", deb, script)
		if want := string(readFile(t, filepath.Join(tree, "packaging/scripts", from))); got != want {
			t.Errorf("deb's %s is not packaging/scripts/%s:\n%s", script, from, got)
		}
	}
}

func checkRPM(t *testing.T, rpm, pkg, tree, version string, binary []byte) {
	got := run(t, rpm, "-qp", "--queryformat", "%{NAME} %{VERSION} %{RELEASE} %{ARCH}\n", pkg)
	if want := fmt.Sprintf("sonde %s 1 x86_64\n", strings.Replace(version, "-", "~", 1)); got != want {
		t.Errorf("rpm's name, version, release, architecture: %q, want %q", got, want)
	}
	// One line a file: path|mode|owner|group|flags|SHA-256 (FILEDIGESTALGO
	// 8). Flags "cn" are %config(noreplace); a plain file has none.
	if algo := run(t, rpm, "-qp", "--queryformat", "%{FILEDIGESTALGO}\n", pkg); algo != "8\n" {
		t.Fatalf("rpm's file digests are of algorithm %q, not SHA-256 (8)", algo)
	}
	lines := run(t, rpm, "-qp", "--queryformat",
		"[%{FILENAMES}|%{FILEMODES:perms}|%{FILEUSERNAME}|%{FILEGROUPNAME}|%{FILEFLAGS:fflags}|%{FILEDIGESTS}\n]", pkg)
	files := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(lines), "\n") {
		path, rest, _ := strings.Cut(line, "|")
		files[path] = rest
	}
	for _, f := range packaged("rpm") {
		rest, ok := files[f.path]
		if !ok {
			t.Errorf("rpm lacks %s", f.path)
			continue
		}
		delete(files, f.path)
		want := binary
		if f.from != "" {
			want = readFile(t, filepath.Join(tree, f.from))
		}
		flags := ""
		if f.config {
			flags = "cn"
		}
		sum := sha256.Sum256(want)
		if wantRest := fmt.Sprintf("%s|root|root|%s|%s", f.mode, flags, hex.EncodeToString(sum[:])); rest != wantRest {
			t.Errorf("rpm's %s: %s, want %s (%s)", f.path, rest, wantRest, cmp.Or(f.from, "the release archive's binary"))
		}
	}
	for path := range files {
		t.Errorf("rpm holds %s, which it should not", path)
	}
	for tag, from := range map[string]string{
		"PREIN": "rpm-pre", "POSTIN": "rpm-post", "PREUN": "rpm-preun", "POSTUN": "rpm-postun",
	} {
		got := run(t, rpm, "-qp", "--queryformat", "%{"+tag+"}", pkg)
		if want := string(readFile(t, filepath.Join(tree, "packaging/scripts", from))); strings.TrimSpace(got) != strings.TrimSpace(want) {
			t.Errorf("rpm's %s scriptlet is not packaging/scripts/%s:\n%s", tag, from, got)
		}
	}
}
