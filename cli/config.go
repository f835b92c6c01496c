package cli

import (
	"fmt"
	"io"

	"github.com/alecthomas/kingpin/v2"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober"
)

// addConfigCommands adds `config check` (the same as --config.check) and
// `config schema`.
func (f *flags) addConfigCommands(app *kingpin.Application) {
	cmd := app.Command("config", "Check the configuration file, or print its JSON Schema.")
	check := cmd.Command("check", "Validate the configuration file, as --config.check does: exit 0 when it is valid (warnings are printed), 1 with every problem found.")
	check.Flag("config.file", "Configuration file (blackbox_exporter's format).").Default("blackbox.yml").StringVar(&f.configFile)
	check.Flag("strict", "Treat warnings (what blackbox_exporter would load all the same) as errors, for CI.").BoolVar(&f.configStrict)
	cmd.Command("schema", "Print the JSON Schema (draft 2020-12) of the configuration file, for editors and CI linters.")
}

// checkConfig implements --config.check and `config check`: it prints
// every problem found, errors and warnings. Warnings fail the check only
// when strict.
func checkConfig(path string, strict bool, stderr io.Writer) int {
	cfg, err := config.LoadFile(path)
	if err == nil {
		_, err = prober.NewSet(cfg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "%s: warning: %v\n", path, w)
	}
	switch {
	case len(cfg.Warnings) > 0 && strict:
		fmt.Fprintf(stderr, "%s: %d warnings, refused by strict checking\n", path, len(cfg.Warnings))
		return 1
	case len(cfg.Warnings) > 0:
		fmt.Fprintf(stderr, "%s: the configuration loads (%d modules), with %d warnings: blackbox_exporter loads it too, and those modules probe as it would probe them; --config.strict refuses it\n",
			path, len(cfg.Modules), len(cfg.Warnings))
		return 0
	}
	fmt.Fprintf(stderr, "%s: the configuration is valid (%d modules)\n", path, len(cfg.Modules))
	return 0
}

// printSchema implements `config schema`.
func printSchema(stdout, stderr io.Writer) int {
	schema, err := config.JSONSchema()
	if err == nil {
		_, err = stdout.Write(schema)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sonde config schema: %v\n", err)
		return 1
	}
	return 0
}
