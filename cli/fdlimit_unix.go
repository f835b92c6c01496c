//go:build unix

package cli

import (
	"fmt"
	"syscall"
)

// raiseFileLimit raises the soft limit on open files to the hard one, and
// returns both for the start-up log. Every probe opens fresh sockets, so
// the soft limit (often 1024) is what caps the probes in flight; the hard
// limit is the administrator's. Go's os package already raises it when the
// process starts on most systems; doing it here as well makes the outcome
// explicit and visible.
func raiseFileLimit() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("reading RLIMIT_NOFILE: %w", err)
	}
	// The fields are uint64 on Linux and darwin but int64 on FreeBSD, a
	// release platform: hence the conversions.
	if lim.Cur >= lim.Max {
		return uint64(lim.Cur), uint64(lim.Max), nil
	}
	raised := syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
		return uint64(lim.Cur), uint64(lim.Max), fmt.Errorf("raising RLIMIT_NOFILE from %d to %d: %w", lim.Cur, lim.Max, err)
	}
	return uint64(raised.Cur), uint64(raised.Max), nil
}
