// Package core is what binds a prober to the configuration: the prepared
// Module and Set, the Prober and Descriptor types, the Env a prober's
// Prepare gets, and the few things every prober's probe uses (the bound on
// a response header, a target's password kept out of errors, secrets, the
// trace context). A probe writes its metrics to a probemetrics.Sink and
// returns nil on success or an error that is, or wraps, a *taxonomy.Error
// saying why it failed. Core knows no prober: package prober's registry
// names them.
//
// What probers share beyond that is in small packages below core, which
// know no module: prober/netdial (resolving and dialing), prober/policy
// (the target policy), prober/tlsfacts (TLS clients and what a handshake
// showed), prober/ocsp, prober/check (response checks and query_response
// scripts), prober/probelog (a probe's debug lines) and prober/idn. A
// probe passes them its module's parts: m.Resolver, m.Policy, the
// *tlsfacts.Client its Env made.
package core

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"

	"golang.org/x/net/http/httpguts"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/tlsfiles"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/policy"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// Func probes target as module m says, writes its metrics to sink, and
// returns nil on success. Any error it returns is classified: an *Error, or
// an error Classify can read. It must return by ctx's deadline.
type Func func(ctx context.Context, target string, m *Module, sink *probemetrics.Sink, logger *slog.Logger) error

// Prober is a module's prober made ready to probe: what its Descriptor's
// Prepare returned, holding whatever it prepared (parsed CA files, a
// framed request) in its own type, so that the probe reads it without
// asserting a type.
type Prober interface {
	Probe(ctx context.Context, target string, m *Module, sink *probemetrics.Sink, logger *slog.Logger) error
}

// Descriptor is one prober as the registry lists it. Name is the value of
// a module's prober field, and its configuration section's key: what the
// configuration knows of the prober (how its section is checked, its URL
// schemes, whether it carries a trace context) is config's entry of that
// name (config.ProberSections), which a test keeps in step with the
// registry.
type Descriptor struct {
	Name string
	// Prepare readies a module once, when the configuration loads, so
	// that nothing costly (reading CA files, parsing certificates)
	// happens per probe.
	Prepare func(m *config.Module, env *Env) (Prober, error)
}

// Lookup returns the descriptor of the named prober.
func Lookup(probers []Descriptor, name string) (Descriptor, bool) {
	for _, d := range probers {
		if d.Name == name {
			return d, true
		}
	}
	return Descriptor{}, false
}

// Module is a configured module made ready to probe.
type Module struct {
	Name string
	config.Module
	// Hostname is the `hostname` URL parameter: the name to probe the
	// target as (Host header, TLS server name), empty when not given.
	Hostname string

	Resolver netdial.Resolver
	Policy   *policy.Target // nil when every target is allowed
	Prepared Prober         // nil for a prober sonde does not know
	probe    Func           // prober.Probe, bound once rather than per probe
}

// Option changes how modules are prepared.
type Option func(*options)

type options struct {
	resolver netdial.Resolver
	denied   []policy.DenyList // see WithDenied
	files    *tlsfiles.Cache   // shared by the modules of one Set
}

// WithResolver makes probes resolve names with r instead of the system
// resolver; tests use it to point probes at a DNS server of their own.
func WithResolver(r netdial.Resolver) Option {
	return func(o *options) { o.resolver = r }
}

// WithDenied makes every module refuse targets whose address is in one of
// ranges, whatever the module's own targets.allow says. by names the
// list's origin in refusals, e.g. "--probe.deny-private". Options
// accumulate: each WithDenied adds a list.
func WithDenied(by string, ranges []policy.AddressRange) Option {
	return func(o *options) {
		o.denied = append(o.denied, policy.DenyList{By: by, Ranges: slices.Clone(ranges)})
	}
}

// Set is every module of one configuration, prepared.
type Set struct {
	Config  *config.Config
	modules map[string]*Module
}

// PrepareSet prepares every module of cfg with the probers given. It fails, naming each module that
// cannot be prepared, e.g. for a CA file that does not parse. The modules
// share the CA pools and client key pairs they name, parsed once: those
// the configuration parsed while it loaded, if it did.
func PrepareSet(cfg *config.Config, probers []Descriptor, opts ...Option) (*Set, error) {
	files := cfg.TLSFiles()
	if files == nil {
		files = tlsfiles.New()
	}
	opts = append(slices.Clip(opts), func(o *options) { o.files = files })
	warmSystemRoots()
	set := &Set{Config: cfg, modules: make(map[string]*Module, len(cfg.Modules))}
	names := make([]string, 0, len(cfg.Modules))
	for name := range cfg.Modules {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		m, err := PrepareModule(name, cfg.Modules[name], probers, opts...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		set.modules[name] = m
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

// PrepareModule prepares one module with the probers given: a module of
// another prober is loaded but cannot probe.
func PrepareModule(name string, cm config.Module, probers []Descriptor, opts ...Option) (*Module, error) {
	o := options{resolver: net.DefaultResolver}
	for _, opt := range opts {
		opt(&o)
	}
	m := &Module{Name: name, Module: cm, Resolver: o.resolver}
	if cm.DNSResolver != "" {
		r, err := netdial.NewResolver(cm.DNSResolver)
		if err != nil {
			return nil, fmt.Errorf("module %q: %w", name, err)
		}
		m.Resolver = r
	}
	targets, err := policy.New(name, &cm, o.denied)
	if err != nil {
		return nil, fmt.Errorf("module %q: %w", name, err)
	}
	m.Policy = targets
	d, ok := Lookup(probers, cm.Prober)
	if !ok {
		return m, nil
	}
	env := &Env{policy: m.Policy, resolver: m.Resolver, files: o.files}
	p, err := d.Prepare(&m.Module, env)
	if err != nil {
		return nil, fmt.Errorf("module %q: %w", name, err)
	}
	env.loadTLS()
	m.Prepared, m.probe = p, p.Probe
	return m, nil
}

// Module returns the prepared module of that name.
func (s *Set) Module(name string) (*Module, bool) {
	m, ok := s.modules[name]
	return m, ok
}

// Names returns the module names, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.modules))
	for name := range s.modules {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Func returns the probe function of m's prober. ok is false for a prober
// sonde does not know, which the configuration loads with a warning, as
// blackbox_exporter does.
func (m *Module) Func() (Func, bool) {
	return m.probe, m.probe != nil
}

// WithHostname returns a copy of m probing as if the target were named
// hostname (the `hostname` URL parameter). The prepared state is shared.
//
// It fails with a plain error when the module sets another Host header (a
// scrape to refuse), and with a classified *Error when the prober would
// send the hostname where it cannot go: the websocket prober's Host header
// and the grpc prober's :authority, which blackbox_exporter has no use of
// the parameter for. The http prober fails such a hostname itself, when
// it builds its request, as blackbox's does.
func (m *Module) WithHostname(hostname string) (*Module, error) {
	if hostname == "" {
		return m, nil
	}
	if (m.Prober == "websocket" || m.Prober == "grpc") && !ValidHost(hostname) {
		return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup,
			"the hostname parameter %q is not a host name the %s prober can send; give a host name or host:port", hostname, m.Prober)
	}
	cm, err := m.Module.WithHostname(hostname)
	if err != nil {
		return nil, err
	}
	c := new(Module)
	*c = *m
	c.Module = *cm
	c.Hostname = hostname
	return c, nil
}

// ValidHost reports whether h can be sent as a Host header or :authority,
// as net/http checks it: a name that is not ASCII is sent in punycode.
func ValidHost(h string) bool {
	ascii, err := httpguts.PunycodeHostPort(h)
	return err == nil && httpguts.ValidHostHeader(ascii)
}

// warmSystemRoots loads the system CA pool now, while the configuration
// loads, so the first TLS probe does not pay for reading it inside its
// measured handshake. The standard library caches the pool afterwards.
func warmSystemRoots() {
	_, _ = x509.SystemCertPool()
}
