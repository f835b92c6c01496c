package check

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/probelog"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
	"github.com/sonde-exporter/sonde/prober/tlsfacts"
)

// This file runs query_response scripts: the expect / expect_bytes / send /
// starttls steps of the tcp, unix and websocket probers. The transport is
// behind the Conversation interface; the steps, their metrics and their
// failures are the same whatever carries them.

// Conversation is what a script talks over.
type Conversation interface {
	// Expect reads until re matches: any line of a stream (or the part of
	// a line read so far, for prompts without a newline), or the next
	// message of a websocket, which must match. A nil match with a nil
	// error is a unit that did not match; io.EOF means the input ended
	// before a match. data is what was read last.
	Expect(re *regexp.Regexp) (data []byte, match []int, err error)
	// ExpectBytes reads exactly n bytes.
	ExpectBytes(n int) ([]byte, error)
	// Send writes one unit: a line with "\n" added, or one message.
	Send(s string) error
	// StartTLS upgrades the transport to TLS, exporting the TLS metrics.
	StartTLS(ctx context.Context) error
}

// ScriptMetrics are the gauges a script sets. bytes is nil for probers
// without probe_failed_due_to_bytes.
type ScriptMetrics struct {
	Sink         *probemetrics.Sink
	Regex, bytes *probemetrics.Gauge
}

// RunScript runs every step in order; the first failure ends the script.
// A failure's phase names its step (query_step_N, N from 0, as in the
// configuration), so an operator can tell which expect did not match.
func RunScript(ctx context.Context, steps []config.QueryResponse, c Conversation, mx ScriptMetrics, logger *slog.Logger) error {
	for i := range steps {
		probelog.Debug(logger, "Running query_response step", "step", i)
		if err := runStep(ctx, i, &steps[i], c, mx, logger); err != nil {
			return err
		}
	}
	return nil
}

func runStep(ctx context.Context, i int, step *config.QueryResponse, c Conversation, mx ScriptMetrics, logger *slog.Logger) error {
	phase := taxonomy.QueryStep(i)
	send := step.Send
	if step.Expect.IsSet() {
		data, match, err := c.Expect(step.Expect.Regexp)
		switch {
		case errors.Is(err, io.EOF):
			mx.Regex.Set(1)
			return inputEnded(i, step.Expect.String(), data)
		case err != nil:
			return taxonomy.Classify(ctx, fmt.Errorf("step %d: reading while waiting for %q: %w", i, step.Expect.String(), err), phase)
		case match == nil:
			mx.Regex.Set(1)
			return taxonomy.Failf(taxonomy.ClassAssertion, taxonomy.ReasonExpect, phase, "step %d: expect %q did not match %q", i, step.Expect.String(), truncate(data, 200))
		}
		mx.Regex.Set(0)
		probelog.Debug(logger, "Expect matched", "step", i, "regexp", step.Expect.String(), "line", string(data))
		send = string(step.Expect.Expand(nil, []byte(send), data, match))
		if err := recordExpectInfo(mx.Sink, step, data, match, phase); err != nil {
			return err
		}
	}
	if step.ExpectBytes != "" {
		if err := expectBytes(ctx, i, step.ExpectBytes, c, mx); err != nil {
			return err
		}
	}
	if send != "" {
		probelog.Debug(logger, "Sending", "step", i, "data", send)
		if err := c.Send(send); err != nil {
			return taxonomy.Classify(ctx, fmt.Errorf("step %d: sending: %w", i, err), phase)
		}
	}
	if step.StartTLS {
		return c.StartTLS(ctx)
	}
	return nil
}

// inputEnded reports an expect that the input ended without meeting:
// nothing read at all is the peer hanging up, anything else a mismatch.
func inputEnded(i int, pattern string, last []byte) error {
	if len(last) == 0 {
		return taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonUnexpectedEOF, taxonomy.QueryStep(i),
			"step %d: the peer closed the connection before expect %q matched", i, pattern)
	}
	return taxonomy.Failf(taxonomy.ClassAssertion, taxonomy.ReasonExpect, taxonomy.QueryStep(i),
		"step %d: expect %q matched nothing before the input ended; last read: %q", i, pattern, truncate(last, 200))
}

func expectBytes(ctx context.Context, i int, want string, c Conversation, mx ScriptMetrics) error {
	got, err := c.ExpectBytes(len(want))
	if err != nil {
		return taxonomy.Classify(ctx, fmt.Errorf("step %d: reading %d bytes for expect_bytes: %w", i, len(want), err), taxonomy.QueryStep(i))
	}
	if mx.bytes != nil {
		mx.bytes.Set(0)
	}
	if !bytes.Equal(got, []byte(want)) {
		if mx.bytes != nil {
			mx.bytes.Set(1)
		}
		return taxonomy.Failf(taxonomy.ClassAssertion, taxonomy.ReasonExpect, taxonomy.QueryStep(i), "step %d: expect_bytes %q did not match the bytes read, %q", i, want, got)
	}
	return nil
}

// recordExpectInfo exports probe_expect_info with the step's labels, their
// values expanded from the expect's groups (${1}). A label name no
// Prometheus accepts (empty, or reserved with __) fails the probe: it
// would fail the whole exposition (blackbox's scrape of it fails).
func recordExpectInfo(sink *probemetrics.Sink, step *config.QueryResponse, data []byte, match []int, phase taxonomy.Phase) error {
	if len(step.Labels) == 0 {
		return nil
	}
	names := make([]string, len(step.Labels))
	values := make([]string, len(step.Labels))
	for i, l := range step.Labels {
		if !model.UTF8Validation.IsValidLabelName(l.Name) || strings.HasPrefix(l.Name, "__") {
			return taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonConfig, phase, "labels[%d]: %q cannot be a label name of probe_expect_info", i, l.Name)
		}
		names[i] = l.Name
		values[i] = string(step.Expect.Expand(nil, []byte(l.Value), data, match))
	}
	sink.GaugeVec("probe_expect_info", "Explicit content matched", names...).With(values...).Set(1)
	return nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// MaxLine bounds a line a stream keeps while looking for a match, so that
// a peer that never sends a newline cannot make sonde hold its output
// forever. It is the longest line blackbox's reader takes (bufio.Scanner's
// default), so a script fails on the same input in both.
const MaxLine = bufio.MaxScanTokenSize

// Stream is a conversation over a byte stream (tcp, unix), optionally
// upgraded to TLS by a starttls step.
type Stream struct {
	conn       net.Conn
	r          *bufio.Reader    // made on the first read: see reader
	tls        *tlsfacts.Client // the module's tls_config, prepared
	serverName string           // the name to verify a STARTTLS server as
	Sink       *probemetrics.Sink
	TLSTime    time.Duration // time spent in TLS handshakes
}

func NewStream(conn net.Conn, tlsConfig *tlsfacts.Client, serverName string, sink *probemetrics.Sink) *Stream {
	return &Stream{conn: conn, tls: tlsConfig, serverName: serverName, Sink: sink}
}

// Reader returns the buffered reader of the connection, made on first use:
// most tcp probes only connect, and its 4 KiB buffer was the largest
// allocation of such a probe.
func (s *Stream) Reader() *bufio.Reader {
	if s.r == nil {
		s.r = bufio.NewReader(s.conn)
	}
	return s.r
}

func (s *Stream) Expect(re *regexp.Regexp) ([]byte, []int, error) {
	var line, last []byte // the line being read, the last one that did not match
	r := s.Reader()
	for {
		if _, err := r.Peek(1); err != nil {
			if len(line) == 0 {
				line = last
			}
			if m := re.FindSubmatchIndex(line); m != nil && errors.Is(err, io.EOF) {
				return line, m, nil // a last line without a newline
			}
			return line, nil, err
		}
		buf, _ := r.Peek(r.Buffered())
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			line = bytes.TrimSuffix(append(line, buf[:i]...), []byte("\r"))
			r.Discard(i + 1)
			if m := re.FindSubmatchIndex(line); m != nil {
				return line, m, nil
			}
			last, line = line, last[:0]
			continue
		}
		// No newline yet: what has arrived may be a prompt that will not
		// get one, so it is matched as it stands.
		line = append(line, buf...)
		r.Discard(len(buf))
		if m := re.FindSubmatchIndex(line); m != nil {
			return line, m, nil
		}
		if len(line) > MaxLine {
			// No phase: the step that reads it fills it in.
			return line, nil, taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, "",
				"a line longer than %s arrived without a match", DescribeSize(MaxLine))
		}
	}
}

func (s *Stream) ExpectBytes(n int) ([]byte, error) {
	buf := make([]byte, n)
	_, err := io.ReadFull(s.Reader(), buf)
	return buf, err
}

func (s *Stream) Send(data string) error {
	_, err := io.WriteString(s.conn, data+"\n")
	return err
}

// Write sends raw bytes, for binary protocols (the postgres preset).
func (s *Stream) Write(b []byte) error {
	_, err := s.conn.Write(b)
	return err
}

// StartTLS upgrades the connection. Plaintext that arrived after the
// server's go-ahead would be read as if it came over TLS (the STARTTLS
// injection attack), so it fails the probe instead of being dropped.
func (s *Stream) StartTLS(ctx context.Context) error {
	if n := s.buffered(); n > 0 {
		return taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseTLS,
			"the server sent %d bytes of plaintext after agreeing to start TLS", n)
	}
	tc, took, err := tlsfacts.Handshake(ctx, s.conn, s.tls, s.serverName, s.Sink)
	s.TLSTime += took
	if err != nil {
		return err
	}
	s.conn, s.r = tc, nil
	return nil
}

// buffered is how many bytes arrived and were not read yet.
func (s *Stream) buffered() int {
	if s.r == nil {
		return 0
	}
	return s.r.Buffered()
}

// NewScriptMetrics registers the script gauges of the tcp and unix
// probers. Like blackbox_exporter they appear once connected, so a
// refused connection exports only the common metrics.
func NewScriptMetrics(sink *probemetrics.Sink) ScriptMetrics {
	regex := sink.Gauge("probe_failed_due_to_regex", "Indicates if the probe failed due to a regex")
	bytes := sink.Gauge("probe_failed_due_to_bytes", "Indicates if the probe failed due to bytes")
	return ScriptMetrics{Sink: sink, Regex: &regex, bytes: &bytes}
}
