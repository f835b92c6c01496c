// Package release builds sonde's release files: the cross-built archives
// (sonde-<version>.<os>-<arch>.tar.gz, .zip for windows), their
// sha256sums.txt, and the deb and rpm packages, which nfpm makes from
// packaging/. Everything is reproducible: two builds of the same tree with
// the same Stamp give the same bytes, so anyone can check a published file
// against the source. `make release` and `make packages` run it through
// internal/release/cmd/release.
package release

import (
	"fmt"
	"strings"
)

// Target is one platform a release is built for.
type Target struct {
	OS   string // GOOS
	Arch string // the name in file names: GOARCH, or armv7 for GOARCH=arm GOARM=7
}

// DefaultTargets are the platforms `make release` builds: blackbox_exporter's
// main ones, plus riscv64.
var DefaultTargets = []Target{
	{"linux", "amd64"},
	{"linux", "arm64"},
	{"linux", "armv7"},
	{"linux", "ppc64le"},
	{"linux", "s390x"},
	{"linux", "riscv64"},
	{"darwin", "amd64"},
	{"darwin", "arm64"},
	{"freebsd", "amd64"},
	{"windows", "amd64"},
}

// ParseTarget reads "os/arch", as DefaultTargets names them (linux/armv7).
func ParseTarget(s string) (Target, error) {
	osName, arch, ok := strings.Cut(s, "/")
	if !ok || osName == "" || arch == "" || strings.Contains(arch, "/") {
		return Target{}, fmt.Errorf("target %q: want os/arch, e.g. linux/amd64 or linux/armv7", s)
	}
	return Target{OS: osName, Arch: arch}, nil
}

func (t Target) String() string { return t.OS + "/" + t.Arch }

// GoEnv is what selects the target in `go build`'s environment. armv7 is
// GOARCH=arm with GOARM=7; Go's own default for GOARM would depend on the
// building machine, hence explicit.
func (t Target) GoEnv() []string {
	env := []string{"GOOS=" + t.OS}
	if arch, variant, ok := strings.Cut(t.Arch, "v"); ok && arch == "arm" {
		return append(env, "GOARCH=arm", "GOARM="+variant)
	}
	return append(env, "GOARCH="+t.Arch)
}

// BinaryName is the executable's name inside an archive.
func (t Target) BinaryName() string {
	if t.OS == "windows" {
		return "sonde.exe"
	}
	return "sonde"
}

// ArchiveExt is .zip for windows, where tar.gz is unusual, else .tar.gz.
func (t Target) ArchiveExt() string {
	if t.OS == "windows" {
		return ".zip"
	}
	return ".tar.gz"
}

// ArchiveDir is the directory an archive holds everything under:
// sonde-<version>.<os>-<arch>, as blackbox_exporter's releases do.
func (t Target) ArchiveDir(version string) string {
	return fmt.Sprintf("sonde-%s.%s-%s", version, t.OS, t.Arch)
}

// ArchiveName is the archive's file name.
func (t Target) ArchiveName(version string) string {
	return t.ArchiveDir(version) + t.ArchiveExt()
}
