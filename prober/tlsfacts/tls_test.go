package tlsfacts

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	pconfig "github.com/prometheus/common/config"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// TestTLSWithoutAServerName: over a unix socket there is no host name to
// verify the server as, and blackbox's handshake fails without one.
func TestTLSWithoutAServerName(t *testing.T) {
	c, err := NewClient(&config.Module{}, "unix", &pconfig.TLSConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var e *taxonomy.Error
	if err := c.CanHandshake(""); !errors.As(err, &e) || e.Reason != taxonomy.ReasonConfig || !strings.Contains(e.Error(), "server_name") {
		t.Errorf("canHandshake without a name = %v, want prober/config naming server_name", err)
	}
	insecure, _ := NewClient(&config.Module{}, "unix", &pconfig.TLSConfig{InsecureSkipVerify: true})
	if err := insecure.CanHandshake(""); err != nil {
		t.Errorf("insecure_skip_verify needs no name: %v", err)
	}
}

// tlsServer serves TLS on loopback with a certificate of ca for localhost.
func tlsServer(t *testing.T, ca *testcert.CA) string {
	t.Helper()
	ln, err := tls.Listen("tcp", testkit.AnyPort, ca.Issue(t, testcert.Loopback()).ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	testkit.ServeConns(t, ln, func(c net.Conn) { io.Copy(io.Discard, c) })
	return ln.Addr().String()
}

// The chain is known whatever the verdict: an untrusted one fails the
// handshake and is still described by the metrics.
func TestHandshakeRecordsTheChain(t *testing.T) {
	ca := testcert.NewCA(t, testcert.Spec{})
	addr := tlsServer(t, ca)
	caFile := ca.WriteFile(t, t.TempDir(), "ca.pem")
	for _, tc := range []struct {
		name     string
		cfg      pconfig.TLSConfig
		verified float64
		fails    bool
	}{
		{"trusted", pconfig.TLSConfig{CAFile: caFile}, 1, false},
		{"untrusted", pconfig.TLSConfig{}, 0, true},
		{"untrusted, insecure_skip_verify", pconfig.TLSConfig{InsecureSkipVerify: true}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewClient(&config.Module{}, "tcp", &tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Load(nil); err != nil {
				t.Fatal(err)
			}
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sink := probemetrics.NewSink()
			secured, took, err := Handshake(ctx, conn, c, "localhost", sink)
			var perr *taxonomy.Error
			switch {
			case tc.fails && (!errors.As(err, &perr) || perr.Phase != taxonomy.PhaseTLS):
				t.Fatalf("handshake = %v, want a failure in phase tls", err)
			case !tc.fails && err != nil:
				t.Fatalf("handshake failed: %v", err)
			case !tc.fails:
				secured.Close()
			}
			if took <= 0 {
				t.Errorf("the handshake took %v", took)
			}
			if got, ok := sink.Value("probe_tls_verified"); !ok || got != tc.verified {
				t.Errorf("probe_tls_verified = %v (exported: %v), want %v", got, ok, tc.verified)
			}
			if _, ok := sink.Value("probe_ssl_earliest_cert_expiry"); !ok {
				t.Error("probe_ssl_earliest_cert_expiry is missing")
			}
			if len(sink.Spans()) != 1 || sink.Spans()[0].Phase != taxonomy.PhaseTLS {
				t.Errorf("spans = %+v, want the tls phase's", sink.Spans())
			}
		})
	}
}

func TestServerNameAndVersionName(t *testing.T) {
	if got := ServerName("", "example.com"); got != "example.com" {
		t.Errorf("ServerName without server_name = %q", got)
	}
	if got := ServerName("other.example", "example.com"); got != "other.example" {
		t.Errorf("ServerName with server_name = %q", got)
	}
	for v, want := range map[uint16]string{0x0301: "TLS 1.0", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3", 0x0300: "unknown"} {
		if got := VersionName(v); got != want {
			t.Errorf("VersionName(%#x) = %q, want %q", v, got, want)
		}
	}
}
