package hostile

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// maxFrame is the largest HTTP/2 frame a peer may send without the
// client raising it: sonde never does.
const maxFrame = 16 << 10

// h2Peer speaks HTTP/2 as far as the client's request: it reads the
// preface, exchanges settings and waits for the request's headers, then
// lets then answer on the request's stream.
func h2Peer(then func(c net.Conn, fr *http2.Framer, stream uint32)) func(net.Conn) {
	return func(c net.Conn) {
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := readFull(c, preface); err != nil {
			return
		}
		fr := http2.NewFramer(c, c)
		if fr.WriteSettings() != nil {
			return
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() && fr.WriteSettingsAck() != nil {
					return
				}
			case *http2.HeadersFrame:
				then(c, fr, f.StreamID)
				return
			}
		}
	}
}

// headerBlock encodes fields, each as a literal never indexed, so that a
// block repeated is decoded in full every time.
func headerBlock(fields ...string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1], Sensitive: true})
	}
	return buf.Bytes()
}

// grpcAnswer is the header block that starts a gRPC answer.
func grpcAnswer() []byte { return headerBlock(":status", "200", "content-type", "application/grpc") }

// endlessHeaders starts an answer's header block and continues it,
// frame after frame, up to floodCap, without ever ending it.
func endlessHeaders(c net.Conn, fr *http2.Framer, stream uint32) {
	pad := strings.Repeat("p", 1000)
	var fields []string
	for range 15 {
		fields = append(fields, "x-pad", pad)
	}
	block := headerBlock(fields...)
	if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: grpcAnswer()}) != nil {
		return
	}
	for sent := 0; sent < floodCap; sent += len(block) {
		if fr.WriteContinuation(stream, false, block) != nil {
			return
		}
	}
	drain(c)
}

// endlessBody answers with headers and a message that says it has
// almost 4 MiB, then data frames without end, up to floodCap.
func endlessBody(c net.Conn, fr *http2.Framer, stream uint32) {
	if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: grpcAnswer(), EndHeaders: true}) != nil {
		return
	}
	data := bytes.Repeat([]byte{0x08}, maxFrame)
	copy(data, []byte{0, 0x00, 0x3f, 0xff, 0xff}) // uncompressed, 4 MiB - 1
	for sent := 0; sent < floodCap; sent += len(data) {
		if fr.WriteData(stream, false, data) != nil {
			return
		}
	}
	drain(c)
}

// hugeFrame announces a data frame of 16 MiB - 1 on the stream, a
// thousand times what the client allows.
func hugeFrame(c net.Conn, _ *http2.Framer, stream uint32) {
	say([]byte{0xff, 0xff, 0xff, byte(http2.FrameData), 0, 0, 0, 0, byte(stream)})(c)
}

func grpcRows() []row {
	const tlsNoVerify = "tls: true\ntls_config:\n  insecure_skip_verify: true"
	peer := func(handle func(net.Conn)) func(*testing.T) string {
		return func(t *testing.T) string { return serveTCP(t, handle) }
	}
	failing := func(name, section string, handle func(net.Conn), class taxonomy.Class, reason taxonomy.Reason) row {
		return row{name: name, prober: "grpc", section: section, peer: peer(handle), class: class, reason: reason, maxAlloc: smallAlloc}
	}
	timeout := func(name, section string, handle func(net.Conn)) row {
		return failing(name, section, handle, taxonomy.ClassTimeout, taxonomy.ReasonDeadline)
	}
	malformed := func(name string, handle func(net.Conn)) row {
		return failing(name, "", handle, taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse)
	}
	return []row{
		timeout("grpc/silence after connect", "", drain),
		timeout("grpc/stalled TLS", tlsNoVerify, drain),
		timeout("grpc/partial TLS", tlsNoVerify, partialTLS),
		timeout("grpc/silence after settings", "", h2Peer(func(c net.Conn, _ *http2.Framer, _ uint32) { drain(c) })),
		malformed("grpc/not HTTP/2", func(c net.Conn) {
			if _, err := c.Read(make([]byte, 1024)); err == nil {
				say([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))(c)
			}
		}),
		malformed("grpc/huge frame", h2Peer(hugeFrame)),
		{
			// Decoded up to sonde's 1 MiB limit on a header list.
			name: "grpc/endless header list", prober: "grpc", peer: peer(h2Peer(endlessHeaders)), alone: true,
			class: taxonomy.ClassProtocol, reason: taxonomy.ReasonMalformedResponse, maxAlloc: 8 * MiB,
		},
		{
			// Read up to sonde's 4 MiB limit on a message, into a buffer
			// grown by appending.
			name: "grpc/endless body", prober: "grpc", peer: peer(h2Peer(endlessBody)), alone: true,
			class: taxonomy.ClassProtocol, reason: taxonomy.ReasonMalformedResponse, maxAlloc: 32 * MiB,
		},
	}
}
