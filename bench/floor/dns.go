package floor

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"

	"github.com/miekg/dns"
)

// probeDNS asks the server at target for name's A records over UDP and
// checks the answer is a NOERROR answer to the query. The query is packed
// once; a probe only gives it a fresh ID. Of the answer only the header
// is read: decoding its records is the exporter's work, not the network's.
func probeDNS(name string) (probeFunc, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	packed, err := q.Pack()
	if err != nil {
		return nil, fmt.Errorf("packing the query for %q: %w", name, err)
	}
	return func(ctx context.Context, target string) error {
		host, port, err := net.SplitHostPort(target)
		if err != nil {
			return err
		}
		addr, err := resolve(ctx, host)
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
		return exchange(conn, packed)
	}, nil
}

// exchange sends the query with a fresh ID and reads until its answer.
func exchange(conn net.Conn, packed []byte) error {
	query := make([]byte, len(packed), dns.MinMsgSize)
	copy(query, packed)
	id := uint16(rand.Uint32())
	binary.BigEndian.PutUint16(query, id)
	if _, err := conn.Write(query); err != nil {
		return err
	}
	buf := query[:dns.MinMsgSize]
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return err
		}
		// The header: ID, then QR and the opcode in the third byte, the
		// rcode in the low bits of the fourth.
		if n < 12 || binary.BigEndian.Uint16(buf) != id || buf[2]&0x80 == 0 {
			continue // not the answer to this query
		}
		if rcode := buf[3] & 0x0f; rcode != dns.RcodeSuccess {
			return fmt.Errorf("rcode %s", dns.RcodeToString[int(rcode)])
		}
		return nil
	}
}
