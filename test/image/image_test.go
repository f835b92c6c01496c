// Package image checks sonde's container image (Dockerfile,
// packaging/image/, docs/container.md): `make image` builds it for the
// host's platform with podman or buildah, and the tests check its
// configuration, its files, and that the sonde in it answers probes with
// the configuration the image names or one mounted where blackbox's image
// reads it.
package image

import (
	"crypto/x509"
	"debug/elf"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// repoRoot is where go test runs this package from, two levels down.
const repoRoot = "../.."

// The image's promises, as docs/container.md states them.
const (
	imageUser    = "65534:65534"
	configPath   = "/etc/sonde/config.yml"
	blackboxPath = "/etc/blackbox_exporter/config.yml"
	exposedPort  = "9115/tcp"
)

func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds sonde and its image")
	}
	e := newEngine(t)
	e.makeImage(t)
	version := readVersion(t)
	ref := "localhost/sonde:" + version
	cfg := e.inspect(t, ref)
	t.Run("configuration", func(t *testing.T) { checkConfig(t, cfg, version) })

	layout := e.exportLayout(t, ref)
	tree := unpackTree(t, layout)
	t.Run("files", func(t *testing.T) { checkFiles(t, tree, cfg, version) })
	t.Run("probes", func(t *testing.T) { checkProbes(t, e, ref, cfg, layout, version) })
}

func checkConfig(t *testing.T, cfg imageConfig, version string) {
	head := git(t, "rev-parse", "HEAD")
	commitTime, err := strconv.ParseInt(git(t, "log", "-1", "--format=%ct"), 10, 64)
	if err != nil {
		t.Fatalf("the commit's time: %v", err)
	}
	for _, tc := range []struct {
		what, got, want string
	}{
		{"user", cfg.User, imageUser},
		{"entrypoint", strings.Join(cfg.Entrypoint, " "), "/bin/sonde"},
		{"command", strings.Join(cfg.Cmd, " "), "--config.file=" + configPath},
		{"os", cfg.OS, "linux"},
		{"architecture", cfg.Architecture, runtime.GOARCH},
		{"label title", cfg.Labels["org.opencontainers.image.title"], "sonde"},
		{"label version", cfg.Labels["org.opencontainers.image.version"], version},
		{"label revision", cfg.Labels["org.opencontainers.image.revision"], head},
		{"label created", cfg.Labels["org.opencontainers.image.created"], time.Unix(commitTime, 0).UTC().Format(time.RFC3339)},
		{"label licenses", cfg.Labels["org.opencontainers.image.licenses"], "Apache-2.0"},
		{"label source", cfg.Labels["org.opencontainers.image.source"], "https://github.com/sonde-exporter/sonde"},
		{"label url", cfg.Labels["org.opencontainers.image.url"], "https://github.com/sonde-exporter/sonde"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.what, tc.got, tc.want)
		}
	}
	if cfg.Labels["org.opencontainers.image.description"] == "" {
		t.Error("the description label is empty")
	}
	if _, ok := cfg.ExposedPorts[exposedPort]; !ok || len(cfg.ExposedPorts) != 1 {
		t.Errorf("exposed ports = %v, want only %s", cfg.ExposedPorts, exposedPort)
	}
}

func checkFiles(t *testing.T, tree string, cfg imageConfig, version string) {
	t.Run("CA certificates", func(t *testing.T) {
		bundle, err := os.ReadFile(filepath.Join(tree, "etc/ssl/certs/ca-certificates.crt"))
		if err != nil {
			t.Fatal(err)
		}
		blocks := 0
		for rest := bundle; ; blocks++ {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
		}
		if !x509.NewCertPool().AppendCertsFromPEM(bundle) {
			t.Fatalf("the bundle holds no certificate Go can use (%d PEM blocks)", blocks)
		}
		t.Logf("%d certificates", blocks)
	})

	t.Run("time zones", func(t *testing.T) {
		for _, zone := range []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"} {
			data, err := os.ReadFile(filepath.Join(tree, "usr/share/zoneinfo", zone))
			if err != nil {
				t.Errorf("%s: %v", zone, err)
				continue
			}
			if _, err := time.LoadLocationFromTZData(zone, data); err != nil {
				t.Errorf("%s: %v", zone, err)
			}
		}
	})

	t.Run("user", func(t *testing.T) {
		uid, gid, _ := strings.Cut(cfg.User, ":")
		for _, tc := range []struct{ file, field, want string }{
			{"etc/passwd", "uid", uid},
			{"etc/group", "gid", gid},
		} {
			if !hasEntry(t, filepath.Join(tree, tc.file), tc.want) {
				t.Errorf("%s has no entry with %s %s, the image's user", tc.file, tc.field, tc.want)
			}
		}
	})

	t.Run("configuration paths", func(t *testing.T) {
		// The image's command reads configPath, a link to blackbox's path:
		// what is mounted at either is what sonde reads.
		if fi, err := os.Lstat(filepath.Join(tree, configPath)); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Fatalf("%s is not a link (%v)", configPath, err)
		}
		resolved, err := filepath.EvalSymlinks(filepath.Join(tree, configPath))
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(tree, blackboxPath); resolved != want {
			t.Errorf("%s leads to %s, want %s", configPath, strings.TrimPrefix(resolved, tree), blackboxPath)
		}
		got, err := os.ReadFile(resolved)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(repoRoot, "example.yml"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Error("the image's configuration is not example.yml")
		}
	})

	t.Run("links and modes", func(t *testing.T) { checkTreeWalk(t, tree) })

	t.Run("binary", func(t *testing.T) {
		bin := filepath.Join(tree, "bin/sonde")
		checkStatic(t, bin)
		out, err := exec.Command(bin, "--version").CombinedOutput()
		if err != nil {
			t.Fatalf("sonde --version: %v\n%s", err, out)
		}
		head := git(t, "rev-parse", "HEAD")
		first, _, _ := strings.Cut(string(out), "\n")
		var gotVersion, gotRevision string
		if _, err := fmt.Sscanf(first, "sonde, version %s", &gotVersion); err != nil || gotVersion != version {
			t.Errorf("--version says %q, want version %s", first, version)
		}
		if _, rev, ok := strings.Cut(first, "revision: "); ok {
			gotRevision = strings.TrimSuffix(rev, ")")
		}
		if len(gotRevision) < 7 || !strings.HasPrefix(head, gotRevision) {
			t.Errorf("--version says %q, want the revision of HEAD %s", first, head)
		}
	})
}

// checkTreeWalk checks every file of the image: links lead to a file of
// the image by a relative path (an absolute one would lead, outside a
// container, to the host's file), and everything is readable by the
// image's user, who owns nothing (COPY makes root the owner).
func checkTreeWalk(t *testing.T, tree string) {
	files := 0
	err := filepath.WalkDir(tree, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		files++
		rel := strings.TrimPrefix(path, tree)
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			dest, err := os.Readlink(path)
			if err != nil {
				return err
			}
			resolved, err := filepath.EvalSymlinks(path)
			switch {
			case filepath.IsAbs(dest):
				t.Errorf("%s links to the absolute path %s", rel, dest)
			case err != nil:
				t.Errorf("%s links to %s, which is missing: %v", rel, dest, err)
			case !strings.HasPrefix(resolved, tree+string(filepath.Separator)):
				t.Errorf("%s links to %s, outside the image", rel, dest)
			}
		case fi.IsDir() && fi.Mode().Perm()&0o005 != 0o005:
			t.Errorf("%s is a directory of mode %v, which the image's user cannot open", rel, fi.Mode().Perm())
		case fi.Mode().IsRegular() && fi.Mode().Perm()&0o004 == 0:
			t.Errorf("%s has mode %v, which the image's user cannot read", rel, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d files", files)
}

// elfMachine is the ELF machine of each GOARCH the image is built for.
var elfMachine = map[string]elf.Machine{
	"amd64":   elf.EM_X86_64,
	"arm64":   elf.EM_AARCH64,
	"arm":     elf.EM_ARM,
	"ppc64le": elf.EM_PPC64,
	"s390x":   elf.EM_S390,
}

// checkStatic checks that the binary needs no C library, which a FROM
// scratch image lacks: no program interpreter, no shared library.
func checkStatic(t *testing.T, bin string) {
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if want, ok := elfMachine[runtime.GOARCH]; ok && f.Machine != want {
		t.Errorf("the binary is for %v, want %v", f.Machine, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary names a program interpreter: it is not static")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v (%v)", libs, err)
	}
}

// hasEntry reports whether a passwd or group file has a line whose third
// field, the id, is id.
func hasEntry(t *testing.T, file, id string) bool {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if fields := strings.Split(line, ":"); len(fields) >= 3 && fields[2] == id {
			return true
		}
	}
	return false
}

// unpackTree unpacks the image's files into a directory that the image's
// user may enter, as the tests run sonde from it as that user.
func unpackTree(t *testing.T, layout string) string {
	t.Helper()
	tree := openDir(t)
	if err := unpackLayout(layout, tree); err != nil {
		t.Fatalf("unpacking the image: %v", err)
	}
	return tree
}

// openDir is a temporary directory that every user may enter: t.TempDir's
// parent is the test's alone.
func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sonde-image-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readVersion(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(raw))
}

func git(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", repoRoot}, args...)...).Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}
