package release

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// Builder cross-builds sonde's binary from the module at Root.
type Builder struct {
	Go    string // the go command; "go" when empty
	Root  string // the sonde module's directory
	Stamp Stamp
}

// buildEnvUnset are the variables of the caller's environment that would
// change the binary's bytes behind the flags' back: the target (set per
// build), cgo (off: a static binary, the same wherever it is built), and
// GOFLAGS or GOEXPERIMENT, which could add -race, tags or another runtime.
var buildEnvUnset = []string{
	"GOOS", "GOARCH", "GOARM", "GOAMD64", "GOARM64", "GO386", "GOMIPS", "GOMIPS64", "GOPPC64", "GORISCV64",
	"GOWASM", "CGO_ENABLED", "GOFLAGS", "GOEXPERIMENT",
}

// Build writes the target's binary to out.
func (b Builder) Build(ctx context.Context, t Target, out string) error {
	if err := b.Stamp.Check(); err != nil {
		return err
	}
	goCmd := b.Go
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.CommandContext(ctx, goCmd, b.buildArgs(out)...)
	cmd.Dir = b.Root
	cmd.Env = append(withoutVars(os.Environ(), buildEnvUnset), "CGO_ENABLED=0")
	cmd.Env = append(cmd.Env, t.GoEnv()...)
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building sonde for %s: %w\n%s", t, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// buildArgs: -trimpath keeps the building machine's paths out of the
// binary; -buildvcs=false keeps git's view of the tree (dirty or not) out,
// as the revision is stamped explicitly.
func (b Builder) buildArgs(out string) []string {
	return []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", b.Stamp.LDFlags(), "-o", out, "."}
}

// withoutVars returns env less the named variables.
func withoutVars(env, names []string) []string {
	var kept []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			kept = append(kept, kv)
		}
	}
	return kept
}
