package image

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// engine runs podman or buildah on a storage of the test's own, so that
// the test neither sees nor leaves images in the machine's.
type engine struct {
	tool string // podman, or buildah where podman is missing
	env  []string
	root string // the storage's directory
}

// newEngine picks podman, which can also run the image, or else buildah.
// It skips where neither is installed, unless CI is set: CI installs both
// (.ci/run) and must build the image.
func newEngine(t *testing.T) *engine {
	t.Helper()
	tool := ""
	for _, name := range []string{"podman", "buildah"} {
		if _, err := exec.LookPath(name); err == nil {
			tool = name
			break
		}
	}
	if tool == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("neither podman nor buildah is installed, and CI must build the image (.ci/run installs them)")
		}
		t.Skip("neither podman nor buildah is installed (apt-get install podman buildah): the image is not built")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is needed to run `make image`: %v", err)
	}
	root := t.TempDir()
	e := &engine{tool: tool, root: root}
	// vfs: plain directories, which any kernel and any sandbox allow,
	// where overlay may need mounts the machine refuses. libpod's tmp_dir
	// is the machine's (/run/libpod) unless moved: its state is kept apart
	// from the machine's podman too.
	storageConf := filepath.Join(root, "storage.conf")
	writeFile(t, storageConf, fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
		filepath.Join(root, "graph"), filepath.Join(root, "run")))
	containersConf := filepath.Join(root, "containers.conf")
	writeFile(t, containersConf, fmt.Sprintf("[engine]\ntmp_dir = %q\nevents_logger = \"file\"\n",
		filepath.Join(root, "libpod")))
	e.env = append(os.Environ(), "CONTAINERS_STORAGE_CONF="+storageConf, "CONTAINERS_CONF="+containersConf)
	if os.Geteuid() != 0 {
		// Rootless storage holds files owned by the user namespace's
		// other ids, which only that namespace can remove.
		t.Cleanup(func() { _, _ = e.output(context.Background(), "unshare", "rm", "-rf", filepath.Join(root, "graph")) })
	}
	return e
}

// command is the engine's tool with args, on the test's storage.
func (e *engine) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.tool, args...)
	cmd.Env = e.env
	return cmd
}

// output runs the tool and returns its standard output; the error carries
// its standard error.
func (e *engine) output(ctx context.Context, args ...string) (string, error) {
	cmd := e.command(ctx, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", e.tool, strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// makeImage runs `make image` for the host's platform, as a user would,
// on the test's storage and with its build context in a directory of the
// test. SOURCE_DATE_EPOCH is cleared so that the image is dated with the
// commit.
func (e *engine) makeImage(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "-C", repoRoot, "image", "IMAGE_CONTEXT="+filepath.Join(t.TempDir(), "context"))
	cmd.Env = append(e.env, "SOURCE_DATE_EPOCH=", "MAKEFLAGS=")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Logf("make image took %v:\n%s", time.Since(start).Round(time.Millisecond), lastLines(string(out), 3))
}

// imageConfig is what the tests check of the image's OCI configuration.
type imageConfig struct {
	Architecture string
	OS           string
	User         string
	Entrypoint   []string
	Cmd          []string
	ExposedPorts map[string]struct{}
	Labels       map[string]string
}

// inspect reads the image's configuration as the tool shows it: podman
// image inspect puts it under Config, buildah inspect under OCIv1.config.
func (e *engine) inspect(t *testing.T, ref string) imageConfig {
	t.Helper()
	var cfg imageConfig
	switch e.tool {
	case "podman":
		out, err := e.output(context.Background(), "image", "inspect", ref)
		if err != nil {
			t.Fatal(err)
		}
		var images []struct {
			Architecture, Os string
			Config           imageConfig
		}
		if err := json.Unmarshal([]byte(out), &images); err != nil || len(images) != 1 {
			t.Fatalf("podman image inspect %s: %d images, %v\n%s", ref, len(images), err, out)
		}
		cfg = images[0].Config
		cfg.Architecture, cfg.OS = images[0].Architecture, images[0].Os
	default:
		out, err := e.output(context.Background(), "inspect", "--type", "image", ref)
		if err != nil {
			t.Fatal(err)
		}
		var image struct {
			OCIv1 struct {
				Architecture, OS string
				Config           imageConfig
			}
		}
		if err := json.Unmarshal([]byte(out), &image); err != nil {
			t.Fatalf("buildah inspect %s: %v\n%s", ref, err, out)
		}
		cfg = image.OCIv1.Config
		cfg.Architecture, cfg.OS = image.OCIv1.Architecture, image.OCIv1.OS
	}
	return cfg
}

// exportLayout copies the image into an OCI image layout directory, from
// which the test unpacks its files without mounting anything.
func (e *engine) exportLayout(t *testing.T, ref string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	if _, err := e.output(context.Background(), "push", "--quiet", ref, "oci:"+dir); err != nil {
		t.Fatalf("exporting the image: %v", err)
	}
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
