package config

import (
	"strings"
	"testing"
)

func TestPropagateTraceContext(t *testing.T) {
	tests := []struct {
		prober, err string
	}{
		{"http", ""},
		{"websocket", ""},
		{"grpc", ""},
		{"tcp", `module "m": propagate_trace_context: applies to the http, websocket, grpc probers`},
		{"dns", "this module's prober is dns"},
		{"icmp", "this module's prober is icmp"},
	}
	for _, tc := range tests {
		cfg, err := Load([]byte("modules:\n  m:\n    prober: " + tc.prober + "\n    propagate_trace_context: true\n"))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.prober, err)
		case tc.err == "" && !cfg.Modules["m"].PropagateTraceContext:
			t.Errorf("%s: propagate_trace_context was not read", tc.prober)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one containing %q", tc.prober, err, tc.err)
		}
	}
}
