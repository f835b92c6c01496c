package taxonomy

import "testing"

func TestHTTPEquivalent(t *testing.T) {
	for _, tc := range []struct {
		class  Class
		reason Reason
		want   int
	}{
		{ClassConnect, ReasonRefused, 503},
		{ClassConnect, ReasonReset, 502},
		{ClassTimeout, ReasonDeadline, 504},
		{ClassTimeout, ReasonCanceled, 499},
		{ClassDNS, ReasonNXDomain, 502},
		{ClassTLS, ReasonCertExpired, 502},
		{ClassStatus, ReasonGRPCNotServing, 503},
		{ClassProtocol, ReasonGRPCUnimplemented, 501},
		{ClassProtocol, ReasonBodyTooLarge, 413},
		{ClassAssertion, ReasonBodyRegex, 502},
		{ClassAssertion, ReasonPacketLoss, 503},
		{ClassProber, ReasonInvalidTarget, 400},
		{ClassProber, ReasonUnsupported, 501},
		{ClassProber, ReasonPermissionDenied, 500},
		{ClassUnknown, ReasonUnclassified, 500},
	} {
		if got := Fail(tc.class, tc.reason, PhaseConnect, nil).HTTPEquivalent(); got != tc.want {
			t.Errorf("%s/%s: %d, want %d", tc.class, tc.reason, got, tc.want)
		}
	}
}
