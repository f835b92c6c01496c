package prober

import (
	"testing"

	"github.com/sonde-exporter/sonde/prober/core"
)

// dnsModule loads a dns module from its `dns:` section. Names resolve
// with the test resolver (v4only.test and friends).
func dnsModule(t *testing.T, section string) *core.Module {
	t.Helper()
	return sectionModule(t, "dns", section)
}
