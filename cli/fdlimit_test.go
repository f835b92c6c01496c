//go:build unix

package cli

import (
	"syscall"
	"testing"
)

func TestRaiseFileLimit(t *testing.T) {
	var before syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &before); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &before) })
	// Start from a lowered soft limit, as a service manager might leave it.
	lowered := syscall.Rlimit{Cur: min(before.Cur, 256), Max: before.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	soft, hard, err := raiseFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	var now syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &now); err != nil {
		t.Fatal(err)
	}
	if soft != uint64(before.Max) || hard != uint64(before.Max) || now.Cur != before.Max {
		t.Errorf("raised to soft %d hard %d (now %d), want both at the hard limit %d", soft, hard, now.Cur, before.Max)
	}
}
