package prober

import (
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// A connection to 0.0.0.0 reaches 127.0.0.1 (the kernel rewrites it), so
// the rules for 127.0.0.1 apply to it, in every prober; one to :: reaches
// ::1, and an IPv4-mapped address is its IPv4 form.
func TestTargetPolicyUnspecifiedReachesLoopback(t *testing.T) {
	for _, c := range everyProber {
		name := c.prober
		if c.prober == "dns" {
			name += "/" + transportName(c.mutate)
		}
		t.Run(name, func(t *testing.T) {
			deny := policyModule(t, c.prober, config.Targets{Deny: []string{"127.0.0.1/32"}}, c.mutate)
			_, err := probertest.Run(t, deny, c.target(t, "0.0.0.0"))
			denied(t, err, taxonomy.PhaseResolve, `address 0.0.0.0 (which reaches 127.0.0.1) is denied by targets.deny entry "127.0.0.1/32" of module "test"`)

			// What the rules allow, 0.0.0.0 reaches: the server on 127.0.0.1.
			allow := policyModule(t, c.prober, config.Targets{Allow: []string{"127.0.0.1"}}, c.mutate)
			if c.prober == "icmp" {
				// The echo reply comes from 127.0.0.1, not the address
				// asked: only the policy's verdict is of interest here.
				_, _, err = probertest.Probe(t, allow, c.target(t, "0.0.0.0"), time.Second)
				notDenied(t, err)
				return
			}
			_, err = probertest.Run(t, allow, c.target(t, "0.0.0.0"))
			checkOutcome(t, err, failure{})
		})
	}
	for _, tc := range []struct{ deny, target, want string }{
		{"127.0.0.1/32", "[::ffff:0.0.0.0]:80", `address 0.0.0.0 (which reaches 127.0.0.1) is denied`},
		{"::1", "[::]:80", `address :: (which reaches ::1) is denied by targets.deny entry "::1"`},
		{"0.0.0.0/8", "0.0.0.0:80", `address 0.0.0.0 is denied by targets.deny entry "0.0.0.0/8"`},
	} {
		m := policyModule(t, "tcp", config.Targets{Deny: []string{tc.deny}}, nil)
		_, err := probertest.Run(t, m, tc.target)
		denied(t, err, taxonomy.PhaseResolve, tc.want)
	}
	_, err := probertest.Run(t, policyModule(t, "tcp", config.Targets{Allow: []string{"10.0.0.0/8"}}, nil), "0.0.0.0:80")
	denied(t, err, taxonomy.PhaseResolve, "address 0.0.0.0 matches no targets.allow entry")
}
