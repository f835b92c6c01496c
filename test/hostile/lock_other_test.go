//go:build !unix

package hostile

import "testing"

// holdTimingLock does nothing where flock(2) is missing; see lock_unix_test.go.
func holdTimingLock(*testing.T) {}
