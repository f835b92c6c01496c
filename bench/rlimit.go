package bench

import (
	"fmt"
	"syscall"
)

// FileLimit is RLIMIT_NOFILE as the harness left it for itself and for
// the exporters it starts.
type FileLimit struct {
	Soft, Hard uint64
}

// raiseFileLimit raises the soft limit on open files to the hard limit.
// Go raises its own soft limit at start-up already, but gives children the
// original one back; setting it explicitly makes the exporters, which
// inherit it, get the raised limit too. Scale mode needs about two
// descriptors per probe in flight in the exporter (the scrape's connection
// over plain HTTP, and the probe's) and as many in the harness. When the
// hard limit is below need, it is raised too, which only root may do;
// otherwise the run would fail half way with an error far from its cause,
// so it fails here, saying what to raise.
func raiseFileLimit(need uint64) (FileLimit, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return FileLimit{}, fmt.Errorf("reading RLIMIT_NOFILE: %w", err)
	}
	if l.Max < need {
		raised := syscall.Rlimit{Cur: need, Max: need}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return FileLimit{}, fmt.Errorf("this run needs %d open files and the hard limit is %d: raise it (ulimit -Hn, as root): %w", need, l.Max, err)
		}
		return FileLimit{Soft: need, Hard: need}, nil
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return FileLimit{}, fmt.Errorf("raising RLIMIT_NOFILE to %d: %w", l.Max, err)
	}
	return FileLimit{Soft: l.Cur, Hard: l.Max}, nil
}
