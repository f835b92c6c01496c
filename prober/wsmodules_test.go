package prober

import (
	"testing"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/core"
)

// wsModule is defaultModule for the websocket prober.
func wsModule(t *testing.T, mutate func(w *config.WebsocketProbe)) *core.Module {
	t.Helper()
	return defaultModule(t, "websocket", func(m *config.Module) {
		if mutate != nil {
			mutate(&m.Websocket)
		}
	})
}

// wsYAMLModule loads a websocket module from its `websocket:` section.
func wsYAMLModule(t *testing.T, section string) *core.Module {
	t.Helper()
	return sectionModule(t, "websocket", section)
}
