package http

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/andybalholm/brotli"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/check"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// maxKeptBody bounds the body held in memory for body checks when the
// module sets no body_size_limit: a hostile or broken target must not be
// able to exhaust sonde's memory.
const maxKeptBody = 64 << 20

// readBody reads the whole response body, decompressing it as the module's
// compression option says, counting the uncompressed bytes and keeping
// them when keep is set. It enforces body_size_limit.
func (p *httpProbe) readBody(resp *http.Response, keep bool) ([]byte, error) {
	if !knownCompression(p.cfg.Compression) {
		return nil, p.undecodable(resp)
	}
	wire := &errorReader{r: resp.Body}
	decoded, err := decompress(p.cfg.Compression, wire)
	if errors.Is(err, errEmptyBody) {
		return nil, nil // nothing to decode: HEAD, 204, 304 or an empty 200
	}
	if err != nil {
		return nil, p.bodyError(wire, fmt.Errorf("the body is not valid %s: %w", p.cfg.Compression, err))
	}
	limit, own := int64(p.cfg.BodySizeLimit), false
	if limit == 0 && keep {
		limit, own = maxKeptBody, true
	}
	src := decoded
	if limit > 0 {
		src = io.LimitReader(decoded, limit+1)
	}
	var buf bytes.Buffer
	var dst io.Writer = io.Discard
	if keep {
		dst = &buf
	}
	n, err := io.Copy(dst, src)
	over := limit > 0 && n > limit
	if over {
		n = limit // what was read before the limit stopped the read
	}
	p.metrics.uncompressed.Set(float64(n))
	if keep && (err != nil || over) {
		// blackbox's body checks read the body themselves, and a check
		// whose read fails counts as failed.
		p.bodyUnreadable()
	}
	if err != nil {
		return nil, p.bodyError(wire, fmt.Errorf("reading the body: %w", err))
	}
	if over {
		return nil, tooLarge(limit, own)
	}
	return buf.Bytes(), nil
}

func tooLarge(limit int64, own bool) error {
	if own {
		return taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonBodyTooLarge, taxonomy.PhaseTransfer,
			"the body exceeds the %s sonde keeps in memory for body checks; set http.body_size_limit to choose a limit", check.DescribeSize(limit))
	}
	return taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonBodyTooLarge, taxonomy.PhaseTransfer, "the body exceeds body_size_limit (%s)", check.DescribeSize(limit))
}

// bodyError classifies a failure while reading the body: a network error
// (reset, deadline) is what the wire said; anything else came from the
// decompressor and means the body was not what the server declared.
func (p *httpProbe) bodyError(wire *errorReader, err error) error {
	if wire.err != nil && wire.err != io.EOF {
		if !errors.Is(err, wire.err) {
			// The decoder reported the cut in its own words (brotli:
			// "excessive input"); the wire's error is the cause.
			err = fmt.Errorf("reading the body: %w (the %s decoder: %v)", wire.err, p.cfg.Compression, err)
		}
		return taxonomy.Classify(p.ctx, err, taxonomy.PhaseTransfer)
	}
	if p.cfg.Compression != "" && !strings.EqualFold(p.cfg.Compression, "identity") {
		return taxonomy.Fail(taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseTransfer, err)
	}
	return taxonomy.Classify(p.ctx, err, taxonomy.PhaseTransfer)
}

// errorReader remembers the error its reader returned, to tell network
// failures from decoding failures.
type errorReader struct {
	r   io.Reader
	err error
}

func (e *errorReader) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil {
		e.err = err
	}
	return n, err
}

var errEmptyBody = errors.New("empty body")

func knownCompression(algorithm string) bool {
	return slices.Contains(config.Compressions, strings.ToLower(algorithm))
}

// undecodable fails a probe whose compression sonde has no decoder for.
// Like blackbox_exporter, it still reads the body, undecoded, and counts
// its bytes in probe_http_uncompressed_body_length.
func (p *httpProbe) undecodable(resp *http.Response) error {
	n, _ := io.Copy(io.Discard, resp.Body)
	p.metrics.uncompressed.Set(float64(n))
	return taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseTransfer, "http.compression %q is not an algorithm sonde can decode; use gzip, br, deflate or identity", p.cfg.Compression)
}

// decompress wraps r in the decoder for the configured compression. An
// empty body has nothing to decode (blackbox_exporter fails it as invalid
// gzip); it is reported as errEmptyBody.
func decompress(algorithm string, r io.Reader) (io.Reader, error) {
	algorithm = strings.ToLower(algorithm)
	if algorithm == "" || algorithm == "identity" {
		return r, nil
	}
	var first [1]byte
	n, err := io.ReadFull(r, first[:])
	if n == 0 && errors.Is(err, io.EOF) {
		return nil, errEmptyBody
	}
	if err != nil {
		return nil, err
	}
	r = io.MultiReader(bytes.NewReader(first[:]), r)
	switch algorithm {
	case "gzip":
		return gzip.NewReader(r)
	case "deflate":
		return flate.NewReader(r), nil
	case "br":
		return brotli.NewReader(r), nil
	}
	return nil, fmt.Errorf("unsupported compression %q", algorithm)
}
