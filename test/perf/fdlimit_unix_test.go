//go:build unix

package perf

import "syscall"

// openFileLimit is how many files this process may open: Go raises the
// soft limit to the hard one as it starts.
func openFileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 1 << 20
	}
	return l.Cur
}
