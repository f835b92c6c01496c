package prober

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// testCA is a certificate authority made at test time. Nothing in the test
// PKI is checked in: every certificate is issued by the test that uses it.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	file string // cert in PEM, written to a file for tls_config.ca_file
}

// serials gives every test certificate its own serial number. Serials
// start with the byte 0x0a, so that every test of probe_ssl_last_chain_info
// checks that the leading zero nibble is kept, as blackbox_exporter does.
var serials atomic.Int64

func nextSerial() *big.Int {
	return big.NewInt(0x0a0000 + serials.Add(1))
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// newTestCA creates a root CA valid from an hour ago for ten years.
func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	return newCA(t, name, nil)
}

// intermediate creates a CA that ca issued, as a server's chain carries
// between its leaf and the root its clients trust.
func (ca *testCA) intermediate(t *testing.T, name string) *testCA {
	t.Helper()
	return newCA(t, name, ca)
}

// newCA creates a CA, self-signed when parent is nil.
func newCA(t *testing.T, name string, parent *testCA) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"sonde tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	signer, signerKey := tmpl, crypto.Signer(key)
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, key.Public(), signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, file: filepath.Join(t.TempDir(), "ca.pem")}
	if err := os.WriteFile(ca.file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return ca
}

// pool returns a pool holding only the CA.
func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// leafSpec describes a certificate to issue. Zero times mean valid from an
// hour ago for a day.
type leafSpec struct {
	cn        string
	dns       []string
	ips       []net.IP
	notBefore time.Time
	notAfter  time.Time
	client    bool // a client certificate instead of a server one
	serial    *big.Int
	ocsp      []string // the OCSP responders the certificate names
}

// issued is a certificate with its key, ready for a tls.Config, and the
// files a module's tls_config can point at.
type issued struct {
	tls      tls.Certificate // leaf followed by the CA, as a server would send it
	leaf     *x509.Certificate
	certFile string
	keyFile  string
}

func (ca *testCA) issue(t *testing.T, spec leafSpec) issued {
	t.Helper()
	key := newKey(t)
	if spec.notBefore.IsZero() {
		spec.notBefore = time.Now().Add(-time.Hour)
	}
	if spec.notAfter.IsZero() {
		spec.notAfter = time.Now().Add(24 * time.Hour)
	}
	if spec.serial == nil {
		spec.serial = nextSerial()
	}
	usage := x509.ExtKeyUsageServerAuth
	if spec.client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: spec.serial,
		Subject:      pkix.Name{CommonName: spec.cn, Organization: []string{"sonde tests"}},
		DNSNames:     spec.dns,
		IPAddresses:  spec.ips,
		NotBefore:    spec.notBefore,
		NotAfter:     spec.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		OCSPServer:   spec.ocsp,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := issued{
		tls:      tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf},
		leaf:     leaf,
		certFile: filepath.Join(dir, "cert.pem"),
		keyFile:  filepath.Join(dir, "key.pem"),
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(out.certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out.keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// localhostSpec is a server certificate valid for the loopback addresses.
func localhostSpec() leafSpec {
	return leafSpec{
		cn:  "localhost",
		dns: []string{"localhost"},
		ips: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
}
