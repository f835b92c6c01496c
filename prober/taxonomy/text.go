package taxonomy

import (
	"errors"
	"net"
	"strings"

	"golang.org/x/net/http2"
)

// textScope says which text of an error a textRow is looked for in.
type textScope int

const (
	// inMessage is the error's whole message.
	inMessage textScope = iota
	// inStreamCause is the Cause of an HTTP/2 stream error.
	inStreamCause
	// inSOCKS is the failure net/http's SOCKS5 client met, without the
	// *net.OpError's operation and addresses around it.
	inSOCKS
	// inDNS is the Err string of a *net.DNSError.
	inDNS
)

// textRow is a failure that Go reports as text alone: no exported type
// or sentinel error names it, so its words are what classification reads.
// Each row has a test that makes Go produce the text (text_test.go), so a
// Go upgrade that rewords one fails there rather than in production.
type textRow struct {
	scope  textScope
	text   string // looked for with strings.Contains
	class  Class
	reason Reason
	why    string // why it is text: where Go makes it and what hides its type
}

// textRows is every text match of the classification, each tried in
// order within its scope. Rows of inMessage are read once no typed check
// has recognised the error; the other scopes name the failure within a
// type a check has recognised (a stream error, the SOCKS5 client's
// *net.OpError, a *net.DNSError).
var textRows = []textRow{
	// A resolver's answer.
	{inDNS, "server misbehaving", ClassDNS, ReasonServFail,
		"the resolver's errServerMisbehaving is unexported, and *net.DNSError keeps it only as its Err string"},

	// A server giving up on the response half-way.
	{inStreamCause, "received from peer", ClassProtocol, ReasonUnexpectedEOF,
		"net/http marks an RST_STREAM the server sent with an unexported Cause (http2errFromPeer, as x/net's errFromPeer)"},
	{inMessage, "server sent GOAWAY and closed the connection", ClassProtocol, ReasonUnexpectedEOF,
		"net/http's bundled http2GoAwayError is unexported and has no As method (x/net's GoAwayError is typed)"},
	{inMessage, "http2: client connection lost", ClassProtocol, ReasonUnexpectedEOF,
		"net/http's HTTP/2 client makes it with errors.New when a PING goes unanswered (HTTP2Config.SendPingTimeout)"},
	{inMessage, "http: unexpected EOF reading trailer", ClassProtocol, ReasonUnexpectedEOF,
		"net/http's errTrailerEOF is unexported and does not wrap io.ErrUnexpectedEOF"},

	// HTTP/1.x responses that do not parse.
	{inMessage, "malformed HTTP response", ClassProtocol, ReasonMalformedResponse,
		"http.ReadResponse formats it with fmt.Errorf (badStringError)"},
	{inMessage, "malformed HTTP status code", ClassProtocol, ReasonMalformedResponse,
		"http.ReadResponse formats it with fmt.Errorf (badStringError)"},
	{inMessage, "malformed HTTP version", ClassProtocol, ReasonMalformedResponse,
		"http.ReadResponse formats it with fmt.Errorf (badStringError)"},
	{inMessage, "bad Content-Length", ClassProtocol, ReasonMalformedResponse,
		"net/http formats it with fmt.Errorf (badStringError)"},
	{inMessage, "invalid empty Content-Length", ClassProtocol, ReasonMalformedResponse,
		"net/http formats it with fmt.Errorf (badStringError)"},
	{inMessage, "multiple Content-Length headers", ClassProtocol, ReasonMalformedResponse,
		"net/http formats it with fmt.Errorf"},
	{inMessage, "unsupported transfer encoding", ClassProtocol, ReasonMalformedResponse,
		"net/http's unsupportedTEError is unexported"},
	{inMessage, "too many transfer encodings", ClassProtocol, ReasonMalformedResponse,
		"net/http's unsupportedTEError is unexported"},
	{inMessage, "server response headers exceeded", ClassProtocol, ReasonMalformedResponse,
		"net/http's Transport formats it with fmt.Errorf past MaxResponseHeaderBytes (sonde's direct path words its own limit the same)"},
	{inMessage, "failed to parse Location header", ClassProtocol, ReasonMalformedResponse,
		"http.Client formats it with fmt.Errorf and %v, which drops the *url.Error of the Location"},

	// HTTP/1.x chunked bodies that do not parse (net/http/internal).
	{inMessage, "invalid byte in chunk length", ClassProtocol, ReasonMalformedResponse,
		"net/http/internal makes it with errors.New"},
	{inMessage, "empty hex number for chunk length", ClassProtocol, ReasonMalformedResponse,
		"net/http/internal makes it with errors.New"},
	{inMessage, "http chunk length too large", ClassProtocol, ReasonMalformedResponse,
		"net/http/internal makes it with errors.New"},
	{inMessage, "malformed chunked encoding", ClassProtocol, ReasonMalformedResponse,
		"net/http/internal makes it with errors.New"},
	{inMessage, "chunked encoding contains too much non-data", ClassProtocol, ReasonMalformedResponse,
		"net/http/internal makes it with errors.New"},
	{inMessage, "chunked line ends with bare LF", ClassProtocol, ReasonMalformedResponse,
		"net/http/internal makes it with errors.New"},
	{inMessage, "invalid CR in chunked line", ClassProtocol, ReasonMalformedResponse,
		"net/http/internal makes it with errors.New"},
	{inMessage, "suspiciously long trailer after chunked body", ClassProtocol, ReasonMalformedResponse,
		"net/http makes it with errors.New"},

	// HTTP/2 connections that break the protocol.
	{inMessage, "connection error: ", ClassProtocol, ReasonMalformedResponse,
		"net/http's bundled http2ConnectionError is unexported and has no As method (x/net's ConnectionError is typed)"},
	{inMessage, "http2: Transport received GOAWAY from server ErrCode:", ClassProtocol, ReasonMalformedResponse,
		"net/http's HTTP/2 client formats it with fmt.Errorf when the first stream's GOAWAY carries an error code"},
	{inMessage, "http2: frame too large", ClassProtocol, ReasonMalformedResponse,
		"net/http's bundled http2ErrFrameTooLarge is unexported (an HTTP/1.x answer on an h2 connection reads as one)"},
	{inMessage, "http2: client conn could not be established", ClassProtocol, ReasonMalformedResponse,
		"net/http's HTTP/2 client makes it with errors.New when the server closed the connection (after a GOAWAY, say) before the first request went out"},
	{inMessage, "request header list larger than peer's advertised limit", ClassProtocol, ReasonMalformedResponse,
		"net/http/internal/httpcommon makes it with errors.New when the server's SETTINGS_MAX_HEADER_LIST_SIZE is below the request's"},
	{inMessage, "server replied with more than declared Content-Length", ClassProtocol, ReasonMalformedResponse,
		"net/http's HTTP/2 client makes it with errors.New"},

	// A SOCKS5 proxy's answers (proxy_url socks5://...). A reply code the
	// proxy sent for the target reads like the same failure met directly.
	{inSOCKS, "unknown error connection refused", ClassConnect, ReasonRefused,
		"net/http's SOCKS5 client makes its reply errors with errors.New (socksReply is unexported)"},
	{inSOCKS, "unknown error host unreachable", ClassConnect, ReasonHostUnreachable,
		"net/http's SOCKS5 client makes its reply errors with errors.New (socksReply is unexported)"},
	{inSOCKS, "unknown error network unreachable", ClassConnect, ReasonNetworkUnreachable,
		"net/http's SOCKS5 client makes its reply errors with errors.New (socksReply is unexported)"},
	{inSOCKS, "unknown error ", ClassStatus, ReasonReplyCode,
		"net/http's SOCKS5 client makes its reply errors with errors.New (socksReply is unexported)"},
	{inSOCKS, "no acceptable authentication methods", ClassStatus, ReasonReplyCode,
		"net/http's SOCKS5 client makes it with errors.New"},
	{inSOCKS, "username/password authentication failed", ClassStatus, ReasonReplyCode,
		"net/http's SOCKS5 client makes it with errors.New"},
	{inSOCKS, "unsupported authentication method", ClassStatus, ReasonReplyCode,
		"net/http's SOCKS5 client makes it with errors.New"},
}

// matchText returns the class and reason of the first row of scope whose
// text is in err's text of that scope.
func matchText(scope textScope, err error) (Class, Reason, bool) {
	msg, ok := scope.textOf(err)
	if !ok {
		return "", "", false
	}
	for _, row := range textRows {
		if row.scope == scope && strings.Contains(msg, row.text) {
			return row.class, row.reason, true
		}
	}
	return "", "", false
}

// textOf returns the text of err that scope names, if err has one.
func (s textScope) textOf(err error) (string, bool) {
	switch s {
	case inStreamCause:
		var stream http2.StreamError
		if errors.As(err, &stream) && stream.Cause != nil {
			return stream.Cause.Error(), true
		}
	case inSOCKS:
		if op := socksOp(err); op != nil {
			return op.Err.Error(), true
		}
	case inDNS:
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			return dnsErr.Err, true
		}
	default:
		return err.Error(), true
	}
	return "", false
}

// streamFailure classifies an HTTP/2 stream error, x/net's or the one
// net/http bundles (whose As method fills x/net's type): a stream the
// server reset is the server giving up on the response; one the client
// reset is the server breaking the protocol (a bad header, a missing
// :status, ...).
func streamFailure(err error) (Class, Reason, bool) {
	var stream http2.StreamError
	if !errors.As(err, &stream) {
		return "", "", false
	}
	if c, r, ok := matchText(inStreamCause, err); ok {
		return c, r, true
	}
	return ClassProtocol, ReasonMalformedResponse, true
}

// socksFailure classifies the errors of net/http's SOCKS5 client. What no
// row knows is the proxy not speaking SOCKS5.
func socksFailure(err error) (Class, Reason, bool) {
	if socksOp(err) == nil {
		return "", "", false
	}
	if c, r, ok := matchText(inSOCKS, err); ok {
		return c, r, true
	}
	return ClassProtocol, ReasonMalformedResponse, true
}

// socksOp returns the *net.OpError of net/http's SOCKS5 client in err
// (its Op is "socks connect"), or nil.
func socksOp(err error) *net.OpError {
	var op *net.OpError
	if errors.As(err, &op) && strings.HasPrefix(op.Op, "socks ") && op.Err != nil {
		return op
	}
	return nil
}
