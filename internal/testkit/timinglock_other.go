//go:build !unix

package testkit

import "testing"

// HoldTimingLock does nothing where flock is missing: the packages it
// keeps apart run on Linux CI.
func HoldTimingLock(testing.TB) {}
