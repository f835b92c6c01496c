// Package testcert makes the certificates of tests and of the load
// harness at run time: nothing is checked in, so nothing can expire in the
// repository.
//
// It does not import testing, so that the harness's binary does not link
// it: its helpers that fail a test take a TB, which *testing.T and
// *testing.B satisfy, and its constructors have a Make form that returns an
// error instead.
package testcert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ocsp"
)

// TB is the part of testing.TB the helpers use.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	TempDir() string
}

// KeyType is the kind of key a certificate is made with.
type KeyType int

const (
	ECDSAP256 KeyType = iota // the default: quick to make, and what most servers use
	ECDSAP384
	RSA2048
	Ed25519
)

// Spec describes a certificate to make. Its zero value is a server
// certificate with an ECDSA P-256 key and no names, valid from an hour ago
// for a day (a CA: for ten years).
type Spec struct {
	Subject     pkix.Name // CommonName "sonde test" (a CA: "sonde test CA") when empty
	DNSNames    []string
	IPAddresses []net.IP
	NotBefore   time.Time
	NotAfter    time.Time
	Client      bool // client authentication instead of server authentication
	Key         KeyType
	// Signer, when set, is the certificate's key instead of a new one of
	// type Key: many certificates can share one slow RSA key.
	Signer     crypto.Signer
	Serial     *big.Int // a random one, starting with the byte 0x0a, when nil
	OCSPServer []string // the OCSP responders the certificate names
}

// Loopback is the spec of a server certificate for "localhost",
// 127.0.0.1 and ::1.
func Loopback() Spec {
	return Spec{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
}

// Named is the spec of a server certificate for the DNS name name alone,
// which is also its common name.
func Named(name string) Spec {
	return Spec{Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}}
}

// Expired is s valid from two days ago to a day ago.
func (s Spec) Expired() Spec {
	now := time.Now()
	s.NotBefore, s.NotAfter = now.Add(-48*time.Hour), now.Add(-24*time.Hour)
	return s
}

// NotYetValid is s valid from a day from now to two days from now.
func (s Spec) NotYetValid() Spec {
	now := time.Now()
	s.NotBefore, s.NotAfter = now.Add(24*time.Hour), now.Add(48*time.Hour)
	return s
}

// template is the certificate s describes, before it is signed: a CA's
// when ca is set.
func (s Spec) template(ca bool) (*x509.Certificate, error) {
	serial := s.Serial
	if serial == nil {
		var err error
		if serial, err = newSerial(); err != nil {
			return nil, err
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      s.Subject,
		DNSNames:     s.DNSNames,
		IPAddresses:  s.IPAddresses,
		NotBefore:    s.NotBefore,
		NotAfter:     s.NotAfter,
		OCSPServer:   s.OCSPServer,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if ca {
		makeCA(tmpl)
	} else {
		makeLeaf(tmpl, s.Client)
	}
	return tmpl, nil
}

func makeCA(tmpl *x509.Certificate) {
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(10 * 365 * 24 * time.Hour)
	}
	if tmpl.Subject.CommonName == "" {
		tmpl.Subject.CommonName = "sonde test CA"
	}
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage |= x509.KeyUsageCertSign
}

func makeLeaf(tmpl *x509.Certificate, client bool) {
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	}
	if tmpl.Subject.CommonName == "" {
		tmpl.Subject.CommonName = "sonde test"
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
}

// newSerial is a random 64-bit serial number whose first byte is 0x0a: no
// two certificates share one without a counter shared between tests, and
// a serial number that starts with a zero nibble checks that exporters
// write it with its leading zero, as blackbox_exporter does.
func newSerial() (*big.Int, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("drawing a serial number: %w", err)
	}
	b[0] = 0x0a
	return new(big.Int).SetBytes(b), nil
}

// key is the key s asks for: its Signer, or a new key of type s.Key.
func (s Spec) key() (crypto.Signer, error) {
	if s.Signer != nil {
		return s.Signer, nil
	}
	return newKey(s.Key)
}

func newKey(kind KeyType) (crypto.Signer, error) {
	switch kind {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case Ed25519:
		_, key, err := ed25519.GenerateKey(rand.Reader)
		return key, err
	}
	return nil, fmt.Errorf("unknown key type %d", kind)
}

// CA is a certificate authority made by a test.
type CA struct {
	Cert   *x509.Certificate
	Key    crypto.Signer
	parent *CA // nil for a root
}

// NewCA makes a root CA described by spec (the zero Spec will do).
func NewCA(tb TB, spec Spec) *CA {
	tb.Helper()
	ca, err := MakeCA(spec)
	if err != nil {
		tb.Fatalf("making a test CA: %v", err)
	}
	return ca
}

// MakeCA is NewCA for code that has no TB.
func MakeCA(spec Spec) (*CA, error) { return newCA(spec, nil) }

// Intermediate makes a CA that ca signs, as a server's chain carries
// between its leaf and the root its clients trust.
func (ca *CA) Intermediate(tb TB, spec Spec) *CA {
	tb.Helper()
	inter, err := newCA(spec, ca)
	if err != nil {
		tb.Fatalf("making an intermediate CA: %v", err)
	}
	return inter
}

func newCA(spec Spec, parent *CA) (*CA, error) {
	tmpl, err := spec.template(true)
	if err != nil {
		return nil, err
	}
	key, err := spec.key()
	if err != nil {
		return nil, fmt.Errorf("making the key of %q: %w", tmpl.Subject.CommonName, err)
	}
	issuer, issuerKey := tmpl, key
	if parent != nil {
		issuer, issuerKey = parent.Cert, parent.Key
	}
	cert, err := sign(tmpl, issuer, key.Public(), issuerKey)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, parent: parent}, nil
}

// Issue makes a certificate described by spec, signed by ca.
func (ca *CA) Issue(tb TB, spec Spec) *Cert {
	tb.Helper()
	c, err := ca.MakeCert(spec)
	if err != nil {
		tb.Fatalf("issuing a test certificate: %v", err)
	}
	return c
}

// MakeCert is Issue for code that has no TB.
func (ca *CA) MakeCert(spec Spec) (*Cert, error) {
	tmpl, err := spec.template(false)
	if err != nil {
		return nil, err
	}
	key, err := spec.key()
	if err != nil {
		return nil, fmt.Errorf("making the key of %q: %w", tmpl.Subject.CommonName, err)
	}
	leaf, err := sign(tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	var chain []*x509.Certificate
	for up := ca; up != nil; up = up.parent {
		chain = append(chain, up.Cert)
	}
	return newCert(leaf, key, chain)
}

func sign(tmpl, issuer *x509.Certificate, pub crypto.PublicKey, issuerKey crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, pub, issuerKey)
	if err != nil {
		return nil, fmt.Errorf("signing %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing %q: %w", tmpl.Subject.CommonName, err)
	}
	return cert, nil
}

// Pool is a certificate pool holding ca alone, for a client that trusts it.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// PEM is ca's certificate in PEM, as a tls_config's ca or ca_file holds it.
func (ca *CA) PEM() []byte { return certPEM(ca.Cert) }

// WriteFile writes ca's certificate in PEM to dir/name and returns the path.
func (ca *CA) WriteFile(tb TB, dir, name string) string {
	tb.Helper()
	return writePEMFile(tb, filepath.Join(dir, name), ca.PEM())
}

// File writes ca's certificate in PEM to a directory of the test's own and
// returns the path, for a tls_config's ca_file.
func (ca *CA) File(tb TB) string {
	tb.Helper()
	return ca.WriteFile(tb, tb.TempDir(), "ca.pem")
}

// OCSPAnswer is ca's signed OCSP response with status (ocsp.Good,
// ocsp.Revoked...) for leaf, which ca issued, valid for an hour.
func (ca *CA) OCSPAnswer(tb TB, leaf *Cert, status int) []byte {
	tb.Helper()
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
		tb.Fatalf("signing an OCSP response for %q: %v", leaf.Leaf.Subject.CommonName, err)
	}
	return raw
}

// Cert is a certificate made by a test, with its key.
type Cert struct {
	Leaf *x509.Certificate
	Key  crypto.Signer
	// Chain is the CAs above Leaf, its issuer first and the root last;
	// empty for a self-signed certificate.
	Chain []*x509.Certificate

	keyDER []byte // Key in PKCS #8
}

// SelfSigned makes a certificate described by spec that signs itself.
func SelfSigned(tb TB, spec Spec) *Cert {
	tb.Helper()
	c, err := MakeSelfSigned(spec)
	if err != nil {
		tb.Fatalf("making a self-signed certificate: %v", err)
	}
	return c
}

// MakeSelfSigned is SelfSigned for code that has no TB, such as a peer
// process a test starts.
func MakeSelfSigned(spec Spec) (*Cert, error) {
	tmpl, err := spec.template(false)
	if err != nil {
		return nil, err
	}
	key, err := spec.key()
	if err != nil {
		return nil, fmt.Errorf("making the key of %q: %w", tmpl.Subject.CommonName, err)
	}
	leaf, err := sign(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return newCert(leaf, key, nil)
}

func newCert(leaf *x509.Certificate, key crypto.Signer, chain []*x509.Certificate) (*Cert, error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the key of %q: %w", leaf.Subject.CommonName, err)
	}
	return &Cert{Leaf: leaf, Key: key, Chain: chain, keyDER: keyDER}, nil
}

// TLS is c as a server conventionally presents it: the leaf and the
// intermediate CAs, without the root its clients already hold.
func (c *Cert) TLS() tls.Certificate {
	chain := c.Chain
	if len(chain) > 0 {
		chain = chain[:len(chain)-1]
	}
	return c.tls(chain)
}

// TLSWithRoot is c with every CA above it, the root included, as some
// servers present it.
func (c *Cert) TLSWithRoot() tls.Certificate { return c.tls(c.Chain) }

func (c *Cert) tls(chain []*x509.Certificate) tls.Certificate {
	out := tls.Certificate{Certificate: [][]byte{c.Leaf.Raw}, PrivateKey: c.Key, Leaf: c.Leaf}
	for _, ca := range chain {
		out.Certificate = append(out.Certificate, ca.Raw)
	}
	return out
}

// ServerConfig is a server's TLS configuration presenting c.TLS().
func (c *Cert) ServerConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.TLS()}}
}

// CertPEM is c.TLS()'s certificates in PEM, the leaf first, as a
// cert_file holds them.
func (c *Cert) CertPEM() []byte {
	var out []byte
	for _, der := range c.TLS().Certificate {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return out
}

// KeyPEM is c's key in PKCS #8 PEM, as a key_file holds it.
func (c *Cert) KeyPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: c.keyDER})
}

// WriteFiles writes c's certificates to dir/name.pem and its key to
// dir/name-key.pem, and returns both paths.
func (c *Cert) WriteFiles(tb TB, dir, name string) (certFile, keyFile string) {
	tb.Helper()
	certFile = writePEMFile(tb, filepath.Join(dir, name+".pem"), c.CertPEM())
	keyFile = writePEMFile(tb, filepath.Join(dir, name+"-key.pem"), c.KeyPEM())
	return certFile, keyFile
}

func certPEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

func writePEMFile(tb TB, path string, data []byte) string {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatalf("writing %s: %v", path, err)
	}
	return path
}
