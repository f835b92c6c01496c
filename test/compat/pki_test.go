package compat

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"net"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
)

// pki is the test's certificate authority and every certificate the peers
// and the exporters use, made at test time and written to a directory so
// that the configuration can name them by file. Nothing of it is checked
// in. Serial numbers start with the byte 0x0a (testkit's), so a comparison
// of probe_ssl_last_chain_info's serialnumber also checks how a leading
// zero nibble is written.
type pki struct {
	ca     *testcert.CA
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

// org is the organization of every certificate of the suite.
var org = []string{"sonde compat"}

// newPKI makes the CA and the certificates.
func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	ca := testcert.NewCA(t, testcert.Spec{Subject: pkix.Name{CommonName: "compat test CA", Organization: org}})
	p := &pki{ca: ca, caFile: ca.WriteFile(t, dir, "ca.pem"), caPEM: string(ca.PEM())}

	loopback := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	server := func(cn string, dns []string, ips []net.IP) testcert.Spec {
		return testcert.Spec{Subject: pkix.Name{CommonName: cn, Organization: org}, DNSNames: dns, IPAddresses: ips,
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour)}
	}
	p.good = ca.Issue(t, server("compat server", []string{"localhost"}, loopback)).TLS()
	p.expired = ca.Issue(t, server("compat expired", []string{"localhost"}, loopback).Expired()).TLS()
	p.wrongHost = ca.Issue(t, server("compat other", []string{"other.example"}, nil)).TLS()
	p.named = ca.Issue(t, server("sonde.test", []string{"sonde.test"}, nil)).TLS()
	clientSpec := server("compat client", nil, nil)
	clientSpec.Client = true
	client := ca.Issue(t, clientSpec)
	p.client = client.TLS()
	p.clientCertFile, p.clientKeyFile = client.WriteFiles(t, dir, "client")
	p.chained = p.issueChained(t, loopback, now)
	tricky := server("", []string{"localhost", "tricky.compat.test", "*.wild.compat.test"}, loopback)
	tricky.Subject = pkix.Name{
		CommonName:         `compat, "tricky" + name`,
		Organization:       []string{"Sonde, Inc.", "Second Org"},
		OrganizationalUnit: []string{"probes"},
		Country:            []string{"NL"},
	}
	p.tricky = ca.Issue(t, tricky).TLS()
	return p
}

// issueChained makes an intermediate CA valid for 30 days and a leaf it
// signs valid for 60, and returns the leaf with the intermediate after it.
func (p *pki) issueChained(t *testing.T, ips []net.IP, now time.Time) tls.Certificate {
	t.Helper()
	inter := p.ca.Intermediate(t, testcert.Spec{Subject: pkix.Name{CommonName: "compat intermediate", Organization: org},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour)})
	return inter.Issue(t, testcert.Spec{Subject: pkix.Name{CommonName: "compat chained", Organization: org},
		DNSNames: []string{"localhost"}, IPAddresses: ips,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(60 * 24 * time.Hour)}).TLS()
}

// serverTLS is a server configuration presenting cert. With clientAuth the
// server requires a client certificate the test CA issued.
func (p *pki) serverTLS(cert tls.Certificate, clientAuth bool) *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientAuth {
		cfg.ClientCAs = p.ca.Pool()
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg
}

// clientTLS trusts the test CA, for the test's own clients of its peers.
func (p *pki) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: p.ca.Pool()}
}
