package prober

import (
	"context"

	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// The failure taxonomy under the names callers of the prober package have
// always used; new code names package taxonomy.

type (
	Class  = taxonomy.Class
	Error  = taxonomy.Error
	Phase  = taxonomy.Phase
	Reason = taxonomy.Reason
)

// Classify is taxonomy.Classify.
func Classify(ctx context.Context, err error, phase Phase) *Error {
	return taxonomy.Classify(ctx, err, phase)
}

// Fail is taxonomy.Fail.
func Fail(class Class, reason Reason, phase Phase, err error) *Error {
	return taxonomy.Fail(class, reason, phase, err)
}

// Failf is taxonomy.Failf.
func Failf(class Class, reason Reason, phase Phase, format string, args ...any) *Error {
	return taxonomy.Failf(class, reason, phase, format, args...)
}

const (
	ClassAssertion             = taxonomy.ClassAssertion
	ClassConnect               = taxonomy.ClassConnect
	ClassDNS                   = taxonomy.ClassDNS
	ClassProber                = taxonomy.ClassProber
	ClassProtocol              = taxonomy.ClassProtocol
	ClassStatus                = taxonomy.ClassStatus
	ClassTLS                   = taxonomy.ClassTLS
	ClassTimeout               = taxonomy.ClassTimeout
	PhaseConnect               = taxonomy.PhaseConnect
	PhaseProcessing            = taxonomy.PhaseProcessing
	PhaseQuery                 = taxonomy.PhaseQuery
	PhaseRTT                   = taxonomy.PhaseRTT
	PhaseResolve               = taxonomy.PhaseResolve
	PhaseSetup                 = taxonomy.PhaseSetup
	PhaseTransfer              = taxonomy.PhaseTransfer
	PhaseUnknown               = taxonomy.PhaseUnknown
	ReasonBodyRegex            = taxonomy.ReasonBodyRegex
	ReasonBodyTooLarge         = taxonomy.ReasonBodyTooLarge
	ReasonCanceled             = taxonomy.ReasonCanceled
	ReasonCertUnknownAuthority = taxonomy.ReasonCertUnknownAuthority
	ReasonDeadline             = taxonomy.ReasonDeadline
	ReasonGRPCUnimplemented    = taxonomy.ReasonGRPCUnimplemented
	ReasonHTTPStatus           = taxonomy.ReasonHTTPStatus
	ReasonInternal             = taxonomy.ReasonInternal
	ReasonInvalidTarget        = taxonomy.ReasonInvalidTarget
	ReasonMalformedResponse    = taxonomy.ReasonMalformedResponse
	ReasonNXDomain             = taxonomy.ReasonNXDomain
	ReasonPacketLoss           = taxonomy.ReasonPacketLoss
	ReasonRefused              = taxonomy.ReasonRefused
	ReasonResourceExhausted    = taxonomy.ReasonResourceExhausted
	ReasonServFail             = taxonomy.ReasonServFail
	ReasonSourceAddress        = taxonomy.ReasonSourceAddress
	ReasonTargetDenied         = taxonomy.ReasonTargetDenied
	ReasonTooManyRedirects     = taxonomy.ReasonTooManyRedirects
	ReasonTruncated            = taxonomy.ReasonTruncated
	ReasonUnexpectedEOF        = taxonomy.ReasonUnexpectedEOF
)
