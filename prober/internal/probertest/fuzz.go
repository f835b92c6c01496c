package probertest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// ClassifiedInTime is the property every fuzz target holds a probe to:
// it ended within its deadline (plus a second of slack for the race
// detector on a busy machine), and a failure is a *Error with a class and
// a phase. It returns that *Error, nil for a success.
func ClassifiedInTime(t *testing.T, err error, took, deadline time.Duration) *taxonomy.Error {
	t.Helper()
	if took > deadline+time.Second {
		t.Fatalf("the probe took %v, past its %v deadline", took, deadline)
	}
	if err == nil {
		return nil
	}
	var perr *taxonomy.Error
	if !errors.As(err, &perr) {
		t.Fatalf("error %v is a %T, not a *prober.Error", err, err)
	}
	if perr.Class == taxonomy.ClassUnknown || perr.Phase == "" || perr.Phase == taxonomy.PhaseUnknown {
		t.Fatalf("unclassified failure %s/%s in phase %q: %v", perr.Class, perr.Reason, perr.Phase, err)
	}
	return perr
}

// FuzzModuleOf loads a module of prober, one of probers, from its
// section, as loadSection does, for fuzz targets, which prepare their
// modules once.
func FuzzModuleOf(tb testing.TB, probers []core.Descriptor, prober, section string) *core.Module {
	tb.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "modules:\n  fuzz:\n    prober: %s\n    %s:\n", prober, prober)
	for _, line := range strings.Split(strings.Trim(section, "\n"), "\n") {
		b.WriteString("      " + line + "\n")
	}
	cfg, err := config.Load([]byte(b.String()))
	if err != nil {
		tb.Fatalf("config.Load:\n%s\n%v", b.String(), err)
	}
	m, err := core.PrepareModule("fuzz", cfg.Modules["fuzz"], probers)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}
