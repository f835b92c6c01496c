package compat

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/quic-go/quic-go/http3"
)

// pageBody is what most pages answer: long enough that compressing it
// changes its length, so the length metrics tell a decoded body from one
// that was not.
var pageBody = strings.Repeat("compat page: the quick brown fox jumps over the lazy dog\n", 8)

// jsonBody is what /json answers, for the CEL rules.
const jsonBody = `{"status":"up","count":3,"tags":["a","b"]}`

// lastModified is the fixed Last-Modified of /lastmod, so that both
// exporters report the same timestamp.
var lastModified = time.Date(2024, 2, 29, 12, 34, 56, 0, time.UTC)

// httpMux is the one set of pages every HTTP peer serves, plain or TLS,
// IPv4 or IPv6. Every page is stateless, as both exporters fetch it at once.
// httpsURL is where /to-https redirects.
func httpMux(httpsURL func() string) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, pageBody)
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.PathValue("code"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(code)
		io.WriteString(w, "status "+strconv.Itoa(code)+"\n")
	})
	// /redirect/N redirects N times before landing on /.
	mux.HandleFunc("/redirect/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil || n < 0 {
			http.Error(w, "bad count", http.StatusBadRequest)
			return
		}
		next := "/"
		if n > 1 {
			next = "/redirect/" + strconv.Itoa(n-1)
		}
		http.Redirect(w, r, next, http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/to-https", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, httpsURL()+"/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/moved-post", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/echo", http.StatusTemporaryRedirect)
	})
	// /encoded/ALG answers a body encoded with ALG whatever the request
	// accepts; /negotiate encodes with the first encoding of the request's
	// Accept-Encoding it knows, or not at all.
	mux.HandleFunc("/encoded/{alg}", func(w http.ResponseWriter, r *http.Request) {
		writeEncoded(w, r.PathValue("alg"), pageBody)
	})
	mux.HandleFunc("/encoded-json/{alg}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		writeEncoded(w, r.PathValue("alg"), jsonBody)
	})
	mux.HandleFunc("/negotiate", func(w http.ResponseWriter, r *http.Request) {
		alg := ""
		for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), ";")
			if name == "gzip" || name == "br" || name == "deflate" {
				alg = name
				break
			}
		}
		writeEncoded(w, alg, pageBody)
	})
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, jsonBody)
	})
	mux.HandleFunc("/not-json", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "this is not json")
	})
	// /echo answers the request as text, so that body regexps check what
	// the prober sent: method, headers (sorted) and body. User-Agent is left
	// out, as each exporter names itself there and the lengths would differ
	// on every scenario (/user-agent shows it), and so is Content-Length,
	// which /framing shows.
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo-Method", r.Method)
		w.Header().Set("X-Multi", "one")
		w.Header().Add("X-Multi", "two")
		fmt.Fprintf(w, "method=%s\nhost=%s\nproto=%s\n", r.Method, r.Host, r.Proto)
		names := make([]string, 0, len(r.Header))
		for name := range r.Header {
			if name != "User-Agent" && name != "Content-Length" {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			fmt.Fprintf(w, "header %s: %s\n", name, strings.Join(r.Header[name], ", "))
		}
		fmt.Fprintf(w, "body=%s\n", body)
	})
	mux.HandleFunc("/user-agent", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "user-agent="+r.UserAgent()+"\n")
	})
	mux.HandleFunc("/framing", func(w http.ResponseWriter, r *http.Request) {
		if slices.Contains(r.TransferEncoding, "chunked") {
			io.WriteString(w, "framing=chunked\n")
			return
		}
		fmt.Fprintf(w, "framing=length %d\n", r.ContentLength)
	})
	mux.HandleFunc("/post-only", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		io.WriteString(w, "posted\n")
	})
	mux.HandleFunc("/basic", func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != "compat" || pass != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="compat"`)
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "welcome\n")
	})
	mux.HandleFunc("/bearer", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer compat-token" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "token ok\n")
	})
	mux.HandleFunc("/custom-auth", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Compat abc123" {
			http.Error(w, "no credentials", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "credentials ok\n")
	})
	// /token is an OAuth 2.0 token endpoint granting client credentials;
	// /oauth wants the token it grants.
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if r.Method != http.MethodPost || r.FormValue("grant_type") != "client_credentials" || !ok || id != "compat" || secret != "s3cret" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"oauth-token","token_type":"Bearer","expires_in":3600}`)
	})
	mux.HandleFunc("/oauth", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer oauth-token" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "oauth ok\n")
	})
	// /set-cookie sets a cookie and redirects to /need-cookie, which wants
	// it back: a client that keeps no cookies across redirects gets 403.
	mux.HandleFunc("/set-cookie", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "compat", Value: "1", Path: "/"})
		http.Redirect(w, r, "/need-cookie", http.StatusFound)
	})
	mux.HandleFunc("/need-cookie", func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("compat"); err != nil || c.Value != "1" {
			http.Error(w, "no cookie", http.StatusForbidden)
			return
		}
		io.WriteString(w, "cookie ok\n")
	})
	mux.HandleFunc("/see-other", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/echo", http.StatusSeeOther)
	})
	// /short declares more body than it sends, then hangs up.
	mux.HandleFunc("/short", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "ten bytes!")
		http.NewResponseController(w).Flush()
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	})
	// /hangup closes the connection without answering.
	mux.HandleFunc("/hangup", func(w http.ResponseWriter, r *http.Request) {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	})
	// /slow-body sends its headers and part of the body, then holds the
	// rest until the prober gives up.
	mux.HandleFunc("/slow-body", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		io.WriteString(w, "first part")
		http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("/lastmod", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", lastModified.Format(http.TimeFormat))
		io.WriteString(w, pageBody)
	})
	mux.HandleFunc("/lastmod-bad", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", "yesterday, more or less")
		io.WriteString(w, pageBody)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("0123456789abcdef", 1024)) // 16 KiB
	})
	// /chunked answers without a Content-Length.
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first chunk\n")
		http.NewResponseController(w).Flush()
		io.WriteString(w, "second chunk\n")
	})
	mux.HandleFunc("/no-content", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	// /slow holds the request until the prober gives up (its closing the
	// connection cancels the request's context), or for longer than any
	// scenario's deadline.
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Compat", "version=1.2.3")
		w.Header().Set("Server", "compat/1.0")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, pageBody)
	})
	return mux
}

// writeEncoded answers body encoded with alg (gzip, br, deflate), or as is
// for any other alg, with Content-Encoding set accordingly.
func writeEncoded(w http.ResponseWriter, alg, body string) {
	var buf bytes.Buffer
	var enc io.WriteCloser
	switch alg {
	case "gzip":
		enc = gzip.NewWriter(&buf)
	case "br":
		enc = brotli.NewWriter(&buf)
	case "deflate":
		fw, err := flate.NewWriter(&buf, flate.DefaultCompression)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		enc = fw
	default:
		io.WriteString(w, body)
		return
	}
	io.WriteString(enc, body)
	enc.Close()
	w.Header().Set("Content-Encoding", alg)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Write(buf.Bytes())
}

// httpPeers are the HTTP servers of the test, each serving httpMux.
type httpPeers struct {
	plain     string // http://127.0.0.1:port
	plainV6   string // http://[::1]:port, empty without IPv6 loopback
	tls       string // https, the good certificate, HTTP/2 offered
	tlsV6     string // https on [::1], empty without IPv6 loopback
	expired   string // https, an expired certificate
	wrongHost string // https, a certificate for other.example
	named     string // https, a certificate for sonde.test only
	mtls      string // https, a client certificate required
	http11TLS string // https, HTTP/1.1 only
	chained   string // https, a leaf and the intermediate that signed it
	tricky    string // https, a subject that needs escaping
	proxy     string // a forward proxy (absolute URIs and CONNECT)
	h3        string // https over HTTP/3 (QUIC), the good certificate
	h3Expired string // the same with the expired certificate
}

func startHTTPPeers(t *testing.T, p *pki) *httpPeers {
	t.Helper()
	hp := &httpPeers{}
	mux := httpMux(func() string { return hp.tls })
	hp.plain = serveHTTP(t, "127.0.0.1:0", mux, nil, false)
	hp.tls = serveHTTP(t, "127.0.0.1:0", mux, p.serverTLS(p.good, false), true)
	if ipv6Loopback() {
		hp.plainV6 = serveHTTP(t, "[::1]:0", mux, nil, false)
		hp.tlsV6 = serveHTTP(t, "[::1]:0", mux, p.serverTLS(p.good, false), true)
	}
	hp.expired = serveHTTP(t, "127.0.0.1:0", mux, p.serverTLS(p.expired, false), true)
	hp.wrongHost = serveHTTP(t, "127.0.0.1:0", mux, p.serverTLS(p.wrongHost, false), true)
	hp.named = serveHTTP(t, "127.0.0.1:0", mux, p.serverTLS(p.named, false), true)
	hp.mtls = serveHTTP(t, "127.0.0.1:0", mux, p.serverTLS(p.good, true), true)
	hp.http11TLS = serveHTTP(t, "127.0.0.1:0", mux, p.serverTLS(p.good, false), false)
	hp.chained = serveHTTP(t, "127.0.0.1:0", mux, p.serverTLS(p.chained, false), true)
	hp.tricky = serveHTTP(t, "127.0.0.1:0", mux, p.serverTLS(p.tricky, false), true)
	hp.proxy = serveHTTP(t, "127.0.0.1:0", proxyHandler(), nil, false)
	hp.h3 = serveHTTP3(t, mux, p.serverTLS(p.good, false))
	hp.h3Expired = serveHTTP3(t, mux, p.serverTLS(p.expired, false))
	return hp
}

// serveHTTP3 serves h over HTTP/3 on a loopback UDP port and returns its
// base URL.
func serveHTTP3(t *testing.T, h http.Handler, tlsCfg *tls.Config) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening on UDP for HTTP/3: %v", err)
	}
	srv := &http3.Server{Handler: h, TLSConfig: http3.ConfigureTLSConfig(tlsCfg)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(pc)
	}()
	t.Cleanup(func() {
		srv.Close()
		pc.Close()
		<-done
	})
	return "https://" + pc.LocalAddr().String()
}

// serveHTTP serves h on addr, over TLS when tlsCfg is set (offering
// HTTP/2 when h2), and returns its base URL.
func serveHTTP(t *testing.T, addr string, h http.Handler, tlsCfg *tls.Config, h2 bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on %s for HTTP: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	// Handshakes the probers fail on purpose (expired, wrong host, no
	// client certificate) are the point, not news.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tlsCfg == nil {
		srv.Start()
	} else {
		srv.TLS = tlsCfg.Clone()
		srv.EnableHTTP2 = h2
		srv.StartTLS()
	}
	t.Cleanup(srv.Close)
	return srv.URL
}

// proxyHandler is a forward proxy: it fetches absolute-URI requests itself
// and tunnels CONNECT, marking the answers it fetched with X-Proxied so
// that a header rule can tell a proxied probe from a direct one.
func proxyHandler() http.Handler {
	transport := &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			tunnel(w, r)
			return
		}
		if !r.URL.IsAbs() {
			http.Error(w, "compat proxy: not a proxy request", http.StatusBadRequest)
			return
		}
		out := r.Clone(r.Context())
		out.RequestURI = ""
		resp, err := transport.RoundTrip(out)
		if err != nil {
			http.Error(w, "compat proxy: "+err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for name, values := range resp.Header {
			w.Header()[name] = values
		}
		w.Header().Set("X-Proxied", "compat")
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
}

// tunnel answers CONNECT by joining the client to the address it named.
func tunnel(w http.ResponseWriter, r *http.Request) {
	upstream, err := net.DialTimeout("tcp", r.Host, 5*time.Second)
	if err != nil {
		http.Error(w, "compat proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer upstream.Close()
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
	done := make(chan struct{}, 2)
	go func() { io.Copy(upstream, buf); done <- struct{}{} }()
	go func() { io.Copy(conn, upstream); done <- struct{}{} }()
	<-done
}

// ipv6Loopback tells whether ::1 can be listened on here.
func ipv6Loopback() bool {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
