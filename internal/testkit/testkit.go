// Package testkit holds helpers shared by the tests of several packages.
// Nothing in sonde itself imports it.
package testkit

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer that a process (or a logger) may write while
// the test reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *SyncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// Binary is the sonde binary of the repository at a root, built once for
// all the tests of a package that run it.
type Binary struct {
	root string
	once sync.Once
	dir  string
	path string
	err  error
}

// SondeBinary returns the binary `go build` makes in root, built on first
// use. Call Remove when the package's tests are done (in TestMain).
func SondeBinary(root string) *Binary { return &Binary{root: root} }

// Path builds the binary if it is not built yet and returns its path; a
// build that fails fails the test.
func (b *Binary) Path(tb testing.TB) string {
	tb.Helper()
	b.once.Do(b.build)
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.path
}

func (b *Binary) build() {
	b.dir, b.err = os.MkdirTemp("", "sonde-test")
	if b.err != nil {
		return
	}
	b.path = filepath.Join(b.dir, "sonde")
	cmd := exec.Command("go", "build", "-o", b.path, ".")
	cmd.Dir = b.root
	if out, err := cmd.CombinedOutput(); err != nil {
		b.err = fmt.Errorf("go build: %w\n%s", err, out)
	}
}

// Remove deletes the built binary, if any.
func (b *Binary) Remove() {
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

// ServeConns hands each connection ln accepts to handle, on a goroutine of
// its own; the connection is closed when handle returns. When the test
// ends it closes ln and the connections still open, and waits for the
// handlers. A handler that should keep its peer waiting blocks (reading,
// or sleeping) rather than return.
func ServeConns(tb testing.TB, ln net.Listener, handle func(net.Conn)) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		open = map[net.Conn]struct{}{}
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(open, c)
					mu.Unlock()
					c.Close()
				}()
				handle(c)
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// SilentUDP returns a loopback UDP address whose socket reads every
// datagram and answers none, until the test ends.
func SilentUDP(tb testing.TB) string {
	tb.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	tb.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String()
}
