package hostile

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

const (
	statusLine = "HTTP/1.1 200 OK\r\n"
	// header is one line of an endless header block.
	header = "X-Endless: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
	// bodyHead is an answer's head whose body runs until the connection
	// closes: no length, no chunks.
	bodyHead = statusLine + "Content-Type: text/plain\r\n\r\n"
	// hugeLocation is the size of an oversized redirect's Location.
	hugeLocation = 900_000
)

// httpPeer starts a peer on a loopback port and returns its http:// URL.
func httpPeer(handle func(net.Conn)) func(t *testing.T) string {
	return func(t *testing.T) string { return "http://" + serveTCP(t, handle) + "/" }
}

// httpsPeer is httpPeer for an https:// URL: the peer's TLS, if any, is
// its own doing.
func httpsPeer(handle func(net.Conn)) func(t *testing.T) string {
	return func(t *testing.T) string { return "https://" + serveTCP(t, handle) + "/" }
}

// redirect is an answer redirecting to location, on a connection kept
// alive.
func redirect(location string) []byte {
	return []byte("HTTP/1.1 302 Found\r\nLocation: " + location + "\r\nContent-Length: 0\r\n\r\n")
}

// followed is how many requests a probe makes in a redirect loop:
// blackbox's limit follows 10 redirects and refuses the eleventh.
const followed = 1 + 10

// redirectLoop starts a peer that redirects every request to itself, and
// checks when the test ends that the probe made as many requests as
// blackbox makes.
func redirectLoop(t *testing.T) string {
	var requests atomic.Int32
	answer := redirect("/loop")
	target := httpPeer(func(c net.Conn) {
		for readHead(c) == nil {
			requests.Add(1)
			if _, err := c.Write(answer); err != nil {
				return
			}
		}
	})(t)
	t.Cleanup(func() {
		if n := requests.Load(); n != followed {
			t.Errorf("the redirect loop got %d requests, want %d: the first and 10 redirects", n, followed)
		}
	})
	return target
}

func httpRows() []row {
	timeout := func(name string, peer func(*testing.T) string) row {
		return row{name: name, prober: "http", peer: peer,
			class: taxonomy.ClassTimeout, reason: taxonomy.ReasonDeadline, maxAlloc: smallAlloc}
	}
	return []row{
		timeout("http/slowloris status line", httpPeer(afterRequest(trickle(statusLine, header)))),
		timeout("http/slowloris headers", httpPeer(afterRequest(trickle(statusLine+header, header)))),
		timeout("http/slowloris body", httpPeer(afterRequest(trickle(statusLine+"Content-Length: 1000000\r\n\r\n", "body ")))),
		timeout("http/silence after connect", httpPeer(drain)),
		timeout("http/stalled TLS", httpsPeer(drain)),
		timeout("http/partial TLS", httpsPeer(partialTLS)),
		{
			// Read up to the 10 MiB limit on a response's header.
			name: "http/endless headers", prober: "http", alone: true,
			peer:  httpPeer(afterRequest(flood(statusLine, header))),
			class: taxonomy.ClassProtocol, reason: taxonomy.ReasonMalformedResponse, maxAlloc: headerAlloc,
		},
		{
			name: "http/endless header line", prober: "http", alone: true,
			peer:  httpPeer(afterRequest(flood(statusLine+"X-Endless: ", "a"))),
			class: taxonomy.ClassProtocol, reason: taxonomy.ReasonMalformedResponse, maxAlloc: headerAlloc,
		},
		{
			// Over TLS net/http's Transport reads the answer, with the
			// same limit.
			name: "http/endless headers over TLS", prober: "http", alone: true,
			section: "tls_config:\n  insecure_skip_verify: true",
			peer: func(t *testing.T) string {
				return "https://" + serveTLS(t, afterRequest(flood(statusLine, header))) + "/"
			},
			class: taxonomy.ClassProtocol, reason: taxonomy.ReasonMalformedResponse, maxAlloc: headerAlloc,
		},
		{
			// Without body checks or a limit the body is read, as
			// blackbox reads it, and thrown away as it comes.
			name: "http/endless body", prober: "http", alone: true,
			peer:  httpPeer(afterRequest(flood(bodyHead, "endless body\n"))),
			class: taxonomy.ClassTimeout, reason: taxonomy.ReasonDeadline, maxAlloc: 4 * MiB,
		},
		{
			name: "http/endless body over body_size_limit", prober: "http", alone: true,
			section: "body_size_limit: 1MiB",
			peer:    httpPeer(afterRequest(flood(bodyHead, "endless body\n"))),
			class:   taxonomy.ClassProtocol, reason: taxonomy.ReasonBodyTooLarge, maxAlloc: 4 * MiB,
		},
		{
			name: "http/garbage status line", prober: "http",
			peer:  httpPeer(afterRequest(say([]byte("HTTP/1.1 two hundred OK\r\n\r\n")))),
			class: taxonomy.ClassProtocol, reason: taxonomy.ReasonMalformedResponse, maxAlloc: smallAlloc,
		},
		{
			name: "http/not HTTP", prober: "http",
			peer:  httpPeer(afterRequest(say([]byte("\x00\x01\x02\x03 SSH-2.0-OpenSSH_9.6\r\n\r\n")))),
			class: taxonomy.ClassProtocol, reason: taxonomy.ReasonMalformedResponse, maxAlloc: smallAlloc,
		},
		{
			name: "http/redirect loop", prober: "http", peer: redirectLoop,
			class: taxonomy.ClassProtocol, reason: taxonomy.ReasonTooManyRedirects, maxAlloc: smallAlloc,
		},
		{
			// A loop of 900 KB Locations: eleven are read, resolved and
			// requested before the limit, about 10 MiB each in net/http,
			// as in blackbox. None may be kept whole in the probe's log
			// (before issue 18, 10 MiB of it stayed in the history).
			// Under the race detector on a loaded machine the loop takes
			// over a second.
			name: "http/oversized redirect loop", prober: "http", alone: true, timeout: 10 * time.Second,
			peer:  httpPeer(answerEach(redirect("/" + strings.Repeat("a", hugeLocation)))),
			class: taxonomy.ClassProtocol, reason: taxonomy.ReasonTooManyRedirects, maxAlloc: 160 * MiB,
		},
	}
}
