package floor

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/net/bpf"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// The icmp floor keeps its sockets between probes, as sonde does: making
// a raw socket ready (the socket call, its filter) is setup a long-lived
// prober pays once, not network work of each probe. A probe takes an idle
// socket, or opens one, and has it to itself until it ends.

// maxIdleSockets bounds the sockets kept: more than the harness has
// probes in flight at once.
const maxIdleSockets = 64

// echoSocket is an ICMP socket and the echo identifier its replies carry.
type echoSocket struct {
	conn *icmp.PacketConn
	id   int
	ping bool // a datagram ("ping") socket, whose replies the kernel sorts
	seq  uint16
	buf  []byte
}

// icmpPool is a module's idle sockets, most recently used last.
type icmpPool struct {
	mu   sync.Mutex
	idle []*echoSocket
	// nextID numbers the raw sockets' echo identifiers, from a random
	// start so that two floors do not share them.
	nextID atomic.Uint32
}

// probeICMP returns the probe of an icmp module: one echo request to the
// target, and its reply.
func probeICMP() probeFunc {
	p := &icmpPool{}
	p.nextID.Store(rand.Uint32())
	return p.probe
}

func (p *icmpPool) get() (*echoSocket, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		s := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return s, nil
	}
	p.mu.Unlock()
	return p.open()
}

// put keeps a socket whose probe ended well, or closes it.
func (p *icmpPool) put(s *echoSocket, ok bool) {
	p.mu.Lock()
	keep := ok && len(p.idle) < maxIdleSockets
	if keep {
		p.idle = append(p.idle, s)
	}
	p.mu.Unlock()
	if !keep {
		s.conn.Close()
	}
}

// openEchoSocket opens a raw socket as root, with a kernel filter that
// passes only echo replies to its own identifier, else a ping socket.
func (p *icmpPool) open() (*echoSocket, error) {
	if os.Geteuid() != 0 {
		conn, err := icmp.ListenPacket("udp4", "0.0.0.0")
		if err != nil {
			return nil, err
		}
		return &echoSocket{conn: conn, ping: true, buf: make([]byte, 1500)}, nil
	}
	conn, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return nil, err
	}
	id := int(p.nextID.Add(1) & 0xffff)
	if err := conn.IPv4PacketConn().SetBPF(echoReplyFilter(uint32(id))); err != nil {
		conn.Close()
		return nil, err
	}
	return &echoSocket{conn: conn, id: id, buf: make([]byte, 1500)}, nil
}

// echoReplyFilter passes the IPv4 packets that are echo replies with the
// identifier id, and drops the rest.
func echoReplyFilter(id uint32) []bpf.RawInstruction {
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadMemShift{Off: 0},                                 // X: the IP header's length
		bpf.LoadIndirect{Off: 0, Size: 1},                        // the ICMP type
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0, SkipTrue: 3},  // not an echo reply
		bpf.LoadIndirect{Off: 4, Size: 2},                        // the identifier
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: id, SkipTrue: 1}, // not ours
		bpf.RetConstant{Val: 1 << 16},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		panic(err) // a constant program
	}
	return prog
}

func (p *icmpPool) probe(ctx context.Context, target string) error {
	addr, err := resolve(ctx, target)
	if err != nil {
		return err
	}
	s, err := p.get()
	if err != nil {
		return err
	}
	err = s.echo(ctx, net.ParseIP(addr))
	p.put(s, err == nil)
	return err
}

// echo sends one request and reads until its reply; replies to an
// earlier probe on the same socket carry an older sequence number.
func (s *echoSocket) echo(ctx context.Context, ip net.IP) error {
	deadline, _ := ctx.Deadline()
	if err := s.conn.SetDeadline(deadline); err != nil {
		return err
	}
	s.seq++
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: s.id, Seq: int(s.seq), Data: []byte("sonde floor")}}
	packet, err := msg.Marshal(nil)
	if err != nil {
		return err
	}
	dst := net.Addr(&net.IPAddr{IP: ip})
	if s.ping {
		dst = &net.UDPAddr{IP: ip}
	}
	if _, err := s.conn.WriteTo(packet, dst); err != nil {
		return err
	}
	for {
		n, _, err := s.conn.ReadFrom(s.buf)
		if err != nil {
			return err
		}
		if s.isReply(s.buf[:n]) {
			return nil
		}
	}
}

// isReply says whether b, an ICMP message (type, code, checksum,
// identifier, sequence number), is the echo reply to the socket's last
// request. A ping socket rewrites the identifier to its own.
func (s *echoSocket) isReply(b []byte) bool {
	if len(b) < 8 || b[0] != byte(ipv4.ICMPTypeEchoReply) {
		return false
	}
	id, seq := binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:])
	return seq == s.seq && (s.ping || int(id) == s.id)
}
