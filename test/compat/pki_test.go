package compat

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
	"testing"
	"time"
)

// pki is the test's certificate authority and every certificate the peers
// and the exporters use, made at test time and written to dir so that the
// configuration can name them by file. Nothing of it is checked in.
type pki struct {
	dir    string
	serial int64 // the last serial number given; certificates are made on one goroutine

	caKey  crypto.Signer
	caCert *x509.Certificate
	caFile string
	caPEM  string

	good      tls.Certificate // 127.0.0.1, ::1, localhost
	expired   tls.Certificate // the same names, expired a day ago
	wrongHost tls.Certificate // only other.example
	named     tls.Certificate // only sonde.test, for server_name
	client    tls.Certificate // a client certificate for mutual TLS
	// chained is issued by an intermediate CA that expires before it, and
	// carries that intermediate: the earliest expiry is the intermediate's.
	chained tls.Certificate
	// tricky has a subject whose DN needs escaping (comma, quote, plus) and
	// several names of each kind, for the labels of probe_ssl_last_chain_info.
	tricky tls.Certificate

	clientCertFile, clientKeyFile string
}

// newPKI makes the CA and the certificates. Serial numbers start with the
// byte 0x0a, so a comparison of probe_ssl_last_chain_info's serialnumber
// also checks how a leading zero nibble is written.
func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir(), serial: 0x0a0000}
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          p.nextSerial(),
		Subject:               pkix.Name{CommonName: "compat test CA", Organization: []string{"sonde compat"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("creating the test CA: %v", err)
	}
	p.caKey = key
	p.caCert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parsing the test CA: %v", err)
	}
	p.caFile = p.writePEM(t, "ca.pem", "CERTIFICATE", der)
	p.caPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))

	now := time.Now()
	loopback := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	valid := [2]time.Time{now.Add(-time.Hour), now.Add(90 * 24 * time.Hour)}
	p.good = p.issue(t, "compat server", []string{"localhost"}, loopback, valid, x509.ExtKeyUsageServerAuth)
	p.expired = p.issue(t, "compat expired", []string{"localhost"}, loopback,
		[2]time.Time{now.Add(-48 * time.Hour), now.Add(-24 * time.Hour)}, x509.ExtKeyUsageServerAuth)
	p.wrongHost = p.issue(t, "compat other", []string{"other.example"}, nil, valid, x509.ExtKeyUsageServerAuth)
	p.named = p.issue(t, "sonde.test", []string{"sonde.test"}, nil, valid, x509.ExtKeyUsageServerAuth)
	p.client = p.issue(t, "compat client", nil, nil, valid, x509.ExtKeyUsageClientAuth)
	p.chained = p.issueChained(t, loopback, now)
	p.tricky = p.issueTricky(t, loopback, valid)
	p.clientCertFile = p.writePEM(t, "client.pem", "CERTIFICATE", p.client.Certificate[0])
	keyDER, err := x509.MarshalPKCS8PrivateKey(p.client.PrivateKey)
	if err != nil {
		t.Fatalf("encoding the client key: %v", err)
	}
	p.clientKeyFile = p.writePEM(t, "client-key.pem", "PRIVATE KEY", keyDER)
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generating a key: %v", err)
	}
	return key
}

func (p *pki) nextSerial() *big.Int {
	p.serial++
	return big.NewInt(p.serial)
}

// issue makes a leaf certificate signed by the CA, valid over [from, to].
func (p *pki) issue(t *testing.T, cn string, dns []string, ips []net.IP, validity [2]time.Time, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: p.nextSerial(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"sonde compat"}},
		NotBefore:    validity[0],
		NotAfter:     validity[1],
		DNSNames:     dns,
		IPAddresses:  ips,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, key.Public(), p.caKey)
	if err != nil {
		t.Fatalf("issuing %s: %v", cn, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parsing %s: %v", cn, err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// issueChained makes an intermediate CA valid for 30 days and a leaf it
// signs valid for 60, and returns the leaf with the intermediate after it.
func (p *pki) issueChained(t *testing.T, ips []net.IP, now time.Time) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          p.nextSerial(),
		Subject:               pkix.Name{CommonName: "compat intermediate", Organization: []string{"sonde compat"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, key.Public(), p.caKey)
	if err != nil {
		t.Fatalf("issuing the intermediate: %v", err)
	}
	inter, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parsing the intermediate: %v", err)
	}
	leafKey := newKey(t)
	leafTmpl := &x509.Certificate{
		SerialNumber: p.nextSerial(),
		Subject:      pkix.Name{CommonName: "compat chained", Organization: []string{"sonde compat"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(60 * 24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  ips,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, inter, leafKey.Public(), key)
	if err != nil {
		t.Fatalf("issuing the chained leaf: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{leafDER, der}, PrivateKey: leafKey}
}

// issueTricky makes a leaf whose subject needs escaping when written as a
// distinguished name.
func (p *pki) issueTricky(t *testing.T, ips []net.IP, validity [2]time.Time) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: p.nextSerial(),
		Subject: pkix.Name{
			CommonName:         `compat, "tricky" + name`,
			Organization:       []string{"Sonde, Inc.", "Second Org"},
			OrganizationalUnit: []string{"probes"},
			Country:            []string{"NL"},
		},
		NotBefore:   validity[0],
		NotAfter:    validity[1],
		DNSNames:    []string{"localhost", "tricky.compat.test", "*.wild.compat.test"},
		IPAddresses: ips,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, key.Public(), p.caKey)
	if err != nil {
		t.Fatalf("issuing the tricky leaf: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (p *pki) writePEM(t *testing.T, name, kind string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatalf("writing %s: %v", name, err)
	}
	return path
}

// serverTLS is a server configuration presenting cert. With clientAuth the
// server requires a client certificate the test CA issued.
func (p *pki) serverTLS(cert tls.Certificate, clientAuth bool) *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientAuth {
		pool := x509.NewCertPool()
		pool.AddCert(p.caCert)
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg
}

// clientTLS trusts the test CA, for the test's own clients of its peers.
func (p *pki) clientTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(p.caCert)
	return &tls.Config{RootCAs: pool}
}
