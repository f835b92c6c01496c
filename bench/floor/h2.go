package floor

import (
	"bufio"
	"bytes"
	"fmt"
	"net"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Answer is what the server answered on the one stream of a call.
type h2Answer struct {
	status     string // :status
	grpcStatus string // grpc-status, from the trailers or trailers-only headers
	body       []byte
}

// h2Call makes one request on conn, fresh and speaking HTTP/2 from its
// first byte, and reads the answer to the end of its stream. It is the
// least HTTP/2 a call needs: the preface, empty settings and the
// request's frames leave in one write, without waiting for the server's
// settings (HTTP/2 allows it); the server's settings are acknowledged as
// HTTP/2 requires, and every other frame but the stream's is ignored.
func h2Call(conn net.Conn, fields []hpack.HeaderField, body []byte) (h2Answer, error) {
	var out, block bytes.Buffer
	fr := http2.NewFramer(&out, bufio.NewReaderSize(conn, 4<<10))
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	enc := hpack.NewEncoder(&block)
	for _, f := range fields {
		if err := enc.WriteField(f); err != nil {
			return h2Answer{}, err
		}
	}
	out.WriteString(http2.ClientPreface)
	if err := writeRequest(fr, block.Bytes(), body); err != nil {
		return h2Answer{}, err
	}
	if err := flush(conn, &out); err != nil {
		return h2Answer{}, err
	}
	return readStream(conn, fr, &out)
}

// writeRequest frames the settings and the request on stream 1.
func writeRequest(fr *http2.Framer, block, body []byte) error {
	if err := fr.WriteSettings(); err != nil {
		return err
	}
	err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: len(body) == 0, EndHeaders: true})
	if err != nil || len(body) == 0 {
		return err
	}
	return fr.WriteData(1, true, body)
}

func flush(conn net.Conn, out *bytes.Buffer) error {
	_, err := conn.Write(out.Bytes())
	out.Reset()
	return err
}

// readStream reads frames until stream 1 ends, taking its status from
// the header blocks and its body from the data frames. The answers it
// reads are small: they fit in HTTP/2's initial windows, and no window
// update is sent.
func readStream(conn net.Conn, fr *http2.Framer, out *bytes.Buffer) (h2Answer, error) {
	var a h2Answer
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return a, err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			if err := fr.WriteSettingsAck(); err != nil {
				return a, err
			}
			if err := flush(conn, out); err != nil {
				return a, err
			}
		case *http2.MetaHeadersFrame:
			a.take(f)
			if f.StreamEnded() {
				return a, nil
			}
		case *http2.DataFrame:
			a.body = append(a.body, f.Data()...)
			if f.StreamEnded() {
				return a, nil
			}
		case *http2.RSTStreamFrame:
			return a, fmt.Errorf("stream reset: %v", f.ErrCode)
		case *http2.GoAwayFrame:
			if f.ErrCode != http2.ErrCodeNo {
				return a, fmt.Errorf("GOAWAY: %v", f.ErrCode)
			}
		}
	}
}

func (a *h2Answer) take(f *http2.MetaHeadersFrame) {
	if s := f.PseudoValue("status"); s != "" {
		a.status = s
	}
	for _, hf := range f.RegularFields() {
		if hf.Name == "grpc-status" {
			a.grpcStatus = hf.Value
		}
	}
}
