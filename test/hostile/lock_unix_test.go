//go:build unix

package hostile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// holdTimingLock keeps this suite from running while test/faults times its
// probes or test/leaks makes its ten thousand (go test runs packages in
// parallel): the rows that flood loopback take both cores of a CI machine
// for seconds, enough to push a probe there past its deadline's margin,
// and the rows here time their own probes. Both take the same lock.
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
