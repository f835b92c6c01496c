//go:build unix

package testkit

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// HoldTimingLock keeps the test packages that load both cores (test/leaks'
// ten thousand probes, test/hostile's flooding peers) from running while
// those that time their probes against a margin (test/faults,
// test/hostile) do: go test runs packages in parallel, and a CI machine has
// two cores. The lock is released when the test ends.
func HoldTimingLock(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "sonde-test-timing.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() }) // closing releases the lock
}
