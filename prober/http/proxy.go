package http

import (
	"context"
	"net/http"
	"net/url"

	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// proxyConnectRefused judges a proxy's answer to the CONNECT request that
// opens a tunnel to an https target. net/http reports a refusal only as
// the status text ("Forbidden"), which no one could classify; the proxy
// answering with a failing status is a status failure of the connect
// phase, as its answer to a plain http request is one of the validate
// phase.
func proxyConnectRefused(_ context.Context, proxy *url.URL, _ *http.Request, resp *http.Response) error {
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	return taxonomy.Failf(taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus, taxonomy.PhaseConnect, "the proxy %s answered CONNECT with %q", proxy.Redacted(), resp.Status)
}
