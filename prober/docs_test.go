package prober

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/sonde-exporter/sonde/prober/internal/probertest"
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 {
		code = probertest.CheckDocumented("../docs/metrics.md", notClientCert)
	}
	os.Exit(code)
}

// notClientCert accepts the TLS families but the client certificate's,
// which the tests of prober/http export.
func notClientCert(family string) bool { return !strings.HasPrefix(family, "probe_tls_client_cert_") }
