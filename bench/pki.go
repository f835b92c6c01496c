package bench

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
)

// pki is the harness's own certificate authority and the one server
// certificate it issues, for 127.0.0.1, ::1 and localhost. The HTTPS target
// and, in scale mode, the exporter's own listener present it; both
// exporters trust the CA through tls_config.ca_file, the harness through
// CertPool. Nothing is checked in: every run makes its own.
type pki struct {
	CAFile   string // the CA certificate, PEM
	CertFile string // the server certificate, PEM
	KeyFile  string // its key, PEM
	Server   tls.Certificate
	CertPool *x509.CertPool
}

// newPKI creates the CA and the server certificate and writes them to dir.
// Keys are ECDSA P-256 (testcert's default), the common choice today, so
// that the handshake costs what a real one does.
func newPKI(dir string) (*pki, error) {
	ca, err := testcert.MakeCA(testcert.Spec{Subject: pkix.Name{CommonName: "sonde load harness CA"}})
	if err != nil {
		return nil, fmt.Errorf("making the harness CA: %w", err)
	}
	server, err := ca.MakeCert(testcert.Loopback())
	if err != nil {
		return nil, fmt.Errorf("issuing the server certificate: %w", err)
	}
	p := &pki{
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "server.pem"),
		KeyFile:  filepath.Join(dir, "server-key.pem"),
		Server:   server.TLS(),
		CertPool: ca.Pool(),
	}
	for path, data := range map[string][]byte{p.CAFile: ca.PEM(), p.CertFile: server.CertPEM(), p.KeyFile: server.KeyPEM()} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return p, nil
}
