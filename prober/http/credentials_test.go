package http

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// Failures before the request reaches the target (an OAuth2 token that
// cannot be had, a credentials file gone) are sonde's, not the target's:
// class prober, reason credentials, not connect/refused or unknown.
func TestHTTPCredentialFailures(t *testing.T) {
	var targetHit bool
	target := probertest.NewServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { targetHit = true }), probertest.ServerOpts{})
	refusingTokens := testkit.ClosedTCPAddr(t)
	deniedTokens := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client"}`)
	}), probertest.ServerOpts{})

	for _, tc := range []struct {
		name    string
		section string
		message string
	}{
		{"token endpoint refuses", fmt.Sprintf("oauth2:\n  client_id: c\n  client_secret: s\n  token_url: http://%s/token", refusingTokens), "connection refused"},
		{"token endpoint denies", fmt.Sprintf("oauth2:\n  client_id: c\n  client_secret: s\n  token_url: %s/token", deniedTokens.URL), "invalid_client"},
		{"credentials file gone", "authorization:\n  credentials_file: " + filepath.Join(t.TempDir(), "missing"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			targetHit = false
			_, err := probertest.Run(t, yamlModule(t, tc.section), target.URL)
			e := checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonCredentials, taxonomy.PhaseSetup})
			if e != nil && !strings.Contains(e.Error(), tc.message) {
				t.Errorf("error %v does not say %q", e, tc.message)
			}
			if targetHit {
				t.Error("the target was probed without credentials")
			}
		})
	}
}

// A redirect to a scheme the prober cannot follow is the target's doing.
func TestHTTPRedirectToUnsupportedScheme(t *testing.T) {
	srv := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ftp://files.example/x", http.StatusFound)
	}), probertest.ServerOpts{})
	_, err := probertest.Run(t, newModule(t, nil), srv.URL)
	e := checkOutcome(t, err, failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseProcessing})
	if e != nil && !strings.Contains(e.Error(), "redirected to ftp://files.example/x") {
		t.Errorf("error %v", e)
	}
}

// A body that is empty has nothing to decompress: HEAD and 204 answers
// succeed with any compression configured.
func TestHTTPEmptyBodyWithCompression(t *testing.T) {
	srv := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/204" {
			w.WriteHeader(http.StatusNoContent)
		}
	}), probertest.ServerOpts{})
	for _, compression := range []string{"gzip", "br", "deflate"} {
		for _, tc := range []struct{ method, path string }{{"HEAD", "/"}, {"GET", "/204"}, {"GET", "/"}} {
			m := newModule(t, func(h *config.HTTPProbe) {
				h.Compression = compression
				h.Method = tc.method
				h.ValidStatusCodes = []int{200, 204}
			})
			sink, err := probertest.Run(t, m, srv.URL+tc.path)
			if err != nil {
				t.Errorf("%s %s %s: %v", compression, tc.method, tc.path, err)
				continue
			}
			probertest.Metric(t, sink, 0, "probe_http_uncompressed_body_length")
		}
	}
}

// A name /etc/hosts lists only with the other family makes Go's resolver
// answer "no suitable address", which is dns/no_address, not unknown.
func TestLookupNoSuitableAddress(t *testing.T) {
	r := hostsOnlyResolver{}
	_, err := netdial.LookupAddress(context.Background(), r, "localhost", netdial.IP6, false)
	checkOutcome(t, err, failure{taxonomy.ClassDNS, taxonomy.ReasonNoAddress, taxonomy.PhaseResolve})
}

type hostsOnlyResolver struct{}

func (hostsOnlyResolver) LookupIPAddr(context.Context, string) ([]net.IPAddr, error) {
	return []net.IPAddr{{IP: net.ParseIP("127.0.0.1")}}, nil
}

func (hostsOnlyResolver) LookupIP(_ context.Context, _, host string) ([]net.IP, error) {
	return nil, &net.AddrError{Err: "no suitable address found", Addr: host}
}
