// Package regularfile opens the files a configuration names (the
// configuration itself, CA bundles, client keys, request bodies, secrets)
// and refuses what is not a regular file. Opening a named pipe for reading
// blocks until something opens it for writing, and reading a device such as
// /dev/zero may never end: either would hold a reload, and every reload
// queued behind it, or a probe, for ever.
package regularfile

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
)

// NotRegularError says that a path names something other than a regular
// file.
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is %s; it must be a regular file", e.Path, describe(e.Mode))
}

// describe names a file type in words an operator recognises.
func describe(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file"
}

// Open opens path for reading without waiting for a writer, and returns
// it with what fstat says of it, once it is known to be a regular file. A
// symbolic link is followed, as Kubernetes mounts secrets through links.
func Open(path string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, nil, &NotRegularError{Path: path, Mode: info.Mode()}
	}
	return f, info, nil
}

// Read returns the content of the regular file at path.
func Read(path string) ([]byte, error) {
	f, info, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadOpen(f, info)
}

// ReadOpen returns the content of f, opened by Open, whose fstat said info.
// The size is a hint: a file that grows while it is read is read to its
// end, as os.ReadFile reads it.
func ReadOpen(f *os.File, info fs.FileInfo) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, max(info.Size(), 0)+bytes.MinRead))
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.Name(), err)
	}
	return buf.Bytes(), nil
}
