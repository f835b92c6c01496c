package hostile

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

const (
	// expectOK is a tcp or unix module waiting for a banner.
	expectOK = "query_response:\n  - expect: \"^OK\""
	// tlsNoVerify is a tcp or unix module that speaks TLS first; the
	// handshake never gets as far as the certificate.
	tlsNoVerify = "tls: true\ntls_config:\n  insecure_skip_verify: true\n  server_name: peer.test"
	// banner is one line of an endless banner that never says OK.
	banner = "NOISE: the banner goes on and on\n"
	// longLine is the size of an oversized line: far past the 64 KiB
	// sonde and blackbox read of one line.
	longLine = 1 << 20
	// noiseLine is the size of a line of an endless banner of long lines,
	// within the limit on a line. Long, so that lines arrive by the
	// thousand a second rather than the million: under the race detector
	// sync.Pool drops a quarter of what it is given, and each line's
	// match would take a fresh regexp machine.
	noiseLine = 16 << 10
)

// noise is one line of an endless banner of long lines that never says OK.
func noise() string { return strings.Repeat("n", noiseLine-1) + "\n" }

// streamRows are the rows tcp and unix share, their peers served by
// serve.
func streamRows(proberName string, serve func(*testing.T, func(net.Conn)) string) []row {
	peer := func(handle func(net.Conn)) func(*testing.T) string {
		return func(t *testing.T) string { return serve(t, handle) }
	}
	timeout := func(name, section string, handle func(net.Conn)) row {
		return row{name: proberName + "/" + name, prober: proberName, section: section, peer: peer(handle),
			class: taxonomy.ClassTimeout, reason: taxonomy.ReasonDeadline, maxAlloc: smallAlloc}
	}
	return []row{
		timeout("silence after connect", expectOK, drain),
		timeout("slowloris banner", expectOK, trickle("", banner)),
		timeout("stalled TLS", tlsNoVerify, drain),
		timeout("partial TLS", tlsNoVerify, partialTLS),
		{
			// Lines are read one at a time and thrown away: the probe
			// waits for OK until its deadline, in a line buffer of its
			// own. Each line read into a new buffer would make hundreds of
			// MiB of garbage a second on loopback.
			name: proberName + "/endless banner", prober: proberName, section: expectOK, alone: true,
			peer:  peer(flood("", noise())),
			class: taxonomy.ClassTimeout, reason: taxonomy.ReasonDeadline, maxAlloc: 4 * MiB,
		},
		{
			name: proberName + "/oversized line", prober: proberName, section: expectOK, alone: true,
			peer:  peer(say(bytes.Repeat([]byte("x"), longLine))),
			class: taxonomy.ClassProtocol, reason: taxonomy.ReasonMalformedResponse, maxAlloc: 4 * MiB,
		},
		{
			name: proberName + "/endless line", prober: proberName, section: expectOK, alone: true,
			peer:  peer(flood("", "x")),
			class: taxonomy.ClassProtocol, reason: taxonomy.ReasonMalformedResponse, maxAlloc: 4 * MiB,
		},
	}
}

func tcpRows() []row { return streamRows("tcp", serveTCP) }

func unixRows() []row { return streamRows("unix", serveUnix) }
