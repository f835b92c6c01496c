package icmp

import (
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// scenarioDeadline is the deadline of a scenario that waits for it.
const scenarioDeadline = 300 * time.Millisecond

// TestICMPFailureScenarios are the rows of the failure matrix
// (docs/error-classes.md) that open an ICMP socket, which prober's
// TestFailureMatrix counts as tested here.
func TestICMPFailureScenarios(t *testing.T) {
	for _, c := range []struct {
		name string
		want failure
		run  func(t *testing.T) error
	}{
		{"icmp/connect", failure{taxonomy.ClassConnect, taxonomy.ReasonHostUnreachable, taxonomy.PhaseRTT}, icmpUnreachable},
		{"icmp/timeout", failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseRTT}, icmpSilent},
		{"icmp/assertion", failure{taxonomy.ClassAssertion, taxonomy.ReasonPacketLoss, taxonomy.PhaseRTT}, icmpLossy},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkOutcome(t, c.run(t), c.want)
		})
	}
}

// scenarioErr runs one probe under timeout and returns its error.
func scenarioErr(t *testing.T, m *core.Module, target string, timeout time.Duration) error {
	t.Helper()
	_, took, err := probertest.Probe(t, m, target, timeout)
	if took > timeout+500*time.Millisecond {
		t.Errorf("the probe took %v with a %v deadline", took, timeout)
	}
	return err
}
