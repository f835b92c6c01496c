package prober

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
	"github.com/sonde-exporter/sonde/prober/tlsfacts"
)

// chainServer serves okHandler over TLS with a leaf issued by an
// intermediate of root, sending the intermediate unless withoutIntermediate.
func chainServer(t *testing.T, root *testcert.CA, withoutIntermediate bool) (url string, leaf *testcert.Cert, inter *testcert.CA) {
	t.Helper()
	inter = root.Intermediate(t, testcert.Spec{Subject: pkix.Name{CommonName: "sonde intermediate CA"}})
	spec := testcert.Loopback()
	spec.NotBefore = time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	leaf = inter.Issue(t, spec)
	presented := leaf.TLS()
	if withoutIntermediate {
		presented.Certificate = presented.Certificate[:1]
	}
	srv := probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{TLS: true, Cert: &presented})
	return srv.URL, leaf, inter
}

// Every presented certificate is described by position, with both ends of
// its validity window.
func TestTLSChainPerCertificate(t *testing.T) {
	root := testcert.NewCA(t, testcert.Spec{Subject: pkix.Name{CommonName: "sonde root CA"}})
	url, leaf, inter := chainServer(t, root, false)
	m := newModule(t, func(h *config.HTTPProbe) { h.HTTPClientConfig.TLSConfig.CAFile = root.File(t) })
	sink, err := probertest.Run(t, m, url)
	checkOutcome(t, err, failure{})
	probertest.Metric(t, sink, 1, "probe_tls_verified")
	for i, c := range []struct {
		subject, issuer string
		notBefore       time.Time
		notAfter        time.Time
		fp              string
	}{
		{"CN=localhost", "CN=sonde intermediate CA", leaf.Leaf.NotBefore, leaf.Leaf.NotAfter, tlsfacts.Fingerprint(leaf.Leaf)},
		{"CN=sonde intermediate CA", "CN=sonde root CA", inter.Cert.NotBefore, inter.Cert.NotAfter, tlsfacts.Fingerprint(inter.Cert)},
	} {
		pos := strconv.Itoa(i)
		probertest.Metric(t, sink, float64(c.notBefore.Unix()), "probe_tls_cert_not_before_timestamp_seconds", pos, c.fp)
		probertest.Metric(t, sink, float64(c.notAfter.Unix()), "probe_tls_cert_not_after_timestamp_seconds", pos, c.fp)
		got := seriesLabels(t, sink, "probe_tls_cert_info", pos)
		if got["subject"] != c.subject || got["issuer"] != c.issuer || got["fingerprint_sha256"] != c.fp {
			t.Errorf("probe_tls_cert_info position %s = %v, want subject %q issuer %q", pos, got, c.subject, c.issuer)
		}
	}
	if got := seriesLabels(t, sink, "probe_tls_cert_info", "0")["subjectalternative"]; got != "localhost,127.0.0.1,::1" {
		t.Errorf("leaf subjectalternative = %q, want DNS names then IPs", got)
	}
	// The verified chain runs up to the root, which the server did not
	// send; the chain's expiry is its earliest certificate's.
	probertest.Metric(t, sink, float64(leaf.Leaf.NotAfter.Unix()), "probe_ssl_last_chain_expiry_timestamp_seconds")
}

// A server that forgets its intermediate fails verification, and says so
// with the chain it did send.
func TestTLSMissingIntermediate(t *testing.T) {
	root := testcert.NewCA(t, testcert.Spec{})
	url, leaf, _ := chainServer(t, root, true)
	m := newModule(t, func(h *config.HTTPProbe) { h.HTTPClientConfig.TLSConfig.CAFile = root.File(t) })
	sink, err := probertest.Run(t, m, url)
	checkOutcome(t, err, failure{taxonomy.ClassTLS, taxonomy.ReasonCertUnknownAuthority, taxonomy.PhaseTLS})
	probertest.ChainSurvived(t, sink)
	probertest.Metric(t, sink, float64(leaf.Leaf.NotBefore.Unix()), "probe_tls_cert_not_before_timestamp_seconds", "0", tlsfacts.Fingerprint(leaf.Leaf))
	if n := probertest.SeriesCount(t, sink, "probe_tls_cert_info"); n != 1 {
		t.Errorf("probe_tls_cert_info has %d series, want 1: only the leaf was presented", n)
	}
}

// An expired certificate fails the probe, and not_after says since when.
func TestTLSExpiredLeafKeepsItsDates(t *testing.T) {
	ca := testcert.NewCA(t, testcert.Spec{})
	expired := ca.Issue(t, testcert.Spec{
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-48 * time.Hour),
		NotAfter:    time.Now().Add(-time.Hour),
	})
	srv := probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{TLS: true, Cert: new(expired.TLS())})
	m := newModule(t, func(h *config.HTTPProbe) { h.HTTPClientConfig.TLSConfig.CAFile = ca.File(t) })
	sink, err := probertest.Run(t, m, srv.URL)
	checkOutcome(t, err, failure{taxonomy.ClassTLS, taxonomy.ReasonCertExpired, taxonomy.PhaseTLS})
	fp := tlsfacts.Fingerprint(expired.Leaf)
	probertest.Metric(t, sink, float64(expired.Leaf.NotAfter.Unix()), "probe_tls_cert_not_after_timestamp_seconds", "0", fp)
	probertest.Metric(t, sink, float64(expired.Leaf.NotAfter.Unix()), "probe_ssl_earliest_cert_expiry")
}

// The TLS facts are the same on every prober that speaks TLS: here tcp.
func TestTLSChainOnTCP(t *testing.T) {
	root := testcert.NewCA(t, testcert.Spec{})
	inter := root.Intermediate(t, testcert.Spec{})
	leaf := inter.Issue(t, testcert.Loopback())
	addr := probertest.RawServer(t, func(c net.Conn) {
		tls.Server(c, &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}}).Handshake()
	})
	m := defaultModule(t, "tcp", func(m *config.Module) {
		m.TCP.TLS = true
		m.TCP.TLSConfig.CAFile = root.File(t)
	})
	sink, err := probertest.Run(t, m, addr)
	checkOutcome(t, err, failure{})
	probertest.Metric(t, sink, 1, "probe_tls_verified")
	probertest.Metric(t, sink, float64(inter.Cert.NotBefore.Unix()), "probe_tls_cert_not_before_timestamp_seconds", "1", tlsfacts.Fingerprint(inter.Cert))
}

// seriesLabels returns the labels of the one series of name whose position
// label is pos.
func seriesLabels(t *testing.T, sink *probemetrics.Sink, name, pos string) map[string]string {
	t.Helper()
	mfs, err := sink.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["position"] == pos {
				return labels
			}
		}
	}
	t.Fatalf("%s has no series at position %s", name, pos)
	return nil
}
