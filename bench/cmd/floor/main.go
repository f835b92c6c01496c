// Command floor is the load harness's floor: an exporter-shaped server
// whose /probe does only the network work of one probe of the harness's
// modules (package bench/floor). The harness starts it as it starts an
// exporter, with --config.file and --web.listen-address, and reports
// sonde ÷ floor per prober (docs/performance.md).
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/sonde-exporter/sonde/bench/floor"
)

func main() {
	fs := flag.NewFlagSet("floor", flag.ExitOnError)
	configFile := fs.String("config.file", "blackbox.yml", "The harness's configuration file.")
	listen := fs.String("web.listen-address", ":9115", "Address to listen on.")
	webConfig := fs.String("web.config.file", "", "exporter-toolkit web configuration (TLS).")
	showVersion := fs.Bool("version", false, "Print what this is and exit.")
	fs.Parse(os.Args[1:])
	if *showVersion {
		fmt.Println("floor, sonde's load harness floor (network work only)")
		return
	}
	f, err := floor.Load(*configFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "floor: %v\n", err)
		os.Exit(1)
	}
	srv := &http.Server{
		Handler:           f,
		ReadHeaderTimeout: time.Minute,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	systemd := false
	flags := &web.FlagConfig{WebListenAddresses: &[]string{*listen}, WebSystemdSocket: &systemd, WebConfigFile: webConfig}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := web.ListenAndServe(srv, flags, logger); err != nil {
		fmt.Fprintf(os.Stderr, "floor: %v\n", err)
		os.Exit(1)
	}
}
