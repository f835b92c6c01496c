//go:build !linux

package icmp

import "testing"

// The icmp scenarios of TestICMPFailureScenarios that open an ICMP socket use the
// helpers of icmp_linux_test.go.

func icmpUnreachable(t *testing.T) error {
	t.Skip("the icmp scenarios run on Linux")
	return nil
}

func icmpSilent(t *testing.T) error { return icmpUnreachable(t) }
func icmpLossy(t *testing.T) error  { return icmpUnreachable(t) }
