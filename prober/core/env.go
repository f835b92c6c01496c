package core

import (
	pconfig "github.com/prometheus/common/config"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/tlsfiles"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/policy"
	"github.com/sonde-exporter/sonde/prober/tlsfacts"
)

// Env is what a Descriptor's Prepare gets besides the module: the
// module's target policy and resolver, which the OCSP client of each TLS
// client it makes obeys too (a target's certificate names the responder,
// so a hostile target could point sonde at an internal address), and the
// TLS files the configuration's modules share.
type Env struct {
	policy   *policy.Target // nil when every target is allowed
	resolver netdial.Resolver
	files    *tlsfiles.Cache
	clients  []*tlsfacts.Client // made by TLSClient, loaded once Prepare returns
}

// TLSClient returns the client of a tls_config of m, for the section named
// (e.g. "http", for messages), guarded by the module's policy.
func (e *Env) TLSClient(m *config.Module, section string, cfg *pconfig.TLSConfig) (*tlsfacts.Client, error) {
	c, err := tlsfacts.NewClient(m, section, cfg)
	if err != nil {
		return nil, err
	}
	c.OCSP.Targets, c.OCSP.Resolver = e.policy, e.resolver
	e.clients = append(e.clients, c)
	return c, nil
}

// loadTLS loads the TLS clients Prepare made, after it set what they
// offer, with the CA pools and client key pairs the configuration's
// modules share (files; nil for a module of its own, sharing nothing). A
// tls_config that cannot be loaded (a file not there yet, or not a
// certificate) does not stop the module from loading, as it does not in
// blackbox_exporter, which reads the files on every probe: ready tries
// again, and each probe fails until it loads.
func (e *Env) loadTLS() {
	for _, c := range e.clients {
		_ = c.Load(e.files) // the probes report it
	}
}
