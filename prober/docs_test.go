package prober

import (
	"flag"
	"os"
	"testing"

	"github.com/sonde-exporter/sonde/prober/internal/probertest"
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 {
		code = probertest.CheckDocumented("../docs/metrics.md", true)
	}
	os.Exit(code)
}
