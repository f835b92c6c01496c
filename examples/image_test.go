package examples

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// releaseImage is where the release workflow publishes sonde's image.
const releaseImage = "ghcr.io/sonde-exporter/sonde"

// Every image an example runs is the release's, at the version the tree
// is heading for (VERSION without its -dev suffix), so that no example
// names an image the release does not produce.
func TestExamplesUseTheReleaseImage(t *testing.T) {
	raw, err := os.ReadFile("../VERSION")
	if err != nil {
		t.Fatal(err)
	}
	want := releaseImage + ":" + strings.TrimSuffix(strings.TrimSpace(string(raw)), "-dev")
	image := regexp.MustCompile(`(?m)^\s*(?:-\s*)?image:\s*(\S+)`)
	found := 0
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yml") && !strings.HasSuffix(path, ".yaml") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range image.FindAllStringSubmatch(string(src), -1) {
			found++
			if m[1] != want {
				t.Errorf("%s runs image %s, want the release's %s", path, m[1], want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found == 0 {
		t.Fatal("no example names an image: the pattern no longer matches the manifests")
	}
}
