package probertest

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/prober/check"
)

// TotalAlloc is the bytes allocated by the process so far.
func TotalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// EndlessHeader answers a request with a status line and then one header
// line that never ends, until the connection breaks.
func EndlessHeader(status string) func(c net.Conn) {
	return func(c net.Conn) {
		if ReadRequest(c) != nil {
			return
		}
		io.WriteString(c, status+"\r\nX-Endless: ")
		chunk := bytes.Repeat([]byte("a"), 64<<10)
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}
}

// DrainChecks waits until no check of the module runs any more, so that
// one abandoned by its probe does not eat the CPU of the next tests.
func DrainChecks(t *testing.T, slots check.Slots) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for range cap(slots) {
		select {
		case slots <- struct{}{}:
		case <-deadline:
			t.Fatal("a check still runs two minutes after its probe ended")
		}
	}
	for range cap(slots) {
		<-slots
	}
}
