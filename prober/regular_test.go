//go:build unix

package prober

import (
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pconfig "github.com/prometheus/common/config"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// mkfifo makes a named pipe nothing writes to: reading it the usual way
// waits for ever, past any probe deadline.
func mkfifo(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("cannot make a named pipe: %v", err)
	}
	return path
}

// probeWithin prepares a module with prepare and probes target with it
// under a 5 s deadline, failing the test if either has not returned well
// after that deadline.
func probeWithin(t *testing.T, prepare func() *core.Module, target string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		m := prepare()
		_, _, err := probertest.Probe(t, m, target, 5*time.Second)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(5*time.Second + 10*time.Second):
		t.Fatal("preparing or probing blocked on a named pipe")
		return nil
	}
}

// TestNamedPipesFailProbes: a file a module names that is a named pipe
// fails the probe at once, naming the file, rather than holding it for
// ever; the target is not contacted.
func TestNamedPipesFailProbes(t *testing.T) {
	pipe := mkfifo(t)
	var hit atomic.Bool
	target := probertest.NewServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit.Store(true) }), probertest.ServerOpts{})
	tests := []struct {
		name    string
		section string
		want    failure
	}{
		{"ca_file", "tls_config:\n  ca_file: " + pipe, failure{taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup}},
		{"client key pair", "tls_config:\n  cert_file: " + pipe + "\n  key_file: " + pipe, failure{taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup}},
		{"body_file", "method: POST\nbody_file: " + pipe, failure{taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup}},
		{"password_file", "basic_auth:\n  username: u\n  password_file: " + pipe, failure{taxonomy.ClassProber, taxonomy.ReasonCredentials, taxonomy.PhaseSetup}},
		{"credentials_file", "authorization:\n  credentials_file: " + pipe, failure{taxonomy.ClassProber, taxonomy.ReasonCredentials, taxonomy.PhaseSetup}},
		{"oauth2 client_secret_file", "oauth2:\n  client_id: c\n  client_secret_file: " + pipe + "\n  token_url: " + target.URL + "/token", failure{taxonomy.ClassProber, taxonomy.ReasonCredentials, taxonomy.PhaseSetup}},
		{"oauth2 ca_file", "oauth2:\n  client_id: c\n  client_secret: s\n  token_url: " + target.URL + "/token\n  tls_config:\n    ca_file: " + pipe, failure{taxonomy.ClassProber, taxonomy.ReasonCredentials, taxonomy.PhaseSetup}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hit.Store(false)
			err := probeWithin(t, func() *core.Module { return yamlModule(t, tc.section) }, target.URL)
			if e := checkOutcome(t, err, tc.want); e != nil && !strings.Contains(e.Error(), pipe+" is a named pipe (FIFO); it must be a regular file") {
				t.Errorf("%v does not say the named pipe must be a regular file", e)
			}
			if hit.Load() {
				t.Error("the target was contacted")
			}
		})
	}
}

// TestWebsocketNamedPipeSecret: the websocket prober reads its secrets
// the same way.
func TestWebsocketNamedPipeSecret(t *testing.T) {
	pipe := mkfifo(t)
	s, _ := probertest.WSServer(t, probertest.Drain, probertest.ServerOpts{})
	err := probeWithin(t, func() *core.Module {
		return wsModule(t, func(w *config.WebsocketProbe) {
			w.HTTPConfig.BasicAuth = &pconfig.BasicAuth{Username: "probe", PasswordFile: pipe}
		})
	}, probertest.WSURL(s, "/"))
	checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonCredentials, taxonomy.PhaseSetup})
}
