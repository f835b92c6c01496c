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
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

func TestClassify(t *testing.T) {
	alive := context.Background()
	expired, cancelExpired := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancelExpired()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	dial := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}
	}
	read := func(errno syscall.Errno) error {
		return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", errno)}
	}
	past := &x509.Certificate{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}
	future := &x509.Certificate{NotBefore: time.Now().Add(24 * time.Hour), NotAfter: time.Now().Add(48 * time.Hour)}
	verification := func(err error) error {
		return &tls.CertificateVerificationError{Err: err}
	}
	classified := Fail(ClassAssertion, ReasonBodyRegex, PhaseValidate, errors.New("fail_if_body_matches_regexp[0]"))
	// The clock is past the deadline, and the context's timer has not
	// fired yet: what a read ended by a connection deadline can see.
	clockPast := deadlineOnly{Context: alive, deadline: time.Now().Add(-time.Millisecond)}

	cases := []struct {
		name  string
		ctx   context.Context
		err   error
		phase Phase
		want  failure
	}{
		{"ECONNREFUSED", alive, dial(syscall.ECONNREFUSED), PhaseConnect, failure{ClassConnect, ReasonRefused, PhaseConnect}},
		{"ECONNREFUSED at the deadline is still refused", expired, dial(syscall.ECONNREFUSED), PhaseConnect, failure{ClassConnect, ReasonRefused, PhaseConnect}},
		{"ECONNREFUSED wrapped by net/http", alive, &url.Error{Op: "Get", URL: "http://x", Err: dial(syscall.ECONNREFUSED)}, PhaseConnect, failure{ClassConnect, ReasonRefused, PhaseConnect}},
		{"ECONNRESET", alive, read(syscall.ECONNRESET), PhaseProcessing, failure{ClassConnect, ReasonReset, PhaseProcessing}},
		{"connection closed under a read", alive, &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}, PhaseTransfer, failure{ClassProtocol, ReasonUnexpectedEOF, PhaseTransfer}},
		{"connection closed under a read past the deadline", expired, &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}, PhaseTransfer, failure{ClassTimeout, ReasonDeadline, PhaseTransfer}},
		{"EPIPE", alive, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}, PhaseProcessing, failure{ClassConnect, ReasonReset, PhaseProcessing}},
		{"EHOSTUNREACH", alive, dial(syscall.EHOSTUNREACH), PhaseConnect, failure{ClassConnect, ReasonHostUnreachable, PhaseConnect}},
		{"ENETUNREACH", alive, dial(syscall.ENETUNREACH), PhaseConnect, failure{ClassConnect, ReasonNetworkUnreachable, PhaseConnect}},
		{"EACCES", alive, dial(syscall.EACCES), PhaseConnect, failure{ClassProber, ReasonPermissionDenied, PhaseConnect}},
		{"EPERM", alive, &net.OpError{Op: "socket", Err: os.NewSyscallError("socket", syscall.EPERM)}, PhaseSetup, failure{ClassProber, ReasonPermissionDenied, PhaseSetup}},
		{"EMFILE", alive, dial(syscall.EMFILE), PhaseConnect, failure{ClassProber, ReasonResourceExhausted, PhaseConnect}},
		{"ENFILE", alive, dial(syscall.ENFILE), PhaseConnect, failure{ClassProber, ReasonResourceExhausted, PhaseConnect}},
		{"ETIMEDOUT", alive, dial(syscall.ETIMEDOUT), PhaseConnect, failure{ClassTimeout, ReasonDeadline, PhaseConnect}},

		{"DNS not found", alive, &net.DNSError{Err: "no such host", Name: "x.test", IsNotFound: true}, PhaseResolve, failure{ClassDNS, ReasonNXDomain, PhaseResolve}},
		{"DNS not found at the deadline", expired, &net.DNSError{Err: "no such host", Name: "x.test", IsNotFound: true}, PhaseResolve, failure{ClassDNS, ReasonNXDomain, PhaseResolve}},
		{"DNS servfail", alive, &net.DNSError{Err: "server misbehaving", Name: "x.test", IsTemporary: true}, PhaseResolve, failure{ClassDNS, ReasonServFail, PhaseResolve}},
		{"DNS other failure", alive, &net.DNSError{Err: "connection refused", Name: "x.test"}, PhaseResolve, failure{ClassDNS, ReasonResolverError, PhaseResolve}},
		{"DNS timeout, ctx alive", alive, &net.DNSError{Err: "i/o timeout", Name: "x.test", IsTimeout: true}, PhaseResolve, failure{ClassDNS, ReasonResolverError, PhaseResolve}},
		{"DNS timeout, ctx done", expired, &net.DNSError{Err: "i/o timeout", Name: "x.test", IsTimeout: true}, PhaseResolve, failure{ClassTimeout, ReasonDeadline, PhaseResolve}},
		{"DNS timeout, ctx canceled", canceled, &net.DNSError{Err: "operation was canceled", Name: "x.test", IsTimeout: true}, PhaseResolve, failure{ClassTimeout, ReasonCanceled, PhaseResolve}},

		{"context.DeadlineExceeded", expired, context.DeadlineExceeded, PhaseProcessing, failure{ClassTimeout, ReasonDeadline, PhaseProcessing}},
		{"context.DeadlineExceeded wrapped by net/http", expired, &url.Error{Op: "Get", URL: "http://x", Err: context.DeadlineExceeded}, PhaseProcessing, failure{ClassTimeout, ReasonDeadline, PhaseProcessing}},
		{"os.ErrDeadlineExceeded", expired, &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, PhaseTransfer, failure{ClassTimeout, ReasonDeadline, PhaseTransfer}},
		{"context.Canceled", canceled, fmt.Errorf("reading: %w", context.Canceled), PhaseTransfer, failure{ClassTimeout, ReasonCanceled, PhaseTransfer}},
		{"context.Canceled from inside, probe alive", alive, fmt.Errorf("dialing: %w", context.Canceled), PhaseConnect, failure{ClassTimeout, ReasonCanceled, PhaseConnect}},
		{"an unknown error while the scrape is abandoned", canceled, errors.New("something"), PhaseTransfer, failure{ClassTimeout, ReasonCanceled, PhaseTransfer}},

		{"x509 expired", alive, x509.CertificateInvalidError{Cert: past, Reason: x509.Expired}, PhaseTLS, failure{ClassTLS, ReasonCertExpired, PhaseTLS}},
		{"x509 expired inside tls", alive, verification(x509.CertificateInvalidError{Cert: past, Reason: x509.Expired}), PhaseTLS, failure{ClassTLS, ReasonCertExpired, PhaseTLS}},
		{"x509 not yet valid", alive, verification(x509.CertificateInvalidError{Cert: future, Reason: x509.Expired}), PhaseTLS, failure{ClassTLS, ReasonCertNotYetValid, PhaseTLS}},
		{"x509 not yet valid at the deadline", expired, verification(x509.CertificateInvalidError{Cert: future, Reason: x509.Expired}), PhaseTLS, failure{ClassTLS, ReasonCertNotYetValid, PhaseTLS}},
		{"x509 other invalidity", alive, verification(x509.CertificateInvalidError{Cert: past, Reason: x509.NotAuthorizedToSign}), PhaseTLS, failure{ClassTLS, ReasonCertInvalid, PhaseTLS}},
		{"x509 unknown authority", alive, verification(x509.UnknownAuthorityError{Cert: past}), PhaseTLS, failure{ClassTLS, ReasonCertUnknownAuthority, PhaseTLS}},
		{"x509 hostname", alive, verification(x509.HostnameError{Certificate: past, Host: "x.test"}), PhaseTLS, failure{ClassTLS, ReasonCertHostnameMismatch, PhaseTLS}},
		{"tls verification, other cause", alive, verification(errors.New("x509: something else")), PhaseTLS, failure{ClassTLS, ReasonCertInvalid, PhaseTLS}},
		{"tls.AlertError", alive, tls.AlertError(40), PhaseTLS, failure{ClassTLS, ReasonHandshake, PhaseTLS}},
		{"tls.AlertError outside the tls phase", alive, fmt.Errorf("handshake: %w", tls.AlertError(70)), PhaseConnect, failure{ClassTLS, ReasonHandshake, PhaseConnect}},
		{"tls.RecordHeaderError", alive, tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, PhaseTLS, failure{ClassTLS, ReasonHandshake, PhaseTLS}},
		{"remote tls alert", alive, &url.Error{Op: "Get", URL: "https://x", Err: &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}}, PhaseProcessing, failure{ClassTLS, ReasonHandshake, PhaseProcessing}},
		{"unknown error in the tls phase", alive, errors.New("tls: something odd"), PhaseTLS, failure{ClassTLS, ReasonHandshake, PhaseTLS}},

		{"io.ErrUnexpectedEOF", alive, io.ErrUnexpectedEOF, PhaseTransfer, failure{ClassProtocol, ReasonUnexpectedEOF, PhaseTransfer}},
		{"io.EOF wrapped by net/http", alive, &url.Error{Op: "Get", URL: "http://x", Err: io.EOF}, PhaseProcessing, failure{ClassProtocol, ReasonUnexpectedEOF, PhaseProcessing}},
		{"malformed response", alive, &url.Error{Op: "Get", URL: "http://x", Err: errors.New(`net/http: HTTP/1.x transport connection broken: malformed HTTP response "SSH-2.0"`)}, PhaseTransfer, failure{ClassProtocol, ReasonMalformedResponse, PhaseTransfer}},
		{"http response to https client", alive, &url.Error{Op: "Get", URL: "https://x", Err: http.ErrSchemeMismatch}, PhaseTLS, failure{ClassTLS, ReasonHandshake, PhaseTLS}},

		{"x/net http2.GoAwayError", alive, &url.Error{Op: "Get", URL: "https://x", Err: http2.GoAwayError{LastStreamID: 1, ErrCode: http2.ErrCodeNo}}, PhaseTransfer, failure{ClassProtocol, ReasonUnexpectedEOF, PhaseTransfer}},
		{"x/net http2.ConnectionError", alive, &url.Error{Op: "Get", URL: "https://x", Err: http2.ConnectionError(http2.ErrCodeProtocol)}, PhaseProcessing, failure{ClassProtocol, ReasonMalformedResponse, PhaseProcessing}},
		{"x/net http2.StreamError", alive, &url.Error{Op: "Get", URL: "https://x", Err: http2.StreamError{StreamID: 1, Code: http2.ErrCodeProtocol}}, PhaseProcessing, failure{ClassProtocol, ReasonMalformedResponse, PhaseProcessing}},
		{"textproto.ProtocolError", alive, fmt.Errorf("reading the response: %w", textproto.ProtocolError("malformed MIME header line: \"x\"")), PhaseProcessing, failure{ClassProtocol, ReasonMalformedResponse, PhaseProcessing}},
		{"http.ErrLineTooLong", alive, fmt.Errorf("reading the body: %w", http.ErrLineTooLong), PhaseTransfer, failure{ClassProtocol, ReasonMalformedResponse, PhaseTransfer}},
		{"a SOCKS5 proxy not speaking SOCKS5", alive, &net.OpError{Op: "socks connect", Net: "tcp", Err: errors.New("non-zero reserved field")}, PhaseConnect, failure{ClassProtocol, ReasonMalformedResponse, PhaseConnect}},
		{"a SOCKS5 proxy closing early", alive, &net.OpError{Op: "socks connect", Net: "tcp", Err: io.EOF}, PhaseConnect, failure{ClassProtocol, ReasonUnexpectedEOF, PhaseConnect}},

		{"classified keeps its labels", alive, classified, PhaseTransfer, failure{ClassAssertion, ReasonBodyRegex, PhaseValidate}},
		{"a check cut short by the deadline", expired, classified, PhaseTransfer, failure{ClassTimeout, ReasonDeadline, PhaseValidate}},
		{"a check cut short by the abandoned scrape", canceled, classified, PhaseTransfer, failure{ClassTimeout, ReasonCanceled, PhaseValidate}},
		{"a check cut short as the clock passes the deadline", clockPast, classified, PhaseTransfer, failure{ClassTimeout, ReasonDeadline, PhaseValidate}},
		{"a partial answer past the deadline", expired, textproto.ProtocolError(`malformed MIME header: missing colon: "X-Sl"`), PhaseProcessing, failure{ClassTimeout, ReasonDeadline, PhaseProcessing}},
		{"a closed connection past the deadline", expired, io.ErrUnexpectedEOF, PhaseTransfer, failure{ClassTimeout, ReasonDeadline, PhaseTransfer}},
		{"a status past the deadline is still a status", expired, Fail(ClassStatus, ReasonHTTPStatus, PhaseValidate, nil), PhaseValidate, failure{ClassStatus, ReasonHTTPStatus, PhaseValidate}},
		{"a body over the limit past the deadline is still too large", expired, Fail(ClassProtocol, ReasonBodyTooLarge, PhaseTransfer, nil), PhaseTransfer, failure{ClassProtocol, ReasonBodyTooLarge, PhaseTransfer}},
		{"classified and wrapped keeps its labels", canceled, fmt.Errorf("probe: %w", Fail(ClassDNS, ReasonNXDomain, PhaseResolve, nil)), PhaseConnect, failure{ClassDNS, ReasonNXDomain, PhaseResolve}},
		{"classified without a phase gets one", alive, Fail(ClassStatus, ReasonHTTPStatus, "", nil), PhaseValidate, failure{ClassStatus, ReasonHTTPStatus, PhaseValidate}},
		{"unknown stays unknown", alive, errors.New("mystery"), PhaseProcessing, failure{ClassUnknown, ReasonUnclassified, PhaseProcessing}},
		{"unknown stays unknown without a ctx", nil, errors.New("mystery"), PhaseConnect, failure{ClassUnknown, ReasonUnclassified, PhaseConnect}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Classify(tc.ctx, tc.err, tc.phase)
			if got == nil {
				t.Fatal("Classify returned nil for an error")
			}
			if f := (failure{got.Class, got.Reason, got.Phase}); f != tc.want {
				t.Errorf("Classify(%v) = %s, want %s", tc.err, f, tc.want)
			}
			if !errors.Is(got, tc.err) && !errors.Is(tc.err, got) {
				t.Errorf("the classified error lost its cause %v", tc.err)
			}
		})
	}
	if got := Classify(alive, nil, PhaseConnect); got != nil {
		t.Errorf("Classify(nil) = %v, want nil", got)
	}
}

// deadlineOnly is a context whose deadline has passed and which does not
// say so yet.
type deadlineOnly struct {
	context.Context
	deadline time.Time
}

func (c deadlineOnly) Deadline() (time.Time, bool) { return c.deadline, true }

func TestErrorMessage(t *testing.T) {
	err := Failf(ClassConnect, ReasonRefused, PhaseConnect, "connecting to %s", "127.0.0.1:1")
	if got, want := err.Error(), "connect/refused in phase connect: connecting to 127.0.0.1:1"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := Fail(ClassTimeout, ReasonDeadline, PhaseTLS, nil).Error(), "timeout/deadline in phase tls"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	cause := errors.New("cause")
	if !errors.Is(Fail(ClassUnknown, ReasonUnclassified, PhaseUnknown, cause), cause) {
		t.Error("Unwrap does not reach the cause")
	}
}

// failure names the labels a failed probe must carry; the zero value means
// the probe must succeed.
type failure struct {
	class  Class
	reason Reason
	phase  Phase
}

func (f failure) String() string {
	if f == (failure{}) {
		return "success"
	}
	return fmt.Sprintf("%s/%s in phase %s", f.class, f.reason, f.phase)
}
