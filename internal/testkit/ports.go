package testkit

import (
	"net"
	"testing"
)

// A port picked free, closed and handed on may be taken by any test
// running alongside before its user binds it. The closed ports here stay
// bound until the test ends, so no one else can listen on them.

// ClosedUDPPort returns a loopback UDP address nobody listens on: a
// datagram sent there is answered with an ICMP port unreachable. The port
// is held, until the test ends, by a socket connected to another port:
// the kernel hands such a socket only the datagrams of its peer.
func ClosedUDPPort(tb testing.TB) string {
	tb.Helper()
	holder, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9})
	if err != nil {
		tb.Fatalf("holding a closed UDP port: %v", err)
	}
	tb.Cleanup(func() { holder.Close() })
	return holder.LocalAddr().String()
}

// ClosedTCPAddr returns a loopback TCP address nobody listens on: a
// connection to it is refused. Where the platform allows (unix), the port
// is held, until the test ends, by a socket bound to it that never
// listens.
func ClosedTCPAddr(tb testing.TB) string {
	tb.Helper()
	addr, release, err := holdTCPPort()
	if err != nil {
		tb.Fatalf("holding a closed TCP port: %v", err)
	}
	tb.Cleanup(release)
	return addr
}
