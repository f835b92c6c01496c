package cli

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// The target policy through the binary and /probe: --probe.deny-private
// refuses a loopback target that the same sonde probes without it, and a
// module's targets block applies with or without it.
func TestTargetPolicyEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	defer target.Close()
	cfgFile := filepath.Join(t.TempDir(), "sonde.yml")
	writeFile(t, cfgFile, `
modules:
  http_2xx:
    prober: http
  https_only:
    prober: http
    targets:
      schemes: [https]
`)
	const refused = `probe_failure_info{class="prober",phase="resolve",reason="target_denied"} 1`
	for _, tc := range []struct {
		name   string
		flags  []string
		module string
		want   []string
	}{
		{"without the flag", nil, "http_2xx", []string{"probe_success 1"}},
		{"with the flag", []string{"--probe.deny-private"}, "http_2xx", []string{"probe_success 0", refused}},
		{"a module's scheme rule", nil, "https_only", []string{"probe_success 0", `reason="target_denied"`, `phase="setup"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startSonde(t, cfgFile, tc.flags...)
			code, body := p.probe(t, tc.module, target.URL)
			if code != http.StatusOK {
				t.Fatalf("/probe answered %d, want 200 with the failure:\n%s", code, body)
			}
			for _, want := range tc.want {
				if !strings.Contains(body, want) {
					t.Errorf("the answer lacks %q:\n%s", want, body)
				}
			}
		})
	}

	// debug=true shows why, naming the address and the flag.
	p := startSonde(t, cfgFile, "--probe.deny-private")
	_, body := p.get(t, "/probe?module=http_2xx&debug=true&target="+target.URL)
	if !strings.Contains(body, "address 127.0.0.1 is denied by --probe.deny-private (loopback)") {
		t.Errorf("the debug output does not say why:\n%s", body)
	}
}
