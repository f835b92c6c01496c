package testkit

import (
	"regexp"
	"testing"
	"time"
)

// Exporters the tests start (sonde, blackbox_exporter, Prometheus,
// Alertmanager) are given --web.listen-address=127.0.0.1:0, so the kernel
// picks their port as they bind it, and the test reads the port from
// their log: exporter-toolkit logs the address of the bound listener.

// AnyPort is the listen address that lets the kernel pick the port.
const AnyPort = "127.0.0.1:0"

// listeningOn matches exporter-toolkit's line, in logfmt, whatever other
// fields (a component) sit between the message and the address. The
// address must be followed by a space or the line's end: a line being
// written may be read cut short.
var listeningOn = regexp.MustCompile(`msg="Listening on"(?: [^ \n]+)*? address=([^ \n]+)[ \n]`)

// ListenAddress returns the address a process's log says it listens on,
// and whether the log says so yet.
func ListenAddress(log string) (string, bool) {
	m := listeningOn.FindStringSubmatch(log)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// WaitListening polls log, the process's log so far, until it says where
// the process listens, and returns that address. It fails the test if the
// process exits first (exited is closed) or the timeout passes.
func WaitListening(tb testing.TB, name string, log func() string, exited <-chan struct{}, timeout time.Duration) string {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		if addr, ok := ListenAddress(log()); ok {
			return addr
		}
		select {
		case <-exited:
			tb.Fatalf("%s exited before it listened:\n%s", name, log())
		case <-deadline.C:
			tb.Fatalf("%s did not say where it listens within %v:\n%s", name, timeout, log())
		case <-poll.C:
		}
	}
}
