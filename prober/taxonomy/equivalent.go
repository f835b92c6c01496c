package taxonomy

import "net/http"

// HTTPEquivalent is the HTTP status a gateway in front of the target would
// answer for this failure: service semantics for pipelines and people who
// think in HTTP codes (a refused connection is 503 Service Unavailable, a
// timeout 504 Gateway Timeout, a target sonde cannot read 400 Bad
// Request, a target sonde may not probe 403 Forbidden).
// docs/error-classes.md lists it for every class and reason.
func (e *Error) HTTPEquivalent() int {
	if code, ok := reasonEquivalents[e.Reason]; ok {
		return code
	}
	if code, ok := classEquivalents[e.Class]; ok {
		return code
	}
	return http.StatusInternalServerError
}

// classEquivalents gives each class its usual code; reasonEquivalents the
// reasons that differ from their class's.
var (
	classEquivalents = map[Class]int{
		ClassDNS:       http.StatusBadGateway,
		ClassConnect:   http.StatusServiceUnavailable,
		ClassTimeout:   http.StatusGatewayTimeout,
		ClassTLS:       http.StatusBadGateway,
		ClassProtocol:  http.StatusBadGateway,
		ClassStatus:    http.StatusBadGateway,
		ClassAssertion: http.StatusBadGateway,
		ClassProber:    http.StatusInternalServerError,
		ClassUnknown:   http.StatusInternalServerError,
	}
	reasonEquivalents = map[Reason]int{
		ReasonReset:              http.StatusBadGateway,
		ReasonCanceled:           499, // client closed request, as nginx names it
		ReasonBodyTooLarge:       http.StatusRequestEntityTooLarge,
		ReasonGRPCNotServing:     http.StatusServiceUnavailable,
		ReasonGRPCServiceUnknown: http.StatusNotFound,
		ReasonGRPCStatus:         http.StatusBadGateway,
		ReasonGRPCUnimplemented:  http.StatusNotImplemented,
		ReasonReplyCode:          http.StatusServiceUnavailable,
		ReasonPacketLoss:         http.StatusServiceUnavailable,
		ReasonInvalidTarget:      http.StatusBadRequest,
		ReasonUnsupported:        http.StatusNotImplemented,
		ReasonTargetDenied:       http.StatusForbidden, // a gateway's answer to a destination it may not reach
		ReasonResourceExhausted:  http.StatusServiceUnavailable,
	}
)
