// Package cli is sonde's command line: the server (blackbox_exporter's
// flags), the probe command for CI/CD gates and the config commands.
// package main only calls Run.
package cli

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/sonde-exporter/sonde/internal/tracing"
)

// The commands. serve is the default: blackbox_exporter's command line,
// which names no command, runs the server.
const (
	cmdServe        = "serve"
	cmdProbe        = "probe"
	cmdConfigCheck  = "config check"
	cmdConfigSchema = "config schema"
)

// flags are sonde's command line: the command chosen and its flags. The
// server's are blackbox_exporter's, same names and defaults.
type flags struct {
	command            string
	configFile         string // serve and config check
	configCheck        bool
	configStrict       bool // warnings refuse the configuration
	autoReload         bool
	autoReloadInterval time.Duration
	timeoutOffset      float64
	historyLimit       uint
	denyPrivate        bool
	maxConcurrent      uint
	gcFloor            units.Base2Bytes
	externalURL        string
	routePrefix        string
	proberLevel        *promslog.Level
	log                promslog.Config
	web                *web.FlagConfig
	probe              probeFlags
	tracing            tracing.Options
}

// exitNow is parseFlags' answer when a flag such as --help or --version
// has done all there is to do: exit with code.
type exitNow struct{ code int }

func (e *exitNow) Error() string { return fmt.Sprintf("exit %d", e.code) }

// parseFlags reads the command line. What was asked for (--help,
// --version) is printed on stdout, as blackbox_exporter prints it; errors
// go to stderr.
func parseFlags(args []string, stdout, stderr io.Writer) (*flags, error) {
	app := kingpin.New("sonde", "A Prometheus multi-target probing exporter, compatible with blackbox_exporter.")
	app.ErrorWriter(stderr)
	app.UsageWriter(stdout)
	// kingpin would exit the process after --help and --version; the exit
	// is left to the caller, so that it is run by main alone.
	var done *exitNow
	app.Terminate(func(code int) {
		if done == nil {
			done = &exitNow{code: code}
		}
	})
	app.HelpFlag.Short('h')
	app.Version(version.Print("sonde"))
	f := &flags{proberLevel: promslog.NewLevel()}
	f.addServeCommand(app)
	f.probe.addCommand(app)
	f.addConfigCommands(app)
	command, err := app.Parse(args)
	switch {
	case done != nil:
		return nil, done // what followed --help or --version is not checked
	case err != nil:
		return nil, err
	}
	f.command = command
	f.log.Writer = stderr
	return f, nil
}

// Run runs the command args name and returns the exit status: 0 success,
// 1 failure, 2 a usage or configuration error (docs/cli.md).
func Run(args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args, stdout, stderr)
	var done *exitNow
	switch {
	case errors.As(err, &done):
		return done.code
	case err != nil:
		fmt.Fprintf(stderr, "sonde: %v; see sonde --help\n", err)
		return 2
	}
	switch f.command {
	case cmdProbe:
		return runProbe(&f.probe, stdout, stderr)
	case cmdConfigCheck:
		return checkConfig(f.configFile, f.configStrict, stderr)
	case cmdConfigSchema:
		return printSchema(stdout, stderr)
	}
	return runServer(f, stderr)
}
