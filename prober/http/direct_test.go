package http

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// Plain-HTTP requests without a proxy skip net/http's Transport
// (http_direct.go); these are the cases where the two could differ.
func TestHTTPDirectRoundTrip(t *testing.T) {
	hints := "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
	cases := []struct {
		name   string
		module func(h *config.HTTPProbe)
		serve  func(c net.Conn, req *http.Request)
		want   failure
		check  func(t *testing.T, s *probemetrics.Sink)
		within time.Duration // the probe's deadline; 20s when 0
	}{
		{
			name: "asks the target to close the connection",
			serve: func(c net.Conn, req *http.Request) {
				if req.Close {
					fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				} else {
					fmt.Fprint(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
				}
			},
		},
		{
			name: "informational responses before the final one",
			serve: func(c net.Conn, _ *http.Request) {
				fmt.Fprint(c, hints+hints+"HTTP/1.1 204 No Content\r\n\r\n")
			},
			check: func(t *testing.T, s *probemetrics.Sink) { probertest.Metric(t, s, 204, "probe_http_status_code") },
		},
		{
			name: "informational responses past the header limit",
			serve: func(c net.Conn, _ *http.Request) {
				w := bufio.NewWriter(c)
				for i := 0; i <= core.MaxResponseHeader/len(hints); i++ {
					if _, err := w.WriteString(hints); err != nil {
						return
					}
				}
				_ = w.Flush()
			},
			want: failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseTransfer},
		},
		{
			name: "response header over the limit",
			serve: func(c net.Conn, _ *http.Request) {
				line := "X-Filler: " + strings.Repeat("a", 1000) + "\r\n"
				w := bufio.NewWriter(c)
				fmt.Fprint(w, "HTTP/1.1 200 OK\r\n")
				for i := 0; i <= core.MaxResponseHeader/len(line); i++ {
					if _, err := w.WriteString(line); err != nil {
						return
					}
				}
				_ = w.Flush()
			},
			want: failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseTransfer},
		},
		{
			// The client closes a redirect's body after reading a little of
			// it; closing must not read the rest, which here never ends.
			name: "endless body of a redirect",
			serve: func(c net.Conn, req *http.Request) {
				if req.URL.Path == "/next" {
					fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
					return
				}
				fmt.Fprint(c, "HTTP/1.1 302 Found\r\nLocation: /next\r\nTransfer-Encoding: chunked\r\n\r\n")
				chunk := "400\r\n" + strings.Repeat("x", 0x400) + "\r\n"
				for {
					if _, err := io.WriteString(c, chunk); err != nil {
						return
					}
				}
			},
			check: func(t *testing.T, s *probemetrics.Sink) { probertest.Metric(t, s, 1, "probe_http_redirects") },
		},
		{
			// The deadline cuts the status line: bufio hands over the part
			// read as a whole line, which must not be judged malformed.
			name: "status line cut by the deadline",
			serve: func(c net.Conn, _ *http.Request) {
				fmt.Fprint(c, "HTTP/1.1 2")
				time.Sleep(time.Second)
			},
			within: 200 * time.Millisecond,
			want:   failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseTransfer},
		},
		{
			name: "request body",
			module: func(h *config.HTTPProbe) {
				h.Method = http.MethodPost
				h.Body = "ping"
			},
			serve: func(c net.Conn, req *http.Request) {
				body, _ := io.ReadAll(req.Body)
				if req.Method == http.MethodPost && string(body) == "ping" && req.ContentLength == 4 {
					fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
					return
				}
				fmt.Fprintf(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bothWays(t, func(t *testing.T, way func(*core.Module) *core.Module) {
				addr := probertest.RawServer(t, func(c net.Conn) {
					req, err := http.ReadRequest(bufio.NewReader(c))
					if err != nil {
						return
					}
					tc.serve(c, req)
				})
				m := way(newModule(t, tc.module))
				within := tc.within
				if within == 0 {
					within = 20 * time.Second
				}
				sink, took, err := probertest.Probe(t, m, "http://"+addr+"/", within)
				checkOutcome(t, err, tc.want)
				if took > 10*time.Second {
					t.Errorf("the probe took %v: it waited for its deadline", took)
				}
				if tc.check != nil {
					tc.check(t, sink)
				}
			})
		})
	}
}

// TestHTTPDirectRedirectToHTTPS: a probe whose plain-HTTP target redirects
// to HTTPS goes on through net/http's Transport, made at that moment, and
// reports the TLS of the final hop and the phases of both.
func TestHTTPDirectRedirectToHTTPS(t *testing.T) {
	secure := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "secure")
	}), probertest.ServerOpts{TLS: true, HTTP2: true})
	plain := probertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, secure.URL+"/", http.StatusFound)
	}), probertest.ServerOpts{})
	m := newModule(t, func(h *config.HTTPProbe) {
		h.HTTPClientConfig.TLSConfig.InsecureSkipVerify = true
		h.FailIfNotSSL = true
	})
	sink, err := probertest.Run(t, m, plain.URL+"/")
	checkOutcome(t, err, failure{})
	probertest.Metric(t, sink, 1, "probe_http_redirects")
	probertest.Metric(t, sink, 1, "probe_http_ssl")
	probertest.Metric(t, sink, 2, "probe_http_version")
	checkPhases(t, sink, []taxonomy.Phase{taxonomy.PhaseConnect, taxonomy.PhaseTLS, taxonomy.PhaseProcessing, taxonomy.PhaseTransfer}, nil)
}
