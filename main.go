// Command sonde is a Prometheus multi-target probing exporter, a drop-in
// replacement for blackbox_exporter: same flags, configuration file and
// metrics, and a class, reason and phase for every failure. Its probe
// command runs the same probes once, for CI/CD gates.
package main

import (
	"os"

	"github.com/prometheus/common/version"

	"github.com/sonde-exporter/sonde/cli"
)

func main() {
	if version.Version == "" {
		version.Version = "devel" // a plain `go build`; `make build` stamps VERSION
	}
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
