// Package dns is the dns prober: it sends one query over UDP, TCP, TLS or
// HTTPS and checks the answer as the module says.
package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/common/version"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/idn"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/probelog"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
	"github.com/sonde-exporter/sonde/prober/tlsfacts"
)

// dnsTransport is how a dns module carries its query.
type dnsTransport int

const (
	dnsUDP   dnsTransport = iota
	dnsTCP                // transport_protocol: tcp
	dnsTLS                // dns_over_tls: DNS over TLS (RFC 7858)
	dnsHTTPS              // transport_protocol: https, a sonde addition (RFC 8484)
)

func (t dnsTransport) String() string {
	return [...]string{"udp", "tcp", "tcp-tls", "https"}[t]
}

// network is the transport's network for net.Dial.
func (t dnsTransport) network() string {
	if t == dnsUDP {
		return "udp"
	}
	return "tcp"
}

// defaultPort is the port of a target that names none.
func (t dnsTransport) defaultPort() string {
	switch t {
	case dnsTLS:
		return "853"
	case dnsHTTPS:
		return "443"
	}
	return "53"
}

func (t dnsTransport) usesTLS() bool { return t == dnsTLS || t == dnsHTTPS }

// udpAnswerSize is the read buffer for an answer over UDP. sonde sends no
// EDNS0, so a server should answer in 512 bytes; the margin keeps an answer
// from a server that ignores that limit whole, instead of cut by the read.
const udpAnswerSize = dns.DefaultMsgSize

// RequestPhase is the phase label of the exchange in
// probe_dns_duration_seconds; its failures are reported in PhaseQuery.
const RequestPhase = "request"

// dnsPrepared is what a dns module needs ready before its first probe.
type dnsPrepared struct {
	transport  dnsTransport
	name       string // query_name, fully qualified, in its ASCII form
	qtype      uint16
	qclass     uint16
	rcodes     []int
	rcodeNames []string // valid_rcodes as configured, for messages
	rcodesErr  error    // a valid_rcodes entry that is no rcode: every probe fails its check
	// transportErr is a transport blackbox cannot use, which fails every
	// probe: before resolving for an unknown transport_protocol, after for
	// dns_over_tls with udp, where blackbox meets each.
	transportErr error
	dotOverUDP   bool
	tls          *tlsfacts.Client // DoT and DoH only
	sections     []rrSection
	post         bool   // doh_method POST (the default) rather than GET
	userAgent    string // DoH requests only
}

// Prepare readies a dns module when the configuration loads.
func Prepare(m *config.Module, env *core.Env) (core.Prober, error) {
	d := &m.DNS
	p := &dnsPrepared{
		transport: TransportOf(d),
		name:      dns.Fqdn(idn.ASCII(d.QueryName)),
		post:      !strings.EqualFold(d.DoHMethod, "GET"),
		userAgent: version.ComponentUserAgent("sonde"),
		sections:  rrSections(d),
	}
	var err error
	if p.qtype, err = lookupCode(dns.StringToType, "query_type", d.QueryType, dns.TypeANY); err != nil {
		return nil, err
	}
	if p.qclass, err = lookupCode(dns.StringToClass, "query_class", d.QueryClass, dns.ClassINET); err != nil {
		return nil, err
	}
	p.rcodes, p.rcodeNames, p.rcodesErr = validRcodes(d.ValidRcodes)
	p.dotOverUDP, p.transportErr = transportProblem(d)
	if p.transport.usesTLS() {
		if p.tls, err = env.TLSClient(m, "dns", &d.TLSConfig); err != nil {
			return nil, err
		}
		if p.transport == dnsHTTPS {
			p.tls.WithALPN("h2", "http/1.1")
		}
	}
	return p, nil
}

// transportProblem says what blackbox would fail every probe of the module
// for: an unknown transport_protocol, or DNS over TLS asked of udp.
func transportProblem(d *config.DNSProbe) (dotOverUDP bool, err error) {
	switch d.TransportProtocol {
	case "", "udp", "tcp", "https":
	default:
		return false, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup, "dns.transport_protocol %q is not a transport; use udp, tcp or https", d.TransportProtocol)
	}
	return d.DNSOverTLS && d.TransportProtocol == "udp", nil
}

// TransportOf reads transport_protocol and dns_over_tls. DNS over TLS runs
// over TCP, so an unset transport_protocol means tcp with it; blackbox would
// fail every probe of such a module instead.
func TransportOf(d *config.DNSProbe) dnsTransport {
	switch {
	case d.TransportProtocol == "https":
		return dnsHTTPS
	case d.DNSOverTLS:
		return dnsTLS
	case d.TransportProtocol == "tcp":
		return dnsTCP
	}
	return dnsUDP
}

// lookupCode reads a DNS type or class name, written exactly as the table
// has it (upper case), as blackbox reads it; empty means def. The
// configuration checks these at load; this guards modules built in code.
func lookupCode(names map[string]uint16, option, value string, def uint16) (uint16, error) {
	if value == "" {
		return def, nil
	}
	code, ok := names[value]
	if !ok {
		return 0, fmt.Errorf("dns.%s: %q is not known", option, value)
	}
	return code, nil
}

// validRcodes reads valid_rcodes; an empty list means NOERROR only.
func validRcodes(names []string) ([]int, []string, error) {
	if len(names) == 0 {
		return []int{dns.RcodeSuccess}, []string{"NOERROR"}, nil
	}
	codes := make([]int, len(names))
	for i, name := range names {
		code, ok := dns.StringToRcode[name]
		if !ok {
			return nil, nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseValidate, "dns.valid_rcodes[%d]: %q is not a DNS response code (they are written in upper case, e.g. NXDOMAIN)", i, name)
		}
		codes[i] = code
	}
	return codes, names, nil
}

// dnsMetrics are blackbox's dns metrics, registered before the probe starts
// so that a probe failing early still exports them, at 0, as blackbox does.
type dnsMetrics struct {
	durations                                probemetrics.GaugeVec
	answer, authority, additional, succeeded probemetrics.Gauge
}

func newDNSMetrics(sink *probemetrics.Sink, t dnsTransport) dnsMetrics {
	m := dnsMetrics{
		durations:  sink.GaugeVec("probe_dns_duration_seconds", "Duration of DNS request by phase", "phase"),
		answer:     sink.Gauge("probe_dns_answer_rrs", "Returns number of entries in the answer resource record list"),
		authority:  sink.Gauge("probe_dns_authority_rrs", "Returns number of entries in the authority resource record list"),
		additional: sink.Gauge("probe_dns_additional_rrs", "Returns number of entries in the additional resource record list"),
		succeeded:  sink.Gauge("probe_dns_query_succeeded", "Displays whether or not the query was executed successfully"),
	}
	for _, phase := range dnsPhases(t) {
		m.durations.With(phase)
	}
	return m
}

// dnsPhases are the phases of probe_dns_duration_seconds. Blackbox counts
// the DoT handshake in connect; sonde times it on its own, as it does for
// http, so the tls series exists only for the transports that have one.
func dnsPhases(t dnsTransport) []string {
	if t.usesTLS() {
		return []string{string(taxonomy.PhaseResolve), string(taxonomy.PhaseConnect), string(taxonomy.PhaseTLS), RequestPhase}
	}
	return []string{string(taxonomy.PhaseResolve), string(taxonomy.PhaseConnect), RequestPhase}
}

// dnsProbe is one run of the dns prober.
type dnsProbe struct {
	ctx      context.Context
	module   *core.Module
	cfg      *config.DNSProbe
	prepared *dnsPrepared
	sink     *probemetrics.Sink
	logger   *slog.Logger
	metrics  dnsMetrics
	times    map[string]time.Duration // by phase label
}

func (prepared *dnsPrepared) Probe(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	p := &dnsProbe{
		ctx: ctx, module: m, cfg: &m.DNS, prepared: prepared,
		sink: sink, logger: logger, times: map[string]time.Duration{},
	}
	p.metrics = newDNSMetrics(sink, p.prepared.transport)
	defer p.recordDurations()

	resp, err := p.query(target)
	if resp != nil {
		p.recordAnswer(resp)
	}
	if err == nil {
		err = p.validate(resp)
	}
	if err != nil {
		logger.Error("DNS probe failed", "err", err)
	}
	return err
}

// query asks the target the module's question and returns the parsed
// answer. A truncated answer is returned along with its error, so that
// what it holds is still counted.
func (p *dnsProbe) query(target string) (*dns.Msg, error) {
	if err := p.prepared.transportErr; err != nil {
		return nil, err
	}
	if p.prepared.transport == dnsHTTPS {
		return p.queryHTTPS(target)
	}
	host, port, err := SplitTarget(target, p.prepared.transport.defaultPort())
	if err != nil {
		return nil, err
	}
	if p.prepared.dotOverUDP {
		return nil, p.refuseDoTOverUDP(host)
	}
	conn, err := p.connect(p.endpoint(host, port), host)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return p.exchange(conn, p.newQuery(dns.Id()))
}

// SplitTarget reads a target as blackbox does: host[:port], [v6]:port,
// or a bare IPv6 address, with defaultPort when none is given.
func SplitTarget(target, defaultPort string) (host, port string, err error) {
	defer core.HidePassword(&err, target)
	host, port, err = net.SplitHostPort(target)
	if err != nil {
		host, port = target, defaultPort
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
		}
	}
	if err := CheckHost(host); err != nil {
		return "", "", taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target %q: %v; write it as host[:port] or [ipv6]:port", target, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup, "target %q: %q is not a port number; write it as host[:port] or [ipv6]:port", target, port)
	}
	return host, port, nil
}

// CheckHost refuses hosts that no resolver could answer for, so that a
// mistyped target is a 400 rather than a DNS failure.
func CheckHost(host string) error {
	switch {
	case host == "":
		return errors.New("no host")
	case strings.Contains(host, ":") && net.ParseIP(host) == nil:
		return fmt.Errorf("%q is neither a host name nor an IP address", host)
	case strings.ContainsAny(host, "/[] \t\r\n"):
		return fmt.Errorf("%q is not a host name", host)
	}
	return nil
}

func (p *dnsProbe) endpoint(host, port string) netdial.Endpoint {
	return netdial.Endpoint{
		Network:  p.prepared.transport.network(),
		Host:     host,
		Port:     port,
		Protocol: p.cfg.IPProtocol,
		Fallback: p.cfg.IPProtocolFallback,
		Source:   p.cfg.SourceIPAddress,
	}
}

// refuseDoTOverUDP fails a probe asked for DNS over TLS over udp, which
// cannot be: after resolving the target, where blackbox fails it.
func (p *dnsProbe) refuseDoTOverUDP(host string) error {
	_, took, err := netdial.ResolveTarget(p.ctx, p.module.Resolver, p.module.Policy, host, p.cfg.IPProtocol, p.cfg.IPProtocolFallback, p.sink, p.logger)
	p.times[string(taxonomy.PhaseResolve)] = took
	if err != nil {
		return err
	}
	return taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup, "dns.dns_over_tls runs over TCP, and dns.transport_protocol is udp; set it to tcp or remove it")
}

// connect resolves and dials e and, for DoT and DoH, completes the TLS
// handshake, verifying the server as tls_config.server_name or host.
func (p *dnsProbe) connect(e netdial.Endpoint, host string) (net.Conn, error) {
	d, err := netdial.DialEndpoint(p.ctx, p.module.Resolver, p.module.Policy, e, p.sink, p.logger)
	p.times[string(taxonomy.PhaseResolve)] = d.Resolve
	p.times[string(taxonomy.PhaseConnect)] = d.Connect
	if err != nil {
		return nil, err
	}
	if !p.prepared.transport.usesTLS() {
		return d.Conn, nil
	}
	serverName := p.cfg.TLSConfig.ServerName
	if serverName == "" {
		serverName = host
	}
	tc, took, err := tlsfacts.Handshake(p.ctx, d.Conn, p.prepared.tls, serverName, p.sink)
	p.times[string(taxonomy.PhaseTLS)] = took
	if err != nil {
		d.Conn.Close()
		return nil, err
	}
	return tc, nil
}

// newQuery builds the module's question. DoH passes id 0, which RFC 8484
// asks for so that caches can share answers.
func (p *dnsProbe) newQuery(id uint16) *dns.Msg {
	msg := &dns.Msg{
		MsgHdr:   dns.MsgHdr{Id: id, Opcode: dns.OpcodeQuery, RecursionDesired: p.cfg.Recursion},
		Question: []dns.Question{{Name: p.prepared.name, Qtype: p.prepared.qtype, Qclass: p.prepared.qclass}},
	}
	probelog.Debug(p.logger, "Making DNS query", "transport", p.prepared.transport.String(), "name", p.prepared.name,
		"type", dns.TypeToString[p.prepared.qtype], "class", dns.ClassToString[p.prepared.qclass],
		"recursion_desired", p.cfg.Recursion)
	return msg
}

// exchange sends the query on conn and reads its answer, both bound to the
// probe's deadline: a datagram over UDP, a length-prefixed message over TCP
// and TLS (RFC 1035 4.2.2).
func (p *dnsProbe) exchange(conn net.Conn, query *dns.Msg) (*dns.Msg, error) {
	packet := p.prepared.transport == dnsUDP
	out, err := query.Pack()
	if err != nil {
		return nil, taxonomy.Fail(taxonomy.ClassProber, taxonomy.ReasonInternal, taxonomy.PhaseSetup, fmt.Errorf("packing the query: %w", err))
	}
	release := netdial.BindDeadline(p.ctx, conn)
	defer release()
	start := time.Now()
	defer p.requestDone(start)

	if err := writeMessage(conn, out, packet); err != nil {
		return nil, p.wireError("sending the query", err, packet)
	}
	// One buffer for every datagram: answers to other queries are skipped
	// as fast as they come, and a peer may send them without end.
	var buf []byte
	skipped := 0
	defer func() {
		if skipped > 1 {
			probelog.Debug(p.logger, "Ignored answers to other queries", "count", skipped)
		}
	}()
	for {
		raw, err := readMessage(conn, packet, &buf)
		if err != nil {
			return nil, p.wireError("reading the answer", err, packet)
		}
		// A connected UDP socket hears only the server, so another id is a
		// late answer to an earlier query from the same port: skip it.
		if packet && len(raw) >= 2 && binary.BigEndian.Uint16(raw) != query.Id {
			if skipped++; skipped == 1 {
				probelog.Debug(p.logger, "Ignoring an answer to another query", "id", binary.BigEndian.Uint16(raw))
			}
			continue
		}
		return parseAnswer(raw, query.Id, p.prepared.transport)
	}
}

// requestDone ends the request phase begun at start: its duration for
// probe_dns_duration_seconds and, with the same readings, its span.
func (p *dnsProbe) requestDone(start time.Time) {
	end := time.Now()
	p.times[RequestPhase] = end.Sub(start)
	p.sink.Span(taxonomy.PhaseQuery, 0, start, end)
}

func writeMessage(conn net.Conn, msg []byte, packet bool) error {
	if !packet {
		framed := make([]byte, 2, 2+len(msg))
		binary.BigEndian.PutUint16(framed, uint16(len(msg)))
		msg = append(framed, msg...)
	}
	_, err := conn.Write(msg)
	return err
}

// readMessage reads one message; a datagram into *datagram, made on
// first use.
func readMessage(conn net.Conn, packet bool, datagram *[]byte) ([]byte, error) {
	if packet {
		if *datagram == nil {
			*datagram = make([]byte, udpAnswerSize)
		}
		n, err := conn.Read(*datagram)
		return (*datagram)[:n], err
	}
	var size [2]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(size[:]))
	_, err := io.ReadFull(conn, buf)
	return buf, err
}

// wireError classifies a failed send or read. Over UDP a closed port or an
// unreachable host comes back as ICMP, which the kernel reports on the next
// read or write: that is the connect failure UDP cannot have when dialling,
// and it is reported as one, like the same failure over TCP.
func (p *dnsProbe) wireError(op string, err error, packet bool) error {
	perr := taxonomy.Classify(p.ctx, fmt.Errorf("%s: %w", op, err), taxonomy.PhaseQuery)
	if packet && perr.Class == taxonomy.ClassConnect {
		perr.Phase = taxonomy.PhaseConnect
	}
	return perr
}

// parseAnswer unpacks an answer to the query with id. A truncated answer
// (TC bit) fails the probe: its sections are incomplete, and sonde does not
// retry over TCP, which would probe another transport than configured.
func parseAnswer(raw []byte, id uint16, t dnsTransport) (*dns.Msg, error) {
	msg := new(dns.Msg)
	err := msg.Unpack(raw)
	switch {
	case msg.Truncated && err == nil:
		return msg, taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonTruncated, taxonomy.PhaseQuery,
			"the answer is truncated (TC bit set): it did not fit in one %s message", t)
	case msg.Truncated:
		return nil, taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonTruncated, taxonomy.PhaseQuery,
			"the answer is truncated (TC bit set) and cannot be read: %v", err)
	case err != nil:
		return nil, taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseQuery, "the answer is not a DNS message: %v", err)
	case msg.Id != id:
		return nil, taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseQuery, "the answer has id %d, the query had %d", msg.Id, id)
	case !msg.Response:
		return nil, taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseQuery, "the answer is not a response (QR bit clear)")
	}
	return msg, nil
}

// messageText logs a DNS message as dig prints it. It is formatted only
// when the log line is read (debug output, /logs, a main log that shows
// probe lines): formatting every answer up front would be paid by every
// probe for text rarely read.
type messageText struct{ msg *dns.Msg }

func (m messageText) LogValue() slog.Value { return slog.StringValue(m.msg.String()) }

// recordAnswer exports what the answer holds. probe_dns_serial exists only
// for SOA queries, as in blackbox, and is 0 when the answer has no SOA.
func (p *dnsProbe) recordAnswer(resp *dns.Msg) {
	probelog.Debug(p.logger, "Got response", "rcode", rcodeName(resp.Rcode),
		"answer", len(resp.Answer), "authority", len(resp.Ns), "additional", len(resp.Extra))
	probelog.Debug(p.logger, "Response", "message", messageText{resp})
	p.metrics.answer.Set(float64(len(resp.Answer)))
	p.metrics.authority.Set(float64(len(resp.Ns)))
	p.metrics.additional.Set(float64(len(resp.Extra)))
	p.metrics.succeeded.Set(1)
	if p.prepared.qtype != dns.TypeSOA {
		return
	}
	serial := p.sink.Gauge("probe_dns_serial", "Returns the serial number of the zone")
	for _, rr := range resp.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			serial.Set(float64(soa.Serial))
		}
	}
}

// validate checks the answer against the module: the rcode, then each
// section's record rules, in blackbox's order.
func (p *dnsProbe) validate(resp *dns.Msg) error {
	if err := p.prepared.rcodesErr; err != nil {
		return err
	}
	if !slices.Contains(p.prepared.rcodes, resp.Rcode) {
		return taxonomy.Failf(taxonomy.ClassStatus, taxonomy.ReasonDNSRcode, taxonomy.PhaseValidate,
			"the answer's rcode %s is not one of valid_rcodes %v", rcodeName(resp.Rcode), p.prepared.rcodeNames)
	}
	for i := range p.prepared.sections {
		if err := p.prepared.sections[i].check(resp, p.logger); err != nil {
			return err
		}
	}
	return nil
}

func rcodeName(rcode int) string {
	if name, ok := dns.RcodeToString[rcode]; ok {
		return name
	}
	return strconv.Itoa(rcode)
}

func (p *dnsProbe) recordDurations() {
	for _, phase := range dnsPhases(p.prepared.transport) {
		p.metrics.durations.With(phase).Set(p.times[phase].Seconds())
	}
}
