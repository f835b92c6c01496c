package tracing

import (
	"context"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		env     map[string]string
		on      bool
		proto   string
		wantErr string
	}{
		{name: "off by default", opts: Options{SamplingRatio: -1}},
		{name: "flag", opts: Options{Endpoint: "http://127.0.0.1:4318", SamplingRatio: -1}, on: true, proto: ProtocolHTTP},
		{name: "flag and protocol", opts: Options{Endpoint: "http://127.0.0.1:4317", Protocol: ProtocolGRPC, SamplingRatio: 0.5}, on: true, proto: ProtocolGRPC},
		{name: "environment", opts: Options{SamplingRatio: -1},
			env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, on: true, proto: ProtocolGRPC},
		{name: "traces protocol wins", opts: Options{SamplingRatio: -1},
			env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces",
				"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, on: true, proto: ProtocolHTTP},
		{name: "sdk disabled", opts: Options{Endpoint: "http://127.0.0.1:4318", SamplingRatio: -1},
			env: map[string]string{"OTEL_SDK_DISABLED": "true"}},
		{name: "exporter none", opts: Options{Endpoint: "http://127.0.0.1:4318", SamplingRatio: -1},
			env: map[string]string{"OTEL_TRACES_EXPORTER": "none"}},
		{name: "other exporter", opts: Options{Endpoint: "http://127.0.0.1:4318", SamplingRatio: -1},
			env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, wantErr: "otlp only"},
		{name: "bad protocol", opts: Options{SamplingRatio: -1},
			env:     map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
			wantErr: `OTLP protocol "http/json" is not supported`},
		{name: "endpoint without scheme", opts: Options{Endpoint: "collector:4318", SamplingRatio: -1}, wantErr: "is not a URL like http://collector:4318"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
				"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER"} {
				t.Setenv(k, tc.env[k])
			}
			s, err := New(context.Background(), tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Shutdown(context.Background())
			if (s.Tracer != nil) != tc.on || s.Protocol != tc.proto {
				t.Errorf("tracing on %v with %q, want %v with %q", s.Tracer != nil, s.Protocol, tc.on, tc.proto)
			}
		})
	}
}

func TestWithTracesPath(t *testing.T) {
	for in, want := range map[string]string{
		"http://c:4318":             "http://c:4318/v1/traces",
		"http://c:4318/":            "http://c:4318/v1/traces",
		"https://c/otlp/v1/traces":  "https://c/otlp/v1/traces",
		"http://c:4318/custom/path": "http://c:4318/custom/path",
	} {
		if got := withTracesPath(in); got != want {
			t.Errorf("withTracesPath(%q) = %q, want %q", in, got, want)
		}
	}
}
