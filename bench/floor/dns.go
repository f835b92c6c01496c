package floor

import (
	"context"
	"fmt"
	"net"

	"github.com/miekg/dns"
)

// probeDNS asks the server at target for name's A records over UDP and
// checks the answer is NOERROR.
func probeDNS(name string) probeFunc {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	return func(ctx context.Context, target string) error {
		addr, err := resolve(ctx, hostOnly(target))
		if err != nil {
			return err
		}
		_, port, err := net.SplitHostPort(target)
		if err != nil {
			return err
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "udp", net.JoinHostPort(addr, port))
		if err != nil {
			return err
		}
		defer conn.Close()
		if deadline, ok := ctx.Deadline(); ok {
			conn.SetDeadline(deadline)
		}
		return exchange(conn, q.Copy())
	}
}

func exchange(conn net.Conn, q *dns.Msg) error {
	q.Id = dns.Id()
	packed, err := q.Pack()
	if err != nil {
		return err
	}
	if _, err := conn.Write(packed); err != nil {
		return err
	}
	buf := make([]byte, dns.MinMsgSize)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return err
		}
		var answer dns.Msg
		if answer.Unpack(buf[:n]) != nil || answer.Id != q.Id {
			continue // not the answer to this query
		}
		if answer.Rcode != dns.RcodeSuccess {
			return fmt.Errorf("rcode %s", dns.RcodeToString[answer.Rcode])
		}
		return nil
	}
}
