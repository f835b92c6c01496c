package icmp

import (
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/netdial"
)

// The icmp scenarios of TestICMPFailureScenarios, which open an ICMP socket. Each
// skips only when the process may open neither a datagram nor a raw one.

// icmpUnreachable: an ICMP destination unreachable comes back for the
// request. With a raw socket at hand it is forged on loopback, as a router
// would send it; else the system refuses to send the request, as it does
// when its route to the target is unreachable.
func icmpUnreachable(t *testing.T) error {
	kind := usableKind(t, netdial.IP4)
	target := icmpTarget{netdial.IP4, "127.0.0.1"}
	m, prep := icmpModule(t, kind, forFamily(target))
	if s, err := listenICMP(rawSocket, netdial.IP4, nil, 0); err == nil {
		s.Close()
		throughBlackHole(prep, blackHole{onDrop: func(req []byte) { forgeUnreachable(t, target, req, 1) }})
	} else {
		listen := prep.listen
		prep.listen = func(kind socketKind, family netdial.IPFamily, src net.IP, id uint16) (*icmpSocket, error) {
			s, err := listen(kind, family, src, id)
			if err == nil {
				s.conn = &unroutable{PacketConn: s.conn}
			}
			return s, err
		}
	}
	return scenarioErr(t, m, target.addr, 2*time.Second)
}

// unroutable is a socket whose sends the system refuses: no route to the
// host.
type unroutable struct{ net.PacketConn }

func (c *unroutable) WriteTo([]byte, net.Addr) (int, error) {
	return 0, os.NewSyscallError("sendto", syscall.EHOSTUNREACH)
}

func (c *unroutable) SyscallConn() (syscall.RawConn, error) {
	return c.PacketConn.(syscall.Conn).SyscallConn()
}

// icmpSilent: no reply and no ICMP error before the deadline.
func icmpSilent(t *testing.T) error {
	kind := usableKind(t, netdial.IP4)
	m, prep := icmpModule(t, kind, forFamily(icmpTarget{family: netdial.IP4}))
	throughBlackHole(prep, blackHole{})
	return scenarioErr(t, m, "127.0.0.1", scenarioDeadline)
}

// icmpLossy: every other request is lost, and min_success_ratio asks for
// three quarters of them answered.
func icmpLossy(t *testing.T) error {
	kind := usableKind(t, netdial.IP4)
	m, prep := icmpModule(t, kind, func(c *config.ICMPProbe) {
		forFamily(icmpTarget{family: netdial.IP4})(c)
		c.Packets, c.PacketInterval, c.MinSuccessRatio = 4, 5*time.Millisecond, 0.75
	})
	fixedEcho(prep, 0x1056, 0)
	throughBlackHole(prep, blackHole{pass: func(seq int) bool { return seq%2 == 0 }})
	return scenarioErr(t, m, "127.0.0.1", 150*time.Millisecond)
}
