package prober

import (
	"slices"
	"testing"

	"github.com/sonde-exporter/sonde/config"
)

// TestRegistryMatchesConfig: the configuration checks the sections of the
// probers it knows, and the registry runs them; a prober in one and not
// the other would load without a check or be warned of and then run.
func TestRegistryMatchesConfig(t *testing.T) {
	var names []string
	for _, d := range registry {
		names = append(names, d.Name)
	}
	if want := config.Probers(); !slices.Equal(names, want) {
		t.Errorf("registry lists %v, the configuration %v", names, want)
	}
}

func TestWebsocketRegistered(t *testing.T) {
	if !IsImplemented("websocket") {
		t.Fatal("the websocket prober is not registered")
	}
}
