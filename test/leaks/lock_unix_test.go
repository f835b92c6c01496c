//go:build unix

package leaks

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// holdTimingLock keeps this test from running while test/faults times its
// probes (go test runs packages in parallel): ten thousand probes fifty at
// a time take both cores of a CI machine, enough to push a probe there
// past its deadline's margin. test/faults takes the same lock.
func holdTimingLock(t *testing.T) {
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
