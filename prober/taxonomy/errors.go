package taxonomy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"syscall"
	"time"

	"golang.org/x/net/http2"
)

// Class says, in one word from a small fixed set, why a probe failed. It is
// exported as the `class` label of probe_failure_info, so alert rules can
// route on it; docs/error-classes.md documents every value.
type Class string

// The failure classes. Adding one is a user-visible change: alert rules key
// on these values.
const (
	ClassDNS       Class = "dns"       // the target name could not be resolved
	ClassConnect   Class = "connect"   // no transport connection to the target
	ClassTimeout   Class = "timeout"   // the probe's deadline ran out
	ClassTLS       Class = "tls"       // the TLS handshake or certificate check failed
	ClassProtocol  Class = "protocol"  // the peer spoke, but not the protocol correctly
	ClassStatus    Class = "status"    // the peer answered with a failing status
	ClassAssertion Class = "assertion" // a check configured in the module failed
	ClassProber    Class = "prober"    // sonde could not run the probe at all
	ClassUnknown   Class = "unknown"   // a bug: an error nobody classified
)

// Reason refines a Class; each class has its own small set of reasons.
type Reason string

// The failure reasons, grouped by the class they belong to.
const (
	ReasonNXDomain      Reason = "nxdomain"       // dns: the name does not exist
	ReasonServFail      Reason = "servfail"       // dns: the resolver failed to answer (SERVFAIL)
	ReasonNoAddress     Reason = "no_address"     // dns: no address of the wanted IP family
	ReasonResolverError Reason = "resolver_error" // dns: the resolver could not be asked or timed out

	ReasonRefused            Reason = "refused"             // connect: the port is closed
	ReasonReset              Reason = "reset"               // connect: the peer reset the connection
	ReasonHostUnreachable    Reason = "host_unreachable"    // connect: no route to the host
	ReasonNetworkUnreachable Reason = "network_unreachable" // connect: no route to the network

	ReasonDeadline Reason = "deadline" // timeout: the probe deadline passed
	ReasonCanceled Reason = "canceled" // timeout: the scrape was abandoned before the probe ended

	ReasonHandshake            Reason = "handshake"              // tls: the handshake failed
	ReasonStartTLSRefused      Reason = "starttls_refused"       // tls: the server did not offer STARTTLS or refused it
	ReasonCertExpired          Reason = "cert_expired"           // tls: a certificate is past not_after
	ReasonCertNotYetValid      Reason = "cert_not_yet_valid"     // tls: a certificate is before not_before
	ReasonCertUnknownAuthority Reason = "cert_unknown_authority" // tls: the chain ends at an untrusted root
	ReasonCertHostnameMismatch Reason = "cert_hostname_mismatch" // tls: the certificate is for another name
	ReasonCertRevoked          Reason = "cert_revoked"           // tls: the certificate was revoked (OCSP)
	ReasonOCSPNotStapled       Reason = "ocsp_not_stapled"       // tls: ocsp.require_stapled and the server stapled nothing
	ReasonOCSPUnknown          Reason = "ocsp_unknown"           // tls: ocsp.fail_on_unknown and the status could not be learnt
	ReasonCertInvalid          Reason = "cert_invalid"           // tls: any other verification failure

	ReasonMalformedResponse Reason = "malformed_response" // protocol: the response could not be parsed
	ReasonUnexpectedEOF     Reason = "unexpected_eof"     // protocol: the peer closed the connection early
	ReasonBodyTooLarge      Reason = "body_too_large"     // protocol: the body exceeded body_size_limit
	ReasonTooManyRedirects  Reason = "too_many_redirects" // protocol: the redirect limit was hit
	ReasonTruncated         Reason = "truncated"          // protocol: a DNS answer came back truncated
	ReasonGRPCUnimplemented Reason = "grpc_unimplemented" // protocol: the server has no gRPC health service

	ReasonHTTPStatus Reason = "http_status" // status: the HTTP status is not a valid one
	ReasonDNSRcode   Reason = "dns_rcode"   // status: the DNS response code is not one of valid_rcodes
	ReasonReplyCode  Reason = "reply_code"  // status: a text protocol (SMTP, FTP, ...) answered with an error code

	ReasonGRPCNotServing     Reason = "grpc_not_serving"     // status: the health service says NOT_SERVING
	ReasonGRPCServiceUnknown Reason = "grpc_service_unknown" // status: the health service does not know the service
	ReasonGRPCStatus         Reason = "grpc_status"          // status: the health check was answered with another gRPC error code

	ReasonBodyRegex    Reason = "body_regex"    // assertion: fail_if_body_(not_)matches_regexp
	ReasonHeaderRegex  Reason = "header_regex"  // assertion: fail_if_header_(not_)matches
	ReasonBodyCEL      Reason = "body_cel"      // assertion: fail_if_body_json_(not_)matches_cel
	ReasonHTTPVersion  Reason = "http_version"  // assertion: valid_http_versions
	ReasonSSLRequired  Reason = "ssl_required"  // assertion: fail_if_not_ssl
	ReasonSSLForbidden Reason = "ssl_forbidden" // assertion: fail_if_ssl
	ReasonExpect       Reason = "expect"        // assertion: a query_response expect or expect_bytes step
	ReasonDNSRRs       Reason = "dns_rrs"       // assertion: validate_answer/authority/additional_rrs
	ReasonPacketLoss   Reason = "packet_loss"   // assertion: fewer ICMP replies than min_success_ratio asks

	ReasonInvalidTarget     Reason = "invalid_target"     // prober: the target cannot be probed as given
	ReasonCredentials       Reason = "credentials"        // prober: credentials for the request could not be had (OAuth2 token, secret file)
	ReasonSourceAddress     Reason = "source_address"     // prober: source_ip_address cannot be used on this host
	ReasonPermissionDenied  Reason = "permission_denied"  // prober: the OS refused a socket or bind
	ReasonResourceExhausted Reason = "resource_exhausted" // prober: out of file descriptors or memory
	ReasonInternal          Reason = "internal"           // prober: sonde failed on its own
	ReasonUnsupported       Reason = "unsupported"        // prober: the module asks for something sonde cannot do yet
	ReasonTargetDenied      Reason = "target_denied"      // prober: the module's targets rules or a global deny list refuse the target
	ReasonConfig            Reason = "config"             // prober: the module's configuration cannot be used as written (see its warning)

	ReasonUnclassified Reason = "unclassified" // unknown: see ClassUnknown
)

// Phase says where in the probe the failure happened. Values are bounded by
// the prober (and, for scripted probes, by the configuration).
type Phase string

// Phases shared by the probers. Probers with a script of their own add
// bounded phases such as "query_step_3".
const (
	PhaseSetup      Phase = "setup"      // before any network activity
	PhaseResolve    Phase = "resolve"    // resolving the target name
	PhaseConnect    Phase = "connect"    // opening the transport connection
	PhaseTLS        Phase = "tls"        // the TLS handshake
	PhaseProcessing Phase = "processing" // request sent, waiting for the first response byte
	PhaseTransfer   Phase = "transfer"   // reading the response
	PhaseValidate   Phase = "validate"   // checking the response against the module
	PhaseStartTLS   Phase = "starttls"   // the protocol exchange that asks for TLS (starttls_preset)
	PhaseQuery      Phase = "query"      // a DNS query and its answer
	PhaseRTT        Phase = "rtt"        // ICMP: echo requests sent, waiting for the replies
	PhaseCheck      Phase = "check"      // gRPC: the health check call
	PhaseOCSP       Phase = "ocsp"       // asking the certificate's OCSP responder
	PhaseUnknown    Phase = "unknown"    // an error that reached the collector without a phase
)

// QueryStep is the phase of step i (from 0, as in the configuration's
// query_response list) of a script. Its values are bounded by the module.
func QueryStep(i int) Phase { return Phase(fmt.Sprintf("query_step_%d", i)) }

// Error is the one error type every prober failure is, or wraps. Its three
// labels go into probe_failure_info; Err keeps the cause for the probe log.
type Error struct {
	Class  Class
	Reason Reason
	Phase  Phase
	Err    error
}

// Fail returns a classified error. err is the cause and may be nil.
func Fail(class Class, reason Reason, phase Phase, err error) *Error {
	return &Error{Class: class, Reason: reason, Phase: phase, Err: err}
}

// Failf returns a classified error whose cause is a formatted message.
func Failf(class Class, reason Reason, phase Phase, format string, args ...any) *Error {
	return Fail(class, reason, phase, fmt.Errorf(format, args...))
}

func (e *Error) Error() string {
	label := fmt.Sprintf("%s/%s in phase %s", e.Class, e.Reason, e.Phase)
	if e.Err == nil {
		return label
	}
	return label + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Classify returns err as a classified *Error. An error that already is one
// keeps its labels (and gets phase if it had none). Anything else is
// inspected: context and deadline errors, DNS errors, socket errnos, TLS
// and certificate errors, and early EOFs each map to their class. ctx is the
// probe's context: a timeout-like error while it is done is the probe
// deadline, not a slow peer, and so is a failure that running out of time
// causes once the deadline has passed (see deadlineWins).
func Classify(ctx context.Context, err error, phase Phase) *Error {
	if err == nil {
		return nil
	}
	return deadlineWins(ctx, classify(ctx, err, phase))
}

// classify is Classify without the deadline's last word. Types and
// sentinels are tried first; the text of an error is read last, and only
// through textRows (text.go), for what Go reports as text alone.
func classify(ctx context.Context, err error, phase Phase) *Error {
	var classified *Error
	if errors.As(err, &classified) {
		if classified.Phase == "" {
			classified.Phase = phase
		}
		return classified
	}
	if c, r, ok := classifyCause(err, phase); ok {
		return Fail(c, r, phase, WithHint(err))
	}
	if c, r, ok := ClassifyDeadline(ctx, err); ok {
		return Fail(c, r, phase, err)
	}
	if phase == PhaseTLS {
		return Fail(ClassTLS, ReasonHandshake, phase, err)
	}
	if isEOF(err) {
		return Fail(ClassProtocol, ReasonUnexpectedEOF, phase, err)
	}
	if errors.Is(err, net.ErrClosed) {
		return closedUnder(ctx, phase, err)
	}
	if c, r, ok := classifyProtocol(err); ok {
		return Fail(c, r, phase, err)
	}
	if c, r, ok := matchText(inMessage, err); ok {
		return Fail(c, r, phase, err)
	}
	return Fail(ClassUnknown, ReasonUnclassified, phase, err)
}

// classifyCause recognises errors whose type names the cause, whatever the
// state of the deadline: a refused port is refused even at the last moment.
func classifyCause(err error, phase Phase) (Class, Reason, bool) {
	if r, ok := CertificateReason(err); ok {
		return ClassTLS, r, true
	}
	var alert tls.AlertError
	var recordErr tls.RecordHeaderError
	if errors.As(err, &alert) || errors.As(err, &recordErr) || isTLSAlert(err) {
		return ClassTLS, ReasonHandshake, true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && !dnsErr.IsTimeout && !errors.Is(err, context.Canceled) {
		return ClassDNS, dnsReason(dnsErr), true
	}
	if c, r, ok := ErrnoClass(err); ok {
		return c, r, true
	}
	if errors.Is(err, http.ErrSchemeMismatch) {
		// A plain HTTP answer to the TLS handshake, as net/http's
		// Transport words the tls.RecordHeaderError above.
		return ClassTLS, ReasonHandshake, true
	}
	return "", "", false
}

// classifyProtocol recognises, by type or sentinel, a peer that broke off
// or broke the protocol once the connection was up. The HTTP/2 types are
// x/net's: net/http's own stream error fills them through its As method,
// and its GOAWAY and connection errors, which do not, are textRows.
func classifyProtocol(err error) (Class, Reason, bool) {
	var header textproto.ProtocolError // a header line without a colon, ...
	var goAway http2.GoAwayError
	var connErr http2.ConnectionError
	switch {
	case errors.As(err, &goAway):
		return ClassProtocol, ReasonUnexpectedEOF, true
	case errors.As(err, &header), errors.Is(err, http.ErrLineTooLong), errors.As(err, &connErr):
		return ClassProtocol, ReasonMalformedResponse, true
	}
	if c, r, ok := streamFailure(err); ok {
		return c, r, true
	}
	return socksFailure(err)
}

// ClassifyDeadline recognises the probe running out of time. A DNS or
// socket timeout while the probe's own deadline is still ahead is the
// resolver's or the peer's fault and is reported as such.
func ClassifyDeadline(ctx context.Context, err error) (Class, Reason, bool) {
	if (ctx != nil && errors.Is(ctx.Err(), context.Canceled)) || errors.Is(err, context.Canceled) {
		return ClassTimeout, ReasonCanceled, true
	}
	if !IsTimeout(err) {
		return "", "", false
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && ctx != nil && ctx.Err() == nil {
		return ClassDNS, ReasonResolverError, true
	}
	return ClassTimeout, ReasonDeadline, true
}

// isTLSAlert spots an alert the peer sent, which crypto/tls reports as a
// *net.OpError with Op "remote error", or one sonde's side sent because a
// record did not decrypt or parse ("local error": bad record MAC, record
// overflow, unexpected message). In TLS 1.3 a server rejecting the client
// certificate sends its alert after the client's handshake is done, so it
// surfaces on the first read rather than from the handshake; a peer
// garbling its records after the handshake does the same.
func isTLSAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && (op.Op == "remote error" || op.Op == "local error")
}

func IsTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// closedUnder classifies a read or write on a connection closed under it.
// Past the deadline that is sonde giving up; before it, the connection was
// lost: net/http's HTTP/2 client closes its end when the peer hangs up,
// and a read racing that close sees net.ErrClosed instead of the EOF.
func closedUnder(ctx context.Context, phase Phase, err error) *Error {
	if ctx != nil && ctx.Err() != nil {
		return Fail(ClassTimeout, ReasonDeadline, phase, err)
	}
	return Fail(ClassProtocol, ReasonUnexpectedEOF, phase, err)
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// dnsReason maps the standard resolver's error to a dns reason. Go reports
// SERVFAIL and friends only as a message, which a textRow reads.
func dnsReason(err *net.DNSError) Reason {
	if err.IsNotFound {
		return ReasonNXDomain
	}
	if _, r, ok := matchText(inDNS, err); ok {
		return r
	}
	return ReasonResolverError
}

// ErrnoClass maps the socket errors a dial or read can end with.
// WithHint adds to a system error what an operator can do about it, where
// the system's own words ("too many open files") do not say.
func WithHint(err error) error {
	if errors.Is(err, syscall.EMFILE) {
		return fmt.Errorf("%w (sonde's open file limit is used up: raise it, e.g. LimitNOFILE= in systemd or ulimit -n, or cap probes in flight with --probe.max-concurrent)", err)
	}
	return err
}

func ErrnoClass(err error) (Class, Reason, bool) {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return "", "", false
	}
	switch errno {
	case syscall.ECONNREFUSED:
		return ClassConnect, ReasonRefused, true
	case syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE:
		return ClassConnect, ReasonReset, true
	case syscall.EHOSTUNREACH, syscall.EHOSTDOWN:
		return ClassConnect, ReasonHostUnreachable, true
	case syscall.ENETUNREACH, syscall.ENETDOWN:
		return ClassConnect, ReasonNetworkUnreachable, true
	case syscall.EACCES, syscall.EPERM:
		return ClassProber, ReasonPermissionDenied, true
	case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.EADDRNOTAVAIL:
		// EADDRNOTAVAIL without a source address: no ephemeral port left.
		return ClassProber, ReasonResourceExhausted, true
	case syscall.ETIMEDOUT:
		return ClassTimeout, ReasonDeadline, true
	}
	return "", "", false
}

// CertificateReason maps a failed certificate verification to its reason.
func CertificateReason(err error) (Reason, bool) {
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) {
		if invalid.Reason == x509.Expired {
			return expiryReason(invalid.Cert, time.Now()), true
		}
		return ReasonCertInvalid, true
	}
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		return ReasonCertUnknownAuthority, true
	}
	var hostname x509.HostnameError
	if errors.As(err, &hostname) {
		return ReasonCertHostnameMismatch, true
	}
	var verify *tls.CertificateVerificationError
	if errors.As(err, &verify) {
		return ReasonCertInvalid, true
	}
	return "", false
}

// expiryReason tells the two halves of x509.Expired apart: the standard
// library uses one reason for "not yet valid" and "no longer valid".
func expiryReason(cert *x509.Certificate, now time.Time) Reason {
	if cert != nil && now.Before(cert.NotBefore) {
		return ReasonCertNotYetValid
	}
	return ReasonCertExpired
}
