// Package tlsfacts is sonde's TLS client: a module's tls_config, prepared
// once (Client), the handshakes made with it, and what each one showed
// (Facts: the presented chain, whether it verified and why not, the client
// certificate sonde presented, and what OCSP said), exported as
// blackbox_exporter's TLS metrics and sonde's own. OCSP itself is
// prober/ocsp.
package tlsfacts

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pconfig "github.com/prometheus/common/config"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/tlsfiles"
	"github.com/sonde-exporter/sonde/prober/ocsp"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// TLS in sonde: the handshake completes with Go's own verification off,
// and sonde verifies the presented chain itself in VerifyConnection. The
// chain is therefore known whatever the verdict, so an expired or
// untrusted certificate is still described by the metrics (blackbox loses
// them exactly then), and the probe fails with the precise reason.

// Client is a module's TLS client: its tls_config, prepared once, and its
// OCSP client.
type Client struct {
	section string            // e.g. "http", for messages
	cfg     pconfig.TLSConfig // as configured, to load again while it fails
	alpn    []string
	min     uint16                     // the lowest TLS version the prober can use; 0 for any
	minWhy  string                     // why, for the message when max_version is below it
	Loaded  atomic.Pointer[tls.Config] // nil until the tls_config loads
	OCSP    *ocsp.Client
	files   *tlsfiles.Cache // the parsed files the configuration's modules share
}

// NewClient turns a module's tls_config into a client. Probers ask their
// Env for one, which loads it once the module is prepared: CA files are
// read and parsed then, not per probe.
func NewClient(m *config.Module, section string, cfg *pconfig.TLSConfig) (*Client, error) {
	return &Client{section: section, cfg: *cfg, OCSP: ocsp.NewClient(m.OCSP)}, nil
}

// WithALPN offers the application protocols, in order of preference. It is
// called while the module is prepared, before any probe runs.
func (c *Client) WithALPN(protocols ...string) *Client {
	c.alpn = protocols
	if base := c.Loaded.Load(); base != nil {
		base.NextProtos = protocols
	}
	return c
}

// WithMinVersion raises the lowest TLS version to v, for the reason why
// (which a max_version below v is refused with). It is called while the
// module is prepared, before any probe runs.
func (c *Client) WithMinVersion(v uint16, why string) *Client {
	c.min, c.minWhy = v, why
	if base := c.Loaded.Load(); base != nil {
		if c.versionsClash(base) != nil {
			c.Loaded.Store(nil) // ready reports the clash on every probe
		} else {
			base.MinVersion = max(base.MinVersion, v)
		}
	}
	return c
}

func (c *Client) versionsClash(base *tls.Config) error {
	if c.min != 0 && base.MaxVersion != 0 && base.MaxVersion < c.min {
		return taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup, "%s.tls_config.max_version is %s, and %s needs %s", c.section, VersionName(base.MaxVersion), c.minWhy, VersionName(c.min))
	}
	return nil
}

// Ready loads the tls_config if it has not loaded yet. Its failure is the
// module's configuration failing, and names the option.
func (c *Client) Ready() error {
	if c.Loaded.Load() != nil {
		return nil
	}
	return c.load()
}

// Load loads the tls_config with the CA pools and client key pairs files
// holds, which the configuration's modules share (nil for a client of its
// own, sharing nothing), and keeps files for Ready to load again with while
// it fails. The module's Env calls it once Prepare has set what the client
// offers.
func (c *Client) Load(files *tlsfiles.Cache) error {
	c.files = files
	return c.load()
}

func (c *Client) load() error {
	files := c.files
	if files == nil {
		files = tlsfiles.New() // a module of its own shares nothing
	}
	base, err := files.TLSConfig(&c.cfg)
	if err != nil {
		return taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup, "%s.tls_config cannot be used: %v", c.section, err)
	}
	if err := c.versionsClash(base); err != nil {
		return err
	}
	base.MinVersion = max(base.MinVersion, c.min)
	base.NextProtos = c.alpn
	c.Loaded.CompareAndSwap(nil, base)
	return nil
}

// CanHandshake checks what a handshake needs before it starts: the
// tls_config loaded, and a name to verify the server as. crypto/tls
// refuses to verify a server without a name, and sonde verifies the same
// way (a unix socket's path is no name).
func (c *Client) CanHandshake(serverName string) error {
	if err := c.Ready(); err != nil {
		return err
	}
	if serverName == "" && !c.Loaded.Load().InsecureSkipVerify {
		return taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseTLS, "%s.tls_config: TLS needs the name to verify the server as; set server_name, or insecure_skip_verify", c.section)
	}
	return nil
}

// failingConfig is what config returns for a tls_config that has not
// loaded: every handshake with it fails, saying why, rather than trusting
// defaults. Probers call ready first; this is the backstop.
func failingConfig(err error) *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(tls.ConnectionState) error { return err }}
}

// Facts is what one handshake showed: the presented chain, whether it
// verified and why not, the client certificate sonde presented, and what
// OCSP said. A handshake that failed may still have captured the chain.
type Facts struct {
	mu         sync.Mutex
	state      tls.ConnectionState
	captured   bool
	chains     [][]*x509.Certificate // the verified chains
	verifyErr  error                 // why the chain did not verify
	clientCert *x509.Certificate
	ocsp       ocsp.Result
}

// Config returns the configuration for one handshake with serverName,
// capturing what it shows into facts. With insecure_skip_verify the chain
// is still verified, for probe_tls_verified, but a failure does not fail
// the handshake: the option keeps its meaning.
func (c *Client) Config(serverName string, facts *Facts) *tls.Config {
	return c.ConfigFor(serverName, func() *Facts { return facts })
}

// ConfigFor is Config for a client that makes several handshakes with one
// configuration, as net/http's Transport does: each handshake captures
// into the facts that current returns while it runs. A server name the
// client cannot verify fails the handshake, saying why.
func (c *Client) ConfigFor(serverName string, current func() *Facts) *tls.Config {
	if err := c.Ready(); err != nil {
		return failingConfig(err)
	}
	if err := c.CanHandshake(serverName); err != nil {
		return failingConfig(err)
	}
	base := c.Loaded.Load()
	cfg := base.Clone()
	enforce := !base.InsecureSkipVerify
	cfg.InsecureSkipVerify = true
	cfg.ServerName = serverName
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		facts := current()
		chains, err := verifyChain(base, serverName, cs)
		facts.capture(cs, chains, err)
		// The stapled response is read whatever the verdict, for the
		// metrics; it can only fail a chain that verified.
		ocspErr := facts.checkStapled(c.OCSP, enforce && err == nil)
		if enforce && err != nil {
			return err
		}
		return ocspErr
	}
	if get := base.GetClientCertificate; get != nil {
		cfg.GetClientCertificate = func(req *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, err := get(req)
			current().presentedClientCert(cert)
			return cert, err
		}
	}
	return cfg
}

// verifyChain does what crypto/tls would: the leaf must chain to a trusted
// root through the certificates presented, and be valid for serverName.
func verifyChain(base *tls.Config, serverName string, cs tls.ConnectionState) ([][]*x509.Certificate, error) {
	if len(cs.PeerCertificates) == 0 {
		return nil, errors.New("the server presented no certificate")
	}
	opts := x509.VerifyOptions{Roots: base.RootCAs, DNSName: serverName, Intermediates: x509.NewCertPool()}
	if base.Time != nil {
		opts.CurrentTime = base.Time()
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	return cs.PeerCertificates[0].Verify(opts)
}

func (f *Facts) capture(cs tls.ConnectionState, chains [][]*x509.Certificate, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state, f.captured, f.chains, f.verifyErr = cs, true, chains, err
}

// checkStapled reads the OCSP response stapled to the handshake that
// captured into f, while it runs, and says whether it fails it.
func (f *Facts) checkStapled(c *ocsp.Client, enforce bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var leaf *x509.Certificate
	if len(f.state.PeerCertificates) > 0 {
		leaf = f.state.PeerCertificates[0]
	}
	r, err := c.CheckStapled(f.state.OCSPResponse, leaf, f.issuer(), enforce)
	f.ocsp = r
	return err
}

// queryOCSP asks the responder after the handshake, when nothing was
// stapled and the policy is query, and says whether its answer fails the
// probe.
func (f *Facts) queryOCSP(ctx context.Context, c *ocsp.Client, enforce bool) error {
	f.mu.Lock()
	needed := c.Queries(f.ocsp) && f.captured && len(f.state.PeerCertificates) > 0
	var leaf, issuer *x509.Certificate
	if needed {
		leaf, issuer = f.state.PeerCertificates[0], f.issuer()
	}
	f.mu.Unlock()
	if !needed {
		return nil
	}
	r, err := c.CheckQueried(ctx, leaf, issuer, enforce)
	f.mu.Lock()
	f.ocsp = r
	f.mu.Unlock()
	return err
}

// OCSPAsked returns when the OCSP responder was asked after the
// handshake: zero times when it was not.
func (f *Facts) OCSPAsked() (start, end time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ocsp.Asked()
}

func (f *Facts) WasCaptured() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.captured
}

func (f *Facts) presentedClientCert(cert *tls.Certificate) {
	if cert == nil || len(cert.Certificate) == 0 {
		return
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return
	}
	f.mu.Lock()
	f.clientCert = leaf
	f.mu.Unlock()
}

// issuer is the leaf's issuer, from the verified chain if there is one,
// else as presented; nil when unknown.
func (f *Facts) issuer() *x509.Certificate {
	switch {
	case len(f.chains) > 0 && len(f.chains[0]) > 1:
		return f.chains[0][1]
	case len(f.state.PeerCertificates) > 1:
		return f.state.PeerCertificates[1]
	}
	return nil
}

// HandshakeOnly runs the tls phase alone: a client handshake on conn,
// without the OCSP query that may follow it. It returns what the handshake
// showed even when it fails, and when it ran; the caller exports them when
// the metrics call for them. It records no span itself: the http prober
// times its handshakes in its own timeline.
func HandshakeOnly(ctx context.Context, conn net.Conn, c *Client, serverName string) (*tls.Conn, *Facts, probemetrics.Span, error) {
	facts := &Facts{}
	if err := c.CanHandshake(serverName); err != nil {
		now := time.Now()
		return nil, facts, probemetrics.Span{Phase: taxonomy.PhaseTLS, Start: now, End: now}, err
	}
	tc := tls.Client(conn, c.Config(serverName, facts))
	start := time.Now()
	err := tc.HandshakeContext(ctx)
	ran := probemetrics.Span{Phase: taxonomy.PhaseTLS, Start: start, End: time.Now()}
	if err != nil {
		return nil, facts, ran, taxonomy.Classify(ctx, fmt.Errorf("TLS handshake with %s: %w", serverName, err), taxonomy.PhaseTLS)
	}
	return tc, facts, ran, nil
}

// QueryOCSP runs the ocsp phase after a handshake: with ocsp.check: query
// and nothing stapled, the certificate's responder is asked. A failure
// closes the connection, a TLS one or, for HTTP/3, a QUIC one.
func (c *Client) QueryOCSP(ctx context.Context, conn io.Closer, facts *Facts) error {
	err := facts.queryOCSP(ctx, c.OCSP, !c.Loaded.Load().InsecureSkipVerify)
	if err != nil {
		conn.Close()
	}
	return err
}

// Handshake runs the tls and ocsp phases for probers that export a
// handshake's facts at once, whether it succeeded or not. It returns the
// handshake's duration, and records its span, failed or not.
func Handshake(ctx context.Context, conn net.Conn, c *Client, serverName string, sink *probemetrics.Sink) (*tls.Conn, time.Duration, error) {
	tc, facts, ran, err := HandshakeOnly(ctx, conn, c, serverName)
	sink.Span(ran.Phase, 0, ran.Start, ran.End)
	took := ran.Duration()
	if err == nil {
		err = c.QueryOCSP(ctx, tc, facts)
		start, end := facts.OCSPAsked()
		sink.Span(taxonomy.PhaseOCSP, 0, start, end)
	}
	facts.Record(sink)
	if err != nil {
		return nil, took, err
	}
	return tc, took, nil
}

// maxChainPositions bounds the per-certificate series: a chain longer than
// this is a misconfiguration, and label values must stay bounded.
const maxChainPositions = 8

// Record exports what the handshake showed: blackbox_exporter's TLS
// metrics, and sonde's per-certificate, verification and OCSP metrics.
func (f *Facts) Record(sink *probemetrics.Sink) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.captured || len(f.state.PeerCertificates) == 0 {
		return
	}
	f.recordBlackbox(sink)
	verified := 0.0
	if f.verifyErr == nil {
		verified = 1
	}
	sink.Set("probe_tls_verified", "Whether the presented chain verified (1) or not (0), also with insecure_skip_verify", verified)
	f.recordChain(sink)
	if f.clientCert != nil {
		sink.Set("probe_tls_client_cert_not_after_timestamp_seconds", "When the client certificate sonde presented expires, in unixtime",
			probemetrics.UnixSeconds(f.clientCert.NotAfter))
	}
	f.ocsp.Record(sink)
}

func (f *Facts) recordBlackbox(sink *probemetrics.Sink) {
	state, leaf := &f.state, f.state.PeerCertificates[0]
	sink.Set("probe_ssl_earliest_cert_expiry",
		"Returns the earliest expiry, in unixtime, of the certificates the server presented",
		probemetrics.UnixSeconds(earliestExpiry(state.PeerCertificates)))
	sink.Set("probe_ssl_last_chain_expiry_timestamp_seconds",
		"Returns the expiry, in unixtime, of the chain used to verify the server, which ends with its earliest-expiring certificate",
		probemetrics.UnixSeconds(lastChainExpiry(f.chains, state.PeerCertificates)))
	sink.GaugeVec("probe_ssl_last_chain_info", "Contains information about the leaf certificate the server presented",
		"fingerprint_sha256", "subject", "issuer", "subjectalternative", "serialnumber").
		With(Fingerprint(leaf), leaf.Subject.String(), leaf.Issuer.String(), strings.Join(leaf.DNSNames, ","), serialNumber(leaf)).
		Set(1)
	sink.GaugeVec("probe_tls_version_info", "Returns the TLS version used", "version").
		With(VersionName(state.Version)).Set(1)
	sink.GaugeVec("probe_tls_cipher_info", "Returns the TLS cipher suite negotiated during the handshake", "cipher").
		With(tls.CipherSuiteName(state.CipherSuite)).Set(1)
}

// recordChain exports every presented certificate, leaf first (position
// 0): its validity window and its identity.
func (f *Facts) recordChain(sink *probemetrics.Sink) {
	notBefore := sink.GaugeVec("probe_tls_cert_not_before_timestamp_seconds",
		"When each presented certificate becomes valid, in unixtime; position 0 is the leaf", "position", "fingerprint_sha256")
	notAfter := sink.GaugeVec("probe_tls_cert_not_after_timestamp_seconds",
		"When each presented certificate expires, in unixtime; position 0 is the leaf", "position", "fingerprint_sha256")
	info := sink.GaugeVec("probe_tls_cert_info", "Identity of each presented certificate; position 0 is the leaf",
		"position", "fingerprint_sha256", "subject", "issuer", "serialnumber", "subjectalternative")
	for i, c := range f.state.PeerCertificates {
		if i == maxChainPositions {
			break
		}
		pos, fp := strconv.Itoa(i), Fingerprint(c)
		notBefore.With(pos, fp).Set(probemetrics.UnixSeconds(c.NotBefore))
		notAfter.With(pos, fp).Set(probemetrics.UnixSeconds(c.NotAfter))
		info.With(pos, fp, c.Subject.String(), c.Issuer.String(), serialNumber(c), subjectAlternatives(c)).Set(1)
	}
}

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
// chain the presented certificates stand for the chain, where blackbox
// would report the zero time.
func lastChainExpiry(chains [][]*x509.Certificate, presented []*x509.Certificate) time.Time {
	if len(chains) == 0 {
		return earliestExpiry(presented)
	}
	var last time.Time
	for _, chain := range chains {
		if e := earliestExpiry(chain); e.After(last) {
			last = e
		}
	}
	return last
}

// Fingerprint is a certificate's SHA-256 fingerprint, in hex, as the
// fingerprint_sha256 labels carry it.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

func serialNumber(c *x509.Certificate) string {
	if c.SerialNumber == nil {
		return ""
	}
	return hex.EncodeToString(c.SerialNumber.Bytes())
}

// subjectAlternatives lists a certificate's DNS and IP SANs.
func subjectAlternatives(c *x509.Certificate) string {
	sans := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		sans = append(sans, ip.String())
	}
	return strings.Join(sans, ",")
}

// VersionName names a TLS version as probe_tls_version_info does.
func VersionName(v uint16) string {
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

// ServerName is the name a TLS server is verified as: tls_config's
// server_name (or the hostname parameter), else the target's host.
func ServerName(configured, host string) string {
	if configured != "" {
		return configured
	}
	return host
}
