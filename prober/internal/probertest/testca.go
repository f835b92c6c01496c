package probertest

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

	"golang.org/x/crypto/ocsp"
)

// TestCA is a certificate authority made at test time. Nothing in the test
// PKI is checked in: every certificate is issued by the test that uses it.
type TestCA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	File string // cert in PEM, written to a file for tls_config.ca_file
}

// serials gives every test certificate its own serial number. Serials
// start with the byte 0x0a, so that every test of probe_ssl_last_chain_info
// checks that the leading zero nibble is kept, as blackbox_exporter does.
var serials atomic.Int64

func NextSerial() *big.Int {
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

// NewTestCA creates a root CA valid from an hour ago for ten years.
func NewTestCA(t *testing.T, name string) *TestCA {
	t.Helper()
	return newCA(t, name, nil)
}

// Intermediate creates a CA that ca issued, as a server's chain carries
// between its leaf and the root its clients trust.
func (ca *TestCA) Intermediate(t *testing.T, name string) *TestCA {
	t.Helper()
	return newCA(t, name, ca)
}

// newCA creates a CA, self-signed when parent is nil.
func newCA(t *testing.T, name string, parent *TestCA) *TestCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          NextSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"sonde tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	signer, signerKey := tmpl, crypto.Signer(key)
	if parent != nil {
		signer, signerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, key.Public(), signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &TestCA{Cert: cert, Key: key, File: filepath.Join(t.TempDir(), "ca.pem")}
	if err := os.WriteFile(ca.File, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return ca
}

// Pool returns a pool holding only the CA.
func (ca *TestCA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// LeafSpec describes a certificate to issue. Zero times mean valid from an
// hour ago for a day.
type LeafSpec struct {
	CN        string
	DNS       []string
	IPs       []net.IP
	NotBefore time.Time
	NotAfter  time.Time
	Client    bool // a client certificate instead of a server one
	serial    *big.Int
	OCSP      []string // the OCSP responders the certificate names
}

// Issued is a certificate with its key, ready for a tls.Config, and the
// files a module's tls_config can point at.
type Issued struct {
	TLS      tls.Certificate // leaf followed by the CA, as a server would send it
	Leaf     *x509.Certificate
	CertFile string
	KeyFile  string
}

func (ca *TestCA) Issue(t *testing.T, spec LeafSpec) Issued {
	t.Helper()
	key := newKey(t)
	if spec.NotBefore.IsZero() {
		spec.NotBefore = time.Now().Add(-time.Hour)
	}
	if spec.NotAfter.IsZero() {
		spec.NotAfter = time.Now().Add(24 * time.Hour)
	}
	if spec.serial == nil {
		spec.serial = NextSerial()
	}
	usage := x509.ExtKeyUsageServerAuth
	if spec.Client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: spec.serial,
		Subject:      pkix.Name{CommonName: spec.CN, Organization: []string{"sonde tests"}},
		DNSNames:     spec.DNS,
		IPAddresses:  spec.IPs,
		NotBefore:    spec.NotBefore,
		NotAfter:     spec.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		OCSPServer:   spec.OCSP,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
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
	out := Issued{
		TLS:      tls.Certificate{Certificate: [][]byte{der, ca.Cert.Raw}, PrivateKey: key, Leaf: leaf},
		Leaf:     leaf,
		CertFile: filepath.Join(dir, "cert.pem"),
		KeyFile:  filepath.Join(dir, "key.pem"),
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(out.CertFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out.KeyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// LocalhostSpec is a server certificate valid for the loopback addresses.
func LocalhostSpec() LeafSpec {
	return LeafSpec{
		CN:  "localhost",
		DNS: []string{"localhost"},
		IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
}

// OCSPAnswer is ca's signed OCSP response for leaf, valid for an hour.
func (ca *TestCA) OCSPAnswer(t *testing.T, leaf Issued, status int) []byte {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	tmpl := ocsp.Response{
		Status:       status,
		SerialNumber: leaf.Leaf.SerialNumber,
		ThisUpdate:   now.Add(-time.Minute),
		NextUpdate:   now.Add(time.Hour),
	}
	if status == ocsp.Revoked {
		tmpl.RevokedAt = now.Add(-24 * time.Hour)
		tmpl.RevocationReason = ocsp.KeyCompromise
	}
	raw, err := ocsp.CreateResponse(ca.Cert, ca.Cert, tmpl, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
