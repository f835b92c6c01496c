package prober

import (
	"context"
	"net"
	"testing"

	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// The classification of real errors from the standard library, not
// hand-made ones, for the cases a test server can produce cheaply.
func TestClassifyRealErrors(t *testing.T) {
	ctx := context.Background()
	_, err := net.Dial("tcp4", testkit.ClosedTCPAddr(t))
	if got := taxonomy.Classify(ctx, err, taxonomy.PhaseConnect); got.Class != taxonomy.ClassConnect || got.Reason != taxonomy.ReasonRefused {
		t.Errorf("refused dial: %s/%s (%v)", got.Class, got.Reason, err)
	}
	_, err = probertest.TestResolver(t).LookupIPAddr(ctx, "nx.test")
	if got := taxonomy.Classify(ctx, err, taxonomy.PhaseResolve); got.Class != taxonomy.ClassDNS || got.Reason != taxonomy.ReasonNXDomain {
		t.Errorf("NXDOMAIN: %s/%s (%v)", got.Class, got.Reason, err)
	}
	_, err = probertest.TestResolver(t).LookupIPAddr(ctx, probertest.ServfailName)
	if got := taxonomy.Classify(ctx, err, taxonomy.PhaseResolve); got.Class != taxonomy.ClassDNS || got.Reason != taxonomy.ReasonServFail {
		t.Errorf("SERVFAIL: %s/%s (%v)", got.Class, got.Reason, err)
	}
}
