package prober

import (
	"context"
	"net"
	"testing"
)

// The classification of real errors from the standard library, not
// hand-made ones, for the cases a test server can produce cheaply.
func TestClassifyRealErrors(t *testing.T) {
	ctx := context.Background()
	_, err := net.Dial("tcp4", closedPort(t))
	if got := Classify(ctx, err, PhaseConnect); got.Class != ClassConnect || got.Reason != ReasonRefused {
		t.Errorf("refused dial: %s/%s (%v)", got.Class, got.Reason, err)
	}
	_, err = testResolver(t).LookupIPAddr(ctx, "nx.test")
	if got := Classify(ctx, err, PhaseResolve); got.Class != ClassDNS || got.Reason != ReasonNXDomain {
		t.Errorf("NXDOMAIN: %s/%s (%v)", got.Class, got.Reason, err)
	}
	_, err = testResolver(t).LookupIPAddr(ctx, servfailName)
	if got := Classify(ctx, err, PhaseResolve); got.Class != ClassDNS || got.Reason != ReasonServFail {
		t.Errorf("SERVFAIL: %s/%s (%v)", got.Class, got.Reason, err)
	}
}
