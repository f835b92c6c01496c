package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ShippedFiles are the files of the source tree every archive carries
// beside the binary, as blackbox_exporter's carry blackbox.yml, LICENSE and
// NOTICE.
var ShippedFiles = []string{"example.yml", "LICENSE", "NOTICE"}

// Release writes release files of the tree at Builder.Root into Dist.
type Release struct {
	Builder Builder
	Dist    string
}

// CheckSources fails, before anything is built, when a file the release
// ships is missing from the tree: a release without its LICENSE must not
// happen quietly.
func (r Release) CheckSources() error {
	var missing []string
	for _, name := range ShippedFiles {
		path := filepath.Join(r.Builder.Root, name)
		fi, err := os.Stat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, name)
		case err != nil:
			return fmt.Errorf("release source: %w", err)
		case !fi.Mode().IsRegular():
			return fmt.Errorf("release source %s is not a regular file", path)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing from the tree at %s: %s (every release file ships %s)",
			r.Builder.Root, strings.Join(missing, ", "), strings.Join(ShippedFiles, ", "))
	}
	return nil
}

// Archive builds t's binary and writes its archive into Dist, returning the
// archive's path.
func (r Release) Archive(ctx context.Context, t Target) (string, error) {
	version := r.Builder.Stamp.Version
	binary, cleanup, err := r.buildBinary(ctx, t)
	if err != nil {
		return "", err
	}
	defer cleanup()
	files, err := r.archiveFiles(t, binary)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	write := WriteTarGz
	if t.ArchiveExt() == ".zip" {
		write = WriteZip
	}
	if err := write(&buf, t.ArchiveDir(version), files, r.Builder.Stamp.Date); err != nil {
		return "", fmt.Errorf("archive for %s: %w", t, err)
	}
	path := filepath.Join(r.Dist, t.ArchiveName(version))
	return path, writeFileAtomic(path, buf.Bytes(), 0o644)
}

// archiveFiles are the binary and ShippedFiles, with fixed modes whatever
// the tree's (a umask or a checkout must not change the archive).
func (r Release) archiveFiles(t Target, binary string) ([]File, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("archive for %s: %w", t, err)
	}
	files := []File{{Name: t.BinaryName(), Mode: 0o755, Data: data}}
	for _, name := range ShippedFiles {
		data, err := os.ReadFile(filepath.Join(r.Builder.Root, name))
		if err != nil {
			return nil, fmt.Errorf("archive for %s: %w", t, err)
		}
		files = append(files, File{Name: name, Mode: 0o644, Data: data})
	}
	return files, nil
}

// buildBinary builds t's binary in a scratch directory under Dist, which
// cleanup removes.
func (r Release) buildBinary(ctx context.Context, t Target) (path string, cleanup func(), err error) {
	if err := os.MkdirAll(r.Dist, 0o755); err != nil {
		return "", nil, fmt.Errorf("release directory: %w", err)
	}
	scratch, err := os.MkdirTemp(r.Dist, ".build-"+t.OS+"-"+t.Arch+"-")
	if err != nil {
		return "", nil, fmt.Errorf("release directory: %w", err)
	}
	cleanup = func() { os.RemoveAll(scratch) }
	path = filepath.Join(scratch, t.BinaryName())
	if err := r.Builder.Build(ctx, t, path); err != nil {
		cleanup()
		return "", nil, err
	}
	return path, cleanup, nil
}
