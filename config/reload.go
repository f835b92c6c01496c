package config

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sonde-exporter/sonde/internal/regularfile"
)

// Reloader loads the configuration file and hands each good configuration
// to an apply function. A file that fails to load, or that apply refuses,
// leaves the running configuration in place. It keeps blackbox_exporter's
// reload metrics so that existing alerts keep working.
type Reloader struct {
	path   string
	apply  func(*Config) error
	logger *slog.Logger
	strict bool // warnings refuse the file, as errors do
	// settle is how long the file must have gone unwritten before a reload
	// trusts it, and settleLimit how long a reload waits for that.
	settle, settleLimit time.Duration

	mu       sync.Mutex        // one reload at a time
	lastHash [sha256.Size]byte // of the content last tried, good or bad

	success   prometheus.Gauge
	timestamp prometheus.Gauge
	info      *prometheus.GaugeVec // the running file's hash
	modules   prometheus.Gauge
	warnings  prometheus.Gauge
}

// ReloaderOption changes how a Reloader loads.
type ReloaderOption func(*Reloader)

// Strict makes warnings refuse a file as errors do (--config.strict).
func Strict(strict bool) ReloaderOption {
	return func(r *Reloader) { r.strict = strict }
}

// Settle makes a reload wait until the file has gone unwritten for d
// (DefaultSettle), giving up, and keeping the running configuration, once
// it has waited limit (DefaultSettleLimit). 0 trusts the file at once.
func Settle(d, limit time.Duration) ReloaderOption {
	return func(r *Reloader) { r.settle, r.settleLimit = d, limit }
}

// A file caught in the middle of a non-atomic copy is usually a valid
// file with fewer modules (cut between two) or a mangled last one, which
// loads: every module after the cut would be gone until the next reload.
// Copies write their chunks microseconds apart; DefaultSettle is far
// beyond that, and short enough not to slow a reload that follows a
// write. A file still being written after DefaultSettleLimit is refused.
const (
	DefaultSettle      = 250 * time.Millisecond
	DefaultSettleLimit = 10 * time.Second
)

// NewReloader returns a Reloader for the file at path. apply is called with
// every configuration that loaded cleanly; it may still refuse it, which
// counts as a failed reload.
func NewReloader(path string, apply func(*Config) error, reg prometheus.Registerer, logger *slog.Logger, opts ...ReloaderOption) *Reloader {
	r := &Reloader{
		path:        path,
		apply:       apply,
		logger:      logger,
		settle:      DefaultSettle,
		settleLimit: DefaultSettleLimit,
		success: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "blackbox_exporter_config_last_reload_successful",
			Help: "Whether the last configuration reload attempt was successful (1) or kept the previous configuration (0).",
		}),
		timestamp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "blackbox_exporter_config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful configuration reload.",
		}),
	}
	r.info = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sonde_config_info",
		Help: "Always 1; sha256 is the hash of the configuration file in use, to tell which version each instance runs.",
	}, []string{"sha256"})
	r.modules = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sonde_config_modules",
		Help: "How many modules the configuration in use defines.",
	})
	r.warnings = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sonde_config_warnings",
		Help: "How many warnings the configuration in use has: problems blackbox_exporter would load all the same, listed by --config.check and on the landing page.",
	})
	reg.MustRegister(r.success, r.timestamp, r.info, r.modules, r.warnings)
	for _, opt := range opts {
		opt(r)
	}
	return r
}

// Path returns the file the Reloader loads.
func (r *Reloader) Path() string { return r.path }

// Reload loads the file and applies it. On error the running configuration
// is untouched and the error says what is wrong. A file written less than
// the settle time ago is read again once it has gone unwritten that long,
// so that a copy in progress is not loaded half done.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	data, err := r.readSettled()
	var cfg *Config
	if err == nil {
		r.lastHash = sha256.Sum256(data)
		cfg, err = r.load(data)
	}
	if err != nil {
		r.success.Set(0)
		return err
	}
	r.success.Set(1)
	r.timestamp.SetToCurrentTime()
	r.info.Reset()
	r.info.WithLabelValues(hex.EncodeToString(r.lastHash[:])).Set(1)
	r.modules.Set(float64(len(cfg.Modules)))
	r.warnings.Set(float64(len(cfg.Warnings)))
	for _, w := range cfg.Warnings {
		r.logger.Warn("Configuration warning", "file", r.path, "warning", w.Error())
	}
	return nil
}

// readSettled reads the file once nothing has written to it for the
// settle time: at once when it was last written longer ago than that,
// else after reading it again once that time has passed, and finding the
// same content and modification time. A modification time in the future
// (a skewed clock, a copy that kept its times) settles after one settle
// time of the same content.
func (r *Reloader) readSettled() ([]byte, error) {
	data, modified, err := readStamped(r.path)
	if err != nil || r.settle <= 0 {
		return data, err
	}
	start := time.Now()
	for time.Since(modified) < r.settle {
		if time.Since(start) >= r.settleLimit {
			return nil, fmt.Errorf("config file %s was still being written after %s; not loaded half written (replace it by renaming a complete file over it)", r.path, r.settleLimit)
		}
		// Until the file will have gone unwritten for the settle time, and
		// no longer: a modification time in the future waits one settle.
		time.Sleep(min(r.settle, r.settle-time.Since(modified)))
		again, modifiedAgain, err := readStamped(r.path)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(again, data) && modifiedAgain.Equal(modified) {
			return again, nil
		}
		data, modified = again, modifiedAgain
	}
	return data, nil
}

// readStamped reads the configuration file, a regular one, and returns
// when it was last written, as it stood after the read: a write during
// the read shows.
func readStamped(path string) ([]byte, time.Time, error) {
	f, info, err := regularfile.Open(path)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("reading config file: %w", err)
	}
	defer f.Close()
	data, err := regularfile.ReadOpen(f, info)
	if err == nil {
		info, err = f.Stat()
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("reading config file: %w", err)
	}
	return data, info.ModTime(), nil
}

func (r *Reloader) load(data []byte) (*Config, error) {
	cfg, err := Load(data)
	if err == nil && r.strict {
		err = cfg.Strict()
	}
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", r.path, err)
	}
	if err := r.apply(cfg); err != nil {
		return nil, fmt.Errorf("config file %s: %w", r.path, err)
	}
	return cfg, nil
}

// Watch reloads whenever the file's content changes, checking every
// interval, until ctx is done. It backs --config.enable-auto-reload.
func (r *Reloader) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !r.changed() {
				continue
			}
			if err := r.Reload(); err != nil {
				r.logger.Error("Automatic reload failed; keeping the running configuration", "err", err)
				continue
			}
			r.logger.Info("Configuration file changed and was reloaded", "file", r.path)
		}
	}
}

// changed reports whether the file differs from what was last tried, so a
// bad file is reported once, not on every tick. A file that cannot be read
// counts as changed, so that failure is reported too.
func (r *Reloader) changed() bool {
	data, err := readRegular(r.path)
	if err != nil {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return sha256.Sum256(data) != r.lastHash
}
