//go:build !linux

package icmp

import (
	"errors"
	"net"

	"golang.org/x/net/icmp"

	"github.com/sonde-exporter/sonde/prober/netdial"
)

// listenICMP opens an ICMP socket with x/net's portable ListenPacket.
// Outside Linux sonde neither binds the identifier of a datagram socket
// nor reads ICMP errors about its requests: those probes end in a timeout.
func listenICMP(kind socketKind, family netdial.IPFamily, src net.IP, id uint16) (*icmpSocket, error) {
	network, addr := "udp4", "0.0.0.0"
	switch {
	case family == netdial.IP4 && kind == rawSocket:
		network = "ip4:icmp"
	case family == netdial.IP6 && kind == rawSocket:
		network, addr = "ip6:ipv6-icmp", "::"
	case family == netdial.IP6:
		network, addr = "udp6", "::"
	}
	if src != nil {
		addr = src.String()
	}
	c, err := icmp.ListenPacket(network, addr)
	if err != nil {
		return nil, err
	}
	s := &icmpSocket{conn: c, kind: kind, family: family, id: id}
	if family == netdial.IP4 {
		s.v4 = c.IPv4PacketConn()
	} else {
		s.v6 = c.IPv6PacketConn()
	}
	return s, nil
}

func setDontFragment(*icmpSocket) error {
	return errors.New("setting the DF bit is supported on Linux only")
}

func (s *icmpSocket) readErrors() ([]*icmpFailure, error) { return nil, nil }

// discardQueued has nothing to do: the in-kernel filters it follows are
// Linux's.
func (s *icmpSocket) discardQueued() error { return nil }
