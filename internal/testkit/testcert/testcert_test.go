package testcert

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sonde-exporter/sonde/internal/testkit"
)

func TestIssuedCertificatesVerify(t *testing.T) {
	root := NewCA(t, Spec{})
	inter := root.Intermediate(t, Spec{Subject: pkix.Name{CommonName: "sonde test intermediate"}})
	tests := []struct {
		name     string
		ca       *CA
		spec     Spec
		usage    x509.ExtKeyUsage
		host     string
		wantErr  func(error) bool
		wantPEMs int // certificates in CertPEM: the leaf and the intermediates
	}{
		{name: "loopback server", ca: root, spec: Loopback(), usage: x509.ExtKeyUsageServerAuth, host: "127.0.0.1", wantPEMs: 1},
		{name: "named server", ca: root, spec: Spec{DNSNames: []string{"sonde.test"}}, usage: x509.ExtKeyUsageServerAuth, host: "sonde.test", wantPEMs: 1},
		{name: "client", ca: root, spec: Spec{Client: true}, usage: x509.ExtKeyUsageClientAuth, wantPEMs: 1},
		{name: "through an intermediate", ca: inter, spec: Loopback(), usage: x509.ExtKeyUsageServerAuth, host: "::1", wantPEMs: 2},
		{name: "expired", ca: root, spec: Loopback().Expired(), usage: x509.ExtKeyUsageServerAuth, wantErr: isExpired, wantPEMs: 1},
		{name: "not yet valid", ca: root, spec: Loopback().NotYetValid(), usage: x509.ExtKeyUsageServerAuth, wantErr: isExpired, wantPEMs: 1},
		{name: "wrong name", ca: root, spec: Loopback(), usage: x509.ExtKeyUsageServerAuth, host: "other.example", wantErr: isHostname, wantPEMs: 1},
		{name: "server used as a client", ca: root, spec: Loopback(), usage: x509.ExtKeyUsageClientAuth, wantErr: isUsage, wantPEMs: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.ca.Issue(t, tc.spec)
			intermediates := x509.NewCertPool()
			for _, der := range c.TLS().Certificate[1:] {
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					t.Fatal(err)
				}
				intermediates.AddCert(cert)
			}
			_, err := c.Leaf.Verify(x509.VerifyOptions{
				DNSName: tc.host, Roots: root.Pool(), Intermediates: intermediates,
				KeyUsages: []x509.ExtKeyUsage{tc.usage},
			})
			switch {
			case tc.wantErr == nil && err != nil:
				t.Errorf("verify: %v", err)
			case tc.wantErr != nil && !tc.wantErr(err):
				t.Errorf("verify: %v, want another error", err)
			}
			if got := strings.Count(string(c.CertPEM()), "BEGIN CERTIFICATE"); got != tc.wantPEMs {
				t.Errorf("CertPEM holds %d certificates, want %d", got, tc.wantPEMs)
			}
			if got := len(c.TLSWithRoot().Certificate); got != tc.wantPEMs+1 {
				t.Errorf("TLSWithRoot has %d certificates, want %d", got, tc.wantPEMs+1)
			}
		})
	}
}

func isExpired(err error) bool {
	var e x509.CertificateInvalidError
	return errors.As(err, &e) && e.Reason == x509.Expired
}

func isHostname(err error) bool {
	var e x509.HostnameError
	return errors.As(err, &e)
}

func isUsage(err error) bool {
	var e x509.CertificateInvalidError
	return errors.As(err, &e) && e.Reason == x509.IncompatibleUsage
}

func TestKeyTypes(t *testing.T) {
	ca := NewCA(t, Spec{Key: RSA2048})
	tests := []struct {
		key  KeyType
		want func(any) bool
	}{
		{ECDSAP256, func(k any) bool { e, ok := k.(*ecdsa.PrivateKey); return ok && e.Curve.Params().BitSize == 256 }},
		{ECDSAP384, func(k any) bool { e, ok := k.(*ecdsa.PrivateKey); return ok && e.Curve.Params().BitSize == 384 }},
		{RSA2048, func(k any) bool { r, ok := k.(*rsa.PrivateKey); return ok && r.N.BitLen() == 2048 }},
		{Ed25519, func(k any) bool { _, ok := k.(ed25519.PrivateKey); return ok }},
	}
	for _, tc := range tests {
		c := ca.Issue(t, Spec{Key: tc.key})
		if !tc.want(c.Key) {
			t.Errorf("key type %d made a %T", tc.key, c.Key)
		}
		// The files load as a key pair, whatever the key.
		certFile, keyFile := c.WriteFiles(t, t.TempDir(), "server")
		if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			t.Errorf("key type %d: loading the files: %v", tc.key, err)
		}
	}
}

// Serial numbers differ between certificates and CAs, and start with the
// byte 0x0a.
func TestSerialNumbers(t *testing.T) {
	seen := map[string]bool{}
	for range 3 {
		ca := NewCA(t, Spec{})
		for _, cert := range []*x509.Certificate{ca.Cert, ca.Issue(t, Spec{}).Leaf, ca.Issue(t, Spec{}).Leaf} {
			b := cert.SerialNumber.Bytes()
			if b[0] != 0x0a {
				t.Errorf("serial %x does not start with 0x0a", b)
			}
			if seen[string(b)] {
				t.Errorf("serial %x given twice", b)
			}
			seen[string(b)] = true
		}
	}
}

// A self-signed server certificate and a client trusting the CA's file
// complete a handshake; the client's certificate passes mutual TLS.
func TestHandshake(t *testing.T) {
	ca := NewCA(t, Spec{})
	dir := t.TempDir()
	caFile := ca.WriteFile(t, dir, "ca.pem")
	clientCert, clientKey := ca.Issue(t, Spec{Client: true}).WriteFiles(t, dir, "client")
	client, err := tls.LoadX509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if pem, err := os.ReadFile(caFile); err != nil || !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("reading %s: %v", caFile, err)
	}
	server := ca.Issue(t, Loopback()).ServerConfig()
	server.ClientCAs, server.ClientAuth = ca.Pool(), tls.RequireAndVerifyClientCert
	ln, err := tls.Listen("tcp", testkit.AnyPort, server)
	if err != nil {
		t.Fatal(err)
	}
	testkit.ServeConns(t, ln, func(c net.Conn) { io.WriteString(c, "ok") })
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{client}})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(conn); string(got) != "ok" {
		t.Errorf("read %q, %v", got, err)
	}
	self := SelfSigned(t, Spec{DNSNames: []string{"peer.test"}})
	if _, err := self.Leaf.Verify(x509.VerifyOptions{DNSName: "peer.test", Roots: poolOf(self.Leaf)}); err != nil {
		t.Errorf("a self-signed certificate does not verify against itself: %v", err)
	}
}

func poolOf(cert *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(cert)
	return p
}

// An OCSP answer verifies as signed by the CA, for the leaf, with the
// status asked for; a revoked one says since when.
func TestOCSPAnswer(t *testing.T) {
	ca := NewCA(t, Spec{})
	leaf := ca.Issue(t, Loopback())
	for _, status := range []int{ocsp.Good, ocsp.Revoked, ocsp.Unknown} {
		resp, err := ocsp.ParseResponseForCert(ca.OCSPAnswer(t, leaf, status), leaf.Leaf, ca.Cert)
		if err != nil {
			t.Fatalf("status %d: %v", status, err)
		}
		if resp.Status != status || resp.SerialNumber.Cmp(leaf.Leaf.SerialNumber) != 0 {
			t.Errorf("status %d, serial %x; want %d, %x", resp.Status, resp.SerialNumber, status, leaf.Leaf.SerialNumber)
		}
		if now := time.Now(); !resp.ThisUpdate.Before(now) || !resp.NextUpdate.After(now) {
			t.Errorf("status %d: valid from %v to %v, not now", status, resp.ThisUpdate, resp.NextUpdate)
		}
		if status == ocsp.Revoked && !resp.RevokedAt.Before(resp.ThisUpdate) {
			t.Errorf("revoked at %v, not before the answer", resp.RevokedAt)
		}
	}
}

// Certificates given one Signer share its key, and a CA made that way
// signs what it issues with it.
func TestSharedSigner(t *testing.T) {
	key := NewCA(t, Spec{}).Key
	a := NewCA(t, Spec{Signer: key})
	b := SelfSigned(t, Spec{Signer: key})
	if !a.Cert.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) || !b.Leaf.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Error("a certificate made with a Signer has another key")
	}
	if _, err := a.Issue(t, Loopback()).Leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: a.Pool()}); err != nil {
		t.Errorf("a CA with a shared key issued a certificate that does not verify: %v", err)
	}
}

// Named certificates verify for their name alone; File and the Make forms
// give what their testing forms give.
func TestNamedFileAndMake(t *testing.T) {
	ca, err := MakeCA(Spec{})
	if err != nil {
		t.Fatal(err)
	}
	named, err := ca.MakeCert(Named("svc.test"))
	if err != nil {
		t.Fatal(err)
	}
	if named.Leaf.Subject.CommonName != "svc.test" {
		t.Errorf("common name %q, want svc.test", named.Leaf.Subject.CommonName)
	}
	roots := x509.NewCertPool()
	if data, err := os.ReadFile(ca.File(t)); err != nil || !roots.AppendCertsFromPEM(data) {
		t.Fatalf("reading the CA's file: %v", err)
	}
	for host, ok := range map[string]bool{"svc.test": true, "localhost": false} {
		if _, err := named.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); (err == nil) != ok {
			t.Errorf("verifying for %s: %v", host, err)
		}
	}
	self, err := MakeSelfSigned(Named("self.test"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := self.Leaf.Verify(x509.VerifyOptions{DNSName: "self.test", Roots: poolOf(self.Leaf)}); err != nil {
		t.Errorf("a self-signed certificate does not verify against itself: %v", err)
	}
}
