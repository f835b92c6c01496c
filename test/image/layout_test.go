package image

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// An OCI image layout (index.json, blobs/sha256/...) holds the image's
// manifest and its layers, tar files applied in order. Unpacking them
// gives the image's files without a container runtime, which the sandbox
// may refuse.

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
}

// unpackLayout writes the files of the layout's one image into dir.
func unpackLayout(layout, dir string) error {
	var index struct{ Manifests []descriptor }
	if err := readJSON(filepath.Join(layout, "index.json"), &index); err != nil {
		return err
	}
	if len(index.Manifests) != 1 {
		return fmt.Errorf("the layout holds %d manifests, want the one image's", len(index.Manifests))
	}
	var manifest struct{ Layers []descriptor }
	if err := readJSON(blobPath(layout, index.Manifests[0].Digest), &manifest); err != nil {
		return err
	}
	for _, layer := range manifest.Layers {
		if err := applyLayer(blobPath(layout, layer.Digest), layer.MediaType, dir); err != nil {
			return fmt.Errorf("layer %s: %w", layer.Digest, err)
		}
	}
	return nil
}

func blobPath(layout, digest string) string {
	algo, hex, _ := strings.Cut(digest, ":")
	return filepath.Join(layout, "blobs", algo, hex)
}

func readJSON(file string, v any) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// applyLayer extracts one layer, gzip-compressed or not, into dir.
func applyLayer(blob, mediaType, dir string) error {
	f, err := os.Open(blob)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	switch {
	case strings.HasSuffix(mediaType, "+gzip") || strings.HasSuffix(mediaType, ".gzip"):
		gz, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		defer gz.Close()
		r = gz
	case strings.HasSuffix(mediaType, "tar"):
	default:
		return fmt.Errorf("layer type %s: the test unpacks only tar and tar+gzip", mediaType)
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := extract(tr, hdr, dir); err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
	}
}

// extract writes one entry. Whiteouts (files a layer deletes) cannot
// occur in an image built FROM scratch in one commit; they are refused
// rather than half handled.
func extract(tr *tar.Reader, hdr *tar.Header, dir string) error {
	name := path.Clean("/" + hdr.Name)
	if strings.HasPrefix(path.Base(name), ".wh.") {
		return errors.New("a whiteout, which an image FROM scratch should not hold")
	}
	target := filepath.Join(dir, filepath.FromSlash(name))
	mode := os.FileMode(hdr.Mode).Perm()
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		return os.Chmod(target, mode)
	case tar.TypeReg:
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
		if err != nil {
			return err
		}
		// Chmod: the process's umask must not narrow the image's modes,
		// which the tests check.
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return err
		}
		if err := f.Chmod(mode); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	case tar.TypeSymlink:
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.Symlink(hdr.Linkname, target)
	case tar.TypeLink:
		return os.Link(filepath.Join(dir, filepath.FromSlash(path.Clean("/"+hdr.Linkname))), target)
	default:
		return fmt.Errorf("tar entry type %q, which the image should not hold", hdr.Typeflag)
	}
}
