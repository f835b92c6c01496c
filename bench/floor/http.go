package floor

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"golang.org/x/net/http2/hpack"
)

// probeHTTP fetches the target URL on a fresh connection and reads the
// whole answer: HTTP/1.1 in clear, and over TLS HTTP/2 when the server
// offers it, as an http probe at blackbox's defaults does.
func probeHTTP(roots *x509.CertPool) probeFunc {
	// One configuration for every probe, without a session cache: each
	// probe makes a full handshake and verifies the chain, as a probe does.
	tlsConfig := &tls.Config{RootCAs: roots, NextProtos: []string{"h2", "http/1.1"}}
	return func(ctx context.Context, target string) error {
		u, err := url.Parse(target)
		if err != nil {
			return err
		}
		conn, err := dial(ctx, hostPort(u))
		if err != nil {
			return err
		}
		defer conn.Close()
		if u.Scheme == "https" {
			return fetchTLS(ctx, conn, u, tlsConfig)
		}
		return fetch1(conn, u)
	}
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

func fetchTLS(ctx context.Context, conn net.Conn, u *url.URL, base *tls.Config) error {
	cfg := base.Clone()
	cfg.ServerName = u.Hostname()
	tconn := tls.Client(conn, cfg)
	if err := tconn.HandshakeContext(ctx); err != nil {
		return err
	}
	if tconn.ConnectionState().NegotiatedProtocol != "h2" {
		return fetch1(tconn, u)
	}
	a, err := h2Call(tconn, []hpack.HeaderField{
		{Name: ":method", Value: "GET"},
		{Name: ":scheme", Value: "https"},
		{Name: ":path", Value: u.RequestURI()},
		{Name: ":authority", Value: u.Host},
	}, nil)
	if err != nil {
		return err
	}
	if len(a.status) != 3 || a.status[0] != '2' {
		return fmt.Errorf("status %q", a.status)
	}
	return nil
}

// fetch1 sends a GET for u over HTTP/1.1 on conn, asking the server to
// close the connection after it, and reads the whole answer.
func fetch1(conn net.Conn, u *url.URL) error {
	req := make([]byte, 0, 128)
	req = append(req, "GET "...)
	req = append(req, u.RequestURI()...)
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, u.Host...)
	req = append(req, "\r\nConnection: close\r\n\r\n"...)
	if _, err := conn.Write(req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 1<<10), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}
