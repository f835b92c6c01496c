package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"golang.org/x/crypto/bcrypt"
)

// TestWebConfigSecuresEveryEndpoint starts the sonde binary with an
// exporter-toolkit web configuration (TLS and basic authentication) and
// talks to it as clients would: every endpoint answers only over TLS, only
// with the right credentials, and /-/reload only to a POST.
func TestWebConfigSecuresEveryEndpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	ca := testcert.NewCA(t, testcert.Spec{})
	certFile, keyFile := ca.Issue(t, testcert.Loopback()).WriteFiles(t, dir, "server")
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	writeFile(t, webConfig, "tls_server_config:\n"+
		"  cert_file: "+certFile+"\n"+
		"  key_file: "+keyFile+"\n"+
		"basic_auth_users:\n"+
		"  prometheus: "+string(hash)+"\n")
	cfgFile := filepath.Join(dir, "sonde.yml")
	writeFile(t, cfgFile, goodConfig)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer target.Close()

	trusted := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	base := startSecured(t, cfgFile, webConfig, func(base string) bool {
		resp, err := do(trusted, http.MethodGet, base+"/-/healthy", "prometheus", "s3cret")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	addr := strings.TrimPrefix(base, "https://")

	query := url.Values{"module": {"http_2xx"}, "target": {target.URL}}.Encode()
	probe := "/probe?" + query
	// In this order: /logs shows the probe made through /probe.
	endpoints := []string{"/", probe, "/metrics", "/-/healthy", "/-/ready", "/config", "/logs?" + query, "/probe/detail?id=0"}
	for _, path := range endpoints {
		t.Run("GET "+path, func(t *testing.T) {
			tests := []struct {
				name       string
				user, pass string
				want       int
			}{
				{name: "no credentials", want: http.StatusUnauthorized},
				{name: "unknown user", user: "mallory", pass: "s3cret", want: http.StatusUnauthorized},
				{name: "wrong password", user: "prometheus", pass: "guess", want: http.StatusUnauthorized},
				{name: "right credentials", user: "prometheus", pass: "s3cret", want: http.StatusOK},
			}
			for _, tt := range tests {
				resp, err := do(trusted, http.MethodGet, base+path, tt.user, tt.pass)
				if err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.want {
					t.Errorf("%s: status %d, want %d; body %q", tt.name, resp.StatusCode, tt.want, body)
				}
				if tt.want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s: a 401 without WWW-Authenticate", tt.name)
				}
				if tt.want == http.StatusOK && path == probe && !strings.Contains(string(body), "probe_success 1") {
					t.Errorf("the probe through the secured endpoint did not succeed:\n%s", body)
				}
			}
		})
	}

	t.Run("/-/reload", func(t *testing.T) {
		tests := []struct {
			method, user, pass string
			want               int
		}{
			{method: http.MethodPost, want: http.StatusUnauthorized},
			{method: http.MethodPost, user: "prometheus", pass: "guess", want: http.StatusUnauthorized},
			{method: http.MethodGet, user: "prometheus", pass: "s3cret", want: http.StatusMethodNotAllowed},
			{method: http.MethodPut, user: "prometheus", pass: "s3cret", want: http.StatusMethodNotAllowed},
			{method: http.MethodPost, user: "prometheus", pass: "s3cret", want: http.StatusOK},
		}
		for _, tt := range tests {
			resp, err := do(trusted, tt.method, base+"/-/reload", tt.user, tt.pass)
			if err != nil {
				t.Fatalf("%s as %q: %v", tt.method, tt.user, err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("%s as %q: status %d, want %d", tt.method, tt.user, resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != http.MethodPost {
				t.Errorf("%s: Allow = %q, want POST", tt.method, resp.Header.Get("Allow"))
			}
		}
	})

	t.Run("plain HTTP", func(t *testing.T) {
		// The TLS port refuses a plaintext request without serving it.
		resp, err := do(&http.Client{Timeout: 10 * time.Second}, http.MethodGet, "http://"+addr+"/metrics", "prometheus", "s3cret")
		if err != nil {
			return // the connection was dropped: nothing was served
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(body), "sonde_") {
			t.Errorf("plaintext request: status %d, body %q; want 400 and no metrics", resp.StatusCode, body)
		}
	})

	t.Run("untrusted or outdated TLS", func(t *testing.T) {
		tests := []struct {
			name   string
			config *tls.Config
			failed func(error) bool // recognises the expected failure
		}{
			{
				name:   "a client that does not trust the certificate",
				config: &tls.Config{},
				failed: func(err error) bool {
					var unknown x509.UnknownAuthorityError
					return errors.As(err, &unknown)
				},
			},
			{
				// exporter-toolkit's default min_version is TLS 1.2.
				name:   "TLS 1.1",
				config: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11},
				failed: func(err error) bool {
					// The server's protocol_version alert, which crypto/tls
					// reports as a "remote error" *net.OpError.
					var op *net.OpError
					return errors.As(err, &op) && op.Op == "remote error" && strings.Contains(op.Err.Error(), "protocol version")
				},
			},
		}
		for _, tt := range tests {
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tt.config}}
			resp, err := do(client, http.MethodGet, base+"/metrics", "prometheus", "s3cret")
			if err == nil {
				resp.Body.Close()
				t.Errorf("%s: got status %d, want the handshake to fail", tt.name, resp.StatusCode)
				continue
			}
			if !tt.failed(err) {
				t.Errorf("%s: %v, not the expected TLS failure", tt.name, err)
			}
		}
	})
}

func do(client *http.Client, method, u, user, pass string) (*http.Response, error) {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return nil, err
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	return client.Do(req)
}

// startSecured runs the sonde binary with a web configuration until the
// test ends, waits until ready reports it serves at its https:// base URL,
// and returns that URL.
func startSecured(t *testing.T, configFile, webConfig string, ready func(base string) bool) string {
	t.Helper()
	p := runSonde(t, "https", "--config.file="+configFile, "--web.config.file="+webConfig)
	deadline := time.Now().Add(startTimeout)
	for !ready(p.base) {
		if time.Now().After(deadline) {
			t.Fatalf("sonde did not serve over TLS within %v:\n%s", startTimeout, p.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p.base
}
