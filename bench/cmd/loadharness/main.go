// Command loadharness measures what probes cost an exporter, sonde or
// blackbox_exporter, against targets it runs itself on loopback, and
// compares two exporters side by side. See docs/performance.md.
//
//	loadharness --exporter ./sonde --vs /usr/bin/prometheus-blackbox-exporter
//	loadharness --exporter ./sonde --vs ./blackbox_exporter --floor ./floor
//	loadharness --exporter ./sonde --scale 10000
//	loadharness --exporter ./sonde --vs ./blackbox_exporter --overrun 3000
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sonde-exporter/sonde/bench"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	o, markdown, err := parseFlags(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "loadharness: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	report, err := bench.Run(ctx, o)
	if report != nil && (len(report.Load) > 0 || len(report.Scale) > 0 || len(report.Overrun) > 0 || len(report.Notes) > 0) {
		if werr := report.Write(stdout, markdown); werr != nil {
			fmt.Fprintf(stderr, "loadharness: writing the report: %v\n", werr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadharness: %v\n", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (bench.Options, bool, error) {
	fs := flag.NewFlagSet("loadharness", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		exporterCmd = fs.String("exporter", "", "Exporter A, measured: its binary and arguments, space-separated (e.g. './sonde --log.level=warn'). The harness adds --config.file and --web.listen-address.")
		vsCmd       = fs.String("vs", "", "Exporter B, compared with A round by round (e.g. /usr/bin/prometheus-blackbox-exporter).")
		floorCmd    = fs.String("floor", "", "The floor (go build -o floor ./bench/cmd/floor), run after A and B in every round of load mode: the network work of each probe alone. The report adds A/floor rows.")
		modules     = fs.String("modules", strings.Join(bench.LoadModules(), ","), "Modules to load, comma-separated.")
		o           bench.Options
		markdown    bool
		quiet       bool
	)
	fs.IntVar(&o.Concurrency, "concurrency", 16, "Scrapes in flight during a load round.")
	fs.DurationVar(&o.Duration, "duration", 5*time.Second, "Length of one round of one module on one exporter.")
	fs.IntVar(&o.Rounds, "rounds", 3, "Rounds per module and exporter; exporters alternate A B A B.")
	fs.DurationVar(&o.Warmup, "warmup", time.Second, "An uncounted round per module and exporter before the first.")
	fs.DurationVar(&o.ScrapeTimeout, "scrape-timeout", 10*time.Second, "Scrape timeout sent in X-Prometheus-Scrape-Timeout-Seconds.")
	fs.BoolVar(&o.NoGzip, "no-gzip", false, "Scrape without Accept-Encoding: gzip (Prometheus sends it), to tell what compressing the answers costs.")
	fs.IntVar(&o.ScaleProbes, "scale", 0, "Scale mode: this many probes in flight at once against a target that answers late, instead of load rounds.")
	fs.DurationVar(&o.ScaleDelay, "scale.delay", 8*time.Second, "Scale mode: how long the target takes to answer.")
	fs.DurationVar(&o.ScaleRamp, "scale.ramp", 5*time.Second, "Scale mode: the scrapes start spread evenly over this, so that starting them does not saturate the machine (2,000 a second by default for 10,000); keep it shorter than the delay so all are in flight at once.")
	fs.DurationVar(&o.ScaleTimeout, "scale.timeout", 30*time.Second, "Scale mode: the scrape timeout, and the module's timeout.")
	fs.BoolVar(&o.ScalePlain, "scale.plain", false, "Scale mode: scrape over plain HTTP/1.1, one connection per scrape, instead of HTTPS with HTTP/2 (the exporter then needs two descriptors per probe).")
	fs.StringVar(&o.ScaleProber, "scale.prober", "http", "Scale mode: the prober held in flight, one of "+strings.Join(bench.ScaleProbers(), ", ")+" (tcp sends the HTTP request itself and waits for the status line).")
	fs.IntVar(&o.OverrunProbes, "overrun", 0, "Overrun mode: this many probes in flight at once of a target that never finishes its answer, instead of load rounds; reports how late past their deadline the answers come.")
	fs.DurationVar(&o.OverrunTimeout, "overrun.timeout", 3*time.Second, "Overrun mode: every probe's deadline (the module's timeout); the scrape timeout sent is a second longer.")
	fs.DurationVar(&o.OverrunRamp, "overrun.ramp", time.Second, "Overrun mode: the scrapes start spread evenly over this; keep it shorter than the deadline so all are in flight at once.")
	fs.IntVar(&o.OverrunMaxConcurrent, "overrun.max-concurrent", 500, "Overrun mode: a second wave of the exporter measured (--exporter) with --probe.max-concurrent set to this; 0 for none. blackbox_exporter has no such flag: --vs runs once, without.")
	fs.DurationVar(&o.OverrunSettle, "overrun.settle", 15*time.Second, "Overrun mode: how long the exporter's goroutines and open files may take to come back to their idle counts after the wave.")
	fs.StringVar(&o.Dir, "dir", "", "Work directory for the configuration, certificates and exporter logs (kept); a temporary one by default.")
	fs.BoolVar(&markdown, "markdown", false, "Print the tables as Markdown.")
	fs.BoolVar(&quiet, "quiet", false, "Do not print progress to stderr.")
	if err := fs.Parse(args); err != nil {
		return o, false, err
	}
	if fs.NArg() > 0 {
		return o, false, fmt.Errorf("unexpected arguments %q; quote an exporter's arguments with its command", fs.Args())
	}
	a, err := bench.ParseExporter("A", *exporterCmd)
	if err != nil {
		return o, false, fmt.Errorf("--exporter is required: %w", err)
	}
	o.A = a
	if *vsCmd != "" {
		b, err := bench.ParseExporter("B", *vsCmd)
		if err != nil {
			return o, false, fmt.Errorf("--vs: %w", err)
		}
		o.B = &b
	}
	if *floorCmd != "" {
		f, err := bench.ParseExporter("floor", *floorCmd)
		if err != nil {
			return o, false, fmt.Errorf("--floor: %w", err)
		}
		o.Floor = &f
	}
	o.Modules = strings.Split(*modules, ",")
	if !quiet {
		o.Progress = stderr
	}
	return o, markdown, nil
}
