package tcp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/sonde-exporter/sonde/prober/check"
	"github.com/sonde-exporter/sonde/prober/probelog"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// STARTTLS presets: each runs its protocol's own exchange to ask for TLS,
// reading replies the way the protocol defines them (multi-line SMTP and
// FTP replies, tagged IMAP responses, postgres's one-byte answer), which a
// hand-written expect/send script easily gets wrong. The connection is
// then upgraded; the module's query_response runs over TLS afterwards.

// presets maps starttls_preset values to their exchanges.
var presets = map[string]func(s *check.Stream) error{
	"smtp":     smtpStartTLS,
	"imap":     imapStartTLS,
	"pop3":     pop3StartTLS,
	"ftp":      ftpStartTLS,
	"postgres": postgresStartTLS,
}

// presetHelo is the name sonde gives itself in SMTP's EHLO.
const presetHelo = "sonde.localdomain"

func runPreset(ctx context.Context, name string, s *check.Stream, logger *slog.Logger) error {
	probelog.Debug(logger, "Running the STARTTLS preset", "preset", name)
	if err := presets[name](s); err != nil {
		return taxonomy.Classify(ctx, fmt.Errorf("%s STARTTLS: %w", name, err), taxonomy.PhaseStartTLS)
	}
	return s.StartTLS(ctx)
}

func smtpStartTLS(s *check.Stream) error {
	if err := expectCode(s, "greeting", 220); err != nil {
		return err
	}
	if err := s.Send("EHLO " + presetHelo + "\r"); err != nil {
		return err
	}
	lines, err := codeReply(s, "EHLO", 250)
	if err != nil {
		return err
	}
	if !offersStartTLS(lines) {
		return taxonomy.Failf(taxonomy.ClassTLS, taxonomy.ReasonStartTLSRefused, taxonomy.PhaseStartTLS, "the server does not offer STARTTLS; its EHLO answer was %q", strings.Join(lines, " | "))
	}
	return askForTLS(s, "STARTTLS\r", 220)
}

func ftpStartTLS(s *check.Stream) error {
	if err := expectCode(s, "greeting", 220); err != nil {
		return err
	}
	return askForTLS(s, "AUTH TLS\r", 234)
}

// askForTLS sends the command that starts TLS and checks the go-ahead;
// any other answer means the server will not do TLS.
func askForTLS(s *check.Stream, command string, want int) error {
	if err := s.Send(command); err != nil {
		return err
	}
	code, lines, err := readCodeReply(s)
	if err != nil {
		return err
	}
	if code != want {
		return taxonomy.Failf(taxonomy.ClassTLS, taxonomy.ReasonStartTLSRefused, taxonomy.PhaseStartTLS, "%s was answered %q", strings.TrimSpace(command), strings.Join(lines, " | "))
	}
	return nil
}

func expectCode(s *check.Stream, what string, want int) error {
	_, err := codeReply(s, what, want)
	return err
}

// codeReply reads a reply that must carry code want; another code is the
// server declining service (status/reply_code).
func codeReply(s *check.Stream, what string, want int) ([]string, error) {
	code, lines, err := readCodeReply(s)
	if err != nil {
		return nil, err
	}
	if code != want {
		return nil, taxonomy.Failf(taxonomy.ClassStatus, taxonomy.ReasonReplyCode, taxonomy.PhaseStartTLS, "the %s was %q, not a %d reply", what, strings.Join(lines, " | "), want)
	}
	return lines, nil
}

// readCodeReply reads an SMTP or FTP reply: lines "NNN-text" continue it,
// the line "NNN text" ends it.
func readCodeReply(s *check.Stream) (int, []string, error) {
	var lines []string
	for {
		line, err := readLine(s)
		if err != nil {
			return 0, lines, err
		}
		lines = append(lines, line)
		code, err := strconv.Atoi(prefix(line, 3))
		if err != nil || len(line) < 3 {
			return 0, lines, taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseStartTLS, "expected a reply with a 3-digit code, got %q", line)
		}
		if len(line) == 3 || line[3] == ' ' {
			return code, lines, nil
		}
		if line[3] != '-' {
			return 0, lines, taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseStartTLS, "malformed reply line %q", line)
		}
	}
}

func offersStartTLS(ehlo []string) bool {
	for _, l := range ehlo[1:] { // the first line is the greeting
		if len(l) <= 4 {
			continue
		}
		if f := strings.Fields(l[4:]); len(f) > 0 && strings.EqualFold(f[0], "STARTTLS") {
			return true
		}
	}
	return false
}

func pop3StartTLS(s *check.Stream) error {
	greeting, err := readLine(s)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(greeting, "+OK") {
		return taxonomy.Failf(taxonomy.ClassStatus, taxonomy.ReasonReplyCode, taxonomy.PhaseStartTLS, "the greeting was %q, not +OK", greeting)
	}
	if err := s.Send("STLS\r"); err != nil {
		return err
	}
	answer, err := readLine(s)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(answer, "+OK") {
		return taxonomy.Failf(taxonomy.ClassTLS, taxonomy.ReasonStartTLSRefused, taxonomy.PhaseStartTLS, "STLS was answered %q", answer)
	}
	return nil
}

func imapStartTLS(s *check.Stream) error {
	greeting, err := readLine(s)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(greeting, "* OK") && !strings.HasPrefix(greeting, "* PREAUTH") {
		return taxonomy.Failf(taxonomy.ClassStatus, taxonomy.ReasonReplyCode, taxonomy.PhaseStartTLS, "the greeting was %q, not * OK", greeting)
	}
	if err := s.Send("s1 STARTTLS\r"); err != nil {
		return err
	}
	for {
		line, err := readLine(s)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "s1 ") {
			continue // untagged data, e.g. capabilities
		}
		if strings.HasPrefix(line, "s1 OK") {
			return nil
		}
		return taxonomy.Failf(taxonomy.ClassTLS, taxonomy.ReasonStartTLSRefused, taxonomy.PhaseStartTLS, "STARTTLS was answered %q", line)
	}
}

// postgresSSLRequest is the message a postgres client sends to ask for
// TLS: its length (8) and the request code 80877103.
var postgresSSLRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}

func postgresStartTLS(s *check.Stream) error {
	if err := s.Write(postgresSSLRequest); err != nil {
		return err
	}
	answer, err := s.ExpectBytes(1)
	if err != nil {
		return err
	}
	switch answer[0] {
	case 'S':
		return nil
	case 'N':
		return taxonomy.Failf(taxonomy.ClassTLS, taxonomy.ReasonStartTLSRefused, taxonomy.PhaseStartTLS, "the server answered N: it does not accept TLS")
	}
	return taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseStartTLS, "the server answered %q to the SSLRequest, not S or N", answer)
}

// readLine reads one line of a text protocol, without its CRLF.
func readLine(s *check.Stream) (string, error) {
	var line []byte
	for {
		frag, err := s.Reader().ReadSlice('\n')
		line = append(line, frag...)
		if err == nil {
			return string(bytes.TrimRight(line, "\r\n")), nil
		}
		if len(line) > check.MaxLine {
			return "", taxonomy.Failf(taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, "", "a line longer than %s", check.DescribeSize(check.MaxLine))
		}
		if !isBufferFull(err) {
			return "", err
		}
	}
}

func isBufferFull(err error) bool { return errors.Is(err, bufio.ErrBufferFull) }

func prefix(s string, n int) string {
	if len(s) < n {
		return s
	}
	return s[:n]
}
