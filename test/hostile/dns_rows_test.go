package hostile

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// udpFlood is how long a flooding DNS peer keeps sending: past the
// probe's deadline.
const udpFlood = deadline + 500*time.Millisecond

// serveUDP hands each datagram to a loopback UDP port to answer, with a
// function that replies to its sender, until the test ends; it returns
// the port's address.
func serveUDP(t *testing.T, answer func(query []byte, reply func([]byte) error)) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			answer(buf[:n], func(b []byte) error { _, err := pc.WriteTo(b, from); return err })
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String()
}

// response is a valid answer to query with another id, or nil if the
// query does not parse.
func response(query []byte, idOffset uint16) []byte {
	q := new(dns.Msg)
	if err := q.Unpack(query); err != nil {
		return nil
	}
	m := new(dns.Msg)
	m.SetReply(q)
	m.Id += idOffset
	out, _ := m.Pack()
	return out
}

// garbageAnswer is the query's id and a response's flags followed by
// bytes that are no DNS message: the id keeps it from being skipped as
// another query's answer, the flags from reading as truncated.
func garbageAnswer(query []byte) []byte {
	if len(query) < 2 {
		return nil
	}
	return append([]byte{query[0], query[1]}, "\x81\x80 this is not a DNS message"...)
}

// framed prefixes a message with its length, as DNS over TCP does.
func framed(msg []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...)
}

// afterQuery reads a length-prefixed query and lets then answer it.
func afterQuery(then func(c net.Conn, query []byte)) func(net.Conn) {
	return func(c net.Conn) {
		var size [2]byte
		if _, err := readFull(c, size[:]); err != nil {
			return
		}
		query := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := readFull(c, query); err != nil {
			return
		}
		then(c, query)
	}
}

func readFull(c net.Conn, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// answerThen sends what answer makes of the query, then does then.
func answerThen(answer func(query []byte) []byte, then func(net.Conn)) func(net.Conn) {
	return afterQuery(func(c net.Conn, query []byte) {
		if _, err := c.Write(answer(query)); err == nil {
			then(c)
		}
	})
}

// hangUp returns at once: the connection closes.
func hangUp(net.Conn) {}

func dnsRows() []row {
	const (
		query = "query_name: example.test\nquery_type: A\n"
		udp   = query + "transport_protocol: udp"
		tcp   = query + "transport_protocol: tcp"
		dot   = tcp + "\ndns_over_tls: true\ntls_config:\n  insecure_skip_verify: true"
		doh   = query + "transport_protocol: https\ntls_config:\n  insecure_skip_verify: true"
	)
	udpPeer := func(answer func([]byte, func([]byte) error)) func(*testing.T) string {
		return func(t *testing.T) string { return serveUDP(t, answer) }
	}
	tcpPeer := func(handle func(net.Conn)) func(*testing.T) string {
		return func(t *testing.T) string { return serveTCP(t, handle) }
	}
	dohPeer := func(handle func(net.Conn)) func(*testing.T) string {
		return func(t *testing.T) string { return "https://" + serveTLS(t, handle) + "/dns-query" }
	}
	failing := func(name, section string, peer func(*testing.T) string, class taxonomy.Class, reason taxonomy.Reason) row {
		return row{name: name, prober: "dns", section: section, peer: peer, class: class, reason: reason, maxAlloc: smallAlloc}
	}
	timeout := func(name, section string, peer func(*testing.T) string) row {
		return failing(name, section, peer, taxonomy.ClassTimeout, taxonomy.ReasonDeadline)
	}
	malformed := func(name, section string, peer func(*testing.T) string) row {
		return failing(name, section, peer, taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse)
	}
	eof := func(name, section string, peer func(*testing.T) string) row {
		return failing(name, section, peer, taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF)
	}
	return []row{
		timeout("dns/udp silence", udp, udpPeer(func([]byte, func([]byte) error) {})),
		malformed("dns/udp garbage", udp, udpPeer(func(q []byte, reply func([]byte) error) { reply(garbageAnswer(q)) })),
		// Over UDP an answer of another id is a late answer to another
		// query, skipped: the probe waits for its own.
		timeout("dns/udp wrong id", udp, udpPeer(func(q []byte, reply func([]byte) error) { reply(response(q, 1)) })),
		{
			// Answers of another id as fast as loopback carries them,
			// each skipped, into one buffer, and logged once. Read each
			// into a 4 KiB buffer of its own, each with a line in the
			// probe's log, they cost 200 to 700 MiB of allocations, and
			// 20 to 30 MiB of log kept in the history.
			name: "dns/udp wrong id flood", prober: "dns", section: udp, alone: true,
			peer: udpPeer(func(q []byte, reply func([]byte) error) {
				wrong := response(q, 1)
				for start := time.Now(); time.Since(start) < udpFlood; {
					if reply(wrong) != nil {
						return
					}
				}
			}),
			class: taxonomy.ClassTimeout, reason: taxonomy.ReasonDeadline, maxAlloc: 16 * MiB,
		},

		timeout("dns/tcp silence", tcp, tcpPeer(drain)),
		malformed("dns/tcp garbage", tcp, tcpPeer(answerThen(func(q []byte) []byte { return framed(garbageAnswer(q)) }, drain))),
		malformed("dns/tcp wrong id", tcp, tcpPeer(answerThen(func(q []byte) []byte { return framed(response(q, 1)) }, drain))),
		eof("dns/tcp truncated length prefix", tcp, tcpPeer(answerThen(func([]byte) []byte { return []byte{0x02} }, hangUp))),
		eof("dns/tcp truncated message", tcp, tcpPeer(answerThen(func([]byte) []byte { return []byte{0x02, 0x00, 0xab, 0xcd} }, hangUp))),
		timeout("dns/tcp stalled message", tcp, tcpPeer(answerThen(func([]byte) []byte { return []byte{0x02, 0x00, 0xab, 0xcd} }, drain))),
		// The largest length a prefix can say, and as much garbage as
		// the prober reads.
		malformed("dns/tcp huge length", tcp, tcpPeer(afterQuery(func(c net.Conn, _ []byte) { flood("\xff\xff", "A")(c) }))),
		timeout("dns/tcp huge length stalled", tcp, tcpPeer(answerThen(func([]byte) []byte { return []byte{0xff, 0xff} }, drain))),

		timeout("dns/tls stalled TLS", dot, tcpPeer(drain)),
		timeout("dns/tls partial TLS", dot, tcpPeer(partialTLS)),
		timeout("dns/tls silence after handshake", dot, func(t *testing.T) string { return serveTLS(t, drain) }),

		timeout("dns/https stalled TLS", doh, func(t *testing.T) string { return "https://" + serveTCP(t, drain) + "/dns-query" }),
		timeout("dns/https silence after handshake", doh, dohPeer(drain)),
		// Before issue 18, protocol/malformed_response about half the
		// time: net/http reads the status line the deadline cut short.
		timeout("dns/https slowloris answer", doh, dohPeer(afterRequest(trickle(statusLine+"Content-Type: application/dns-message\r\n", header)))),
		{
			name: "dns/https endless headers", prober: "dns", section: doh, alone: true,
			peer:  dohPeer(afterRequest(flood(statusLine, header))),
			class: taxonomy.ClassProtocol, reason: taxonomy.ReasonMalformedResponse, maxAlloc: headerAlloc,
		},
		{
			// Read up to the largest DNS message, 64 KiB.
			name: "dns/https endless body", prober: "dns", section: doh, alone: true,
			peer:  dohPeer(afterRequest(flood(statusLine+"Content-Type: application/dns-message\r\n\r\n", "garbage "))),
			class: taxonomy.ClassProtocol, reason: taxonomy.ReasonMalformedResponse, maxAlloc: 4 * MiB,
		},
		malformed("dns/https garbage body", doh, dohPeer(afterRequest(say([]byte(statusLine+"Content-Type: application/dns-message\r\nContent-Length: 12\r\n\r\nnot DNS, no!"))))),
	}
}
