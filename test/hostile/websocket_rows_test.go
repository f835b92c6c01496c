package hostile

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// switching starts a 101 answer that would be a valid upgrade once its
// headers end, but for Sec-WebSocket-Accept.
const switching = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"

// expectHello is a websocket module waiting for a greeting.
const expectHello = "query_response:\n  - expect: \"^hello\""

// wsPeer starts a peer on a loopback port and returns its ws:// URL.
func wsPeer(handle func(net.Conn)) func(t *testing.T) string {
	return func(t *testing.T) string { return "ws://" + serveTCP(t, handle) + "/" }
}

// upgraded completes the websocket handshake the prober asks for, then
// lets then speak.
func upgraded(then func(net.Conn)) func(net.Conn) {
	return func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		answer := switching + "Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n"
		if _, err := c.Write([]byte(answer)); err == nil {
			then(c)
		}
	}
}

// frameHeader is an unmasked server frame's header: fin, opcode and a
// payload length in its 64-bit form.
func frameHeader(fin bool, opcode byte, length uint64) []byte {
	h := []byte{opcode, 127, 0, 0, 0, 0, 0, 0, 0, 0}
	if fin {
		h[0] |= 0x80
	}
	binary.BigEndian.PutUint64(h[2:], length)
	return h
}

// frame is a whole unmasked frame carrying payload.
func frame(fin bool, opcode byte, payload string) string {
	return string(frameHeader(fin, opcode, uint64(len(payload)))) + payload
}

const (
	opContinuation = 0x0
	opText         = 0x1
)

func websocketRows() []row {
	timeout := func(name, section string, peer func(*testing.T) string) row {
		return row{name: name, prober: "websocket", section: section, peer: peer,
			class: taxonomy.ClassTimeout, reason: taxonomy.ReasonDeadline, maxAlloc: smallAlloc}
	}
	part := strings.Repeat("a", chunk)
	return []row{
		timeout("websocket/silence after connect", "", wsPeer(drain)),
		timeout("websocket/stalled TLS", "", func(t *testing.T) string { return "wss://" + serveTCP(t, drain) + "/" }),
		// Both were protocol/malformed_response before issue 18.
		timeout("websocket/slowloris upgrade status line", "", wsPeer(afterRequest(trickle(switching, header)))),
		timeout("websocket/trickled upgrade header", "", wsPeer(afterRequest(trickle(switching+header, header)))),
		timeout("websocket/silence after upgrade", expectHello, wsPeer(upgraded(drain))),
		timeout("websocket/trickled message", expectHello, wsPeer(upgraded(trickle(string(frameHeader(true, opText, 1000)), "a")))),
		{
			// The http prober's limit on a response's header. Before issue
			// 18 the header was read until the deadline: 160 to 500 MiB.
			name: "websocket/endless upgrade header", prober: "websocket", alone: true,
			peer:  wsPeer(afterRequest(flood(switching, header))),
			class: taxonomy.ClassProtocol, reason: taxonomy.ReasonMalformedResponse, maxAlloc: headerAlloc,
		},
		{
			name: "websocket/endless upgrade header line", prober: "websocket", alone: true,
			peer:  wsPeer(afterRequest(flood(switching+"X-Endless: ", "a"))),
			class: taxonomy.ClassProtocol, reason: taxonomy.ReasonMalformedResponse, maxAlloc: headerAlloc,
		},
		{
			name: "websocket/garbage upgrade answer", prober: "websocket",
			peer:  wsPeer(afterRequest(say([]byte("HTTP/1.1 one-oh-one Switching\r\n\r\n")))),
			class: taxonomy.ClassProtocol, reason: taxonomy.ReasonMalformedResponse, maxAlloc: smallAlloc,
		},
		{
			// A frame announcing a terabyte: refused on its header.
			name: "websocket/oversized frame", prober: "websocket", section: expectHello,
			peer:  wsPeer(upgraded(say(frameHeader(true, opText, 1<<40)))),
			class: taxonomy.ClassProtocol, reason: taxonomy.ReasonMalformedResponse, maxAlloc: smallAlloc,
		},
		{
			// One message in endless fragments: read up to sonde's 16 MiB
			// limit on a message, into a buffer grown by appending (35 MiB
			// allocated, 69 under the race detector).
			name: "websocket/endless message", prober: "websocket", section: expectHello, alone: true,
			peer:  wsPeer(upgraded(flood(frame(false, opText, part), frame(false, opContinuation, part)))),
			class: taxonomy.ClassProtocol, reason: taxonomy.ReasonMalformedResponse, maxAlloc: 96 * MiB,
		},
	}
}
