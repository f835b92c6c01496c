package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/sonde-exporter/sonde/collector"
	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/gcfloor"
	"github.com/sonde-exporter/sonde/prober"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/policy"
)

// addServeCommand adds the server, the default command, with
// blackbox_exporter's flags. Being the default, its flags work without
// the word serve: `sonde --config.file=blackbox.yml` runs the server.
func (f *flags) addServeCommand(app *kingpin.Application) {
	cmd := app.Command(cmdServe, "Run the exporter (the default command: its flags work without the word serve).").Default()
	cmd.Flag("config.file", "Configuration file (blackbox_exporter's format).").Default("blackbox.yml").StringVar(&f.configFile)
	cmd.Flag("config.check", "Validate the configuration file, then exit: 0 when it is valid (warnings are printed), 1 with the problems found.").BoolVar(&f.configCheck)
	cmd.Flag("config.strict", "Refuse a configuration with warnings, at start, reload and --config.check. Warnings are what blackbox_exporter would load all the same (e.g. an unknown prober, a file not there yet); without this flag sonde loads them too.").BoolVar(&f.configStrict)
	cmd.Flag("config.enable-auto-reload", "Reload the configuration file when its content changes.").BoolVar(&f.autoReload)
	cmd.Flag("config.auto-reload-interval", "How often to check the configuration file for changes, with --config.enable-auto-reload: seconds (30) or a duration (30s).").
		Default("30").SetValue((*secondsOrDuration)(&f.autoReloadInterval))
	cmd.Flag("timeout-offset", "Seconds to subtract from the scrape timeout Prometheus announces, to leave time to answer.").Default("0.5").Float64Var(&f.timeoutOffset)
	cmd.Flag("history.limit", "How many recent probes, and separately recent failed probes, to keep for the landing page and /logs.").Default("100").UintVar(&f.historyLimit)
	cmd.Flag("web.external-url", "The URL under which sonde is reachable, e.g. behind a reverse proxy. Its path prefixes every endpoint unless --web.route-prefix says otherwise.").StringVar(&f.externalURL)
	cmd.Flag("web.route-prefix", "Path prefix of every endpoint. Defaults to the path of --web.external-url.").StringVar(&f.routePrefix)
	// Off by default, as blackbox_exporter probes anything: loopback and
	// private targets are what most deployments probe.
	cmd.Flag(denyPrivateFlag, "Refuse targets that resolve to loopback, private (RFC 1918, CGNAT, unique local), link-local, multicast, unspecified or cloud metadata addresses, in every module; a module's targets.allow cannot override it.").
		BoolVar(&f.denyPrivate)
	// 0, no limit, by default: blackbox_exporter has none, and the open
	// file limit (raised at start) is a cap of its own.
	cmd.Flag("probe.max-concurrent", "At most this many probes run at once, all modules together; excess probes wait for a slot within their deadline, then fail as prober/resource_exhausted. 0: no limit.").
		Default("0").UintVar(&f.maxConcurrent)
	cmd.Flag("runtime.gc-floor", "Let the heap grow to this size before the garbage collector runs (GOGC is raised while the live heap is under half of it, then left at 100); trades this much memory for less CPU per probe. 0 or the GOGC environment variable turns it off.").
		Default("32MiB").SetValue((*byteSize)(&f.gcFloor))
	addTracingFlags(cmd, &f.tracing)
	cmd.Flag("log.prober", "Lowest level of a probe's log lines that go to the main log, whatever --log.level says (progress is debug, failures error). One of: [debug, info, warn, error]").
		Default("info").HintOptions(promslog.LevelFlagOptions...).SetValue(f.proberLevel)
	// promslogflag.AddFlags wants the application; the same flags go on
	// the command, so that `sonde probe --help` lists only its own.
	f.log.Level = promslog.NewLevel()
	cmd.Flag(promslogflag.LevelFlagName, promslogflag.LevelFlagHelp).
		Default("info").HintOptions(promslog.LevelFlagOptions...).SetValue(f.log.Level)
	f.log.Format = promslog.NewFormat()
	cmd.Flag(promslogflag.FormatFlagName, promslogflag.FormatFlagHelp).
		Default("logfmt").HintOptions(promslog.FormatFlagOptions...).SetValue(f.log.Format)
	f.web = kingpinflag.AddFlags(cmd, ":9115")
}

// secondsOrDuration is a flag value written as blackbox_exporter does, a
// number of seconds, or as a duration like Prometheus' own flags.
type secondsOrDuration time.Duration

func (d *secondsOrDuration) Set(s string) error {
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 {
		*d = secondsOrDuration(f * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("%q is not a positive number of seconds or a duration like 30s", s)
	}
	*d = secondsOrDuration(v)
	return nil
}

func (d *secondsOrDuration) String() string { return time.Duration(*d).String() }

// byteSize is a flag value written with a binary unit, as 32MiB.
type byteSize units.Base2Bytes

func (b *byteSize) Set(s string) error {
	v, err := units.ParseBase2Bytes(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a size: write it like 32MiB, 512KiB or 0", s)
	}
	*b = byteSize(v)
	return nil
}

func (b *byteSize) String() string { return units.Base2Bytes(*b).String() }

// runServer runs the exporter until it is told to stop, or, with
// --config.check, only checks the configuration file.
func runServer(f *flags, stderr io.Writer) int {
	logger := promslog.New(&f.log)
	if f.configCheck {
		return checkConfig(f.configFile, f.configStrict, stderr)
	}
	logger.Info("Starting sonde", "version", version.Info())
	logger.Info("Build context", "build_context", version.BuildContext())
	if soft, hard, err := raiseFileLimit(); err != nil {
		logger.Warn("Could not raise the open file limit; probes in flight are capped by it", "err", err, "soft", soft, "hard", hard)
	} else {
		logger.Info("Open file limit", "soft", soft, "hard", hard)
	}
	if f.maxConcurrent > 0 {
		logger.Info("Probes running at once are limited", "max_concurrent", f.maxConcurrent)
	}
	if floor := startGCFloor(f.gcFloor); floor != nil {
		defer floor.Stop()
		logger.Info("Garbage collection waits for a heap of at least --runtime.gc-floor", "bytes", f.gcFloor.String())
	} else if f.gcFloor > 0 {
		logger.Info("GOGC is set, so --runtime.gc-floor is off", "GOGC", os.Getenv("GOGC"))
	}

	traces, err := startTracing(f.tracing, logger)
	if err != nil {
		logger.Error("Bad tracing settings", "err", err)
		fmt.Fprintf(stderr, "%v\n", err)
		return 2
	}
	defer flushTraces(traces, logger)

	reg := newRegistry()
	col := collector.New(collector.Options{
		TimeoutOffset: f.timeoutOffset,
		HistoryLimit:  int(f.historyLimit),
		Logger:        logger,
		ProberLevel:   f.proberLevel.Level(),
		Registerer:    reg,
		MaxConcurrent: int(f.maxConcurrent),
		Tracer:        traces.Tracer,
	})
	reloader := config.NewReloader(f.configFile, applyConfig(col, proberOptions(f)...), reg, logger, config.Strict(f.configStrict))
	if err := reloader.Reload(); err != nil {
		logger.Error("Error loading the configuration; fix it and start again", "err", err)
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	logger.Info("Loaded configuration", "file", f.configFile, "modules", len(col.Modules().Names()))

	prefix, err := routePrefix(f)
	if err != nil {
		logger.Error("Bad --web.external-url or --web.route-prefix", "err", err)
		return 2
	}
	return serve(f, newMux(prefix, col, reloader, reg, logger), reloader, logger)
}

// newRegistry returns the registry of the exporter's own metrics, with
// the collectors every Prometheus exporter has. The build is exported
// twice: as sonde_build_info, and as blackbox_exporter_build_info, which
// blackbox_exporter registers and dashboards of it may query.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("sonde"),
		versioncollector.NewCollector("blackbox_exporter"),
	)
	return reg
}

// metricsHandler serves reg on /metrics, counting its own requests by
// status code and in flight, as promhttp.Handler does for blackbox.
func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
}

// startGCFloor starts the GOGC tuner for --runtime.gc-floor, unless the
// floor is 0 or GOGC is set: an operator's own GOGC is left alone.
func startGCFloor(floor units.Base2Bytes) *gcfloor.Floor {
	if floor <= 0 || os.Getenv("GOGC") != "" {
		return nil
	}
	return gcfloor.Start(uint64(floor))
}

// denyPrivateFlag is the flag's name, which refusals quote.
const denyPrivateFlag = "probe.deny-private"

// proberOptions are the flags' settings every module is prepared with.
func proberOptions(f *flags) []core.Option {
	var opts []core.Option
	if f.denyPrivate {
		opts = append(opts, core.WithDenied("--"+denyPrivateFlag, policy.PrivateRanges()))
	}
	return opts
}

// applyConfig prepares the modules of a configuration with opts and hands
// them to the collector; a module that cannot be prepared refuses the
// whole file.
func applyConfig(col *collector.Collector, opts ...core.Option) func(*config.Config) error {
	return func(cfg *config.Config) error {
		set, err := prober.NewSet(cfg, opts...)
		if err != nil {
			return err
		}
		col.SetModules(set)
		return nil
	}
}

// routePrefix derives the route prefix as Prometheus components do: the
// flag if set, else the path of the external URL; always "/"-delimited.
func routePrefix(f *flags) (string, error) {
	prefix := f.routePrefix
	if prefix == "" && f.externalURL != "" {
		u, err := url.Parse(f.externalURL)
		if err != nil {
			return "", fmt.Errorf("--web.external-url %q: %w", f.externalURL, err)
		}
		prefix = u.Path
	}
	prefix = "/" + strings.Trim(prefix, "/")
	if prefix != "/" {
		prefix += "/"
	}
	return prefix, nil
}

func newMux(prefix string, col *collector.Collector, reloader *config.Reloader, reg *prometheus.Registry, logger *slog.Logger) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(prefix+"probe", col)
	mux.Handle(prefix+"metrics", metricsHandler(reg))
	mux.HandleFunc(prefix+"-/reload", reloadHandler(reloader, logger))
	mux.HandleFunc(prefix+"-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "Healthy\n")
	})
	mux.HandleFunc(prefix+"-/ready", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "Ready\n")
	})
	mux.HandleFunc(prefix+"config", col.ConfigPage)
	mux.HandleFunc(prefix+"logs", col.LogsPage)
	mux.HandleFunc(prefix+"probe/detail", col.DetailPage)
	mux.HandleFunc(prefix+"{$}", col.LandingPage)
	if prefix != "/" {
		mux.Handle("/{$}", http.RedirectHandler(prefix, http.StatusFound))
	}
	return mux
}

func reloadHandler(reloader *config.Reloader, logger *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "This endpoint requires a POST request.", http.StatusMethodNotAllowed)
			return
		}
		if err := reloader.Reload(); err != nil {
			logger.Error("Reload failed; keeping the running configuration", "err", err)
			http.Error(w, fmt.Sprintf("failed to reload config, the previous configuration stays in use:\n%v", err), http.StatusInternalServerError)
			return
		}
		logger.Info("Reloaded configuration", "file", reloader.Path())
		io.WriteString(w, "Configuration reloaded\n")
	}
}

// serve runs the web server until SIGTERM or SIGINT, reloading on SIGHUP.
func serve(f *flags, mux *http.ServeMux, reloader *config.Reloader, logger *slog.Logger) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go reloadOnHUP(ctx, reloader, logger)
	if f.autoReload {
		go reloader.Watch(ctx, f.autoReloadInterval)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelError),
	}
	errc := make(chan error, 1)
	go func() { errc <- web.ListenAndServe(srv, f.web, logger) }()
	select {
	case err := <-errc:
		logger.Error("The web server stopped", "err", err)
		return 1
	case <-ctx.Done():
	}
	logger.Info("Shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		logger.Error("Shutdown failed", "err", err)
		return 1
	}
	return 0
}

func reloadOnHUP(ctx context.Context, reloader *config.Reloader, logger *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := reloader.Reload(); err != nil {
				logger.Error("Reload failed; keeping the running configuration", "err", err)
				continue
			}
			logger.Info("Reloaded configuration", "file", reloader.Path())
		}
	}
}
