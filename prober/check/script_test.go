package check

import (
	"context"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// streamOver returns a Stream reading what the peer writes, and closes the
// peer's side once it is written.
func streamOver(t *testing.T, written string) *Stream {
	t.Helper()
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close() })
	go func() {
		io.WriteString(server, written)
		server.Close()
	}()
	client.SetDeadline(time.Now().Add(30 * time.Second))
	return NewStream(client, nil, "", probemetrics.NewSink())
}

func TestStreamExpect(t *testing.T) {
	for _, tc := range []struct {
		name, written, pattern string
		want                   string // the line matched; "" for no match
	}{
		{"a line", "220 ready\r\n", "^220", "220 ready"},
		{"a later line", "hello\nworld\n", "^world", "world"},
		{"a prompt without a newline", "login: ", "login:", "login: "},
		{"a last line without a newline", "first\nlast", "^last$", "last"},
		{"no match", "nothing\n", "^something", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := streamOver(t, tc.written)
			data, match, err := s.Expect(regexp.MustCompile(tc.pattern))
			if tc.want == "" {
				if match != nil {
					t.Fatalf("matched %q", data)
				}
				return
			}
			if err != nil || match == nil || string(data) != tc.want {
				t.Fatalf("Expect = %q, %v, %v; want %q", data, match, err, tc.want)
			}
		})
	}
}

func TestStreamRefusesALineTooLong(t *testing.T) {
	s := streamOver(t, strings.Repeat("a", MaxLine+2))
	_, _, err := s.Expect(regexp.MustCompile("^b"))
	if err == nil || !strings.Contains(err.Error(), "a line longer than") {
		t.Fatalf("Expect = %v, want a line too long", err)
	}
}

// Plaintext that arrives after the server agreed to start TLS would be
// read as if it came over TLS: it fails the probe.
func TestStartTLSRefusesInjectedPlaintext(t *testing.T) {
	s := streamOver(t, "220 go ahead\r\ninjected\r\n")
	if _, _, err := s.Expect(regexp.MustCompile("^220")); err != nil {
		t.Fatal(err)
	}
	s.Reader().Peek(1) // let the injected line arrive in the buffer
	err := s.StartTLS(context.Background())
	perr, ok := err.(*taxonomy.Error)
	if !ok || perr.Reason != taxonomy.ReasonMalformedResponse || perr.Phase != taxonomy.PhaseTLS {
		t.Fatalf("StartTLS = %v, want a malformed response in phase tls", err)
	}
}

func TestRunScriptNamesTheStep(t *testing.T) {
	s := streamOver(t, "220 ready\n")
	sink := probemetrics.NewSink()
	steps := []config.QueryResponse{{Expect: config.MustNewRegexp("^220")}, {Expect: config.MustNewRegexp("^250")}}
	err := RunScript(context.Background(), steps, s, NewScriptMetrics(sink), slog.New(slog.DiscardHandler))
	perr, ok := err.(*taxonomy.Error)
	if !ok || perr.Phase != taxonomy.QueryStep(1) {
		t.Fatalf("RunScript = %v, want a failure of step 1", err)
	}
	if v, _ := sink.Value("probe_failed_due_to_regex"); v != 1 {
		t.Errorf("probe_failed_due_to_regex = %v, want 1", v)
	}
}
