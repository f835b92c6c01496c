package http

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
)

// fuzzHTTPModules are the http modules FuzzHTTPResponse probes with; the
// fuzzer picks one per input. Together they run every check the http
// prober has on a response: status codes, header regexps with and without
// allow_missing, body regexps, both CEL options, each compression,
// body_size_limit and valid_http_versions. Redirects are never followed: a
// fuzzed Location could name any host, and these tests reach loopback
// only. tls marks the modules probed over TLS, where ALPN may pick HTTP/2
// and the fuzzed bytes are read as HTTP/2 frames.
var fuzzHTTPModules = []struct {
	section string
	tls     bool
}{
	{section: `
follow_redirects: false
valid_status_codes: [200, 204, 301, 404]
fail_if_header_matches:
  - header: Server
    regexp: '^nginx/1\.0'
    allow_missing: true
fail_if_header_not_matches:
  - header: Content-Type
    regexp: 'text/|json'
    allow_missing: true
  - header: X-Health
    regexp: '^(ok|degraded)$'
fail_if_body_matches_regexp: ['(?i)error|fail']
fail_if_body_not_matches_regexp: ['ok|\{']
`},
	{section: `
follow_redirects: false
fail_if_body_json_matches_cel: 'has(body.status) && body.status != "ok"'
fail_if_body_json_not_matches_cel: 'body.checks.all(c, c.healthy)'
`},
	{section: `
follow_redirects: false
compression: gzip
body_size_limit: 256B
valid_http_versions: [HTTP/1.0, HTTP/1.1]
fail_if_body_not_matches_regexp: ['healthy']
`},
	{section: `
follow_redirects: false
compression: br
fail_if_body_matches_regexp: ['down']
`},
	{section: `
follow_redirects: false
compression: deflate
fail_if_body_json_matches_cel: 'body.size > 10'
`},
	{section: `
follow_redirects: false
enable_http2: true
fail_if_not_ssl: true
fail_if_header_not_matches:
  - header: Content-Type
    regexp: 'json'
fail_if_body_json_not_matches_cel: 'body.status == "ok"'
tls_config:
  insecure_skip_verify: true
`, tls: true},
}

// fuzzHTTPDeadline bounds one probe. The peer hangs up after its bytes, so
// only a response that promises more than it sends waits this long.
const fuzzHTTPDeadline = 500 * time.Millisecond

// FuzzHTTPResponse serves arbitrary bytes as the response to the http
// prober's request, from a raw TCP server on loopback (over TLS for the
// module that negotiates HTTP/2), and checks that the probe ends in time
// as a success or a classified failure: never class unknown, and always
// with a phase. The seeds in testdata/fuzz/FuzzHTTPResponse are real
// responses (nginx and Go servers, chunked, gzip, brotli and deflate
// bodies, redirects, HTTP/1.0, JSON health documents, an HTTP/2 exchange)
// and broken ones.
func FuzzHTTPResponse(f *testing.F) {
	modules := make([]*core.Module, len(fuzzHTTPModules))
	for i, fm := range fuzzHTTPModules {
		modules[i] = fuzzModule(f, "http", fm.section)
	}
	plain := newFuzzPeer(f, nil)
	secure := newFuzzPeer(f, selfSignedTLS(f))
	f.Fuzz(func(t *testing.T, response []byte, module uint8) {
		i := int(module) % len(modules)
		peer := plain
		if fuzzHTTPModules[i].tls {
			peer = secure
		}
		peer.response.Store(&response)
		ctx, cancel := context.WithTimeout(context.Background(), fuzzHTTPDeadline)
		defer cancel()
		sink := probemetrics.NewSink()
		start := time.Now()
		err := probeHTTP(ctx, peer.url, modules[i], sink, probertest.DiscardLogger)
		probertest.ClassifiedInTime(t, err, time.Since(start), fuzzHTTPDeadline)
		if _, gerr := sink.Gather(); gerr != nil {
			t.Fatalf("the probe's metrics do not gather: %v", gerr)
		}
	})
}

// fuzzPeer is a raw server that answers every connection with the bytes
// in response, whatever was asked.
type fuzzPeer struct {
	url      string
	response atomic.Pointer[[]byte]
}

// newFuzzPeer starts a fuzzPeer on 127.0.0.1, over TLS when config is set,
// until the fuzz target ends.
func newFuzzPeer(tb testing.TB, config *tls.Config) *fuzzPeer {
	tb.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &fuzzPeer{url: "http://" + ln.Addr().String() + "/health"}
	if config != nil {
		p.url = "https://" + ln.Addr().String() + "/health"
	}
	testkit.ServeConns(tb, ln, func(c net.Conn) { p.answer(c, config) })
	return p
}

// answer writes the response once the request has arrived, hangs up its
// half of the connection and takes what the client still sends, so that
// the close is a FIN and not a reset that could overtake the response.
func (p *fuzzPeer) answer(c net.Conn, config *tls.Config) {
	c.SetDeadline(time.Now().Add(fuzzHTTPDeadline + time.Second))
	tcp := c.(*net.TCPConn)
	var conn net.Conn = c
	r := bufio.NewReader(c)
	if config != nil {
		tc := tls.Server(c, config)
		if tc.Handshake() != nil {
			return
		}
		conn, r = tc, bufio.NewReader(tc)
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			// The client's preface and SETTINGS come first; the fuzzed
			// frames answer them.
			r = nil
		}
	}
	if r != nil {
		if req, err := http.ReadRequest(r); err == nil {
			req.Body.Close()
		}
	}
	if resp := p.response.Load(); resp != nil {
		conn.Write(*resp)
	}
	if tc, ok := conn.(*tls.Conn); ok {
		tc.CloseWrite()
	}
	tcp.CloseWrite()
	io.Copy(io.Discard, conn)
}

// selfSignedTLS is a server configuration with a fresh self-signed
// certificate, offering HTTP/2 and HTTP/1.1.
func selfSignedTLS(tb testing.TB) *tls.Config {
	tb.Helper()
	cfg := testcert.SelfSigned(tb, testcert.Spec{
		Subject:     pkix.Name{CommonName: "fuzz.test"},
		DNSNames:    []string{"fuzz.test"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}).ServerConfig()
	cfg.NextProtos = []string{"h2", "http/1.1"}
	return cfg
}
