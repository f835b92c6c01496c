package testkit

import "testing"

func TestListenAddress(t *testing.T) {
	tests := []struct {
		name, log, want string
	}{
		{"sonde and blackbox_exporter (slog)", "time=2026-12-08T00:58:03.308Z level=INFO source=serve.go:156 msg=\"Loaded configuration\" file=/tmp/x.yml\n" +
			"time=2026-12-08T00:58:03.309Z level=INFO source=tls_config.go:395 msg=\"Listening on\" address=127.0.0.1:35251\n" +
			"time=2026-12-08T00:58:03.309Z level=INFO source=tls_config.go:398 msg=\"TLS is disabled.\" http2=false address=127.0.0.1:35251\n", "127.0.0.1:35251"},
		{"a component between the message and the address", `level=info component=web msg="Listening on" component=web address=[::1]:9093` + "\n", "[::1]:9093"},
		{"go-kit logfmt, Prometheus 2", `ts=2024-01-01T00:00:00.000Z caller=tls_config.go:232 level=info component=web msg="Listening on" address=127.0.0.1:41003` + "\n", "127.0.0.1:41003"},
		{"not yet", `level=INFO msg="Start listening for connections" address=127.0.0.1:0` + "\n", ""},
		{"a line cut short", `level=INFO msg="Listening on" addr`, ""},
		{"an address cut short", `level=INFO msg="Listening on" address=127.0.0.1:35`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ListenAddress(tc.log)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("ListenAddress = %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
}
