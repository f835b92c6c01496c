package examples

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sonde-exporter/sonde/internal/testkit"
	"go.yaml.in/yaml/v3"
)

// The CI recipes in ci/ are tested by running them: every `sonde` command
// each one contains is run as its CI system would run it, by a shell, with
// the built binary on PATH and the recipe's variables pointing at local
// servers that stand in for the environments. A recipe that stops working
// with the sonde of this commit fails here.

// sondeBin is sonde, built once for the recipe tests; the recipes find it
// on PATH.
var sondeBin = testkit.SondeBinary("..")

func TestMain(m *testing.M) {
	code := m.Run()
	sondeBin.Remove()
	os.Exit(code)
}

// stand-ins are the environments the recipes probe: a plain HTTP service
// (a preview, an in-cluster service) and an HTTPS one (a deployed site),
// all answering status.
type standIns struct {
	plain, tls, certFile string
}

func newStandIns(t *testing.T, status int) standIns {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		io.WriteString(w, "ok")
	})
	plain, tlsSrv := httptest.NewServer(h), httptest.NewTLSServer(h)
	t.Cleanup(plain.Close)
	t.Cleanup(tlsSrv.Close)
	certFile := filepath.Join(t.TempDir(), "ca.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})
	if err := os.WriteFile(certFile, cert, 0o644); err != nil {
		t.Fatal(err)
	}
	return standIns{plain: plain.URL, tls: tlsSrv.URL, certFile: certFile}
}

// recipe is one file of ci/ and what its variables stand for.
type recipe struct {
	file   string
	config func(t *testing.T) string          // the module file its commands read
	vars   func(s standIns) map[string]string // its targets
	job    bool                               // a Kubernetes Job: its containers' command and args, no shell
}

var recipes = []recipe{
	{
		file:   "ci/github-actions.yml",
		config: fixedFile("ci/sonde.yml"),
		vars: func(s standIns) map[string]string {
			return map[string]string{"PREVIEW_URL": s.plain, "TARGET_URL": s.tls}
		},
	},
	{
		file:   "ci/Jenkinsfile",
		config: fixedFile("ci/sonde.yml"),
		vars: func(s standIns) map[string]string {
			return map[string]string{"TARGET_URL": s.tls, "ENVIRONMENT": "staging"} // a matrix cell
		},
	},
	{
		file:   "ci/argocd-postsync.yml",
		config: configMapFile("ci/argocd-postsync.yml", "sonde.yml"),
		vars:   func(s standIns) map[string]string { return map[string]string{"TARGET_URL": s.plain} },
		job:    true,
	},
}

func TestCIRecipes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds sonde and runs the recipes' commands")
	}
	bin := filepath.Dir(sondeBin.Path(t))
	healthy, broken := newStandIns(t, http.StatusOK), newStandIns(t, http.StatusServiceUnavailable)
	for _, r := range recipes {
		t.Run(filepath.Base(r.file), func(t *testing.T) {
			config := r.config(t)
			if r.job {
				runJob(t, bin, r, config, healthy, broken)
				return
			}
			cmds := recipeCommands(t, r.file)
			for _, cmd := range cmds {
				isProbe := strings.HasPrefix(cmd, "sonde probe ")
				if code, out := runRecipeCommand(t, bin, cmd, config, healthy, r.vars(healthy)); code != 0 {
					t.Errorf("against healthy services, exit %d, want 0:\n%s\n%s", code, cmd, out)
				}
				if !isProbe {
					continue
				}
				// The gate must also close: a broken service fails it.
				if code, out := runRecipeCommand(t, bin, cmd, config, broken, r.vars(broken)); code != 1 {
					t.Errorf("against broken services, exit %d, want 1:\n%s\n%s", code, cmd, out)
				}
			}
		})
	}
}

// recipeCommands returns the sonde commands of a recipe: every line that
// starts, after its indentation, with "sonde ", with the lines it carries
// on to with a trailing backslash. A recipe must probe at least once.
func recipeCommands(t *testing.T, file string) []string {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	lines := strings.Split(string(src), "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(line, "sonde ") {
			continue
		}
		cmd := []string{line}
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSpace(lines[i])
			cmd = append(cmd, line)
		}
		cmds = append(cmds, strings.Join(cmd, "\n"))
	}
	if !strings.Contains(strings.Join(cmds, "\n"), "sonde probe ") {
		t.Fatalf("%s: no `sonde probe` command found; commands must start a line", file)
	}
	return cmds
}

// runRecipeCommand runs cmd with sh, as CI systems do, in an empty
// directory; `set -u` makes a variable the test did not set an error.
func runRecipeCommand(t *testing.T, binDir, cmd, config string, s standIns, vars map[string]string) (int, string) {
	t.Helper()
	c := exec.Command("sh", "-c", "set -eu\n"+cmd)
	c.Dir = t.TempDir()
	c.Env = append(os.Environ(),
		"PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"SSL_CERT_FILE="+s.certFile, // the CA bundle of the runner trusts the stand-in
		"SONDE_CONFIG="+config,
		"PROBE_INTERVAL=10ms", // minutes in the recipes
	)
	for k, v := range vars {
		c.Env = append(c.Env, k+"="+v)
	}
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, out.String()
}

// runJob runs the sonde container of the recipe's Job, with the image's
// sonde replaced by the one built here: it must pass against healthy
// services and fail against broken ones.
func runJob(t *testing.T, binDir string, r recipe, config string, healthy, broken standIns) {
	t.Helper()
	argv := jobArgv(t, r.file)
	for _, c := range []struct {
		s    standIns
		want int
	}{{healthy, 0}, {broken, 1}} {
		vars := r.vars(c.s)
		vars["SONDE_CONFIG"], vars["PROBE_INTERVAL"] = config, "10ms"
		args := make([]string, len(argv)-1)
		for i, a := range argv[1:] {
			var err error
			if args[i], err = expandKubernetes(a, vars); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(filepath.Join(binDir, filepath.Base(argv[0])), args...)
		cmd.Dir = t.TempDir()
		cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+c.s.certFile)
		out, err := cmd.CombinedOutput()
		code := 0
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			code = exit.ExitCode()
		case err != nil:
			t.Fatal(err)
		}
		if code != c.want {
			t.Errorf("exit %d, want %d: %q\n%s", code, c.want, args, out)
		}
	}
}

// jobArgv returns the command and args of the sonde container of the
// manifest's Job. The image has no shell: the command must be sonde.
func jobArgv(t *testing.T, manifest string) []string {
	t.Helper()
	f, err := os.Open(manifest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	for {
		var doc struct {
			Kind string `yaml:"kind"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Command []string `yaml:"command"`
							Args    []string `yaml:"args"`
						} `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s: no Job", manifest)
		}
		if err != nil {
			t.Fatalf("%s: %v", manifest, err)
		}
		if doc.Kind != "Job" {
			continue
		}
		for _, c := range doc.Spec.Template.Spec.Containers {
			if len(c.Command) == 1 && c.Command[0] == "/bin/sonde" {
				return append(c.Command, c.Args...)
			}
		}
		t.Fatalf("%s: the Job has no container whose command is /bin/sonde (the image has no shell)", manifest)
	}
}

// expandKubernetes replaces $(NAME) with vars[NAME], as Kubernetes expands
// a container's args from its env; a reference to a variable the test does
// not set is an error, as set -u makes it for the shell recipes.
func expandKubernetes(arg string, vars map[string]string) (string, error) {
	var missing []string
	out := kubeVar.ReplaceAllStringFunc(arg, func(ref string) string {
		name := ref[2 : len(ref)-1]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("the Job's args use %v, which the test does not set", missing)
	}
	return out, nil
}

var kubeVar = regexp.MustCompile(`\$\([A-Za-z_][A-Za-z0-9_]*\)`)

func fixedFile(path string) func(*testing.T) string {
	return func(t *testing.T) string {
		abs, err := filepath.Abs(path)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
}

// configMapFile writes out the key of the ConfigMap in a manifest, so the
// test runs the configuration the Job would mount.
func configMapFile(manifest, key string) func(*testing.T) string {
	return func(t *testing.T) string {
		f, err := os.Open(manifest)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		dec := yaml.NewDecoder(f)
		for {
			var doc struct {
				Kind string            `yaml:"kind"`
				Data map[string]string `yaml:"data"`
			}
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				t.Fatalf("%s: no ConfigMap with %s", manifest, key)
			}
			if err != nil {
				t.Fatalf("%s: %v", manifest, err)
			}
			if doc.Kind == "ConfigMap" && doc.Data[key] != "" {
				path := filepath.Join(t.TempDir(), key)
				if err := os.WriteFile(path, []byte(doc.Data[key]), 0o644); err != nil {
					t.Fatal(err)
				}
				return path
			}
		}
	}
}

// The YAML recipes must at least be YAML.
func TestCIRecipesParse(t *testing.T) {
	for _, file := range []string{"ci/github-actions.yml", "ci/argocd-postsync.yml", "ci/sonde.yml"} {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(f)
		for {
			var v any
			if err := dec.Decode(&v); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Errorf("%s: %v", file, err)
				break
			}
		}
		f.Close()
	}
}
