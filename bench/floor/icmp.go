package floor

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync/atomic"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// echoID numbers the floor's echo requests, so that concurrent probes on
// raw sockets, which see every reply, can tell theirs apart.
var echoID atomic.Uint32

// probeICMP sends one echo request to target on a socket of its own and
// waits for the reply: a raw socket as root, else a ping socket.
func probeICMP(ctx context.Context, target string) error {
	addr, err := resolve(ctx, target)
	if err != nil {
		return err
	}
	network, dst := "ip4:icmp", net.Addr(&net.IPAddr{IP: net.ParseIP(addr)})
	if os.Geteuid() != 0 {
		network, dst = "udp4", &net.UDPAddr{IP: net.ParseIP(addr)}
	}
	conn, err := icmp.ListenPacket(network, "0.0.0.0")
	if err != nil {
		return err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	id := int(echoID.Add(1) & 0xffff)
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: 1, Data: []byte("sonde floor")}}
	packet, err := msg.Marshal(nil)
	if err != nil {
		return err
	}
	if _, err := conn.WriteTo(packet, dst); err != nil {
		return err
	}
	return awaitReply(conn, id, network == "udp4")
}

// awaitReply reads until the echo reply to id. A ping socket rewrites
// the ID to its own port, so there any reply on the socket is the one.
func awaitReply(conn *icmp.PacketConn, id int, pingSocket bool) error {
	buf := make([]byte, 1500)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			return err
		}
		reply, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || reply.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		echo, ok := reply.Body.(*icmp.Echo)
		if !ok {
			return fmt.Errorf("echo reply without an echo body")
		}
		if pingSocket || echo.ID == id {
			return nil
		}
	}
}
