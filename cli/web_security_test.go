package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/internal/testkit"
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
	pki := newTestPKI(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	writeFile(t, webConfig, "tls_server_config:\n"+
		"  cert_file: "+pki.certFile+"\n"+
		"  key_file: "+pki.keyFile+"\n"+
		"basic_auth_users:\n"+
		"  prometheus: "+string(hash)+"\n")
	cfgFile := filepath.Join(dir, "sonde.yml")
	writeFile(t, cfgFile, goodConfig)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer target.Close()

	addr := testkit.FreeAddr(t)
	base := "https://" + addr
	trusted := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.pool}}}
	startSecured(t, cfgFile, webConfig, addr, func() bool {
		resp, err := do(trusted, http.MethodGet, base+"/-/healthy", "prometheus", "s3cret")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

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
				config: &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11},
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
// test ends, and waits until ready reports it serves.
func startSecured(t *testing.T, configFile, webConfig, addr string, ready func() bool) {
	t.Helper()
	bin := sondeBin.Path(t)
	cmd := exec.Command(bin, "--config.file="+configFile, "--web.config.file="+webConfig, "--web.listen-address="+addr)
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("sonde's log:\n%s", logs)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !ready() {
		if time.Now().After(deadline) {
			t.Fatalf("sonde did not serve over TLS within 10s:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testPKI is a CA and a server certificate for 127.0.0.1 it issued, the
// certificate and key written as PEM files.
type testPKI struct {
	pool              *x509.CertPool
	certFile, keyFile string
}

func newTestPKI(t *testing.T, dir string) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sonde web test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := testPKI{pool: x509.NewCertPool(), certFile: filepath.Join(dir, "server.crt"), keyFile: filepath.Join(dir, "server.key")}
	p.pool.AddCert(ca)
	writeFile(t, p.certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, p.keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	return p
}
