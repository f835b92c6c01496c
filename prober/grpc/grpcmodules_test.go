package grpc

import (
	"testing"

	"github.com/sonde-exporter/sonde/prober/core"
)

// grpcModule loads a grpc module from its `grpc:` section.
func grpcModule(t *testing.T, section string) *core.Module {
	t.Helper()
	if section == "" {
		section = "service: \"\""
	}
	return sectionModule(t, "grpc", section)
}
