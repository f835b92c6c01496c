package icmp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/probelog"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// exchange sends a probe's echo requests on schedule and reads the
// answers, in the probe's own goroutine: each read waits until the next
// request is due or the deadline, whichever comes first, so nothing polls.
type exchange struct {
	sock     *icmpSocket
	target   net.IP
	payload  []byte
	planned  int // echo requests to send; fewer when the deadline is near
	interval time.Duration
	firstSeq uint16
	logger   *slog.Logger

	start    time.Time
	sentAt   []time.Time // by request index (sequence - firstSeq)
	answered []bool      // a reply or an ICMP error came for the request
	pending  int         // requests sent and not answered
	stats    echoStats
	buf      []byte
}

func newExchange(sock *icmpSocket, target net.IP, prep *icmpPrepared, echo echoStart, logger *slog.Logger) *exchange {
	return &exchange{
		sock: sock, target: target, payload: prep.payload, planned: prep.packets, interval: prep.interval,
		firstSeq: echo.seq, logger: logger,
		sentAt:   make([]time.Time, 0, prep.packets),
		answered: make([]bool, prep.packets),
		stats:    echoStats{hopLimit: -1},
		// Room for the reply, or for an ICMP error quoting a request with
		// IP options; the kernel quotes at most 576 bytes of IPv4.
		buf: make([]byte, max(len(prep.payload)+8, 1280)+64),
	}
}

// run exchanges until every planned request is answered, or the deadline
// passes. It returns an error only when the probe cannot go on (a request
// cannot be sent, the scrape was abandoned); counting the replies is the
// verdict's job.
func (x *exchange) run(ctx context.Context) error {
	// Abandoning the scrape wakes a read blocked until the deadline.
	stop := context.AfterFunc(ctx, func() { x.sock.setReadDeadline(time.Now()) })
	defer stop()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(24 * time.Hour)
	}
	x.start = time.Now()
	probelog.Debug(x.logger, "Sending echo requests", "packets", x.planned, "interval", x.interval, "id", x.sock.id, "kind", x.sock.kind.String())
	for {
		if err := x.sendDue(ctx, deadline); err != nil {
			return err
		}
		if len(x.sentAt) == x.planned && x.pending == 0 {
			return nil
		}
		wake := x.wakeAt(deadline)
		if err := x.sock.setReadDeadline(wake); err != nil {
			return taxonomy.Fail(taxonomy.ClassProber, taxonomy.ReasonInternal, taxonomy.PhaseRTT, fmt.Errorf("setting the read deadline: %w", err))
		}
		if ctx.Err() != nil { // checked after the deadline is set, so a cancellation is not overwritten
			return x.ended(ctx)
		}
		err := x.receive(ctx)
		if taxonomy.IsTimeout(err) {
			if ctx.Err() != nil || !time.Now().Before(deadline) {
				return x.ended(ctx)
			}
			continue // woken early to send
		}
		if err != nil {
			return err
		}
	}
}

// ended is the exchange stopped by the probe's context: the deadline is
// the normal end of a probe waiting for lost replies, a cancellation is
// not.
func (x *exchange) ended(ctx context.Context) error {
	probelog.Debug(x.logger, "Stopped waiting for echo replies", "sent", len(x.sentAt), "received", x.stats.received)
	if errors.Is(ctx.Err(), context.Canceled) {
		return taxonomy.Classify(ctx, ctx.Err(), taxonomy.PhaseRTT)
	}
	return nil
}

// dueAt is when request i is to be sent: on a fixed schedule from the
// first one, so that slow reads do not stretch it.
func (x *exchange) dueAt(i int) time.Time { return x.start.Add(time.Duration(i) * x.interval) }

// wakeAt is when the next read must give up: when the next request is
// due, or at the deadline.
func (x *exchange) wakeAt(deadline time.Time) time.Time {
	if n := len(x.sentAt); n < x.planned && x.dueAt(n).Before(deadline) {
		return x.dueAt(n)
	}
	return deadline
}

// sendDue sends the request that is due, if any. A request is sent only
// while a packet_interval is left before the deadline for its reply, the
// time every earlier request had; the first request is always sent. The
// requests that do not fit are not sent and not counted.
func (x *exchange) sendDue(ctx context.Context, deadline time.Time) error {
	i := len(x.sentAt)
	if i == x.planned || time.Now().Before(x.dueAt(i)) {
		return nil
	}
	if i > 0 && time.Now().Add(x.interval).After(deadline) {
		probelog.Debug(x.logger, "Not sending the remaining echo requests: the deadline leaves no packet_interval for their replies",
			"sent", i, "planned", x.planned)
		x.planned = i
		return nil
	}
	seq := x.firstSeq + uint16(i)
	msg, err := x.request(seq)
	if err != nil {
		return taxonomy.Fail(taxonomy.ClassProber, taxonomy.ReasonInternal, taxonomy.PhaseRTT, fmt.Errorf("building echo request %d: %w", seq, err))
	}
	probelog.Debug(x.logger, "Sending echo request", "seq", seq, "size", len(msg))
	now := time.Now()
	if err := x.transmit(msg); err != nil {
		return x.sendError(ctx, seq, len(msg), err)
	}
	x.sentAt = append(x.sentAt, now)
	x.pending++
	x.stats.sent++
	return nil
}

// transmit sends one request. An ICMP error still pending on a datagram
// socket fails its next send: the error queue then says what happened to
// the earlier request, and the send is tried again.
func (x *exchange) transmit(msg []byte) error {
	err := x.sock.write(msg, x.target)
	if err != nil && x.sock.errQueue && x.drainErrors() {
		err = x.sock.write(msg, x.target)
	}
	return err
}

// request builds the echo request with sequence number seq. A datagram
// socket replaces the identifier and checksum itself; for a raw IPv6
// socket the kernel computes the checksum.
func (x *exchange) request(seq uint16) ([]byte, error) {
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if x.sock.family == netdial.IP6 {
		typ = ipv6.ICMPTypeEchoRequest
	}
	m := icmp.Message{Type: typ, Body: &icmp.Echo{ID: int(x.sock.id), Seq: int(seq), Data: x.payload}}
	return m.Marshal(nil)
}

// sendError classifies a request the system would not send, e.g. for
// want of a route. It ends the probe: the later requests would fail too.
func (x *exchange) sendError(ctx context.Context, seq uint16, size int, err error) error {
	if errors.Is(err, syscall.EMSGSIZE) {
		return taxonomy.Failf(taxonomy.ClassConnect, taxonomy.ReasonHostUnreachable, taxonomy.PhaseRTT,
			"the echo request (%d bytes of ICMP) does not fit the path MTU to %s and dont_fragment forbids fragmenting it: %v", size, x.target, err)
	}
	return taxonomy.Classify(ctx, fmt.Errorf("sending echo request %d to %s: %w", seq, x.target, err), taxonomy.PhaseRTT)
}

// receive reads one message and records it if it answers one of our
// requests. A timeout is for run to interpret.
func (x *exchange) receive(ctx context.Context) error {
	n, hopLimit, from, err := x.sock.read(x.buf)
	now := time.Now()
	if err != nil {
		if taxonomy.IsTimeout(err) {
			return err
		}
		if x.sock.errQueue && x.drainErrors() {
			return nil
		}
		return taxonomy.Classify(ctx, fmt.Errorf("reading echo replies: %w", err), taxonomy.PhaseRTT)
	}
	msg := x.buf[:n]
	if reply, ok := parseEchoReply(x.sock.family, msg); ok {
		x.reply(reply, from, hopLimit, now)
		return nil
	}
	if f, ok := parseICMPError(x.sock.family, msg); ok && f.quotedDst.Equal(x.target) && f.id == x.sock.id {
		f.from = from
		x.failed(f)
	}
	return nil
}

// reply records an echo reply that matches a request of ours by source,
// identifier, sequence number and payload; anything else is some other
// prober's or a late reply to an earlier probe, and ignored.
func (x *exchange) reply(r echoMessage, from net.IP, hopLimit int, now time.Time) {
	i, ok := x.index(r.seq)
	if !ok || r.id != x.sock.id || !from.Equal(x.target) || !bytes.Equal(r.data, x.payload) {
		return
	}
	rtt := now.Sub(x.sentAt[i])
	x.answered[i] = true
	x.pending--
	x.stats.addReply(rtt, hopLimit)
	probelog.Debug(x.logger, "Echo reply", "seq", r.seq, "rtt", rtt, "hop_limit", hopLimit)
}

// failed records an ICMP error about one of our requests.
func (x *exchange) failed(f *icmpFailure) {
	i, ok := x.index(f.seq)
	if !ok {
		return
	}
	x.answered[i] = true
	x.pending--
	x.stats.failure = f
	probelog.Debug(x.logger, "ICMP error for echo request", "seq", f.seq, "err", f.describe())
}

// index maps a sequence number to a request sent and not yet answered.
func (x *exchange) index(seq uint16) (int, bool) {
	i := int(seq - x.firstSeq)
	if i >= len(x.sentAt) || x.answered[i] {
		return 0, false
	}
	return i, true
}

// drainErrors reads the errors queued on a datagram socket, recording
// those about our requests. It reports whether there was any.
func (x *exchange) drainErrors() bool {
	failures, err := x.sock.readErrors()
	if err != nil {
		probelog.Debug(x.logger, "Reading the socket's error queue failed", "err", err)
	}
	for _, f := range failures {
		if f.quotedDst == nil { // the kernel matched it to this socket, which sends only to the target
			f.quotedDst = x.target
		}
		x.failed(f)
	}
	return len(failures) > 0
}

// echoMessage is the part of an echo request or reply sonde checks.
type echoMessage struct {
	id, seq uint16
	data    []byte
}

// parseEchoReply reads an echo reply: type, code 0, identifier, sequence.
func parseEchoReply(family netdial.IPFamily, b []byte) (echoMessage, bool) {
	want := byte(ipv4.ICMPTypeEchoReply)
	if family == netdial.IP6 {
		want = byte(ipv6.ICMPTypeEchoReply)
	}
	if len(b) < 8 || b[0] != want || b[1] != 0 {
		return echoMessage{}, false
	}
	return parseEcho(b), true
}

func parseEcho(b []byte) echoMessage {
	return echoMessage{id: binary.BigEndian.Uint16(b[4:6]), seq: binary.BigEndian.Uint16(b[6:8]), data: b[8:]}
}

// icmpFailure is an ICMP error message about one of our echo requests:
// destination unreachable, time exceeded, or packet too big.
type icmpFailure struct {
	family    netdial.IPFamily
	typ, code int
	mtu       int    // next-hop MTU of "fragmentation needed" and "packet too big"
	from      net.IP // who sent the error, when known
	quotedDst net.IP // the destination of the quoted request
	id, seq   uint16 // of the quoted request
}

// parseICMPError reads an ICMP error quoting one of our echo requests, as a
// raw socket receives it: the error's header, the quoted IP header, and the
// first 8 bytes of the quoted echo request.
func parseICMPError(family netdial.IPFamily, b []byte) (*icmpFailure, bool) {
	if len(b) < 8 {
		return nil, false
	}
	f := &icmpFailure{family: family, typ: int(b[0]), code: int(b[1])}
	if !f.isError() {
		return nil, false
	}
	quoted := b[8:]
	var echo []byte
	if family == netdial.IP4 {
		if len(quoted) < ipv4.HeaderLen || quoted[0]>>4 != 4 || quoted[9] != 1 {
			return nil, false
		}
		f.quotedDst = net.IP(quoted[16:20])
		echo = quoted[int(quoted[0]&0x0f)*4:]
		f.mtu = int(binary.BigEndian.Uint16(b[6:8]))
	} else {
		if len(quoted) < ipv6.HeaderLen || quoted[0]>>4 != 6 || quoted[6] != 58 {
			return nil, false
		}
		f.quotedDst = net.IP(quoted[24:40])
		echo = quoted[ipv6.HeaderLen:]
		f.mtu = int(binary.BigEndian.Uint32(b[4:8]))
	}
	if len(echo) < 8 || echo[0] != f.requestType() {
		return nil, false
	}
	e := parseEcho(echo)
	f.id, f.seq = e.id, e.seq
	f.quotedDst = append(net.IP(nil), f.quotedDst...) // b is the read buffer, reused
	return f, true
}

// The ICMP error types that can quote an echo request.
const (
	icmp4DestUnreach  = 3
	icmp4TimeExceeded = 11
	icmp6DestUnreach  = 1
	icmp6PacketTooBig = 2
	icmp6TimeExceeded = 3
)

func (f *icmpFailure) isError() bool {
	if f.family == netdial.IP4 {
		return f.typ == icmp4DestUnreach || f.typ == icmp4TimeExceeded
	}
	return f.typ == icmp6DestUnreach || f.typ == icmp6PacketTooBig || f.typ == icmp6TimeExceeded
}

func (f *icmpFailure) requestType() byte {
	if f.family == netdial.IP4 {
		return byte(ipv4.ICMPTypeEcho)
	}
	return byte(ipv6.ICMPTypeEchoRequest)
}

// reason maps the error to network_unreachable when it says no route
// leads to the destination's network, and to host_unreachable otherwise:
// the network is reached but not the host, a filter rejects the packet,
// it is too big for the path, or its TTL ran out on the way.
func (f *icmpFailure) reason() taxonomy.Reason {
	if f.family == netdial.IP4 && f.typ == icmp4DestUnreach {
		switch f.code {
		case 0, 6, 9, 11: // net unreachable, unknown, prohibited, unreachable for TOS
			return taxonomy.ReasonNetworkUnreachable
		}
	}
	if f.family == netdial.IP6 && f.typ == icmp6DestUnreach {
		switch f.code {
		case 0, 2, 5, 6: // no route, beyond scope, source address policy, reject route
			return taxonomy.ReasonNetworkUnreachable
		}
	}
	return taxonomy.ReasonHostUnreachable
}

func (f *icmpFailure) classify() *taxonomy.Error {
	return taxonomy.Failf(taxonomy.ClassConnect, f.reason(), taxonomy.PhaseRTT, "%s", f.describe())
}

// describe says what the error means, in the words of RFC 792 and 4443.
func (f *icmpFailure) describe() string {
	what := f.name()
	if f.mtu > 0 && f.isTooBig() {
		what += fmt.Sprintf(" (path MTU %d)", f.mtu)
	}
	if f.from != nil {
		what += fmt.Sprintf(", reported by %s", f.from)
	}
	return fmt.Sprintf("%s for echo request %d to %s", what, f.seq, f.quotedDst)
}

func (f *icmpFailure) isTooBig() bool {
	return (f.family == netdial.IP4 && f.typ == icmp4DestUnreach && f.code == 4) || (f.family == netdial.IP6 && f.typ == icmp6PacketTooBig)
}

func (f *icmpFailure) name() string {
	var names []string
	switch {
	case f.family == netdial.IP4 && f.typ == icmp4DestUnreach:
		names = []string{"network unreachable", "host unreachable", "protocol unreachable", "port unreachable",
			"fragmentation needed and dont_fragment set", "source route failed", "destination network unknown",
			"destination host unknown", "source host isolated", "network administratively prohibited",
			"host administratively prohibited", "network unreachable for TOS", "host unreachable for TOS",
			"communication administratively prohibited", "host precedence violation", "precedence cutoff in effect"}
	case f.family == netdial.IP6 && f.typ == icmp6DestUnreach:
		names = []string{"no route to destination", "communication administratively prohibited",
			"beyond scope of source address", "address unreachable", "port unreachable",
			"source address failed ingress/egress policy", "reject route to destination"}
	case f.typ == icmp4TimeExceeded && f.family == netdial.IP4, f.typ == icmp6TimeExceeded && f.family == netdial.IP6:
		return fmt.Sprintf("time exceeded in transit (code %d): the ttl is too small for the path, or it loops", f.code)
	case f.isTooBig():
		return "packet too big"
	}
	if f.code < len(names) {
		return "destination unreachable: " + names[f.code]
	}
	return fmt.Sprintf("destination unreachable (code %d)", f.code)
}
