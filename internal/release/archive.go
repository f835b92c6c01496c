package release

import (
	"archive/tar"
	"archive/zip"
	"compress/flate"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"
)

// File is one file of an archive, under the archive's directory.
type File struct {
	Name string // e.g. "sonde" or "LICENSE"
	Mode fs.FileMode
	Data []byte
}

// WriteTarGz writes dir/ and files under it as a gzipped tar. The bytes
// depend only on the arguments: entries sorted by name, every time mtime,
// owner and group 0 with no names, and a gzip header without a file name
// or time.
func WriteTarGz(w io.Writer, dir string, files []File, mtime time.Time) error {
	gz, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	dirHeader := &tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: mtime}
	if err := tw.WriteHeader(dirHeader); err != nil {
		return fmt.Errorf("tar %s/: %w", dir, err)
	}
	for _, f := range sortedFiles(files) {
		h := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     dir + "/" + f.Name,
			Mode:     int64(f.Mode.Perm()),
			Size:     int64(len(f.Data)),
			ModTime:  mtime,
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("tar %s: %w", h.Name, err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return fmt.Errorf("tar %s: %w", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("tar: %w", err)
	}
	return gz.Close()
}

// WriteZip writes dir/ and files under it as a zip, with the same care as
// WriteTarGz: sorted entries, every time mtime (in UTC, as the zip's MS-DOS
// time has no zone), Unix modes, and no owner at all.
func WriteZip(w io.Writer, dir string, files []File, mtime time.Time) error {
	zw := zip.NewWriter(w)
	zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(out, flate.BestCompression)
	})
	mtime = mtime.UTC()
	dirHeader := &zip.FileHeader{Name: dir + "/", Method: zip.Store, Modified: mtime}
	dirHeader.SetMode(fs.ModeDir | 0o755)
	if _, err := zw.CreateHeader(dirHeader); err != nil {
		return fmt.Errorf("zip %s/: %w", dir, err)
	}
	for _, f := range sortedFiles(files) {
		h := &zip.FileHeader{Name: dir + "/" + f.Name, Method: zip.Deflate, Modified: mtime}
		h.SetMode(f.Mode.Perm())
		fw, err := zw.CreateHeader(h)
		if err != nil {
			return fmt.Errorf("zip %s: %w", h.Name, err)
		}
		if _, err := fw.Write(f.Data); err != nil {
			return fmt.Errorf("zip %s: %w", h.Name, err)
		}
	}
	return zw.Close()
}

func sortedFiles(files []File) []File {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	return sorted
}
