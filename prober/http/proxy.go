package http

import (
	"bytes"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// maxStatusLine bounds what a proxy connection keeps of the first line
// its proxy sends.
const maxStatusLine = 256

// proxyConn is a connection to the module's proxy. It keeps the first
// line the proxy sends: for an https target, the status of the proxy's
// answer to CONNECT, which net/http reports only by its text
// ("Forbidden"), which no one could classify.
type proxyConn struct {
	net.Conn
	proxy *url.URL
	mu    sync.Mutex
	line  []byte
	done  bool // the line is whole, or as long as it may be
}

// openedToProxy wraps a new connection to a proxy, as the last one.
func (t *httpTransport) openedToProxy(conn net.Conn, proxy *url.URL) net.Conn {
	c := &proxyConn{Conn: conn, proxy: proxy}
	t.mu.Lock()
	t.lastProxy = c
	t.mu.Unlock()
	return c
}

func (c *proxyConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.keepFirstLine(p[:n])
	return n, err
}

func (c *proxyConn) keepFirstLine(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b, c.done = b[:i], true
	}
	if room := maxStatusLine - len(c.line); len(b) >= room {
		b, c.done = b[:room], true
	}
	c.line = append(c.line, b...)
}

// status returns the status the proxy answered with, as "403 Forbidden",
// and its code; ok is false before a whole status line came.
func (c *proxyConn) status() (status string, code int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.done {
		return "", 0, false
	}
	_, status, found := strings.Cut(strings.TrimRight(string(c.line), "\r"), " ")
	if !found || len(status) < 3 {
		return "", 0, false
	}
	code, err := strconv.Atoi(status[:3])
	return status, code, err == nil
}

// connectRefused is the failure of the last request, to an https target,
// when the proxy refused to tunnel to it: a status failure of the connect
// phase, as its answer to a plain http request is one of the validate
// phase. It is nil when the last request was not refused so.
func (t *httpTransport) connectRefused() error {
	t.mu.Lock()
	c, tunnelled := t.lastProxy, t.lastHTTPS
	t.mu.Unlock()
	if c == nil || !tunnelled {
		return nil
	}
	status, code, ok := c.status()
	if !ok || code == http.StatusOK {
		return nil
	}
	return taxonomy.Failf(taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus, taxonomy.PhaseConnect,
		"the proxy %s answered CONNECT with %q", c.proxy.Redacted(), status)
}
