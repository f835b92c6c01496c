package http

import (
	"context"
	"errors"
	"fmt"

	"github.com/quic-go/quic-go"

	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// classifyHTTP3 classifies an error of the HTTP/3 path: quic-go's typed
// errors first, then what Classify knows (certificates, the socket errno
// an ICMP error leaves on the connected UDP socket, deadlines).
func classifyHTTP3(ctx context.Context, err error, phase taxonomy.Phase) *taxonomy.Error {
	if c, r, ok := quicFailure(ctx, err, phase); ok {
		if c == taxonomy.ClassTimeout {
			// sonde's side closed the connection because the probe was
			// over; err names only the close.
			err = fmt.Errorf("%w: %w", context.Cause(ctx), err)
		}
		return taxonomy.Fail(c, r, phase, err)
	}
	return taxonomy.Classify(ctx, err, phase)
}

// responseError classifies a failure once the QUIC connection is up.
// quic-go's HTTP/3 client reports a response it cannot parse (a bad
// status, a missing :status, a frame where none may be, more body than
// Content-Length, too many 1xx responses) with an error of no type of its
// own; the request having been checked before it was sent, no other
// untyped error reaches here, so what Classify does not know is the
// server breaking HTTP/3.
func responseError(ctx context.Context, err error, phase taxonomy.Phase) *taxonomy.Error {
	e := classifyHTTP3(ctx, err, phase)
	if e.Class == taxonomy.ClassUnknown {
		e.Class, e.Reason = taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse
	}
	return e
}

// quicFailure maps quic-go's errors to a class and reason. A connection or
// stream closed by the peer is the peer's doing whatever the deadline; one
// closed by sonde's side is the deadline's once the probe is over, and
// before that quic-go's answer to something the peer sent. In the
// handshake either is a failed handshake, as over TCP.
func quicFailure(ctx context.Context, err error, phase taxonomy.Phase) (taxonomy.Class, taxonomy.Reason, bool) {
	var classified *taxonomy.Error
	if errors.As(err, &classified) {
		return "", "", false // Classify keeps its labels
	}
	// A certificate sonde rejected travels inside the TLS alert's
	// transport error; the certificate is the cause.
	if r, ok := taxonomy.CertificateReason(err); ok {
		return taxonomy.ClassTLS, r, true
	}
	var transportErr *quic.TransportError
	var versionErr *quic.VersionNegotiationError
	var resetErr *quic.StatelessResetError
	switch {
	case errors.As(err, &transportErr) && transportErr.Remote && transportErr.ErrorCode == quic.ConnectionRefused:
		return taxonomy.ClassConnect, taxonomy.ReasonRefused, true // the server turned the connection away
	case errors.As(err, &resetErr):
		return taxonomy.ClassConnect, taxonomy.ReasonReset, true // the server has no state for the connection
	case errors.As(err, &versionErr):
		return taxonomy.ClassTLS, taxonomy.ReasonHandshake, true // no QUIC version in common
	case errors.As(err, &transportErr) && transportErr.ErrorCode.IsCryptoError():
		// A TLS alert, from either side: no common application protocol,
		// a client certificate refused, ...
		return taxonomy.ClassTLS, taxonomy.ReasonHandshake, true
	}
	remote, closed := closedBy(err)
	switch {
	case !closed:
		return "", "", false
	case !remote && ctx.Err() != nil:
		return taxonomy.ClassifyDeadline(ctx, ctx.Err())
	case phase == taxonomy.PhaseTLS:
		return taxonomy.ClassTLS, taxonomy.ReasonHandshake, true
	case remote:
		return taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, true
	}
	return taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, true
}

// closedBy says whether err is a QUIC connection closed, or a stream
// reset, and whether the peer did it. quic-go's HTTP/3 errors wrap the
// QUIC ones.
func closedBy(err error) (remote, closed bool) {
	var streamErr *quic.StreamError
	var appErr *quic.ApplicationError
	var transportErr *quic.TransportError
	switch {
	case errors.As(err, &streamErr):
		return streamErr.Remote, true
	case errors.As(err, &appErr):
		return appErr.Remote, true
	case errors.As(err, &transportErr):
		return transportErr.Remote, true
	}
	return false, false
}
