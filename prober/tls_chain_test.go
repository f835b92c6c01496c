package prober

import (
	"crypto/tls"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"

	"github.com/sonde-exporter/sonde/prober/core"
)

// chainServer serves okHandler over TLS with a leaf issued by an
// intermediate of root, sending the intermediate unless withoutIntermediate.
func chainServer(t *testing.T, root *testCA, withoutIntermediate bool) (url string, leaf issued, inter *testCA) {
	t.Helper()
	inter = root.intermediate(t, "sonde intermediate CA")
	spec := localhostSpec()
	spec.notBefore = time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	leaf = inter.issue(t, spec)
	if withoutIntermediate {
		leaf.tls.Certificate = leaf.tls.Certificate[:1]
	}
	srv := newServer(t, okHandler, serverOpts{tls: true, cert: &leaf})
	return srv.URL, leaf, inter
}

// Every presented certificate is described by position, with both ends of
// its validity window.
func TestTLSChainPerCertificate(t *testing.T) {
	root := newTestCA(t, "sonde root CA")
	url, leaf, inter := chainServer(t, root, false)
	m := newModule(t, func(h *config.HTTPProbe) { h.HTTPClientConfig.TLSConfig.CAFile = root.file })
	sink, err := run(t, m, url)
	checkOutcome(t, err, failure{})
	metric(t, sink, 1, "probe_tls_verified")
	for i, c := range []struct {
		subject, issuer string
		notBefore       time.Time
		notAfter        time.Time
		fp              string
	}{
		{"CN=localhost,O=sonde tests", "CN=sonde intermediate CA,O=sonde tests", leaf.leaf.NotBefore, leaf.leaf.NotAfter, core.Fingerprint(leaf.leaf)},
		{"CN=sonde intermediate CA,O=sonde tests", "CN=sonde root CA,O=sonde tests", inter.cert.NotBefore, inter.cert.NotAfter, core.Fingerprint(inter.cert)},
	} {
		pos := strconv.Itoa(i)
		metric(t, sink, float64(c.notBefore.Unix()), "probe_tls_cert_not_before_timestamp_seconds", pos, c.fp)
		metric(t, sink, float64(c.notAfter.Unix()), "probe_tls_cert_not_after_timestamp_seconds", pos, c.fp)
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
	metric(t, sink, float64(leaf.leaf.NotAfter.Unix()), "probe_ssl_last_chain_expiry_timestamp_seconds")
}

// A server that forgets its intermediate fails verification, and says so
// with the chain it did send.
func TestTLSMissingIntermediate(t *testing.T) {
	root := newTestCA(t, "sonde root CA")
	url, leaf, _ := chainServer(t, root, true)
	m := newModule(t, func(h *config.HTTPProbe) { h.HTTPClientConfig.TLSConfig.CAFile = root.file })
	sink, err := run(t, m, url)
	checkOutcome(t, err, failure{taxonomy.ClassTLS, taxonomy.ReasonCertUnknownAuthority, taxonomy.PhaseTLS})
	chainSurvived(t, sink)
	metric(t, sink, float64(leaf.leaf.NotBefore.Unix()), "probe_tls_cert_not_before_timestamp_seconds", "0", core.Fingerprint(leaf.leaf))
	if n := seriesCount(t, sink, "probe_tls_cert_info"); n != 1 {
		t.Errorf("probe_tls_cert_info has %d series, want 1: only the leaf was presented", n)
	}
}

// An expired certificate fails the probe, and not_after says since when.
func TestTLSExpiredLeafKeepsItsDates(t *testing.T) {
	ca := newTestCA(t, "sonde test CA")
	expired := ca.issue(t, leafSpec{
		ips:       []net.IP{net.IPv4(127, 0, 0, 1)},
		notBefore: time.Now().Add(-48 * time.Hour),
		notAfter:  time.Now().Add(-time.Hour),
	})
	srv := newServer(t, okHandler, serverOpts{tls: true, cert: &expired})
	m := newModule(t, func(h *config.HTTPProbe) { h.HTTPClientConfig.TLSConfig.CAFile = ca.file })
	sink, err := run(t, m, srv.URL)
	checkOutcome(t, err, failure{taxonomy.ClassTLS, taxonomy.ReasonCertExpired, taxonomy.PhaseTLS})
	fp := core.Fingerprint(expired.leaf)
	metric(t, sink, float64(expired.leaf.NotAfter.Unix()), "probe_tls_cert_not_after_timestamp_seconds", "0", fp)
	metric(t, sink, float64(expired.leaf.NotAfter.Unix()), "probe_ssl_earliest_cert_expiry")
}

// The TLS facts are the same on every prober that speaks TLS: here tcp.
func TestTLSChainOnTCP(t *testing.T) {
	root := newTestCA(t, "sonde root CA")
	inter := root.intermediate(t, "sonde intermediate CA")
	leaf := inter.issue(t, localhostSpec())
	addr := rawServer(t, func(c net.Conn) {
		tls.Server(c, &tls.Config{Certificates: []tls.Certificate{leaf.tls}}).Handshake()
	})
	m := defaultModule(t, "tcp", func(m *config.Module) {
		m.TCP.TLS = true
		m.TCP.TLSConfig.CAFile = root.file
	})
	sink, err := run(t, m, addr)
	checkOutcome(t, err, failure{})
	metric(t, sink, 1, "probe_tls_verified")
	metric(t, sink, float64(inter.cert.NotBefore.Unix()), "probe_tls_cert_not_before_timestamp_seconds", "1", core.Fingerprint(inter.cert))
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

// seriesCount counts the series of a family.
func seriesCount(t *testing.T, sink *probemetrics.Sink, name string) int {
	t.Helper()
	mfs, err := sink.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}
