package dns

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/probelog"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// This file is DNS over HTTPS (RFC 8484), sonde's transport_protocol
// https: the query in wire format, POSTed as application/dns-message or
// sent as ?dns=<base64url> with doh_method GET.

const dnsMessageType = "application/dns-message"

// queryHTTPS asks the module's question of the DoH server at target over a
// connection of the probe's own, so its resolve, connect and TLS phases are
// timed like those of the other transports.
func (p *dnsProbe) queryHTTPS(target string) (*dns.Msg, error) {
	u, err := ParseDoHTarget(target)
	if err != nil {
		return nil, err
	}
	port := u.Port()
	if port == "" {
		port = dnsHTTPS.defaultPort()
	}
	query := p.newQuery(0)
	out, err := query.Pack()
	if err != nil {
		return nil, taxonomy.Fail(taxonomy.ClassProber, taxonomy.ReasonInternal, taxonomy.PhaseSetup, fmt.Errorf("packing the query: %w", err))
	}
	req, err := p.dohRequest(u, out)
	if err != nil {
		return nil, err
	}
	conn, err := p.connect(p.endpoint(u.Hostname(), port), u.Hostname())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	body, err := p.roundTrip(conn, req)
	if err != nil {
		return nil, err
	}
	return parseAnswer(body, query.Id, dnsHTTPS)
}

// ParseDoHTarget reads a DoH target: an https URL, or host[:port] to which
// https:// and the customary path /dns-query are added.
func ParseDoHTarget(target string) (_ *url.URL, err error) {
	defer core.HidePassword(&err, target)
	const form = "write it as https://host[:port]/path or host[:port]"
	if !strings.Contains(target, "://") {
		if ip := net.ParseIP(target); ip != nil && ip.To4() == nil {
			target = "[" + target + "]" // a bare IPv6 address
		}
		target = "https://" + target + "/dns-query"
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target is not a valid URL: %v; %s", err, form)
	}
	if !strings.EqualFold(u.Scheme, "https") {
		return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target scheme %q: DNS over HTTPS needs https; %s", u.Scheme, form)
	}
	u.Scheme = "https"
	if err := CheckHost(u.Hostname()); err != nil {
		return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target %q: %v; %s", target, err, form)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target %q: %q is not a port number; %s", target, port, form)
		}
	}
	if u.Path == "" {
		u.Path = "/dns-query"
	}
	return u, nil
}

// dohRequest builds the request carrying msg, by doh_method.
func (p *dnsProbe) dohRequest(u *url.URL, msg []byte) (*http.Request, error) {
	var req *http.Request
	var err error
	if p.prepared.post {
		req, err = http.NewRequestWithContext(p.ctx, http.MethodPost, u.String(), bytes.NewReader(msg))
	} else {
		get := *u
		q := get.Query()
		q.Set("dns", base64.RawURLEncoding.EncodeToString(msg))
		get.RawQuery = q.Encode()
		req, err = http.NewRequestWithContext(p.ctx, http.MethodGet, get.String(), nil)
	}
	if err != nil {
		return nil, taxonomy.Fail(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, fmt.Errorf("building the DNS over HTTPS request: %w", err))
	}
	if p.prepared.post {
		req.Header.Set("Content-Type", dnsMessageType)
	}
	req.Header.Set("Accept", dnsMessageType)
	req.Header.Set("User-Agent", p.prepared.userAgent)
	return req, nil
}

// roundTrip sends req on conn and returns the answer's body. A status
// other than 200 means the server gave no DNS answer at all, so it fails
// the query itself rather than a check of its answer.
func (p *dnsProbe) roundTrip(conn net.Conn, req *http.Request) ([]byte, error) {
	release := netdial.BindDeadline(p.ctx, conn)
	defer release()
	transport := &http.Transport{
		DialTLSContext:         handOver(conn),
		DisableKeepAlives:      true,
		DisableCompression:     true,
		ForceAttemptHTTP2:      true, // offered by ALPN; RFC 8484 recommends HTTP/2
		MaxResponseHeaderBytes: core.MaxResponseHeader,
	}
	defer transport.CloseIdleConnections()
	start := time.Now()
	defer p.requestDone(start)

	probelog.Debug(p.logger, "Sending DNS over HTTPS request", "method", req.Method, "url", req.URL.Redacted())
	resp, err := transport.RoundTrip(req)
	if err != nil {
		return nil, taxonomy.Classify(p.ctx, fmt.Errorf("DNS over HTTPS request to %s: %w", req.URL.Redacted(), err), taxonomy.PhaseQuery)
	}
	defer resp.Body.Close()
	probelog.Debug(p.logger, "Received HTTP response", "status_code", resp.StatusCode, "proto", resp.Proto,
		"content_type", resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK {
		return nil, taxonomy.Failf(taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus, taxonomy.PhaseQuery, "the DNS over HTTPS server answered %q, not 200 OK", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, dns.MaxMsgSize+1))
	if err != nil {
		return nil, taxonomy.Classify(p.ctx, fmt.Errorf("reading the DNS over HTTPS answer: %w", err), taxonomy.PhaseQuery)
	}
	if len(body) > dns.MaxMsgSize {
		return nil, taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseQuery, "the answer's body is larger than any DNS message (%d bytes)", dns.MaxMsgSize)
	}
	return body, nil
}

// handOver gives the transport the probe's connection, already dialled,
// handshaken and timed, once. A second dial would be a connection to an
// address and with a timing the probe did not choose.
func handOver(conn net.Conn) func(context.Context, string, string) (net.Conn, error) {
	var used atomic.Bool
	return func(context.Context, string, string) (net.Conn, error) {
		if used.Swap(true) {
			return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInternal, taxonomy.PhaseQuery, "the HTTP transport asked for a second connection")
		}
		return conn, nil
	}
}
