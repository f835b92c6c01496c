package floor

import (
	"bufio"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"golang.org/x/net/http2"
)

// probeHTTP fetches the target URL on a fresh connection and reads the
// whole answer: HTTP/1.1 in clear, and over TLS HTTP/2 when the server
// offers it, as an http probe at blackbox's defaults does.
func probeHTTP(roots *x509.CertPool) probeFunc {
	return func(ctx context.Context, target string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return err
		}
		conn, err := dial(ctx, hostPort(req.URL))
		if err != nil {
			return err
		}
		defer conn.Close()
		if req.URL.Scheme == "https" {
			return fetchTLS(ctx, conn, req, roots)
		}
		return fetch1(conn, req)
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

func fetchTLS(ctx context.Context, conn net.Conn, req *http.Request, roots *x509.CertPool) error {
	tconn, err := tlsClient(ctx, conn, req.URL.Hostname(), roots, "h2", "http/1.1")
	if err != nil {
		return err
	}
	if tconn.ConnectionState().NegotiatedProtocol != "h2" {
		return fetch1(tconn, req)
	}
	cc, err := new(http2.Transport).NewClientConn(tconn)
	if err != nil {
		return err
	}
	defer cc.Close()
	resp, err := cc.RoundTrip(req)
	if err != nil {
		return err
	}
	return readAnswer(resp)
}

// fetch1 sends req over HTTP/1.1 on conn and reads the answer.
func fetch1(conn net.Conn, req *http.Request) error {
	req.Close = true
	if err := req.Write(conn); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return err
	}
	return readAnswer(resp)
}

func readAnswer(resp *http.Response) error {
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}
