//go:build unix

package regularfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mkfifo makes a named pipe that nothing writes to: opening it the usual
// way would wait for ever.
func mkfifo(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("cannot make a named pipe: %v", err)
	}
	return path
}

// readWithin reads path, failing the test if that blocks: a margin far
// beyond what opening a file takes, on any machine.
func readWithin(t *testing.T, path string) ([]byte, error) {
	t.Helper()
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		data, err := Read(path)
		done <- result{data, err}
	}()
	select {
	case r := <-done:
		return r.data, r.err
	case <-time.After(10 * time.Second):
		t.Fatalf("reading %s blocked", path)
		return nil, nil
	}
}

func TestReadRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, path, kind string
	}{
		{"named pipe", mkfifo(t), "a named pipe (FIFO)"},
		{"directory", dir, "a directory"},
		{"character device", os.DevNull, "a character device"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readWithin(t, tc.path)
			var nr *NotRegularError
			if !errors.As(err, &nr) {
				t.Fatalf("Read(%s) = %v, want a NotRegularError", tc.path, err)
			}
			for _, want := range []string{tc.path, tc.kind, "it must be a regular file"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q does not say %q", err, want)
				}
			}
		})
	}
}

func TestReadReadsRegularFilesAndLinks(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, []byte("content"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{file, link} {
		data, err := readWithin(t, path)
		if err != nil || string(data) != "content" {
			t.Errorf("Read(%s) = %q, %v", path, data, err)
		}
	}
	if _, err := Read(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v, want ErrNotExist", err)
	}
}
