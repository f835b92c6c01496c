package perf

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// peerKind is what a child's peer serves.
type peerKind string

const (
	peerNone      peerKind = "none"      // no peer: icmp, which the kernel answers
	peerHTTP      peerKind = "http"      // HTTP/1.1: "ok"
	peerTCP       peerKind = "tcp"       // the same, its target host:port for a tcp probe
	peerHTTPS     peerKind = "https"     // the same over TLS, HTTP/2 offered
	peerDNS       peerKind = "dns"       // A records over UDP
	peerGRPC      peerKind = "grpc"      // the health service, SERVING
	peerUnix      peerKind = "unix"      // a "READY" banner on a unix socket
	peerWebsocket peerKind = "websocket" // a "hello" message once upgraded
)

// child is a running child process (child_test.go).
type child struct {
	target string // what a probe of its peer is given
	caFile string // the certificate an https peer serves, PEM
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
}

// childSpec says what a child does besides serving its peer.
type childSpec struct {
	hold bool // hold the peer's answers until release
	// scrape is the /probe URL the child scrapes scrapes times at once on
	// "go", with scrapeCA trusted over TLS; empty for none.
	scrape   string
	scrapeCA string
	scrapes  int
}

// startChild starts a child serving a peer of kind, and waits until it
// serves.
func startChild(t *testing.T, kind peerKind, spec childSpec) *child {
	t.Helper()
	c := &child{target: "127.0.0.1"}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), peerEnv+"="+string(kind), scrapeEnv+"="+spec.scrape,
		scrapeCAEnv+"="+spec.scrapeCA, scrapesEnv+"="+strconv.Itoa(spec.scrapes))
	if spec.hold {
		c.cmd.Env = append(c.cmd.Env, holdEnv+"=1")
	}
	if kind != peerNone {
		ln, file, target := peerListener(t, kind)
		defer ln.Close() // the child has its own copy
		defer file.Close()
		c.target = target
		c.cmd.ExtraFiles = []*os.File{file}
	}
	if kind == peerHTTPS {
		c.caFile = filepath.Join(t.TempDir(), "ca.pem")
		c.cmd.Env = append(c.cmd.Env, certEnv+"="+c.caFile)
	}
	c.cmd.Stderr = os.Stderr
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.stdout = bufio.NewReader(out)
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting the %s peer: %v", kind, err)
	}
	t.Cleanup(c.stop)
	c.expect(t, "ready", 30*time.Second)
	return c
}

// peerListener listens where a peer of kind serves, on loopback or in
// the test's directory, and returns the listener, its file for the child
// and the probes' target.
func peerListener(t *testing.T, kind peerKind) (io.Closer, *os.File, string) {
	t.Helper()
	var (
		l interface {
			io.Closer
			File() (*os.File, error)
		}
		addr string
		err  error
	)
	switch kind {
	case peerDNS:
		var pc *net.UDPConn
		if pc, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err == nil {
			l, addr = pc, pc.LocalAddr().String()
		}
	case peerUnix:
		addr = filepath.Join(t.TempDir(), "peer.sock")
		var ul *net.UnixListener
		if ul, err = net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"}); err == nil {
			ul.SetUnlinkOnClose(false) // the child serves on it
			l = ul
		}
	default:
		var tl *net.TCPListener
		if tl, err = net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}); err == nil {
			l, addr = tl, tl.Addr().String()
		}
	}
	if err != nil {
		t.Fatalf("listening for the %s peer: %v", kind, err)
	}
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	return l, f, targetOf(kind, addr)
}

// targetOf is a probe's target for a peer of kind listening on addr.
func targetOf(kind peerKind, addr string) string {
	switch kind {
	case peerHTTP:
		return "http://" + addr + "/"
	case peerHTTPS:
		return "https://" + addr + "/"
	case peerWebsocket:
		return "ws://" + addr + "/"
	}
	return addr
}

// expect waits for the child's next line, which must be want, for at
// most limit.
func (c *child) expect(t *testing.T, want string, limit time.Duration) {
	t.Helper()
	lines := make(chan string, 1)
	go func() {
		line, err := c.stdout.ReadString('\n')
		if err != nil {
			line = fmt.Sprintf("(%v)", err)
		}
		lines <- strings.TrimSuffix(line, "\n")
	}()
	select {
	case line := <-lines:
		if line != want {
			t.Fatalf("the child said %q, want %q", line, want)
		}
	case <-time.After(limit):
		t.Fatalf("the child did not say %q within %s", want, limit)
	}
}

// tell writes a line to the child.
func (c *child) tell(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// release ends the child's stdin: a holding peer answers.
func (c *child) release() { c.stdin.Close() }

func (c *child) stop() {
	c.stdin.Close()
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}
