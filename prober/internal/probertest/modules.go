package probertest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// DefaultModule prepares a module of prober, one of probers, with
// blackbox's defaults changed by mutate, resolving names with the test DNS
// server. A prober package's tests pass their own descriptor: they cannot
// import the registry.
func DefaultModule(t *testing.T, probers []core.Descriptor, prober string, mutate func(m *config.Module)) *core.Module {
	t.Helper()
	cm := config.DefaultModule()
	cm.Prober = prober
	if mutate != nil {
		mutate(&cm)
	}
	m, err := core.PrepareModule("test", cm, probers, core.WithResolver(TestResolver(t)))
	if err != nil {
		t.Fatalf("NewModule: %v", err)
	}
	return m
}

// LoadSection loads a module of prober the way the exporter does, from its
// section of a configuration file, so that the schema's defaults,
// normalisations (bearer_token into authorization, ...) and rules apply.
// Names resolve with the test DNS server.
func LoadSection(t *testing.T, probers []core.Descriptor, prober, section string) (*core.Module, error) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "modules:\n  test:\n    prober: %s\n    %s:\n", prober, prober)
	for _, line := range strings.Split(strings.Trim(section, "\n"), "\n") {
		b.WriteString("      " + line + "\n")
	}
	cfg, err := config.Load([]byte(b.String()))
	if err != nil {
		return nil, fmt.Errorf("config.Load:\n%s\n%w", b.String(), err)
	}
	return core.PrepareModule("test", cfg.Modules["test"], probers, core.WithResolver(TestResolver(t)))
}

// CheckOutcome asserts probe_success semantics (nil error = success, asked
// for with all three labels empty) and, for a failure, the exact class,
// reason and phase. It returns the *Error.
func CheckOutcome(t *testing.T, err error, class taxonomy.Class, reason taxonomy.Reason, phase taxonomy.Phase) *taxonomy.Error {
	t.Helper()
	want := fmt.Sprintf("%s/%s in phase %s", class, reason, phase)
	if class == "" && reason == "" && phase == "" {
		if err != nil {
			t.Fatalf("probe failed, want success: %v", err)
		}
		return nil
	}
	if err == nil {
		t.Fatalf("probe succeeded, want %s", want)
	}
	var perr *taxonomy.Error
	if !errors.As(err, &perr) {
		t.Fatalf("error %v (%T) is not a *prober.Error", err, err)
	}
	if perr.Class != class || perr.Reason != reason || perr.Phase != phase {
		t.Fatalf("failure = %s/%s in phase %s, want %s; error: %v", perr.Class, perr.Reason, perr.Phase, want, err)
	}
	return perr
}
