// Package icmp is the icmp prober: it pings the target over a datagram or a
// raw ICMP socket; raw sockets are kept in a pool between probes and
// filtered in the kernel by a BPF program.
package icmp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// defaultICMPPayload is the echo data when payload_size is 0. It is as long
// as blackbox_exporter's, so that a probe's packets have the same size.
const defaultICMPPayload = "sonde exporter ICMP echo req"

// icmpPrepared is what an icmp module needs ready before its first probe.
// Besides the payload it holds the seams tests use to force a socket kind,
// fail the socket calls, or fix the echo identifier. Probes change only
// what they learn about the host: see datagramRefused.
type icmpPrepared struct {
	payload  []byte
	packets  int
	interval time.Duration
	kinds    []socketKind // tried in this order
	listen   listenFunc
	newEcho  func() echoStart
	// datagramRefused is when the system last refused a datagram socket
	// while a raw one opened, by family (unix nanoseconds, 0 for never):
	// running as root outside ping_group_range, every probe would
	// otherwise ask again and be refused again.
	datagramRefused [2]atomic.Int64
	pool            *socketPool // raw sockets kept between probes
}

// echoStart is where a probe's echo requests start: its identifier and
// its first sequence number.
type echoStart struct{ id, seq uint16 }

// Prepare readies an icmp module when the configuration loads.
func Prepare(m *config.Module, _ *core.Env) (core.Prober, error) {
	cfg := &m.ICMP
	p := &icmpPrepared{
		payload:  icmpPayload(cfg.PayloadSize),
		packets:  max(cfg.Packets, 1),
		interval: cfg.PacketInterval,
		kinds:    []socketKind{datagramSocket, rawSocket},
		listen:   listenICMP,
		newEcho:  randomEcho,
		pool:     &socketPool{},
	}
	if p.interval <= 0 {
		p.interval = config.DefaultICMPPacketInterval
	}
	return p, nil
}

// checkPayloadSize fails a payload_size that no echo request of the
// target's family can carry. blackbox tries to send it and fails the probe
// (or, for a negative size, its whole scrape).
func checkPayloadSize(size int, f netdial.IPFamily) error {
	limit := config.MaxICMPPayload4
	if f == netdial.IP6 {
		limit = config.MaxICMPPayload6
	}
	if size < 0 || size > limit {
		return taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup, "icmp.payload_size %d does not fit an %s echo request, which carries 0 to %d bytes", size, f, limit)
	}
	return nil
}

// icmpPayload is blackbox_exporter's payload rule: the default text, or
// payload_size bytes starting with it and padded with zeros.
func icmpPayload(size int) []byte {
	if size <= 0 {
		return []byte(defaultICMPPayload)
	}
	b := make([]byte, size)
	copy(b, defaultICMPPayload)
	return b
}

// randomEcho draws a fresh identifier per probe, so that the probes of
// several exporters, or of one exporter restarted, do not share the
// identifier a firewall or NAT keys its ICMP sessions on (blackbox_exporter
// issues #360, #591 and #705). The first sequence number is random too,
// which makes a late reply to an earlier probe with the same identifier
// unlikely to match.
func randomEcho() echoStart {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails, per crypto/rand
	return echoStart{id: binary.BigEndian.Uint16(b[:2]), seq: binary.BigEndian.Uint16(b[2:])}
}

var icmpPhases = []taxonomy.Phase{taxonomy.PhaseResolve, taxonomy.PhaseSetup, taxonomy.PhaseRTT}

// Probe sends the module's echo requests to the target's address and
// waits for the replies: one by default, as blackbox_exporter does, or
// `packets` of them `packet_interval` apart.
func (prep *icmpPrepared) Probe(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	durations := sink.GaugeVec("probe_icmp_duration_seconds", "Duration of icmp request by phase", "phase")
	for _, p := range icmpPhases {
		durations.With(string(p))
	}
	if err := CheckTarget(target); err != nil {
		return err
	}
	cfg := &m.ICMP
	ip, took, err := netdial.ResolveTarget(ctx, m.Resolver, m.Policy, target, cfg.IPProtocol, cfg.IPProtocolFallback, sink, logger)
	durations.With(string(taxonomy.PhaseResolve)).Set(took.Seconds())
	if err != nil {
		return err
	}
	if err := checkPayloadSize(cfg.PayloadSize, netdial.FamilyOf(ip)); err != nil {
		return err
	}

	start := time.Now()
	echo := prep.newEcho()
	sock, err := openICMP(prep, ip, socketOptions{source: cfg.SourceIPAddress, ttl: cfg.TTL,
		dontFragment: cfg.DontFragment, echo: echo}, logger)
	end := time.Now()
	durations.With(string(taxonomy.PhaseSetup)).Set(end.Sub(start).Seconds())
	sink.Span(taxonomy.PhaseSetup, 0, start, end)
	if err != nil {
		return err
	}
	reusable := false
	defer func() { prep.release(sock, reusable) }()

	x := newExchange(sock, ip, prep, echo, logger)
	err = x.run(ctx)
	reusable = err == nil
	// The rtt metric is the replies' mean; the span is the whole exchange,
	// from the first request sent to the last reply or the deadline.
	sink.Span(taxonomy.PhaseRTT, 0, x.start, time.Now())
	recordICMP(sink, &x.stats)
	durations.With(string(taxonomy.PhaseRTT)).Set(x.stats.meanRTT)
	if err != nil {
		return err
	}
	return icmpVerdict(&x.stats, cfg.MinSuccessRatio, ip)
}

// CheckTarget refuses a target that cannot be a host name or an IP
// address, such as one with a port or a scheme, which no resolver would
// find: the scrape is then answered with HTTP 400 and the reason.
func CheckTarget(target string) (err error) {
	defer core.HidePassword(&err, target)
	if net.ParseIP(target) == nil && (target == "" || strings.ContainsAny(target, ":/[]@ ")) {
		return taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup,
			"icmp target %q is not a host name or an IP address; write e.g. example.com or 2001:db8::1, without a port or scheme", target)
	}
	return nil
}

// echoStats is what an exchange counted: requests sent, replies received,
// the round-trip times of the replies, and the last ICMP error message
// about one of the requests.
type echoStats struct {
	sent, received int
	minRTT, maxRTT time.Duration
	meanRTT        float64 // seconds, running (Welford)
	m2             float64 // sum of squared differences from the mean
	hopLimit       int     // of the last reply; -1 when unknown
	failure        *icmpFailure
}

func (s *echoStats) addReply(rtt time.Duration, hopLimit int) {
	s.received++
	if s.received == 1 || rtt < s.minRTT {
		s.minRTT = rtt
	}
	if rtt > s.maxRTT {
		s.maxRTT = rtt
	}
	x := rtt.Seconds()
	delta := x - s.meanRTT
	s.meanRTT += delta / float64(s.received)
	s.m2 += delta * (x - s.meanRTT)
	s.hopLimit = hopLimit
}

// stddev is the population standard deviation, as ping(8) reports it.
func (s *echoStats) stddev() float64 {
	if s.received == 0 {
		return 0
	}
	return math.Sqrt(s.m2 / float64(s.received))
}

// lossRatio is the share of the sent requests left without a reply; 1
// when not even the first request could be sent.
func (s *echoStats) lossRatio() float64 {
	if s.sent == 0 {
		return 1
	}
	return float64(s.sent-s.received) / float64(s.sent)
}

// recordICMP exports what the exchange counted. The hop limit and the
// round-trip statistics exist only once a reply came back.
func recordICMP(sink *probemetrics.Sink, s *echoStats) {
	sink.Set("probe_icmp_packets_sent", "Number of ICMP echo requests sent", float64(s.sent))
	sink.Set("probe_icmp_packets_received", "Number of ICMP echo replies received", float64(s.received))
	sink.Set("probe_icmp_packet_loss_ratio", "Share of the echo requests sent that got no reply, from 0 to 1", s.lossRatio())
	if s.received == 0 {
		return
	}
	rtt := sink.GaugeVec("probe_icmp_rtt_seconds", "Round-trip time of the echo replies", "stat")
	rtt.With("min").Set(s.minRTT.Seconds())
	rtt.With("max").Set(s.maxRTT.Seconds())
	rtt.With("mean").Set(s.meanRTT)
	rtt.With("stddev").Set(s.stddev())
	if s.hopLimit >= 0 {
		sink.Set("probe_icmp_reply_hop_limit", "Replied packet hop limit (TTL for ipv4)", float64(s.hopLimit))
	}
}

// icmpVerdict decides a finished exchange. With no reply at all the target
// is unreachable (when an ICMP error said so) or silent (the deadline);
// with some replies, min_success_ratio decides: 0 takes any reply.
func icmpVerdict(s *echoStats, minRatio float64, target net.IP) error {
	if s.received == 0 {
		if s.failure != nil {
			return s.failure.classify()
		}
		return taxonomy.Failf(taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseRTT, "no echo reply from %s before the deadline (%d echo request(s) sent)", target, s.sent)
	}
	if enoughReplies(s.sent, s.received, minRatio) {
		return nil
	}
	return taxonomy.Failf(taxonomy.ClassAssertion, taxonomy.ReasonPacketLoss, taxonomy.PhaseRTT, "%d of %d echo requests to %s were answered (%.3g%%); min_success_ratio asks for %.3g%%",
		s.received, s.sent, target, 100*float64(s.received)/float64(s.sent), 100*minRatio)
}

// enoughReplies reports whether received of sent meets min_success_ratio.
// The tolerance keeps e.g. 7 of 10 from failing a ratio of 0.7 for the
// last bit of a float.
func enoughReplies(sent, received int, minRatio float64) bool {
	if received == 0 || sent == 0 {
		return false
	}
	return float64(received) >= minRatio*float64(sent)-1e-9
}
