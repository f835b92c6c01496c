package probertest

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/config"
)

// Peer is the server side of a scripted tcp test: it reads and writes
// lines, and can switch to TLS as a STARTTLS server does.
type Peer struct {
	t *testing.T
	C net.Conn
	R *bufio.Reader
}

func NewPeer(t *testing.T, c net.Conn) *Peer {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return &Peer{t: t, C: c, R: bufio.NewReader(c)}
}

func (p *Peer) Say(lines ...string) {
	for _, l := range lines {
		io.WriteString(p.C, l+"\r\n")
	}
}

// Hear reads one line and reports whether it is want.
func (p *Peer) Hear(want string) bool {
	line, err := p.R.ReadString('\n')
	got := strings.TrimRight(line, "\r\n")
	if err != nil || got != want {
		p.t.Errorf("the server heard %q (err %v), want %q", got, err, want)
		return false
	}
	return true
}

func (p *Peer) StartTLS(cfg *tls.Config) {
	tc := tls.Server(p.C, cfg)
	if err := tc.Handshake(); err != nil {
		return // the client's refusal is what some tests are about
	}
	p.C, p.R = tc, bufio.NewReader(tc)
}

func ExpectStep(re string) config.QueryResponse {
	return config.QueryResponse{Expect: config.MustNewRegexp(re)}
}

func SendStep(s string) config.QueryResponse { return config.QueryResponse{Send: s} }
