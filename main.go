// Command sonde is a Prometheus multi-target probing exporter, a drop-in
// replacement for blackbox_exporter: same flags, configuration file and
// metrics, and a class, reason and phase for every failure. Its probe
// command runs the same probes once, for CI/CD gates.
package main

import (
	"os"
	"runtime/debug"
	"strings"

	"github.com/prometheus/common/version"

	"github.com/sonde-exporter/sonde/cli"
)

func main() {
	if version.Version == "" { // `make build` and the release stamp VERSION
		version.Version = unstampedVersion()
	}
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}

// unstampedVersion is the version of a binary built without the
// Makefile's stamps, so that `go install
// github.com/sonde-exporter/sonde@v0.1.0` reports 0.1.0 in --version and
// blackbox_exporter_build_info rather than nothing.
func unstampedVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return moduleVersion("")
	}
	return moduleVersion(info.Main.Version)
}

// moduleVersion turns the main module's version, as Go records it, into
// one as the VERSION file writes it: without the "v". A plain `go build`
// of a checkout has none, "(devel)", and is "devel".
func moduleVersion(v string) string {
	if v == "" || v == "(devel)" {
		return "devel"
	}
	return strings.TrimPrefix(v, "v")
}
