package compat

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/internal/testkit"
)

// lineProtocol is the conversation the tcp and unix peers hold, shaped
// like SMTP so that query_response, labels and starttls have something to
// talk to: a banner, then one answer per line.
//
//	EHLO x    -> 250-compat / 250-SIZE 1000 / 250 STARTTLS
//	STARTTLS  -> 220 go ahead, then a TLS handshake with the peer's certificate
//	VERSION   -> VERSION compat 1.2.3 build 42
//	PING      -> PONG
//	QUIT      -> 221 bye, and the connection closes
//	anything  -> 500 unknown command
type lineProtocol struct {
	banner   bool        // send the banner on connect
	startTLS *tls.Config // the configuration STARTTLS upgrades with
	wrap     *tls.Config // TLS from the first byte
}

func (lp lineProtocol) serve(conn net.Conn) {
	if lp.wrap != nil {
		tc := tls.Server(conn, lp.wrap)
		if err := tc.Handshake(); err != nil {
			return
		}
		conn = tc
	}
	if lp.banner {
		io.WriteString(conn, "220 compat ESMTP ready\r\n")
	}
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			io.WriteString(conn, "250-compat\r\n250-SIZE 1000\r\n250 STARTTLS\r\n")
		case cmd == "STARTTLS" && lp.startTLS != nil:
			io.WriteString(conn, "220 go ahead\r\n")
			tc := tls.Server(conn, lp.startTLS)
			if err := tc.Handshake(); err != nil {
				return
			}
			conn, r = tc, bufio.NewReader(tc)
		case cmd == "VERSION":
			io.WriteString(conn, "VERSION compat 1.2.3 build 42\r\n")
		case cmd == "PING":
			io.WriteString(conn, "PONG\r\n")
		case cmd == "QUIT":
			io.WriteString(conn, "221 bye\r\n")
			return
		default:
			io.WriteString(conn, "500 unknown command\r\n")
		}
	}
}

// streamPeers are the tcp and unix peers.
type streamPeers struct {
	line      string // host:port, the line protocol with STARTTLS
	lineV6    string // the same on [::1], empty without IPv6 loopback
	tls       string // the line protocol inside TLS, the good certificate
	tlsNamed  string // the same with the certificate for sonde.test only
	chained   string // the same with a leaf and its intermediate
	mtls      string // the same, a client certificate required
	expired   string // the line protocol inside TLS, an expired certificate
	bytes     string // sends a fixed binary greeting, then waits
	silent    string // accepts and never writes
	hangup    string // accepts and closes at once
	refused   string // nothing listens there
	http10    string // answers any request with an HTTP/1.0 response
	garbage   string // answers any request with a line that is not HTTP
	unixLine  string // a unix socket with the line protocol
	unixTLS   string // a unix socket with TLS (certificate for sonde.test)
	unixNoSck string // a path where no socket is
}

// binaryGreeting is what the bytes peer sends on connect.
// Every byte is below 0x80, as YAML's "\xNN" escapes in expect_bytes
// stand for characters, which UTF-8 writes as two bytes from 0x80 on.
const binaryGreeting = "\x00\x01compat\x7f\r\n"

func startStreamPeers(t *testing.T, p *pki) *streamPeers {
	t.Helper()
	good := p.serverTLS(p.good, false)
	sp := &streamPeers{
		line:     listenStream(t, "tcp", "127.0.0.1:0", lineProtocol{banner: true, startTLS: good}.serve),
		tls:      listenStream(t, "tcp", "127.0.0.1:0", lineProtocol{banner: true, wrap: good}.serve),
		tlsNamed: listenStream(t, "tcp", "127.0.0.1:0", lineProtocol{banner: true, wrap: p.serverTLS(p.named, false)}.serve),
		chained:  listenStream(t, "tcp", "127.0.0.1:0", lineProtocol{banner: true, wrap: p.serverTLS(p.chained, false)}.serve),
		mtls:     listenStream(t, "tcp", "127.0.0.1:0", lineProtocol{banner: true, wrap: p.serverTLS(p.good, true)}.serve),
		expired:  listenStream(t, "tcp", "127.0.0.1:0", lineProtocol{banner: true, wrap: p.serverTLS(p.expired, false)}.serve),
		bytes: listenStream(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
			io.WriteString(c, binaryGreeting)
			io.Copy(io.Discard, c)
		}),
		silent: listenStream(t, "tcp", "127.0.0.1:0", func(c net.Conn) { io.Copy(io.Discard, c) }),
		hangup: listenStream(t, "tcp", "127.0.0.1:0", func(net.Conn) {}),
		http10: listenStream(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
			bufio.NewReader(c).ReadString('\n')
			io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 8\r\n\r\nold web\n")
		}),
		garbage: listenStream(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
			bufio.NewReader(c).ReadString('\n')
			io.WriteString(c, "SSH-2.0-compat\r\n")
		}),
		refused: refusedAddr(t, "tcp"),
	}
	if ipv6Loopback() {
		sp.lineV6 = listenStream(t, "tcp", "[::1]:0", lineProtocol{banner: true, startTLS: good}.serve)
	}
	// A unix socket's path must fit in 108 bytes, which t.TempDir's long
	// names may not: a short directory of its own.
	dir, err := os.MkdirTemp("", "compat")
	if err != nil {
		t.Fatalf("making a directory for unix sockets: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sp.unixLine = listenStream(t, "unix", filepath.Join(dir, "line.sock"), lineProtocol{banner: true, startTLS: good}.serve)
	sp.unixTLS = listenStream(t, "unix", filepath.Join(dir, "tls.sock"), lineProtocol{banner: true, wrap: p.serverTLS(p.named, false)}.serve)
	sp.unixNoSck = filepath.Join(dir, "absent.sock")
	return sp
}

// refusedAddr is a loopback address where nothing listens, for probes
// that must be refused. It prefers a port below 1024, which the kernel
// never hands out for port 0, so no test running alongside takes it, and
// which refuses UDP and TCP alike (the DNS rows probe both). A candidate
// is used once a probe of it was refused here. Failing that, a TCP port
// held closed until the test ends.
func refusedAddr(t *testing.T, network string) string {
	t.Helper()
	for _, port := range []string{"1", "3", "5"} {
		addr := net.JoinHostPort("127.0.0.1", port)
		if refuses(network, addr) {
			return addr
		}
	}
	if network == "udp" {
		t.Fatal("found no refusing UDP port below 1024 on 127.0.0.1")
	}
	return testkit.ClosedTCPAddr(t)
}

// refuses tells whether a connection (TCP) or a datagram (UDP) to addr is
// refused.
func refuses(network, addr string) bool {
	conn, err := net.DialTimeout(network, addr, time.Second)
	if err == nil && network == "udp" {
		conn.SetDeadline(time.Now().Add(time.Second))
		if _, err = conn.Write([]byte("compat")); err == nil {
			_, err = conn.Read(make([]byte, 1))
		}
	}
	if conn != nil {
		conn.Close()
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// listenStream serves every connection to addr with handle until the test
// ends, and returns the address.
func listenStream(t *testing.T, network, addr string, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("listening on %s %s: %v", network, addr, err)
	}
	testkit.ServeConns(t, ln, handle)
	return ln.Addr().String()
}
