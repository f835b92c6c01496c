package prober

import (
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// Hosts no resolver could know are the operator's typo: refused before any
// lookup as prober/invalid_target (HTTP 400), not failed as a DNS lookup.
func TestMalformedHostsAreInvalidTargets(t *testing.T) {
	for _, tc := range []struct{ prober, target string }{
		{"http", "http://]/"},
		{"http", "http://a%20b/"},
		{"websocket", "ws://]/"},
		{"tcp", "]:80"},
		{"tcp", "a b:80"},
		{"tcp", "a/b:80"},
		{"grpc", "]"},
		{"grpc", "a b:50051"},
		{"dns", "a b:53"},
		{"dns", "]"},
		{"icmp", "a b"},
	} {
		t.Run(tc.prober+" "+tc.target, func(t *testing.T) {
			m := defaultModule(t, tc.prober, nil)
			if tc.prober == "dns" {
				m.DNS.QueryName = "example.test"
			}
			_, _, err := probertest.Probe(t, m, tc.target, 2*time.Second)
			checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup})
		})
	}
}
