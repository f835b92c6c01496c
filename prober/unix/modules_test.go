package unix

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// How the tests make modules, of this package's prober only, and say what
// a probe must fail with.

var probers = []core.Descriptor{{Name: "unix", Prepare: Prepare}}

// defaultModule prepares a module of prober with blackbox's defaults,
// changed by mutate, that resolves names with the test DNS server.
func defaultModule(t *testing.T, prober string, mutate func(m *config.Module)) *core.Module {
	t.Helper()
	return probertest.DefaultModule(t, probers, prober, mutate)
}

// loadSection loads a module of prober the way the exporter does, from
// its section of a configuration file, so that the schema's defaults,
// normalisations (bearer_token into authorization, ...) and rules apply.
// Names resolve with the test DNS server.
func loadSection(t *testing.T, prober, section string) (*core.Module, error) {
	t.Helper()
	return probertest.LoadSection(t, probers, prober, section)
}

// sectionModule is loadSection for sections that must load.
func sectionModule(t *testing.T, prober, section string) *core.Module {
	t.Helper()
	m, err := loadSection(t, prober, section)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// failure names the labels a failed probe must carry; the zero value means
// the probe must succeed.
type failure struct {
	class  taxonomy.Class
	reason taxonomy.Reason
	phase  taxonomy.Phase
}

func (f failure) String() string {
	if f == (failure{}) {
		return "success"
	}
	return fmt.Sprintf("%s/%s in phase %s", f.class, f.reason, f.phase)
}

// checkOutcome asserts probe_success semantics (nil error = success) and,
// for a failure, the exact class, reason and phase. It returns the *Error.
func checkOutcome(t *testing.T, err error, want failure) *taxonomy.Error {
	t.Helper()
	return probertest.CheckOutcome(t, err, want.class, want.reason, want.phase)
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 {
		code = probertest.CheckDocumented("../../docs/metrics.md", nil)
	}
	os.Exit(code)
}
