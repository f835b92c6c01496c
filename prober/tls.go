package prober

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"time"
)

// recordTLS exports blackbox_exporter's TLS metrics for a completed
// handshake: certificate expiry, the leaf's identity, version and cipher.
func recordTLS(sink *Sink, state *tls.ConnectionState) {
	if state == nil || len(state.PeerCertificates) == 0 {
		return
	}
	leaf := state.PeerCertificates[0]
	sink.Set("probe_ssl_earliest_cert_expiry",
		"Returns the earliest expiry, in unixtime, of the certificates the server presented",
		unixSeconds(earliestExpiry(state.PeerCertificates)))
	sink.Set("probe_ssl_last_chain_expiry_timestamp_seconds",
		"Returns the expiry, in unixtime, of the chain used to verify the server, which ends with its earliest-expiring certificate",
		unixSeconds(lastChainExpiry(state)))
	sink.GaugeVec("probe_ssl_last_chain_info", "Contains information about the leaf certificate the server presented",
		"fingerprint_sha256", "subject", "issuer", "subjectalternative", "serialnumber").
		With(fingerprint(leaf), leaf.Subject.String(), leaf.Issuer.String(), strings.Join(leaf.DNSNames, ","), serialNumber(leaf)).
		Set(1)
	sink.GaugeVec("probe_tls_version_info", "Returns the TLS version used", "version").
		With(tlsVersion(state.Version)).Set(1)
	sink.GaugeVec("probe_tls_cipher_info", "Returns the TLS cipher suite negotiated during the handshake", "cipher").
		With(tls.CipherSuiteName(state.CipherSuite)).Set(1)
}

func unixSeconds(t time.Time) float64 { return float64(t.Unix()) }

func earliestExpiry(certs []*x509.Certificate) time.Time {
	var earliest time.Time
	for _, c := range certs {
		if earliest.IsZero() || c.NotAfter.Before(earliest) {
			earliest = c.NotAfter
		}
	}
	return earliest
}

// lastChainExpiry returns, of the verified chains, the one that stays valid
// longest, and when it expires (its earliest certificate). With no verified
// chain (insecure_skip_verify) the presented certificates stand for the
// chain, where blackbox_exporter would report the zero time.
func lastChainExpiry(state *tls.ConnectionState) time.Time {
	if len(state.VerifiedChains) == 0 {
		return earliestExpiry(state.PeerCertificates)
	}
	var last time.Time
	for _, chain := range state.VerifiedChains {
		if e := earliestExpiry(chain); e.After(last) {
			last = e
		}
	}
	return last
}

func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

func serialNumber(c *x509.Certificate) string {
	if c.SerialNumber == nil {
		return ""
	}
	return hex.EncodeToString(c.SerialNumber.Bytes())
}

func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLS 1.0"
	case tls.VersionTLS11:
		return "TLS 1.1"
	case tls.VersionTLS12:
		return "TLS 1.2"
	case tls.VersionTLS13:
		return "TLS 1.3"
	}
	return "unknown"
}
