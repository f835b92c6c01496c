package release

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// PackageRelease is the packages' own revision: the "1" of
// sonde-<version>-1.x86_64.rpm and of the deb's version <version>-1.
// packaging/nfpm.yaml sets the same.
const PackageRelease = "1"

// NFPMConfig is nfpm's configuration, relative to the tree's root.
const NFPMConfig = "packaging/nfpm.yaml"

// packageArch is how one architecture is named by each tool.
type packageArch struct {
	nfpm, deb, rpm string
}

// packageArches are the architectures deb and rpm packages are made for.
var packageArches = map[string]packageArch{
	"amd64": {nfpm: "amd64", deb: "amd64", rpm: "x86_64"},
	"arm64": {nfpm: "arm64", deb: "arm64", rpm: "aarch64"},
}

// PackageArches lists the architectures Packages accepts.
func PackageArches() []string { return slices.Sorted(maps.Keys(packageArches)) }

// PackageFormats are the package kinds made for each architecture.
var PackageFormats = []string{"deb", "rpm"}

// PackageName is the file name of version's package of format for arch
// (GOARCH): sonde_<version>_<arch>.deb, or sonde-<version>-1.<arch>.rpm
// with rpm's name for the architecture (x86_64, aarch64), as dnf and zypper
// users know them.
func PackageName(format, version, arch string) (string, error) {
	names, ok := packageArches[arch]
	if !ok {
		return "", fmt.Errorf("no %s package for %s: packages are made for %s", format, arch, strings.Join(PackageArches(), ", "))
	}
	switch format {
	case "deb":
		return fmt.Sprintf("sonde_%s_%s.deb", version, names.deb), nil
	case "rpm":
		return fmt.Sprintf("sonde-%s-%s.%s.rpm", version, PackageRelease, names.rpm), nil
	}
	return "", fmt.Errorf("package format %q: want one of %s", format, strings.Join(PackageFormats, ", "))
}

// Packages builds the linux binary for arch, as Archive does (the same
// bytes as the archive's), and has nfpm pack it, with packaging/, into a deb
// and an rpm in Dist. nfpm is the command line that runs nfpm, e.g.
// `go run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0`.
func (r Release) Packages(ctx context.Context, nfpm []string, arch string) ([]string, error) {
	if len(nfpm) == 0 {
		return nil, fmt.Errorf("packages: no nfpm command (make packages gives the Makefile's NFPM)")
	}
	if _, err := PackageName("deb", r.Builder.Stamp.Version, arch); err != nil {
		return nil, err
	}
	binary, cleanup, err := r.buildBinary(ctx, Target{OS: "linux", Arch: arch})
	if err != nil {
		return nil, err
	}
	defer cleanup()
	var made []string
	for _, format := range PackageFormats {
		name, err := PackageName(format, r.Builder.Stamp.Version, arch)
		if err != nil {
			return nil, err
		}
		out := filepath.Join(r.Dist, name)
		if err := r.runNFPM(ctx, nfpm, format, arch, binary, out); err != nil {
			return nil, err
		}
		made = append(made, out)
	}
	return made, nil
}

// runNFPM runs nfpm in the tree's root, where packaging/nfpm.yaml's paths
// start, telling it through the environment what nfpm.yaml leaves open.
// SOURCE_DATE_EPOCH is nfpm's own: the time of every file and of the
// package.
func (r Release) runNFPM(ctx context.Context, nfpm []string, format, arch, binary, out string) error {
	// nfpm runs elsewhere (cmd.Dir): the paths it is given must not be
	// relative to here.
	binary, err := filepath.Abs(binary)
	if err != nil {
		return fmt.Errorf("packages: %w", err)
	}
	if out, err = filepath.Abs(out); err != nil {
		return fmt.Errorf("packages: %w", err)
	}
	args := append(slices.Clone(nfpm[1:]), "package", "--config", NFPMConfig, "--packager", format, "--target", out)
	cmd := exec.CommandContext(ctx, nfpm[0], args...)
	cmd.Dir = r.Builder.Root
	cmd.Env = append(os.Environ(),
		"SONDE_VERSION="+r.Builder.Stamp.Version,
		"SONDE_ARCH="+packageArches[arch].nfpm,
		"SONDE_BINARY="+binary,
		"SOURCE_DATE_EPOCH="+strconv.FormatInt(r.Builder.Stamp.Date.Unix(), 10),
	)
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nfpm making the %s for %s (%s): %w\n%s", format, arch, strings.Join(nfpm, " "), err, strings.TrimSpace(output.String()))
	}
	return nil
}
