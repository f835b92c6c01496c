package hostile

import (
	"bytes"
	"crypto/tls"
	"crypto/x509/pkix"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
)

const (
	// gap is the pause between two bytes of a slowloris peer.
	gap = 100 * time.Millisecond
	// floodCap is the most a flooding peer sends, when nothing stops it
	// sooner: far beyond every limit a prober has, so that to the probe
	// the flood is endless, but a prober with no limit costs the test
	// machine a bounded amount.
	floodCap = 64 * MiB
	// chunk is what a flooding peer writes at once.
	chunk = 32 << 10
)

// serveTCP hands each connection to a loopback port to handle until the
// test ends, and returns the port's address.
func serveTCP(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testkit.ServeConns(t, ln, handle)
	return ln.Addr().String()
}

// serveTLS is serveTCP behind a TLS handshake, with a self-signed
// certificate the modules do not verify; handle speaks over TLS.
func serveTLS(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert := testcert.SelfSigned(t, testcert.Spec{Subject: pkix.Name{CommonName: "peer.test"}, DNSNames: []string{"peer.test"}})
	testkit.ServeConns(t, tls.NewListener(ln, cert.ServerConfig()), handle)
	return ln.Addr().String()
}

// serveUnix is serveTCP on a unix socket in the test's directory, and
// returns the socket's path.
func serveUnix(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "peer.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	testkit.ServeConns(t, ln, handle)
	return path
}

// drain reads what the prober sends until it hangs up: a peer that says
// nothing, or nothing more.
func drain(c net.Conn) {
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// readHead reads a request's head, up to the empty line that ends it,
// through a small buffer whatever its size, so that the peer's own
// allocations stay out of the probe's figure.
func readHead(c net.Conn) error {
	const end = "\r\n\r\n"
	buf := make([]byte, 4096)
	matched := 0
	for {
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		for _, b := range buf[:n] {
			switch {
			case b == end[matched]:
				matched++
			case b == '\r':
				matched = 1
			default:
				matched = 0
			}
			if matched == len(end) {
				return nil
			}
		}
	}
}

// afterRequest reads an HTTP request's head, then lets then answer.
func afterRequest(then func(net.Conn)) func(net.Conn) {
	return func(c net.Conn) {
		if readHead(c) == nil {
			then(c)
		}
	}
}

// answerEach answers every request on the connection with answer: a
// redirect loop on one kept-alive connection.
func answerEach(answer []byte) func(net.Conn) {
	return func(c net.Conn) {
		for readHead(c) == nil {
			if _, err := c.Write(answer); err != nil {
				return
			}
		}
	}
}

// say writes data, then listens without a word until the prober hangs
// up.
func say(data []byte) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := c.Write(data); err == nil {
			drain(c)
		}
	}
}

// trickle writes head and then unit over and over, one byte every gap:
// always something arriving, never a whole answer.
func trickle(head, unit string) func(net.Conn) {
	data, repeated := []byte(head), []byte(unit)
	return func(c net.Conn) {
		for i := 0; ; i++ {
			var b []byte
			if i < len(data) {
				b = data[i : i+1]
			} else {
				j := (i - len(data)) % len(repeated)
				b = repeated[j : j+1]
			}
			if _, err := c.Write(b); err != nil {
				return
			}
			time.Sleep(gap)
		}
	}
}

// flood writes head, then unit over and over as fast as the prober
// reads, up to floodCap; then it holds the connection open in silence.
func flood(head, unit string) func(net.Conn) {
	data := []byte(head)
	block := bytes.Repeat([]byte(unit), max(1, chunk/len(unit)))
	return func(c net.Conn) {
		if _, err := c.Write(data); err != nil {
			return
		}
		for sent := 0; sent < floodCap; sent += len(block) {
			if _, err := c.Write(block); err != nil {
				return
			}
		}
		drain(c)
	}
}

// tlsRecordHeader starts a TLS handshake record of n bytes.
func tlsRecordHeader(n int) []byte { return []byte{0x16, 0x03, 0x03, byte(n >> 8), byte(n)} }

// halfServerHello is the first half of a ServerHello: a record header
// announcing 122 bytes, and 40 of them. A client waits for the rest.
func halfServerHello() []byte {
	hello := append(tlsRecordHeader(122), 0x02, 0x00, 0x00, 0x76, 0x03, 0x03)
	return append(hello, bytes.Repeat([]byte{0x42}, 34)...)
}

// partialTLS reads the ClientHello (whatever comes first), answers half a
// ServerHello, and says no more.
func partialTLS(c net.Conn) {
	buf := make([]byte, 4096)
	if _, err := c.Read(buf); err != nil {
		return
	}
	say(halfServerHello())(c)
}
