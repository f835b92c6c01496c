package icmp

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// loopbackTargets are 127.0.0.1 and, when the host has it, ::1.
func loopbackTargets(t *testing.T) []icmpTarget {
	t.Helper()
	targets := []icmpTarget{{netdial.IP4, "127.0.0.1"}}
	if hasLoopback6() {
		targets = append(targets, icmpTarget{netdial.IP6, "::1"})
	} else {
		t.Log("no ::1 on this host: the IPv6 cases are skipped")
	}
	return targets
}

func hasLoopback6() bool {
	c, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// requireKind skips the test when the process may not open the socket
// kind, saying which privilege it lacks.
func requireKind(t *testing.T, kind socketKind, family netdial.IPFamily) {
	t.Helper()
	s, err := listenICMP(kind, family, nil, 0)
	if err == nil {
		s.Close()
		return
	}
	if !isPermissionError(err) {
		t.Skipf("cannot open a %s %s ICMP socket: %v", family, kind, err)
	}
	if kind == datagramSocket {
		groups, _ := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
		t.Skipf("datagram ICMP sockets are not allowed to this process (gid %d; net.ipv4.ping_group_range is %q): %v",
			os.Getgid(), strings.Join(strings.Fields(string(groups)), " "), err)
	}
	t.Skipf("raw ICMP sockets need CAP_NET_RAW, which this process lacks: %v", err)
}

// socketKinds runs f for each socket kind and loopback family the process
// can use, as subtests named e.g. "datagram/ip4". Each kind is forced, so
// that both code paths are tested wherever the privileges allow.
func socketKinds(t *testing.T, f func(t *testing.T, kind socketKind, target icmpTarget)) {
	t.Helper()
	usable := 0
	for _, kind := range []socketKind{datagramSocket, rawSocket} {
		for _, target := range loopbackTargets(t) {
			t.Run(kind.String()+"/"+string(target.family), func(t *testing.T) {
				requireKind(t, kind, target.family)
				usable++
				f(t, kind, target)
			})
		}
	}
	if usable == 0 {
		t.Skip("this process may open neither datagram nor raw ICMP sockets")
	}
}

func TestICMPOnePacket(t *testing.T) {
	socketKinds(t, func(t *testing.T, kind socketKind, target icmpTarget) {
		m, _ := icmpModule(t, kind, forFamily(target))
		sink, err := probertest.Run(t, m, target.addr)
		checkOutcome(t, err, failure{})
		probertest.Metric(t, sink, target.family.Number(), "probe_ip_protocol")
		probertest.Metric(t, sink, netdial.IPHash(net.ParseIP(target.addr)), "probe_ip_addr_hash")
		probertest.Value(t, sink, "probe_dns_lookup_time_seconds")
		for _, p := range icmpPhases {
			probertest.Value(t, sink, "probe_icmp_duration_seconds", string(p))
		}
		rtt := probertest.Value(t, sink, "probe_icmp_duration_seconds", string(taxonomy.PhaseRTT))
		if rtt <= 0 || rtt > 1 {
			t.Errorf("rtt phase %v, want a loopback round trip", rtt)
		}
		// Linux answers with its default TTL or hop limit, 64.
		probertest.Metric(t, sink, 64, "probe_icmp_reply_hop_limit")
		probertest.Metric(t, sink, 1, "probe_icmp_packets_sent")
		probertest.Metric(t, sink, 1, "probe_icmp_packets_received")
		probertest.Metric(t, sink, 0, "probe_icmp_packet_loss_ratio")
		for _, stat := range []string{"min", "max", "mean"} {
			probertest.Metric(t, sink, rtt, "probe_icmp_rtt_seconds", stat)
		}
		probertest.Metric(t, sink, 0, "probe_icmp_rtt_seconds", "stddev")
	})
}

func TestICMPFivePackets(t *testing.T) {
	socketKinds(t, func(t *testing.T, kind socketKind, target icmpTarget) {
		m, _ := icmpModule(t, kind, func(c *config.ICMPProbe) {
			forFamily(target)(c)
			c.Packets = 5
			c.PacketInterval = 10 * time.Millisecond
		})
		sink, took, err := probertest.Probe(t, m, target.addr, 5*time.Second)
		checkOutcome(t, err, failure{})
		if took < 40*time.Millisecond {
			t.Errorf("5 packets 10ms apart took %v", took)
		}
		probertest.Metric(t, sink, 5, "probe_icmp_packets_sent")
		probertest.Metric(t, sink, 5, "probe_icmp_packets_received")
		probertest.Metric(t, sink, 0, "probe_icmp_packet_loss_ratio")
		lo := probertest.Value(t, sink, "probe_icmp_rtt_seconds", "min")
		mean := probertest.Value(t, sink, "probe_icmp_rtt_seconds", "mean")
		hi := probertest.Value(t, sink, "probe_icmp_rtt_seconds", "max")
		if !(0 < lo && lo <= mean && mean <= hi) {
			t.Errorf("rtt min %v, mean %v, max %v", lo, mean, hi)
		}
		if sd := probertest.Value(t, sink, "probe_icmp_rtt_seconds", "stddev"); sd < 0 || sd > hi-lo {
			t.Errorf("rtt stddev %v with min %v and max %v", sd, lo, hi)
		}
		if rtt := probertest.Value(t, sink, "probe_icmp_duration_seconds", string(taxonomy.PhaseRTT)); rtt < mean*0.999 || rtt > mean*1.001 {
			t.Errorf("rtt phase %v, want the mean rtt %v", rtt, mean)
		}
	})
}

// seenRequest is an echo request as a raw listener saw it arrive.
type seenRequest struct {
	ttl      int
	df       bool
	src      net.IP
	dataSize int
}

// wireListener records the echo requests with identifier id that arrive
// on loopback. It needs a raw socket, and skips the test without one.
type wireListener struct {
	v4 *ipv4.RawConn
	v6 *ipv6.PacketConn
	id uint16
}

func listenWire(t *testing.T, family netdial.IPFamily, id uint16) *wireListener {
	t.Helper()
	requireKind(t, rawSocket, family)
	w := &wireListener{id: id}
	if family == netdial.IP4 {
		c, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if w.v4, err = ipv4.NewRawConn(c); err != nil {
			t.Fatal(err)
		}
		return w
	}
	c, err := net.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w.v6 = ipv6.NewPacketConn(c)
	if err := w.v6.SetControlMessage(ipv6.FlagHopLimit, true); err != nil {
		t.Fatal(err)
	}
	return w
}

// request returns the first echo request with the listener's identifier
// among the packets that arrived so far.
func (w *wireListener) request(t *testing.T) seenRequest {
	t.Helper()
	buf := make([]byte, 70000)
	deadline := time.Now().Add(time.Second)
	for {
		var seen seenRequest
		var msg []byte
		var err error
		if w.v4 != nil {
			w.v4.SetReadDeadline(deadline)
			var h *ipv4.Header
			h, msg, _, err = w.v4.ReadFrom(buf)
			if err == nil {
				seen = seenRequest{ttl: h.TTL, df: h.Flags&ipv4.DontFragment != 0, src: h.Src}
			}
		} else {
			w.v6.SetReadDeadline(deadline)
			var n int
			var cm *ipv6.ControlMessage
			var peer net.Addr
			n, cm, peer, err = w.v6.ReadFrom(buf)
			msg = buf[:n]
			if err == nil && cm != nil {
				seen = seenRequest{ttl: cm.HopLimit, src: addrIP(peer)}
			}
		}
		if err != nil {
			t.Fatalf("no echo request with identifier %d reached the wire: %v", w.id, err)
		}
		request := byte(ipv4.ICMPTypeEcho)
		if w.v6 != nil {
			request = byte(ipv6.ICMPTypeEchoRequest)
		}
		if len(msg) >= 8 && msg[0] == request && binary.BigEndian.Uint16(msg[4:6]) == w.id {
			seen.dataSize = len(msg) - 8
			return seen
		}
	}
}

func TestICMPWire(t *testing.T) {
	socketKinds(t, func(t *testing.T, kind socketKind, target icmpTarget) {
		const id = 0x50de
		wire := listenWire(t, target.family, id)
		m, prep := icmpModule(t, kind, func(c *config.ICMPProbe) {
			forFamily(target)(c)
			c.TTL = 33
			c.PayloadSize = 1200
		})
		fixedEcho(prep, id, 7)
		_, err := probertest.Run(t, m, target.addr)
		checkOutcome(t, err, failure{})
		seen := wire.request(t)
		if seen.ttl != 33 {
			t.Errorf("the request left with ttl %d, want 33", seen.ttl)
		}
		if seen.dataSize != 1200 {
			t.Errorf("the request carried %d bytes of data, want payload_size 1200", seen.dataSize)
		}
	})
}

func TestICMPDontFragment(t *testing.T) {
	for _, kind := range []socketKind{datagramSocket, rawSocket} {
		t.Run(kind.String(), func(t *testing.T) {
			requireKind(t, kind, netdial.IP4)
			const id = 0xdf01
			wire := listenWire(t, netdial.IP4, id)
			m, prep := icmpModule(t, kind, func(c *config.ICMPProbe) {
				forFamily(icmpTarget{family: netdial.IP4})(c)
				c.DontFragment = true
			})
			fixedEcho(prep, id, 1)
			_, err := probertest.Run(t, m, "127.0.0.1")
			checkOutcome(t, err, failure{})
			if !wire.request(t).df {
				t.Error("the request left without the DF bit")
			}
			// Linux sets DF on small packets anyway; what dont_fragment
			// changes is that the kernel may never fragment a request.
			s, err := openICMP(prep, net.ParseIP("127.0.0.1"), socketOptions{dontFragment: true, echo: echoStart{id: id + 1}}, probertest.DiscardLogger)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var mode int
			err = control(s, func(fd int) (err error) {
				mode, err = syscall.GetsockoptInt(fd, syscall.IPPROTO_IP, syscall.IP_MTU_DISCOVER)
				return err
			})
			if err != nil || mode != syscall.IP_PMTUDISC_DO {
				t.Errorf("IP_MTU_DISCOVER = %d (%v), want IP_PMTUDISC_DO", mode, err)
			}
		})
	}
	t.Run("ignored for ip6", func(t *testing.T) {
		if !hasLoopback6() {
			t.Skip("no ::1")
		}
		m := defaultModule(t, "icmp", func(cm *config.Module) { cm.ICMP.DontFragment = true })
		if _, err := probertest.Run(t, m, "::1"); err != nil {
			var perr *taxonomy.Error
			if errors.As(err, &perr) && perr.Reason == taxonomy.ReasonPermissionDenied {
				t.Skip(err)
			}
			t.Fatal(err)
		}
	})
}

func TestICMPIPProtocol(t *testing.T) {
	kind := usableKind(t, netdial.IP4)
	cases := []struct {
		name      string
		target    string
		preferred string
		fallback  bool
		want      failure
		protocol  float64
		needs6    bool
	}{
		{name: "ip6 preferred", target: "both.test", preferred: "ip6", fallback: true, protocol: 6, needs6: true},
		{name: "ip4 preferred", target: "both.test", preferred: "ip4", fallback: true, protocol: 4},
		{name: "ip6 preferred, falls back to ip4", target: "v4only.test", preferred: "ip6", fallback: true, protocol: 4},
		{name: "ip4 preferred, falls back to ip6", target: "v6only.test", preferred: "ip4", fallback: true, protocol: 6, needs6: true},
		{name: "ip6 without fallback", target: "v4only.test", preferred: "ip6",
			want: failure{taxonomy.ClassDNS, taxonomy.ReasonNoAddress, taxonomy.PhaseResolve}},
		{name: "unknown name", target: "nosuch.test", preferred: "ip4", fallback: true,
			want: failure{taxonomy.ClassDNS, taxonomy.ReasonNXDomain, taxonomy.PhaseResolve}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needs6 && !hasLoopback6() {
				t.Skip("no ::1")
			}
			m, _ := icmpModule(t, kind, func(c *config.ICMPProbe) {
				c.IPProtocol, c.IPProtocolFallback = tc.preferred, tc.fallback
			})
			sink, err := probertest.Run(t, m, tc.target)
			checkOutcome(t, err, tc.want)
			probertest.Metric(t, sink, tc.protocol, "probe_ip_protocol")
			for _, p := range icmpPhases {
				probertest.Value(t, sink, "probe_icmp_duration_seconds", string(p))
			}
			if tc.want != (failure{}) {
				// Like blackbox_exporter: a failed resolution leaves the
				// icmp durations at 0 and exports no packet counts.
				probertest.Absent(t, sink, "probe_icmp_packets_sent", "probe_icmp_reply_hop_limit", "probe_icmp_rtt_seconds")
			}
		})
	}
}

// usableKind returns a socket kind the process may open, skipping the test
// when there is none.
func usableKind(t *testing.T, family netdial.IPFamily) socketKind {
	t.Helper()
	for _, kind := range []socketKind{datagramSocket, rawSocket} {
		if s, err := listenICMP(kind, family, nil, 0); err == nil {
			s.Close()
			return kind
		}
	}
	t.Skip("this process may open neither datagram nor raw ICMP sockets")
	return 0
}

func TestICMPSourceAddress(t *testing.T) {
	t.Run("127.0.0.2", func(t *testing.T) {
		socketKinds(t, func(t *testing.T, kind socketKind, target icmpTarget) {
			if target.family != netdial.IP4 {
				t.Skip("127.0.0.2 is an IPv4 address")
			}
			const id = 0x5a02
			wire := listenWire(t, netdial.IP4, id)
			m, prep := icmpModule(t, kind, func(c *config.ICMPProbe) { c.SourceIPAddress = "127.0.0.2" })
			fixedEcho(prep, id, 1)
			_, err := probertest.Run(t, m, "127.0.0.1")
			checkOutcome(t, err, failure{})
			if src := wire.request(t).src; !src.Equal(net.ParseIP("127.0.0.2")) {
				t.Errorf("the request came from %s, want 127.0.0.2", src)
			}
		})
	})
	kind := usableKind(t, netdial.IP4)
	for _, tc := range []struct{ name, source, target, message string }{
		{"an address this host lacks", "203.0.113.7", "127.0.0.1", "not an address of this host"},
		{"another family", "::1", "127.0.0.1", "set preferred_ip_protocol to ip6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := icmpModule(t, kind, func(c *config.ICMPProbe) { c.SourceIPAddress = tc.source })
			sink, err := probertest.Run(t, m, tc.target)
			perr := checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonSourceAddress, taxonomy.PhaseSetup})
			if !strings.Contains(perr.Error(), tc.message) {
				t.Errorf("error %v does not say %q", perr, tc.message)
			}
			probertest.Absent(t, sink, "probe_icmp_packets_sent")
		})
	}
}

// blackHole is a socket whose requests are sent, as far as the prober can
// tell, but never leave the host, unless pass lets one through; onDrop
// sees each one held back. It stands for a lossy or silent network
// without touching the host's network configuration.
type blackHole struct {
	net.PacketConn
	pass   func(seq int) bool
	onDrop func(req []byte)
}

func (c *blackHole) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.pass != nil && c.pass(int(binary.BigEndian.Uint16(b[6:8]))) {
		return c.PacketConn.WriteTo(b, addr)
	}
	if c.onDrop != nil {
		c.onDrop(b)
	}
	return len(b), nil
}

// SyscallConn keeps the socket options and the error queue reachable.
func (c *blackHole) SyscallConn() (syscall.RawConn, error) {
	return c.PacketConn.(syscall.Conn).SyscallConn()
}

// throughBlackHole makes a module's sockets black holes.
func throughBlackHole(prep *icmpPrepared, hole blackHole) {
	closeIdle(prep)
	listen := prep.listen
	prep.listen = func(kind socketKind, family netdial.IPFamily, src net.IP, id uint16) (*icmpSocket, error) {
		s, err := listen(kind, family, src, id)
		if err == nil {
			h := hole
			h.PacketConn = s.conn
			s.conn = &h
		}
		return s, err
	}
}

// overrunMargin is how far past its deadline a probe may end in these
// tests: a loaded CI machine cannot break it, a probe ignoring its
// deadline (a second or more late) still does. The load harness measures
// the tight figure.
const overrunMargin = 2 * time.Second

func TestICMPNoReply(t *testing.T) {
	socketKinds(t, func(t *testing.T, kind socketKind, target icmpTarget) {
		m, prep := icmpModule(t, kind, forFamily(target))
		throughBlackHole(prep, blackHole{})
		sink, took, err := probertest.Probe(t, m, target.addr, 300*time.Millisecond)
		perr := checkOutcome(t, err, failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseRTT})
		if !strings.Contains(perr.Error(), "no echo reply") {
			t.Errorf("error %v", perr)
		}
		if took < 250*time.Millisecond || took > 300*time.Millisecond+overrunMargin {
			t.Errorf("the probe took %v with a 300ms deadline", took)
		}
		probertest.Metric(t, sink, 1, "probe_icmp_packets_sent")
		probertest.Metric(t, sink, 0, "probe_icmp_packets_received")
		probertest.Metric(t, sink, 1, "probe_icmp_packet_loss_ratio")
		probertest.Metric(t, sink, 0, "probe_icmp_duration_seconds", string(taxonomy.PhaseRTT))
		probertest.Absent(t, sink, "probe_icmp_rtt_seconds", "probe_icmp_reply_hop_limit")
	})
}

func TestICMPPartialLoss(t *testing.T) {
	kind := usableKind(t, netdial.IP4)
	even := func(seq int) bool { return seq%2 == 0 } // from sequence 0 on, every other request is lost
	for _, tc := range []struct {
		name  string
		ratio float64
		want  failure
	}{
		{"any reply will do", 0, failure{}},
		{"half is enough", 0.5, failure{}},
		{"three quarters are not there", 0.75, failure{taxonomy.ClassAssertion, taxonomy.ReasonPacketLoss, taxonomy.PhaseRTT}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, prep := icmpModule(t, kind, func(c *config.ICMPProbe) {
				forFamily(icmpTarget{family: netdial.IP4})(c)
				c.Packets, c.PacketInterval, c.MinSuccessRatio = 4, 5*time.Millisecond, tc.ratio
			})
			fixedEcho(prep, 0x1055, 0)
			throughBlackHole(prep, blackHole{pass: even})
			sink, _, err := probertest.Probe(t, m, "127.0.0.1", 150*time.Millisecond)
			checkOutcome(t, err, tc.want)
			probertest.Metric(t, sink, 4, "probe_icmp_packets_sent")
			probertest.Metric(t, sink, 2, "probe_icmp_packets_received")
			probertest.Metric(t, sink, 0.5, "probe_icmp_packet_loss_ratio")
			probertest.Value(t, sink, "probe_icmp_rtt_seconds", "mean")
		})
	}
}

func TestICMPPacketsWithinDeadline(t *testing.T) {
	socketKinds(t, func(t *testing.T, kind socketKind, target icmpTarget) {
		m, prep := icmpModule(t, kind, func(c *config.ICMPProbe) {
			forFamily(target)(c)
			c.Packets, c.PacketInterval = 5, 100*time.Millisecond
		})
		// Requests at 0, 100 and 200ms leave each a packet_interval before
		// the 350ms deadline; the fourth, at 300ms, would not.
		sink, took, err := probertest.Probe(t, m, target.addr, 350*time.Millisecond)
		checkOutcome(t, err, failure{})
		if took > 350*time.Millisecond+overrunMargin {
			t.Errorf("the probe took %v with a 350ms deadline", took)
		}
		probertest.Metric(t, sink, 3, "probe_icmp_packets_sent")
		probertest.Metric(t, sink, 3, "probe_icmp_packets_received")
		probertest.Metric(t, sink, 0, "probe_icmp_packet_loss_ratio")

		throughBlackHole(prep, blackHole{})
		_, took, err = probertest.Probe(t, m, target.addr, 300*time.Millisecond)
		checkOutcome(t, err, failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseRTT})
		if took > 300*time.Millisecond+overrunMargin {
			t.Errorf("a silent target held the probe %v with a 300ms deadline", took)
		}
	})
}

func TestICMPCanceled(t *testing.T) {
	kind := usableKind(t, netdial.IP4)
	m, prep := icmpModule(t, kind, forFamily(icmpTarget{family: netdial.IP4}))
	throughBlackHole(prep, blackHole{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err := probeICMP(ctx, "127.0.0.1", m, probemetrics.NewSink(), probertest.DiscardLogger)
	checkOutcome(t, err, failure{taxonomy.ClassTimeout, taxonomy.ReasonCanceled, taxonomy.PhaseRTT})
	if took := time.Since(start); took > 100*time.Millisecond+overrunMargin {
		t.Errorf("an abandoned probe went on for %v", took)
	}
}

// TestICMPDestinationUnreachable makes the kernel receive a real ICMP
// destination-unreachable message about the probe's request, on loopback:
// the request is held back and a raw socket sends the error a router
// would have sent. A datagram socket learns of it from its error queue, a
// raw socket reads it through its BPF filter.
func TestICMPDestinationUnreachable(t *testing.T) {
	socketKinds(t, func(t *testing.T, kind socketKind, target icmpTarget) {
		cases := []struct {
			code int
			want taxonomy.Reason
		}{{1, taxonomy.ReasonHostUnreachable}, {0, taxonomy.ReasonNetworkUnreachable}}
		if target.family == netdial.IP6 {
			cases = []struct {
				code int
				want taxonomy.Reason
			}{{3, taxonomy.ReasonHostUnreachable}, {0, taxonomy.ReasonNetworkUnreachable}}
		}
		for _, tc := range cases {
			m, prep := icmpModule(t, kind, forFamily(target))
			throughBlackHole(prep, blackHole{onDrop: func(req []byte) {
				forgeUnreachable(t, target, req, tc.code)
			}})
			// A deadline far beyond the margin: ending well before it shows
			// the probe acted on the error rather than waiting.
			sink, took, err := probertest.Probe(t, m, target.addr, 10*time.Second)
			perr := checkOutcome(t, err, failure{taxonomy.ClassConnect, tc.want, taxonomy.PhaseRTT})
			if !strings.Contains(perr.Error(), "reported by") {
				t.Errorf("error %v does not name who reported it", perr)
			}
			if took > 10*time.Second-overrunMargin*2 {
				t.Errorf("the probe took %v to act on the error", took)
			}
			probertest.Metric(t, sink, 1, "probe_icmp_packets_sent")
			probertest.Metric(t, sink, 0, "probe_icmp_packets_received")
		}
	})
}

// forgeUnreachable sends to loopback the destination-unreachable message
// a router on the way to target would send about the request req.
func forgeUnreachable(t *testing.T, target icmpTarget, req []byte, code int) {
	t.Helper()
	quotedLen := min(len(req), 8+8)
	var msg []byte
	var err error
	if target.family == netdial.IP4 {
		h := ipv4.Header{Version: 4, Len: ipv4.HeaderLen, TotalLen: ipv4.HeaderLen + len(req), TTL: 63,
			Protocol: 1, Src: net.ParseIP("127.0.0.1"), Dst: net.ParseIP(target.addr)}
		hb, herr := h.Marshal()
		if herr != nil {
			t.Error(herr)
			return
		}
		binary.BigEndian.PutUint16(hb[2:4], uint16(ipv4.HeaderLen+len(req))) // Marshal may use host order
		m := icmp.Message{Type: ipv4.ICMPTypeDestinationUnreachable, Code: code,
			Body: &icmp.DstUnreach{Data: append(hb, req[:quotedLen]...)}}
		msg, err = m.Marshal(nil)
	} else {
		hb := make([]byte, ipv6.HeaderLen)
		hb[0] = 6 << 4
		binary.BigEndian.PutUint16(hb[4:6], uint16(len(req)))
		hb[6], hb[7] = 58, 63
		copy(hb[8:24], net.ParseIP(target.addr))
		copy(hb[24:40], net.ParseIP(target.addr))
		m := icmp.Message{Type: ipv6.ICMPTypeDestinationUnreachable, Code: code,
			Body: &icmp.DstUnreach{Data: append(hb, req[:quotedLen]...)}}
		msg, err = m.Marshal(nil) // the kernel computes an ICMPv6 checksum
	}
	if err != nil {
		t.Error(err)
		return
	}
	network := "ip4:icmp"
	if target.family == netdial.IP6 {
		network = "ip6:ipv6-icmp"
	}
	c, err := net.ListenPacket(network, target.addr)
	if err != nil {
		t.Errorf("opening a raw socket to forge the error: %v", err)
		return
	}
	defer c.Close()
	if _, err := c.WriteTo(msg, &net.IPAddr{IP: net.ParseIP(target.addr)}); err != nil {
		t.Errorf("sending the forged error: %v", err)
	}
}

func TestICMPFallsBackToRaw(t *testing.T) {
	requireKind(t, rawSocket, netdial.IP4)
	m, prep := icmpModule(t, rawSocket, forFamily(icmpTarget{family: netdial.IP4}))
	prep.kinds = []socketKind{datagramSocket, rawSocket}
	var used socketKind = -1
	prep.listen = func(kind socketKind, family netdial.IPFamily, src net.IP, id uint16) (*icmpSocket, error) {
		if kind == datagramSocket {
			return nil, os.NewSyscallError("socket", syscall.EACCES)
		}
		used = kind
		return listenICMP(kind, family, src, id)
	}
	_, err := probertest.Run(t, m, "127.0.0.1")
	checkOutcome(t, err, failure{})
	if used != rawSocket {
		t.Error("the probe did not fall back to a raw socket")
	}
}

func TestICMPRandomIdentifier(t *testing.T) {
	kind := usableKind(t, netdial.IP4)
	m, prep := icmpModule(t, kind, forFamily(icmpTarget{family: netdial.IP4}))
	prep.pool = nil // a socket of its own for each probe
	var (
		mu  sync.Mutex
		ids = map[uint16]bool{}
	)
	listen := prep.listen
	prep.listen = func(kind socketKind, family netdial.IPFamily, src net.IP, id uint16) (*icmpSocket, error) {
		s, err := listen(kind, family, src, id)
		if err == nil {
			mu.Lock()
			ids[s.id] = true
			mu.Unlock()
		}
		return s, err
	}
	for range 3 {
		_, err := probertest.Run(t, m, "127.0.0.1")
		checkOutcome(t, err, failure{})
	}
	// Three probes share an identifier with odds of 1 in 2³².
	if len(ids) < 2 {
		t.Errorf("3 probes used the identifiers %v", ids)
	}
	starts := map[echoStart]bool{}
	for range 100 {
		starts[randomEcho()] = true
	}
	if len(starts) < 99 {
		t.Errorf("100 draws gave %d distinct identifiers and sequences", len(starts))
	}
}

func TestICMPDatagramIdentifierTaken(t *testing.T) {
	requireKind(t, datagramSocket, netdial.IP4)
	const id = 0x7a11
	first, err := listenICMP(datagramSocket, netdial.IP4, nil, id)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := listenICMP(datagramSocket, netdial.IP4, nil, id)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if first.id != id || second.id == id {
		t.Errorf("two datagram sockets asking for identifier %d got %d and %d: they would share replies", id, first.id, second.id)
	}
}

// TestICMPRemembersADatagramRefusal: once the system refused a datagram
// socket and a raw one opened, the next probes go straight to raw, until
// the refusal is old enough to ask again.
func TestICMPRemembersADatagramRefusal(t *testing.T) {
	requireKind(t, rawSocket, netdial.IP4)
	m, prep := icmpModule(t, rawSocket, forFamily(icmpTarget{family: netdial.IP4}))
	prep.kinds = []socketKind{datagramSocket, rawSocket}
	prep.pool = nil // every probe opens a socket, so every kind it asks for is seen
	var tried []socketKind
	prep.listen = func(kind socketKind, family netdial.IPFamily, src net.IP, id uint16) (*icmpSocket, error) {
		tried = append(tried, kind)
		if kind == datagramSocket {
			return nil, os.NewSyscallError("socket", syscall.EACCES)
		}
		return listenICMP(kind, family, src, id)
	}
	for range 2 {
		_, err := probertest.Run(t, m, "127.0.0.1")
		checkOutcome(t, err, failure{})
	}
	if want := []socketKind{datagramSocket, rawSocket, rawSocket}; !slices.Equal(tried, want) {
		t.Errorf("tried %v, want %v: the second probe should not ask for a datagram socket again", tried, want)
	}
	// An old refusal is asked again: ping_group_range may have changed.
	prep.datagramRefused[0].Store(time.Now().Add(-refusalMemory).UnixNano())
	tried = nil
	_, err := probertest.Run(t, m, "127.0.0.1")
	checkOutcome(t, err, failure{})
	if want := []socketKind{datagramSocket, rawSocket}; !slices.Equal(tried, want) {
		t.Errorf("after refusalMemory: tried %v, want %v", tried, want)
	}
}

// TestICMPKeepsRawSockets: a module's raw sockets serve its next probes,
// which tell their replies from an earlier probe's; a socket whose
// exchange was cut short is not kept.
func TestICMPKeepsRawSockets(t *testing.T) {
	requireKind(t, rawSocket, netdial.IP4)
	m, prep := icmpModule(t, rawSocket, forFamily(icmpTarget{family: netdial.IP4}))
	var opened int
	listen := prep.listen
	prep.listen = func(kind socketKind, family netdial.IPFamily, src net.IP, id uint16) (*icmpSocket, error) {
		opened++
		return listen(kind, family, src, id)
	}
	// Each probe draws its own first sequence number; a kept socket keeps
	// the identifier its filter was made for.
	echoes := []echoStart{{id: 0x5ee5, seq: 100}, {id: 0x5ee6, seq: 101}, {id: 0x5ee7, seq: 7}, {id: 0x5ee8, seq: 9}}
	prep.newEcho = func() echoStart {
		e := echoes[0]
		echoes = echoes[1:]
		return e
	}
	for i := range 3 {
		sink, err := probertest.Run(t, m, "127.0.0.1")
		checkOutcome(t, err, failure{})
		probertest.Metric(t, sink, 1, "probe_icmp_packets_received")
		if i == 0 {
			continue
		}
		if opened != 1 {
			t.Fatalf("probe %d opened a socket: %d opened, want 1 kept from the first probe", i+1, opened)
		}
	}
	if n := len(prep.pool.idle[0]); n != 1 {
		t.Fatalf("%d idle sockets after three probes one after the other, want 1", n)
	}

	// A scrape abandoned mid-exchange leaves its socket out of the pool.
	closeIdle(prep)
	throughBlackHole(prep, blackHole{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	f, _ := m.Func()
	err := f(ctx, "127.0.0.1", m, probemetrics.NewSink(), probertest.DiscardLogger)
	checkOutcome(t, err, failure{taxonomy.ClassTimeout, taxonomy.ReasonCanceled, taxonomy.PhaseRTT})
	if n := len(prep.pool.idle[0]); n != 0 {
		t.Errorf("%d idle sockets after a canceled probe, want 0", n)
	}
}

func TestSocketPoolBounds(t *testing.T) {
	requireKind(t, rawSocket, netdial.IP4)
	var p socketPool
	open := func() *icmpSocket {
		s, err := listenICMP(rawSocket, netdial.IP4, nil, 0x1d1e)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for range maxIdleSockets + 3 {
		p.put(open())
	}
	if n := len(p.idle[0]); n != maxIdleSockets {
		t.Errorf("%d idle sockets kept, want at most %d", n, maxIdleSockets)
	}
	// Sockets idle too long are closed rather than handed out.
	for i := range p.idle[0] {
		p.idle[0][i].since = time.Now().Add(-socketIdleTime - time.Second)
	}
	stale := p.idle[0][0].sock
	if s := p.get(netdial.IP4); s != nil {
		t.Errorf("got a socket idle for longer than %v", socketIdleTime)
	}
	if len(p.idle[0]) != 0 {
		t.Errorf("%d expired sockets still kept", len(p.idle[0]))
	}
	if err := stale.discardQueued(); err == nil {
		t.Error("an expired socket is still open")
	}
	if s := p.get(netdial.IP6); s != nil {
		t.Error("an IPv6 probe got an IPv4 socket")
	}
	// A module no longer probed has its sockets closed all the same.
	p.put(open())
	p.idle[0][0].since = time.Now().Add(-socketIdleTime - time.Second)
	p.sweepIdle()
	if len(p.idle[0]) != 0 || p.sweep != nil {
		t.Errorf("after a sweep: %d idle sockets, sweep timer still set: %v", len(p.idle[0]), p.sweep != nil)
	}
}
