package taxonomy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
)

// producer makes Go fail with an error a textRow is about, talking to a
// peer on loopback that the test starts.
type producer func(t *testing.T) error

// textProducers gives, for each textRow's text, what makes the Go of
// go.mod produce that text.
func textProducers() map[string]producer {
	chunked := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	return map[string]producer{
		"server misbehaving": lookUpServFail,

		"received from peer": h2Get(func(p *h2Conn) { p.fr.WriteRSTStream(p.stream, http2.ErrCodeInternal) }, nil),
		"server sent GOAWAY and closed the connection": h2Get(func(p *h2Conn) {
			p.fr.WriteGoAway(p.stream, http2.ErrCodeNo, nil)
			p.conn.Close()
		}, nil),
		"http2: client connection lost": h2Get(func(p *h2Conn) { io.Copy(io.Discard, p.conn) },
			&http.HTTP2Config{SendPingTimeout: 50 * time.Millisecond, PingTimeout: 50 * time.Millisecond}),
		"http: unexpected EOF reading trailer": http1Get(chunked+"0\r\n", nil),

		"malformed HTTP response":          http1Get("SSH-2.0-OpenSSH_9.6\r\n", nil),
		"malformed HTTP status code":       http1Get("HTTP/1.1 two OK\r\n\r\n", nil),
		"malformed HTTP version":           http1Get("HTTP/9.9x 200 OK\r\n\r\n", nil),
		"bad Content-Length":               http1Get("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", nil),
		"invalid empty Content-Length":     http1Get("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", nil),
		"multiple Content-Length headers":  http1Get("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", nil),
		"unsupported transfer encoding":    http1Get("HTTP/1.1 200 OK\r\nTransfer-Encoding: foo\r\n\r\n", nil),
		"too many transfer encodings":      http1Get("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", nil),
		"server response headers exceeded": http1Get("HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("x", 4<<10)+"\r\n\r\n", func(t *http.Transport) { t.MaxResponseHeaderBytes = 1 << 10 }),
		"failed to parse Location header":  http1Get("HTTP/1.1 302 Found\r\nLocation: http://[::1\r\nContent-Length: 0\r\n\r\n", nil),

		"invalid byte in chunk length":                 http1Get(chunked+"zz\r\n", nil),
		"empty hex number for chunk length":            http1Get(chunked+"\r\n", nil),
		"http chunk length too large":                  http1Get(chunked+"11111111111111111\r\n", nil),
		"malformed chunked encoding":                   http1Get(chunked+"3\r\nabcXY", nil),
		"chunked encoding contains too much non-data":  http1Get(chunked+strings.Repeat("1;"+strings.Repeat("x", 100)+"\r\nX\r\n", 300), nil),
		"chunked line ends with bare LF":               http1Get(chunked+"3\nabc", nil),
		"invalid CR in chunked line":                   http1Get(chunked+"3\rx\r\nabc", nil),
		"suspiciously long trailer after chunked body": http1Get(chunked+"0\r\nX-Trailer: "+strings.Repeat("x", 8<<10)+"\r\n\r\n", nil),

		"connection error: ": h2Get(func(p *h2Conn) {
			p.fr.AllowIllegalWrites = true
			p.fr.WriteData(0, false, []byte("x")) // DATA on stream 0 breaks the connection
			io.Copy(io.Discard, p.conn)
		}, nil),
		"http2: Transport received GOAWAY from server ErrCode:": h2Get(func(p *h2Conn) {
			p.fr.WriteGoAway(0, http2.ErrCodeProtocol, nil)
			io.Copy(io.Discard, p.conn)
		}, nil),
		"http2: frame too large": h2Get(func(p *h2Conn) {
			io.WriteString(p.conn, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			io.Copy(io.Discard, p.conn)
		}, nil),
		"http2: client conn could not be established": h2ClosedBeforeFirstRequest,
		"request header list larger than peer's advertised limit": h2RoundTrip(func(p *h2Conn) { io.Copy(io.Discard, p.conn) },
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: 16}),
		"server replied with more than declared Content-Length": h2Get(func(p *h2Conn) {
			p.writeHeaders(":status", "200", "content-length", "1")
			p.fr.WriteData(p.stream, true, []byte("abc"))
			io.Copy(io.Discard, p.conn)
		}, nil),

		"unknown error connection refused":        socksGet(socksReply(5), false),
		"unknown error host unreachable":          socksGet(socksReply(4), false),
		"unknown error network unreachable":       socksGet(socksReply(3), false),
		"unknown error ":                          socksGet(socksReply(2), false), // connection not allowed by ruleset
		"no acceptable authentication methods":    socksGet(socksMethod(0xff), false),
		"username/password authentication failed": socksGet(socksAuthFails, true),
		"unsupported authentication method":       socksGet(socksMethod(0x01), true), // GSSAPI, which net/http's client lacks
	}
}

// TestTextRows makes Go produce the text of every textRow and checks that
// the row, and no row before it, matches it, and that Classify gives the
// row's labels: a Go upgrade that rewords one of these errors fails here.
func TestTextRows(t *testing.T) {
	producers := textProducers()
	for _, row := range textRows {
		t.Run(row.text, func(t *testing.T) {
			if row.why == "" {
				t.Error("the row does not say why it is text")
			}
			produce, ok := producers[row.text]
			if !ok {
				t.Fatal("no producer makes Go say this text: add one to textProducers")
			}
			err := produce(t)
			if err == nil {
				t.Fatal("the peer's answer did not fail")
			}
			t.Log(err)
			text, ok := row.scope.textOf(err)
			if !ok || !strings.Contains(text, row.text) {
				t.Fatalf("Go no longer says %q where the row looks (%v): %v", row.text, ok, err)
			}
			if c, r, _ := matchText(row.scope, err); c != row.class || r != row.reason {
				t.Errorf("an earlier row takes %v: %s/%s", err, c, r)
			}
			got := Classify(context.Background(), err, PhaseTransfer)
			if got.Class != row.class || got.Reason != row.reason {
				t.Errorf("Classify(%v) = %s/%s, want %s/%s", err, got.Class, got.Reason, row.class, row.reason)
			}
		})
	}
	for text := range producers {
		if !slices.ContainsFunc(textRows, func(r textRow) bool { return r.text == text }) {
			t.Errorf("a producer for %q, which no row has", text)
		}
	}
}

// TestTypedFromRealPeers checks the failures that used to be text matches
// and are now recognised by type or sentinel, from real peers, so a Go
// upgrade that drops the type fails here.
func TestTypedFromRealPeers(t *testing.T) {
	chunked := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	cases := []struct {
		name    string
		produce producer
		is      func(error) bool
		class   Class
		reason  Reason
	}{
		{"a header line without a colon", http1Get("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", nil),
			func(err error) bool { var p textproto.ProtocolError; return errors.As(err, &p) },
			ClassProtocol, ReasonMalformedResponse},
		{"a chunk line longer than net/http reads", http1Get(chunked+"1;"+strings.Repeat("x", 8<<10)+"\r\nX\r\n", nil),
			func(err error) bool { return errors.Is(err, http.ErrLineTooLong) },
			ClassProtocol, ReasonMalformedResponse},
		{"plain HTTP answering TLS", plainToTLS,
			func(err error) bool { return errors.Is(err, http.ErrSchemeMismatch) },
			ClassTLS, ReasonHandshake},
		{"an HTTP/2 response without :status", h2Get(func(p *h2Conn) {
			p.writeHeaders("content-type", "text/plain")
			io.Copy(io.Discard, p.conn)
		}, nil),
			func(err error) bool { var s http2.StreamError; return errors.As(err, &s) },
			ClassProtocol, ReasonMalformedResponse},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.produce(t)
			if err == nil {
				t.Fatal("the peer's answer did not fail")
			}
			t.Log(err)
			if !tc.is(err) {
				t.Fatalf("Go no longer gives this failure its type: %T %v", err, err)
			}
			if _, _, ok := matchText(inMessage, err); ok {
				t.Errorf("a text row matches %v, which a type should classify", err)
			}
			got := Classify(context.Background(), err, PhaseTransfer)
			if got.Class != tc.class || got.Reason != tc.reason {
				t.Errorf("Classify(%v) = %s/%s, want %s/%s", err, got.Class, got.Reason, tc.class, tc.reason)
			}
		})
	}
}

// get requests url with c and reads the whole body, returning the first
// error. The timeout only keeps a broken test from hanging.
func get(c *http.Client, url string) error {
	c.Timeout = 30 * time.Second
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	return err
}

// listen returns a loopback listener whose connections handle serves
// until the test ends.
func listen(t *testing.T, handle func(net.Conn)) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testkit.ServeConns(t, ln, handle)
	return ln
}

// http1Get is a GET of a peer that reads the request and answers it with
// response as it is, then closes the connection. tune adjusts the
// client's Transport.
func http1Get(response string, tune func(*http.Transport)) producer {
	return func(t *testing.T) error {
		ln := listen(t, func(c net.Conn) {
			if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
				return
			}
			io.WriteString(c, response)
		})
		tr := &http.Transport{DisableKeepAlives: true}
		if tune != nil {
			tune(tr)
		}
		return get(&http.Client{Transport: tr}, "http://"+ln.Addr().String()+"/")
	}
}

// plainToTLS is an https GET of a peer that answers in plain HTTP.
func plainToTLS(t *testing.T) error {
	ln := listen(t, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
		io.Copy(io.Discard, c)
	})
	return get(&http.Client{Transport: &http.Transport{}}, "https://"+ln.Addr().String()+"/")
}

// h2Conn is the server's end of an HTTP/2 connection that has read the
// client's first request.
type h2Conn struct {
	conn   net.Conn
	fr     *http2.Framer
	stream uint32 // the request's stream
}

// writeHeaders answers the request with a HEADERS frame of the given
// name, value pairs.
func (p *h2Conn) writeHeaders(fields ...string) {
	var block strings.Builder
	enc := hpack.NewEncoder(&block)
	for i := 0; i+1 < len(fields); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: p.stream, BlockFragment: []byte(block.String()), EndHeaders: true})
}

// h2Get is a GET over HTTP/2 and TLS of a peer that reads the request
// and then does act. conf is the client's HTTP/2 configuration.
func h2Get(act func(*h2Conn), conf *http.HTTP2Config) producer {
	return func(t *testing.T) error {
		cert := testcert.SelfSigned(t, testcert.Loopback())
		serverConf := cert.ServerConfig()
		serverConf.NextProtos = []string{"h2"}
		ln := listen(t, func(c net.Conn) {
			p, err := acceptH2(tls.Server(c, serverConf))
			if err != nil {
				return
			}
			act(p)
		})
		pool := x509.NewCertPool()
		pool.AddCert(cert.Leaf)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true, HTTP2: conf, DisableKeepAlives: true}
		return get(&http.Client{Transport: tr}, "https://"+ln.Addr().String()+"/")
	}
}

// acceptH2 reads the client preface and frames up to the first request's
// HEADERS, acknowledging the client's settings.
func acceptH2(c *tls.Conn) (*h2Conn, error) {
	if err := c.Handshake(); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(c, make([]byte, len(http2.ClientPreface))); err != nil {
		return nil, err
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		return nil, err
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			return &h2Conn{conn: c, fr: fr, stream: f.StreamID}, nil
		}
	}
}

// h2ClientConn is a connection to an HTTP/2 peer on loopback that sends
// settings, waits for the client to acknowledge them and then does act.
// The connection's Err is nil until the peer has acted on it.
func h2ClientConn(t *testing.T, act func(*h2Conn), settings ...http2.Setting) *http.ClientConn {
	t.Helper()
	cert := testcert.SelfSigned(t, testcert.Loopback())
	serverConf := cert.ServerConfig()
	serverConf.NextProtos = []string{"h2"}
	ln := listen(t, func(c net.Conn) {
		p, err := settleH2(tls.Server(c, serverConf), settings)
		if err != nil {
			return
		}
		act(p)
	})
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cc, err := tr.NewClientConn(ctx, "https", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// settleH2 reads the client preface, sends settings and reads frames
// until the client has acknowledged them.
func settleH2(c *tls.Conn, settings []http2.Setting) (*h2Conn, error) {
	if err := c.Handshake(); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(c, make([]byte, len(http2.ClientPreface))); err != nil {
		return nil, err
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(settings...); err != nil {
		return nil, err
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && sf.IsAck() {
			return &h2Conn{conn: c, fr: fr}, nil
		}
	}
}

// h2RoundTrip sends a GET on a connection whose peer sent settings and saw
// them acknowledged, and then does act.
func h2RoundTrip(act func(*h2Conn), settings ...http2.Setting) producer {
	return func(t *testing.T) error {
		ready := make(chan struct{})
		cc := h2ClientConn(t, func(p *h2Conn) { close(ready); act(p) }, settings...)
		<-ready
		req, err := http.NewRequest(http.MethodGet, "https://localhost/", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := cc.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
}

// h2ClosedBeforeFirstRequest sends a GET on a connection the peer closed
// (with a GOAWAY) before the client sent anything on it.
func h2ClosedBeforeFirstRequest(t *testing.T) error {
	cc := h2ClientConn(t, func(p *h2Conn) {
		p.fr.WriteGoAway(0, http2.ErrCodeProtocol, nil)
		p.conn.Close()
	})
	for deadline := time.Now().Add(30 * time.Second); cc.Err() == nil; {
		if time.Now().After(deadline) {
			t.Fatal("the client never saw the connection close")
		}
		time.Sleep(time.Millisecond)
	}
	req, err := http.NewRequest(http.MethodGet, "https://localhost/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cc.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

// socksGet is a GET through a SOCKS5 proxy on loopback that serves each
// connection with serve; withAuth gives the proxy URL a user and password.
func socksGet(serve func(c net.Conn), withAuth bool) producer {
	return func(t *testing.T) error {
		ln := listen(t, serve)
		proxy := &url.URL{Scheme: "socks5", Host: ln.Addr().String()}
		if withAuth {
			proxy.User = url.UserPassword("user", "secret")
		}
		tr := &http.Transport{Proxy: http.ProxyURL(proxy), DisableKeepAlives: true}
		return get(&http.Client{Transport: tr}, "http://127.0.0.1:1/")
	}
}

// readGreeting reads a SOCKS5 client's greeting: version, method count,
// methods.
func readGreeting(c net.Conn) error {
	head := make([]byte, 2)
	if _, err := io.ReadFull(c, head); err != nil {
		return err
	}
	_, err := io.ReadFull(c, make([]byte, head[1]))
	return err
}

// socksMethod answers the greeting choosing method.
func socksMethod(method byte) func(net.Conn) {
	return func(c net.Conn) {
		if readGreeting(c) != nil {
			return
		}
		c.Write([]byte{5, method})
		io.Copy(io.Discard, c)
	}
}

// socksReply accepts the client without authentication and answers its
// CONNECT (to an IPv4 address) with reply code code.
func socksReply(code byte) func(net.Conn) {
	return func(c net.Conn) {
		if readGreeting(c) != nil {
			return
		}
		c.Write([]byte{5, 0})
		if _, err := io.ReadFull(c, make([]byte, 4+4+2)); err != nil {
			return
		}
		c.Write([]byte{5, code, 0, 1, 0, 0, 0, 0, 0, 0})
	}
}

// socksAuthFails asks for a user and password and refuses them.
func socksAuthFails(c net.Conn) {
	if readGreeting(c) != nil {
		return
	}
	c.Write([]byte{5, 2})
	r := bufio.NewReader(c)
	head := make([]byte, 2) // version, user length
	if _, err := io.ReadFull(r, head); err != nil {
		return
	}
	if _, err := r.Discard(int(head[1])); err != nil {
		return
	}
	n, err := r.ReadByte()
	if err != nil {
		return
	}
	if _, err := r.Discard(int(n)); err != nil {
		return
	}
	c.Write([]byte{1, 1})
}

// lookUpServFail resolves a name with a resolver on loopback that answers
// SERVFAIL.
func lookUpServFail(t *testing.T) error {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go answerServFail(pc)
	addr := pc.LocalAddr().String()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = r.LookupHost(ctx, "servfail.test.")
	return err
}

// answerServFail answers every query pc reads with SERVFAIL, until pc is
// closed.
func answerServFail(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: dnsmessage.RCodeServerFailure})
		b.StartQuestions()
		b.Question(q)
		if out, err := b.Finish(); err == nil {
			pc.WriteTo(out, from)
		}
	}
}
