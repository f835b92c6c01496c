package icmp

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// The tests of this file need no ICMP socket; icmp_linux_test.go probes
// loopback for real.

// icmpTarget is a loopback address of one family.
type icmpTarget struct {
	family netdial.IPFamily
	addr   string
}

// icmpModule is an icmp module forced onto one socket kind.
func icmpModule(t *testing.T, kind socketKind, mutate func(c *config.ICMPProbe)) (*core.Module, *icmpPrepared) {
	t.Helper()
	m := defaultModule(t, "icmp", func(cm *config.Module) {
		if mutate != nil {
			mutate(&cm.ICMP)
		}
	})
	prep := m.Prepared.(*icmpPrepared)
	prep.kinds = []socketKind{kind}
	t.Cleanup(func() { closeIdle(prep) })
	return m, prep
}

// closeIdle closes the raw sockets a module keeps between probes, so that
// its next probe opens a socket through prep.listen.
func closeIdle(prep *icmpPrepared) {
	if prep.pool == nil {
		return
	}
	prep.pool.mu.Lock()
	defer prep.pool.mu.Unlock()
	for family := range prep.pool.idle {
		for _, s := range prep.pool.idle[family] {
			s.sock.Close()
		}
		prep.pool.idle[family] = nil
	}
}

// forFamily sets a module's address family to the target's, without
// fallback, so that a name resolves as the case wants.
func forFamily(target icmpTarget) func(c *config.ICMPProbe) {
	return func(c *config.ICMPProbe) {
		c.IPProtocol = string(target.family)
		c.IPProtocolFallback = false
	}
}

// fixedEcho makes a module's probes use this identifier and first sequence
// number, so that a test can recognise their packets.
func fixedEcho(prep *icmpPrepared, id, seq uint16) {
	prep.newEcho = func() echoStart { return echoStart{id: id, seq: seq} }
}

func TestICMPInvalidTarget(t *testing.T) {
	m := defaultModule(t, "icmp", nil)
	for _, target := range []string{"example.com:80", "http://example.com", "[::1]", "::1:53x", ""} {
		sink, err := probertest.Run(t, m, target)
		checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup})
		probertest.Absent(t, sink, "probe_ip_protocol")
	}
}

func TestICMPDefaultPayload(t *testing.T) {
	if got := icmpPayload(0); string(got) != defaultICMPPayload || len(got) != 28 {
		t.Errorf("default payload %q (%d bytes), want blackbox's 28 bytes", got, len(got))
	}
	got := icmpPayload(40)
	if len(got) != 40 || string(got[:28]) != defaultICMPPayload || got[39] != 0 {
		t.Errorf("payload_size 40 gave %q", got)
	}
}

func TestICMPVerdict(t *testing.T) {
	target := net.ParseIP("192.0.2.1")
	unreachable := &icmpFailure{family: netdial.IP4, typ: icmp4DestUnreach, code: 1, quotedDst: target}
	cases := []struct {
		sent, received int
		ratio          float64
		failure        *icmpFailure
		want           failure
	}{
		{1, 1, 0, nil, failure{}},
		{5, 1, 0, nil, failure{}},
		{5, 4, 0.8, nil, failure{}},
		{10, 7, 0.7, nil, failure{}},
		{3, 1, 1.0 / 3, nil, failure{}},
		{5, 3, 0.8, nil, failure{taxonomy.ClassAssertion, taxonomy.ReasonPacketLoss, taxonomy.PhaseRTT}},
		{5, 4, 1, nil, failure{taxonomy.ClassAssertion, taxonomy.ReasonPacketLoss, taxonomy.PhaseRTT}},
		{5, 4, 0.8, unreachable, failure{}},
		{5, 0, 0, nil, failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseRTT}},
		{5, 0, 0.5, nil, failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseRTT}},
		{1, 0, 0, unreachable, failure{taxonomy.ClassConnect, taxonomy.ReasonHostUnreachable, taxonomy.PhaseRTT}},
		{5, 2, 0.8, unreachable, failure{taxonomy.ClassAssertion, taxonomy.ReasonPacketLoss, taxonomy.PhaseRTT}},
	}
	for _, tc := range cases {
		s := &echoStats{sent: tc.sent, received: tc.received, failure: tc.failure}
		err := icmpVerdict(s, tc.ratio, target)
		var got failure
		var perr *taxonomy.Error
		if errors.As(err, &perr) {
			got = failure{perr.Class, perr.Reason, perr.Phase}
		}
		if got != tc.want {
			t.Errorf("%d of %d, min_success_ratio %v: %v, want %v", tc.received, tc.sent, tc.ratio, err, tc.want)
		}
	}
}

func TestICMPStats(t *testing.T) {
	var s echoStats
	for _, ms := range []int{2, 4, 4, 4, 5, 5, 7, 9} {
		s.addReply(time.Duration(ms)*time.Millisecond, 60)
	}
	if s.minRTT != 2*time.Millisecond || s.maxRTT != 9*time.Millisecond {
		t.Errorf("min %v, max %v", s.minRTT, s.maxRTT)
	}
	if d := s.meanRTT - 0.005; d > 1e-12 || d < -1e-12 {
		t.Errorf("mean %v, want 5ms", s.meanRTT)
	}
	if d := s.stddev() - 0.002; d > 1e-12 || d < -1e-12 {
		t.Errorf("stddev %v, want 2ms", s.stddev())
	}
	s.sent = 10
	if s.lossRatio() != 0.2 {
		t.Errorf("loss ratio %v, want 0.2", s.lossRatio())
	}
	if (&echoStats{}).lossRatio() != 1 {
		t.Error("nothing sent should be a loss ratio of 1")
	}
}

// icmpErrorV4 is an ICMP error as a raw IPv4 socket reads it (without its
// own IP header): it quotes an echo request from 192.0.2.2 to dst.
func icmpErrorV4(t *testing.T, typ ipv4.ICMPType, code int, dst string, id, seq uint16, mtu int) []byte {
	t.Helper()
	h := ipv4.Header{Version: 4, Len: ipv4.HeaderLen, TotalLen: 56, TTL: 1, Protocol: 1,
		Src: net.ParseIP("192.0.2.2"), Dst: net.ParseIP(dst)}
	hb, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	echo, _ := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: int(id), Seq: int(seq), Data: []byte("sonde!!!")}}).Marshal(nil)
	var body icmp.MessageBody = &icmp.DstUnreach{Data: append(hb, echo...)}
	if typ == ipv4.ICMPTypeTimeExceeded {
		body = &icmp.TimeExceeded{Data: append(hb, echo...)}
	}
	b, err := (&icmp.Message{Type: typ, Code: code, Body: body}).Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	if mtu > 0 {
		binary.BigEndian.PutUint16(b[6:8], uint16(mtu))
	}
	return b
}

// icmpErrorV6 is an ICMPv6 error quoting an echo request to dst.
func icmpErrorV6(t *testing.T, typ ipv6.ICMPType, code int, dst string, id, seq uint16) []byte {
	t.Helper()
	hb := make([]byte, ipv6.HeaderLen)
	hb[0], hb[6], hb[7] = 6<<4, 58, 1
	copy(hb[8:24], net.ParseIP("2001:db8::2"))
	copy(hb[24:40], net.ParseIP(dst))
	echo, _ := (&icmp.Message{Type: ipv6.ICMPTypeEchoRequest, Body: &icmp.Echo{ID: int(id), Seq: int(seq), Data: []byte("sonde!!!")}}).Marshal(nil)
	var body icmp.MessageBody = &icmp.DstUnreach{Data: append(hb, echo...)}
	switch typ {
	case ipv6.ICMPTypeTimeExceeded:
		body = &icmp.TimeExceeded{Data: append(hb, echo...)}
	case ipv6.ICMPTypePacketTooBig:
		body = &icmp.PacketTooBig{MTU: 1280, Data: append(hb, echo...)}
	}
	b, err := (&icmp.Message{Type: typ, Code: code, Body: body}).Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestICMPErrorClassification(t *testing.T) {
	const dst4, dst6 = "198.51.100.7", "2001:db8::7"
	cases := []struct {
		name    string
		family  netdial.IPFamily
		msg     []byte
		reason  taxonomy.Reason
		message string
	}{
		{"v4 network unreachable", netdial.IP4, icmpErrorV4(t, ipv4.ICMPTypeDestinationUnreachable, 0, dst4, 9, 3, 0), taxonomy.ReasonNetworkUnreachable, "network unreachable"},
		{"v4 host unreachable", netdial.IP4, icmpErrorV4(t, ipv4.ICMPTypeDestinationUnreachable, 1, dst4, 9, 3, 0), taxonomy.ReasonHostUnreachable, "host unreachable"},
		{"v4 network unknown", netdial.IP4, icmpErrorV4(t, ipv4.ICMPTypeDestinationUnreachable, 6, dst4, 9, 3, 0), taxonomy.ReasonNetworkUnreachable, "network unknown"},
		{"v4 host prohibited", netdial.IP4, icmpErrorV4(t, ipv4.ICMPTypeDestinationUnreachable, 10, dst4, 9, 3, 0), taxonomy.ReasonHostUnreachable, "host administratively prohibited"},
		{"v4 filtered", netdial.IP4, icmpErrorV4(t, ipv4.ICMPTypeDestinationUnreachable, 13, dst4, 9, 3, 0), taxonomy.ReasonHostUnreachable, "communication administratively prohibited"},
		{"v4 fragmentation needed", netdial.IP4, icmpErrorV4(t, ipv4.ICMPTypeDestinationUnreachable, 4, dst4, 9, 3, 1400), taxonomy.ReasonHostUnreachable, "path MTU 1400"},
		{"v4 time exceeded", netdial.IP4, icmpErrorV4(t, ipv4.ICMPTypeTimeExceeded, 0, dst4, 9, 3, 0), taxonomy.ReasonHostUnreachable, "time exceeded"},
		{"v6 no route", netdial.IP6, icmpErrorV6(t, ipv6.ICMPTypeDestinationUnreachable, 0, dst6, 9, 3), taxonomy.ReasonNetworkUnreachable, "no route to destination"},
		{"v6 address unreachable", netdial.IP6, icmpErrorV6(t, ipv6.ICMPTypeDestinationUnreachable, 3, dst6, 9, 3), taxonomy.ReasonHostUnreachable, "address unreachable"},
		{"v6 prohibited", netdial.IP6, icmpErrorV6(t, ipv6.ICMPTypeDestinationUnreachable, 1, dst6, 9, 3), taxonomy.ReasonHostUnreachable, "prohibited"},
		{"v6 reject route", netdial.IP6, icmpErrorV6(t, ipv6.ICMPTypeDestinationUnreachable, 6, dst6, 9, 3), taxonomy.ReasonNetworkUnreachable, "reject route"},
		{"v6 packet too big", netdial.IP6, icmpErrorV6(t, ipv6.ICMPTypePacketTooBig, 0, dst6, 9, 3), taxonomy.ReasonHostUnreachable, "path MTU 1280"},
		{"v6 time exceeded", netdial.IP6, icmpErrorV6(t, ipv6.ICMPTypeTimeExceeded, 0, dst6, 9, 3), taxonomy.ReasonHostUnreachable, "time exceeded"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, ok := parseICMPError(tc.family, tc.msg)
			if !ok {
				t.Fatal("not parsed as an ICMP error about an echo request")
			}
			if f.id != 9 || f.seq != 3 {
				t.Errorf("quoted id %d seq %d, want 9 and 3", f.id, f.seq)
			}
			dst := dst4
			if tc.family == netdial.IP6 {
				dst = dst6
			}
			if !f.quotedDst.Equal(net.ParseIP(dst)) {
				t.Errorf("quoted destination %s", f.quotedDst)
			}
			err := f.classify()
			if err.Class != taxonomy.ClassConnect || err.Reason != tc.reason || err.Phase != taxonomy.PhaseRTT {
				t.Errorf("classified %v, want connect/%s in phase rtt", err, tc.reason)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("%v does not say %q", err, tc.message)
			}
		})
	}
}

func TestICMPNotAnError(t *testing.T) {
	reply, _ := (&icmp.Message{Type: ipv4.ICMPTypeEchoReply, Body: &icmp.Echo{ID: 9, Seq: 3}}).Marshal(nil)
	quotingReply := icmpErrorV4(t, ipv4.ICMPTypeDestinationUnreachable, 1, "192.0.2.9", 9, 3, 0)
	quotingReply[8+ipv4.HeaderLen] = byte(ipv4.ICMPTypeEchoReply)
	quotingUDP := icmpErrorV4(t, ipv4.ICMPTypeDestinationUnreachable, 3, "192.0.2.9", 9, 3, 0)
	quotingUDP[8+9] = 17
	for name, msg := range map[string][]byte{"echo reply": reply, "error quoting a reply": quotingReply,
		"error quoting UDP": quotingUDP, "short": {3, 1, 0}} {
		if _, ok := parseICMPError(netdial.IP4, msg); ok {
			t.Errorf("%s parsed as an ICMP error about an echo request", name)
		}
	}
	if r, ok := parseEchoReply(netdial.IP4, reply); !ok || r.id != 9 || r.seq != 3 {
		t.Errorf("echo reply parsed as %+v, %v", r, ok)
	}
}

func TestICMPFilterV4(t *testing.T) {
	const id = 0x1234
	vm, err := bpf.NewVM(rawInstructions(echoFilterV4(id)))
	if err != nil {
		t.Fatal(err)
	}
	withIP := func(icmpMsg []byte, options int) []byte {
		h := ipv4.Header{Version: 4, Len: ipv4.HeaderLen + options, TotalLen: ipv4.HeaderLen + options + len(icmpMsg),
			TTL: 64, Protocol: 1, Src: net.ParseIP("192.0.2.1"), Dst: net.ParseIP("192.0.2.2"), Options: make([]byte, options)}
		hb, err := h.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return append(hb, icmpMsg...)
	}
	echo := func(typ ipv4.ICMPType, id int) []byte {
		b, _ := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: 1, Data: []byte("x")}}).Marshal(nil)
		return b
	}
	withQuotedOptions := icmpErrorV4(t, ipv4.ICMPTypeDestinationUnreachable, 1, "192.0.2.9", id, 3, 0)
	// Give the quoted header 4 bytes of options, moving the quoted echo.
	quoted := withQuotedOptions[8:]
	withQuotedOptions = append(append(append([]byte{}, withQuotedOptions[:8]...), quoted[0]+1), quoted[1:20]...)
	withQuotedOptions = append(append(withQuotedOptions, 1, 1, 1, 1), quoted[20:]...)
	cases := []struct {
		name   string
		packet []byte
		accept bool
	}{
		{"our echo reply", withIP(echo(ipv4.ICMPTypeEchoReply, id), 0), true},
		{"our echo reply, IP options", withIP(echo(ipv4.ICMPTypeEchoReply, id), 8), true},
		{"another identifier's reply", withIP(echo(ipv4.ICMPTypeEchoReply, id+1), 0), false},
		{"an echo request", withIP(echo(ipv4.ICMPTypeEcho, id), 0), false},
		{"unreachable, our request", withIP(icmpErrorV4(t, ipv4.ICMPTypeDestinationUnreachable, 1, "192.0.2.9", id, 3, 0), 0), true},
		{"unreachable, our request with IP options", withIP(withQuotedOptions, 0), true},
		{"time exceeded, our request", withIP(icmpErrorV4(t, ipv4.ICMPTypeTimeExceeded, 0, "192.0.2.9", id, 3, 0), 4), true},
		{"unreachable, another identifier", withIP(icmpErrorV4(t, ipv4.ICMPTypeDestinationUnreachable, 1, "192.0.2.9", id+1, 3, 0), 0), false},
		{"unreachable, quoting UDP", withIP(func() []byte {
			b := icmpErrorV4(t, ipv4.ICMPTypeDestinationUnreachable, 3, "192.0.2.9", id, 3, 0)
			b[8+9] = 17
			return b
		}(), 0), false},
	}
	for _, tc := range cases {
		n, err := vm.Run(tc.packet)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if (n > 0) != tc.accept {
			t.Errorf("%s: filter returned %d, want accepted=%v", tc.name, n, tc.accept)
		}
	}
	if f, ok := parseICMPError(netdial.IP4, withQuotedOptions); !ok || f.id != id {
		t.Errorf("a quoted header with options: parsed %+v, %v", f, ok)
	}
}

func TestICMPFilterV6(t *testing.T) {
	const id = 0xbeef
	vm, err := bpf.NewVM(rawInstructions(echoFilterV6(id)))
	if err != nil {
		t.Fatal(err)
	}
	echo := func(typ ipv6.ICMPType, id int) []byte {
		b, _ := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: 1, Data: []byte("x")}}).Marshal(nil)
		return b
	}
	cases := []struct {
		name   string
		packet []byte
		accept bool
	}{
		{"our echo reply", echo(ipv6.ICMPTypeEchoReply, id), true},
		{"another identifier's reply", echo(ipv6.ICMPTypeEchoReply, id+1), false},
		{"an echo request", echo(ipv6.ICMPTypeEchoRequest, id), false},
		{"unreachable, our request", icmpErrorV6(t, ipv6.ICMPTypeDestinationUnreachable, 3, "2001:db8::7", id, 1), true},
		{"packet too big, our request", icmpErrorV6(t, ipv6.ICMPTypePacketTooBig, 0, "2001:db8::7", id, 1), true},
		{"time exceeded, our request", icmpErrorV6(t, ipv6.ICMPTypeTimeExceeded, 0, "2001:db8::7", id, 1), true},
		{"unreachable, another identifier", icmpErrorV6(t, ipv6.ICMPTypeDestinationUnreachable, 3, "2001:db8::7", id+1, 1), false},
		{"unreachable, quoting UDP", func() []byte {
			b := icmpErrorV6(t, ipv6.ICMPTypeDestinationUnreachable, 4, "2001:db8::7", id, 1)
			b[8+6] = 17
			return b
		}(), false},
	}
	for _, tc := range cases {
		n, err := vm.Run(tc.packet)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if (n > 0) != tc.accept {
			t.Errorf("%s: filter returned %d, want accepted=%v", tc.name, n, tc.accept)
		}
	}
}

func rawInstructions(raw []bpf.RawInstruction) []bpf.Instruction {
	prog := make([]bpf.Instruction, len(raw))
	for i, r := range raw {
		prog[i] = r.Disassemble()
	}
	return prog
}

func TestICMPPermissionDenied(t *testing.T) {
	m, prep := icmpModule(t, datagramSocket, nil)
	prep.kinds = []socketKind{datagramSocket, rawSocket}
	var tried []socketKind
	prep.listen = func(kind socketKind, _ netdial.IPFamily, _ net.IP, _ uint16) (*icmpSocket, error) {
		tried = append(tried, kind)
		if kind == datagramSocket {
			return nil, os.NewSyscallError("socket", syscall.EACCES) // what ping_group_range gives
		}
		return nil, os.NewSyscallError("socket", syscall.EPERM) // what a missing CAP_NET_RAW gives
	}
	sink, err := probertest.Run(t, m, "127.0.0.1")
	perr := checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonPermissionDenied, taxonomy.PhaseSetup})
	for _, want := range []string{"net.ipv4.ping_group_range", "CAP_NET_RAW", "datagram socket", "raw socket"} {
		if !strings.Contains(perr.Error(), want) {
			t.Errorf("error %v does not say %q", perr, want)
		}
	}
	if len(tried) != 2 || tried[0] != datagramSocket || tried[1] != rawSocket {
		t.Errorf("tried %v, want datagram then raw", tried)
	}
	probertest.Value(t, sink, "probe_icmp_duration_seconds", string(taxonomy.PhaseSetup))
	probertest.Absent(t, sink, "probe_icmp_packets_sent")
}

// TestICMPPayloadThatCannotBeSent fails the probe after resolving, before
// a socket is opened, so it needs no ICMP privilege.
func TestICMPPayloadThatCannotBeSent(t *testing.T) {
	for _, size := range []int{-1, config.MaxICMPPayload4 + 1} {
		m := defaultModule(t, "icmp", func(m *config.Module) { m.ICMP.PayloadSize = size })
		_, err := probertest.Run(t, m, "127.0.0.1")
		checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseSetup})
	}
	if err := checkPayloadSize(config.MaxICMPPayload4+1, netdial.IP6); err != nil {
		t.Errorf("a payload IPv6 can carry was refused: %v", err)
	}
}

// TestAuditICMPSocketUnsupported: a host whose kernel has no ICMP socket
// of a kind (EPROTONOSUPPORT) cannot run the probe as asked.
func TestAuditICMPSocketUnsupported(t *testing.T) {
	m, prep := icmpModule(t, datagramSocket, nil)
	prep.kinds = []socketKind{datagramSocket, rawSocket}
	prep.listen = func(kind socketKind, _ netdial.IPFamily, _ net.IP, _ uint16) (*icmpSocket, error) {
		if kind == datagramSocket {
			return nil, os.NewSyscallError("socket", syscall.EPROTONOSUPPORT)
		}
		return nil, os.NewSyscallError("socket", syscall.EPERM)
	}
	_, err := probertest.Run(t, m, "127.0.0.1")
	checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonUnsupported, taxonomy.PhaseSetup})
}

func probeICMP(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return m.Prepared.(*icmpPrepared).Probe(ctx, target, m, sink, logger)
}
