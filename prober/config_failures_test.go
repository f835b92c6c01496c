package prober

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// The tests here probe with modules that load with a warning: what
// blackbox_exporter loads and then fails on at probe time. Each must load,
// fail its probes as prober/config at the point blackbox fails them, and,
// where blackbox reads a file on every probe, work once the file is there.

// TestMissingFilesFailProbesUntilTheyAppear: a tls_config or body_file that
// is not there when the configuration loads fails each probe, naming the
// file; once the file appears the next probe uses it, without a reload.
func TestMissingFilesFailProbesUntilTheyAppear(t *testing.T) {
	ca := testcert.NewCA(t, testcert.Spec{})
	srv := probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{TLS: true, CA: ca})
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	bodyFile := filepath.Join(dir, "body.json")
	cfg, err := config.Load([]byte(fmt.Sprintf(`
modules:
  late_ca:
    prober: http
    http:
      tls_config: {ca_file: %q}
  late_body:
    prober: http
    http:
      method: POST
      body_file: %q
`, caFile, bodyFile)))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 2 {
		t.Errorf("warnings = %v, want one per missing file", cfg.Warnings)
	}
	set, err := NewSet(cfg, core.WithResolver(probertest.TestResolver(t)))
	if err != nil {
		t.Fatalf("NewSet: %v; a missing file must not refuse the configuration", err)
	}
	for _, tc := range []struct {
		module, file, target string
		content              []byte
	}{
		{"late_ca", caFile, srv.URL, ca.PEM()},
		{"late_body", bodyFile, probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{}).URL, []byte(`{}`)},
	} {
		t.Run(tc.module, func(t *testing.T) {
			m, _ := set.Module(tc.module)
			sink, err := probertest.Run(t, m, tc.target)
			e := checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup})
			if e != nil && !strings.Contains(e.Error(), tc.file) {
				t.Errorf("the failure does not name the file: %v", e)
			}
			// As in blackbox, the http family is there, at 0.
			probertest.Metric(t, sink, 0, "probe_http_status_code")
			if err := os.WriteFile(tc.file, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = probertest.Run(t, m, tc.target)
			checkOutcome(t, err, failure{})
		})
	}
}

// TestUnusableHTTPOptionsFailProbes: http options blackbox loads and then
// fails every probe on.
func TestUnusableHTTPOptionsFailProbes(t *testing.T) {
	var hits atomic.Int32
	srv := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "not compressed at all")
	}), probertest.ServerOpts{})
	for _, tc := range []struct {
		name, section string
		want          failure
		contacted     bool
		message       string
	}{
		{"secret reference", "oauth2: {client_id: a, client_secret_ref: vault, token_url: 'http://127.0.0.1:1/token'}",
			failure{taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup}, false, "secret"},
		{"method", "method: 'G T'", failure{taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup}, false, "method"},
		// blackbox reads the body undecoded, and counts it.
		{"compression", "compression: lzma", failure{taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseTransfer}, true, "lzma"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hits.Store(0)
			sink, err := probertest.Run(t, yamlModule(t, tc.section), srv.URL)
			e := checkOutcome(t, err, tc.want)
			if e != nil && !strings.Contains(e.Error(), tc.message) {
				t.Errorf("the failure does not say %q: %v", tc.message, e)
			}
			if got := hits.Load() > 0; got != tc.contacted {
				t.Errorf("target contacted = %v, want %v", got, tc.contacted)
			}
			if tc.contacted {
				probertest.Metric(t, sink, 200, "probe_http_status_code")
				probertest.Metric(t, sink, float64(len("not compressed at all")), "probe_http_uncompressed_body_length")
			}
		})
	}
}

// TestSecretReferenceLoads: a *_ref anywhere in the http client's settings
// loads (neither blackbox nor sonde has a secret manager) and fails the
// probes.
func TestSecretReferenceLoads(t *testing.T) {
	cm := config.DefaultModule()
	cm.Prober = "http"
	cm.HTTP.HTTPClientConfig.OAuth2 = &probertest.OAuth2WithCARef
	m, err := NewModule("m", cm)
	if err != nil {
		t.Fatalf("NewModule: %v", err)
	}
	_, err = probertest.Run(t, m, probertest.NewServer(t, probertest.OKHandler, probertest.ServerOpts{}).URL)
	checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup})
}

// TestDNSOptionsBlackboxFailsOn: a response code, a transport or a record
// expression blackbox loads and fails probes on, each where blackbox does.
func TestDNSOptionsBlackboxFailsOn(t *testing.T) {
	srv := probertest.NewDNSTestServer(t, "127.0.0.1")
	for _, tc := range []struct {
		name, section string
		want          failure
		asked         bool // the server got the query
	}{
		{"unknown rcode, checked once answered", "query_name: example.test\nquery_type: A\nvalid_rcodes: [NOERROR, nxdomain]",
			failure{taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseValidate}, true},
		{"unknown transport, before resolving", "query_name: example.test\ntransport_protocol: tcp4",
			failure{taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup}, false},
		{"DoT over udp, after resolving", "query_name: example.test\ntransport_protocol: udp\ndns_over_tls: true",
			failure{taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup}, false},
		{"broken expression with records to check", "query_name: example.test\nquery_type: A\nvalidate_answer_rrs:\n  fail_if_matches_regexp: ['(']",
			failure{taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseValidate}, true},
		// blackbox compiles the expression only against a record: with an
		// empty section there is nothing to fail.
		{"broken expression without records", "query_name: example.test\nquery_type: TXT\nvalidate_answer_rrs:\n  fail_if_matches_regexp: ['(']",
			failure{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.Reset()
			sink, err := probertest.Run(t, dnsModule(t, tc.section), srv.Addr)
			checkOutcome(t, err, tc.want)
			srv.Mu.Lock()
			asked := len(srv.Seen) > 0
			srv.Mu.Unlock()
			if asked != tc.asked {
				t.Errorf("the server was asked = %v, want %v", asked, tc.asked)
			}
			if tc.asked && strings.Contains(tc.section, "query_type: A") {
				probertest.Metric(t, sink, float64(probertest.DNSAnswerCount(dns.TypeA)), "probe_dns_answer_rrs")
			}
			switch tc.name {
			case "unknown transport, before resolving":
				probertest.Absent(t, sink, "probe_ip_protocol")
			case "DoT over udp, after resolving":
				probertest.Present(t, sink, "probe_ip_protocol")
			}
		})
	}
}
