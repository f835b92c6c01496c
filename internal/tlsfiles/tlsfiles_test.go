package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pconfig "github.com/prometheus/common/config"

	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
)

// newPair is a self-signed certificate named name, with its key: a
// client's pair, or the one certificate of a CA file.
func newPair(t *testing.T, name string) *testcert.Cert {
	t.Helper()
	return testcert.SelfSigned(t, testcert.Spec{Subject: pkix.Name{CommonName: name}})
}

func write(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// replace gives path new content through a new file, as a rotation does,
// so that the change shows in the file's identity whatever the clock.
func replace(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := write(t, path+".new", data)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestTLSConfigAsPrometheusCommon: every configuration, good or bad, gives
// what pconfig.NewTLSConfig gives, error messages included, as probes and
// warnings quote them.
func TestTLSConfigAsPrometheusCommon(t *testing.T) {
	dir := t.TempDir()
	ca, client := newPair(t, "ca"), newPair(t, "client")
	caFile := write(t, filepath.Join(dir, "ca.pem"), ca.CertPEM())
	certFile := write(t, filepath.Join(dir, "cert.pem"), client.CertPEM())
	keyFile := write(t, filepath.Join(dir, "key.pem"), client.KeyPEM())
	junk := write(t, filepath.Join(dir, "junk.pem"), []byte("not a certificate\n"))
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name string
		cfg  pconfig.TLSConfig
	}{
		{"nothing", pconfig.TLSConfig{}},
		{"versions and name", pconfig.TLSConfig{ServerName: "example.com", MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13, InsecureSkipVerify: true}},
		{"max below min", pconfig.TLSConfig{MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS12}},
		{"ca_file", pconfig.TLSConfig{CAFile: caFile}},
		{"inline ca", pconfig.TLSConfig{CA: string(ca.CertPEM())}},
		{"ca and ca_file", pconfig.TLSConfig{CA: string(ca.CertPEM()), CAFile: caFile}},
		{"missing ca_file", pconfig.TLSConfig{CAFile: missing}},
		{"ca_file not PEM", pconfig.TLSConfig{CAFile: junk}},
		{"inline ca not PEM", pconfig.TLSConfig{CA: "junk"}},
		{"ca_ref", pconfig.TLSConfig{CARef: "vault"}},
		{"client pair", pconfig.TLSConfig{CertFile: certFile, KeyFile: keyFile}},
		{"inline client pair", pconfig.TLSConfig{Cert: string(client.CertPEM()), Key: pconfig.Secret(client.KeyPEM())}},
		{"cert without key", pconfig.TLSConfig{CertFile: certFile}},
		{"missing cert_file", pconfig.TLSConfig{CertFile: missing, KeyFile: keyFile}},
		{"missing key_file", pconfig.TLSConfig{CertFile: certFile, KeyFile: missing}},
		{"key of another cert", pconfig.TLSConfig{CertFile: certFile, Key: pconfig.Secret(ca.KeyPEM())}},
		{"cert_ref", pconfig.TLSConfig{CertRef: "vault", KeyFile: keyFile}},
		{"key_ref", pconfig.TLSConfig{CertFile: certFile, KeyRef: "vault"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, wantErr := pconfig.NewTLSConfig(&tc.cfg)
			got, err := New().TLSConfig(&tc.cfg)
			if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
				t.Fatalf("error %v, want %v", err, wantErr)
			}
			if err != nil {
				return
			}
			if got.ServerName != want.ServerName || got.MinVersion != want.MinVersion || got.MaxVersion != want.MaxVersion || got.InsecureSkipVerify != want.InsecureSkipVerify {
				t.Errorf("got %+v, want %+v", got, want)
			}
			if (got.RootCAs == nil) != (want.RootCAs == nil) || (got.RootCAs != nil && !got.RootCAs.Equal(want.RootCAs)) {
				t.Errorf("RootCAs differ from prometheus/common's")
			}
			if (got.GetClientCertificate == nil) != (want.GetClientCertificate == nil) {
				t.Fatalf("GetClientCertificate set: %v, want %v", got.GetClientCertificate != nil, want.GetClientCertificate != nil)
			}
			if want.GetClientCertificate != nil {
				g, err := got.GetClientCertificate(nil)
				if err != nil {
					t.Fatal(err)
				}
				w, _ := want.GetClientCertificate(nil)
				if string(g.Certificate[0]) != string(w.Certificate[0]) {
					t.Error("a different client certificate")
				}
			}
		})
	}
}

// TestOnePoolPerFile: modules naming one CA file share one pool; a new
// content gives a new pool, which replaces the old one in the cache.
func TestOnePoolPerFile(t *testing.T) {
	dir := t.TempDir()
	caFile := write(t, filepath.Join(dir, "ca.pem"), newPair(t, "first").CertPEM())
	c := New()
	pool := func(server string) *x509.CertPool {
		t.Helper()
		cfg, err := c.TLSConfig(&pconfig.TLSConfig{CAFile: caFile, ServerName: server})
		if err != nil {
			t.Fatal(err)
		}
		return cfg.RootCAs
	}
	first := pool("a.example")
	for _, server := range []string{"b.example", "c.example"} {
		if pool(server) != first {
			t.Fatal("a second module naming the same file got a pool of its own")
		}
	}
	replace(t, caFile, nil)
	if _, err := c.TLSConfig(&pconfig.TLSConfig{CAFile: caFile}); err == nil || !strings.Contains(err.Error(), caFile) {
		t.Errorf("an emptied file: %v, want an error naming it", err)
	}
	replace(t, caFile, newPair(t, "second").CertPEM())
	second := pool("a.example")
	if second == first || second.Equal(first) {
		t.Error("a changed file kept its old pool")
	}
	if pool("b.example") != second {
		t.Error("the new content is not shared")
	}
	if n := len(c.pools); n != 1 {
		t.Errorf("%d pools cached for one file, want 1", n)
	}
}

// TestSameContentSamePool: a file written again with the same content
// keeps its pool.
func TestSameContentSamePool(t *testing.T) {
	caFile := write(t, filepath.Join(t.TempDir(), "ca.pem"), newPair(t, "ca").CertPEM())
	data, _ := os.ReadFile(caFile)
	c := New()
	first, err := c.TLSConfig(&pconfig.TLSConfig{CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	replace(t, caFile, append(data, '\n'))
	again, err := c.TLSConfig(&pconfig.TLSConfig{CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	if again.RootCAs != first.RootCAs {
		t.Error("the same content was parsed again")
	}
}

// TestClientPairRotates: the client pair is read at each handshake, as
// prometheus/common reads it, but parsed once per content; a rotated pair
// is used without a reload.
func TestClientPairRotates(t *testing.T) {
	dir := t.TempDir()
	first := newPair(t, "first")
	certFile := write(t, filepath.Join(dir, "cert.pem"), first.CertPEM())
	keyFile := write(t, filepath.Join(dir, "key.pem"), first.KeyPEM())
	c := New()
	cfg, err := c.TLSConfig(&pconfig.TLSConfig{CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	other, err := c.TLSConfig(&pconfig.TLSConfig{CertFile: certFile, KeyFile: keyFile, ServerName: "other"})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := cfg.GetClientCertificate(nil)
	b, _ := other.GetClientCertificate(nil)
	if a != b {
		t.Error("two modules naming one pair got a copy each")
	}
	second := newPair(t, "second")
	replace(t, certFile, second.CertPEM())
	replace(t, keyFile, second.KeyPEM())
	rotated, err := cfg.GetClientCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Leaf == nil || rotated.Leaf.Subject.CommonName != "second" {
		t.Errorf("after rotation the client certificate is %v, want the second", rotated.Leaf.Subject)
	}
	if n := len(c.pairs); n != 1 {
		t.Errorf("%d pairs cached, want 1", n)
	}
}
