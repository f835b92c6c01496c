package release

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// SumsFile is the checksum list in dist/, in sha256sum's format, so that
// `sha256sum -c sha256sums.txt` checks a download.
const SumsFile = "sha256sums.txt"

// IsReleaseFile says whether name is one of version's release files: an
// archive (sonde-<version>.<os>-<arch>.tar.gz or .zip), a deb
// (sonde_<version>_<arch>.deb) or an rpm (sonde-<version>-1.<arch>.rpm).
// Anything else in dist/ (another version's files, build leftovers) is not
// listed.
func IsReleaseFile(name, version string) bool {
	for _, form := range []struct{ prefix, suffix, notInPlatform string }{
		{"sonde-" + version + ".", ".tar.gz", "._"},
		{"sonde-" + version + ".", ".zip", "._"},
		{"sonde_" + version + "_", ".deb", "._-"},
		{"sonde-" + version + "-" + PackageRelease + ".", ".rpm", ".-"},
	} {
		platform, ok := strings.CutPrefix(name, form.prefix)
		if !ok {
			continue
		}
		platform, ok = strings.CutSuffix(platform, form.suffix)
		// The platform part holds no dot, so that version 1.0 does not
		// claim 1.0.1's files.
		if ok && platform != "" && !strings.ContainsAny(platform, form.notInPlatform) {
			return true
		}
	}
	return false
}

// WriteSums (re)writes dist/sha256sums.txt over every release file of
// version in dist, in name order (os.ReadDir's): after `make release packages` it lists
// the archives and the packages alike.
func WriteSums(dist, version string) error {
	entries, err := os.ReadDir(dist)
	if err != nil {
		return fmt.Errorf("listing release files: %w", err)
	}
	var lines []string
	for _, e := range entries {
		if !e.Type().IsRegular() || !IsReleaseFile(e.Name(), version) {
			continue
		}
		sum, err := fileSHA256(filepath.Join(dist, e.Name()))
		if err != nil {
			return err
		}
		lines = append(lines, sum+"  "+e.Name()+"\n")
	}
	if len(lines) == 0 {
		return fmt.Errorf("no release file of version %s in %s to list in %s", version, dist, SumsFile)
	}
	return writeFileAtomic(filepath.Join(dist, SumsFile), []byte(strings.Join(lines, "")), 0o644)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("checksum: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("checksum of %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeFileAtomic writes through a temporary file in the same directory,
// so that an interrupted release leaves no half-written file under its
// final name.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
