package taxonomy

// ClassReason is one failure reason and the class it belongs to.
type ClassReason struct {
	Class  Class
	Reason Reason
}

// AllReasons is every Reason with its Class, in the order errors.go
// declares them. TestAllReasons keeps it equal to the constants of
// errors.go, and TestFailureMatrixTable checks that docs/error-classes.md
// has a row for each.
var AllReasons = []ClassReason{
	{ClassDNS, ReasonNXDomain},
	{ClassDNS, ReasonServFail},
	{ClassDNS, ReasonNoAddress},
	{ClassDNS, ReasonResolverError},

	{ClassConnect, ReasonRefused},
	{ClassConnect, ReasonReset},
	{ClassConnect, ReasonHostUnreachable},
	{ClassConnect, ReasonNetworkUnreachable},

	{ClassTimeout, ReasonDeadline},
	{ClassTimeout, ReasonCanceled},

	{ClassTLS, ReasonHandshake},
	{ClassTLS, ReasonStartTLSRefused},
	{ClassTLS, ReasonCertExpired},
	{ClassTLS, ReasonCertNotYetValid},
	{ClassTLS, ReasonCertUnknownAuthority},
	{ClassTLS, ReasonCertHostnameMismatch},
	{ClassTLS, ReasonCertRevoked},
	{ClassTLS, ReasonOCSPNotStapled},
	{ClassTLS, ReasonOCSPUnknown},
	{ClassTLS, ReasonCertInvalid},

	{ClassProtocol, ReasonMalformedResponse},
	{ClassProtocol, ReasonUnexpectedEOF},
	{ClassProtocol, ReasonBodyTooLarge},
	{ClassProtocol, ReasonTooManyRedirects},
	{ClassProtocol, ReasonTruncated},
	{ClassProtocol, ReasonGRPCUnimplemented},

	{ClassStatus, ReasonHTTPStatus},
	{ClassStatus, ReasonDNSRcode},
	{ClassStatus, ReasonReplyCode},
	{ClassStatus, ReasonGRPCNotServing},
	{ClassStatus, ReasonGRPCServiceUnknown},
	{ClassStatus, ReasonGRPCStatus},

	{ClassAssertion, ReasonBodyRegex},
	{ClassAssertion, ReasonHeaderRegex},
	{ClassAssertion, ReasonBodyCEL},
	{ClassAssertion, ReasonHTTPVersion},
	{ClassAssertion, ReasonSSLRequired},
	{ClassAssertion, ReasonSSLForbidden},
	{ClassAssertion, ReasonExpect},
	{ClassAssertion, ReasonDNSRRs},
	{ClassAssertion, ReasonPacketLoss},

	{ClassProber, ReasonInvalidTarget},
	{ClassProber, ReasonCredentials},
	{ClassProber, ReasonSourceAddress},
	{ClassProber, ReasonPermissionDenied},
	{ClassProber, ReasonResourceExhausted},
	{ClassProber, ReasonInternal},
	{ClassProber, ReasonUnsupported},
	{ClassProber, ReasonTargetDenied},
	{ClassProber, ReasonConfig},

	{ClassUnknown, ReasonUnclassified},
}
