package ocsp

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/sonde-exporter/sonde/prober/netdial"
)

// A target's own certificate names the OCSP responder sonde asks with
// ocsp.check: query, so a hostile target could point sonde at an internal
// address. The module's target policy (and --probe.deny-private) applies
// to the responder as to the target.

// transportFor returns the transport that asks the responder. Through the
// module's proxy only the responder's name can be checked: the proxy is
// the operator's, and what it reaches is its own to restrict.
func (c *Client) transportFor(req *http.Request) (*http.Transport, error) {
	t := &http.Transport{Proxy: c.Proxy, DisableKeepAlives: true}
	if c.Targets == nil {
		return t, nil
	}
	if c.Proxy != nil {
		if u, err := c.Proxy(req); err == nil && u != nil {
			return t, c.Targets.RefuseName(req.URL.Hostname())
		}
	}
	t.DialContext = c.dialResponder
	return t, nil
}

// dialResponder connects to an OCSP responder at addr, refusing names and
// addresses the policy denies.
func (c *Client) dialResponder(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if err := c.Targets.RefuseName(host); err != nil {
		return nil, responderDenied{err}
	}
	ips, err := c.lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	var denied error
	for _, ip := range ips {
		if denied = c.Targets.RefuseAddress(host, ip); denied == nil {
			return d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		}
	}
	return nil, responderDenied{denied}
}

func (c *Client) lookup(ctx context.Context, host string) ([]net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IP{ip}, nil
	}
	var r netdial.Resolver = net.DefaultResolver
	if c.Resolver != nil {
		r = c.Resolver
	}
	addrs, err := r.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("resolving OCSP responder %q: %w", host, err)
	}
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = a.IP
	}
	return ips, nil
}

// responderDenied marks a responder the target policy refused.
type responderDenied struct{ err error }

func (e responderDenied) Error() string { return "OCSP responder refused: " + e.err.Error() }
func (e responderDenied) Unwrap() error { return e.err }
