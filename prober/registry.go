// Package prober runs one probe of one target: its registry lists the
// probers sonde can run, each a package of its own over prober/core, and
// NewSet and NewModule prepare a configuration's modules with them.
package prober

import (
	"sort"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/dns"
	"github.com/sonde-exporter/sonde/prober/grpc"
	httpprober "github.com/sonde-exporter/sonde/prober/http"
	"github.com/sonde-exporter/sonde/prober/icmp"
	"github.com/sonde-exporter/sonde/prober/tcp"
	"github.com/sonde-exporter/sonde/prober/unix"
	"github.com/sonde-exporter/sonde/prober/websocket"
)

// registry lists the probers sonde can run, in blackbox's order. A new
// prober is a Descriptor and one line here.
var registry = []core.Descriptor{
	{Name: "http", Prepare: httpprober.Prepare},
	{Name: "tcp", Prepare: tcp.Prepare},
	{Name: "icmp", Prepare: icmp.Prepare},
	{Name: "dns", Prepare: dns.Prepare},
	{Name: "grpc", Prepare: grpc.Prepare},
	{Name: "unix", Prepare: unix.Prepare},
	{Name: "websocket", Prepare: websocket.Prepare},
}

// NewSet prepares every module of cfg. It fails, naming each module that
// cannot be prepared, e.g. for a CA file that does not parse. The modules
// share the CA pools and client key pairs they name, parsed once: those
// the configuration parsed while it loaded, if it did.
func NewSet(cfg *config.Config, opts ...core.Option) (*core.Set, error) {
	return core.PrepareSet(cfg, registry, opts...)
}

// NewModule prepares one module.
func NewModule(name string, cm config.Module, opts ...core.Option) (*core.Module, error) {
	return core.PrepareModule(name, cm, registry, opts...)
}

// Implemented returns the names of the probers sonde can run, sorted.
func Implemented() []string {
	names := make([]string, 0, len(registry))
	for _, d := range registry {
		names = append(names, d.Name)
	}
	sort.Strings(names)
	return names
}

// IsImplemented reports whether sonde can run the named prober.
func IsImplemented(prober string) bool {
	_, ok := core.Lookup(registry, prober)
	return ok
}
