package image

import (
	"path/filepath"
	"strings"
	"testing"
)

// The Dockerfile and docs/container.md state the image's settings that
// TestImage checks on a built image; this holds them to the same values
// where no image can be built.
func TestDockerfileAndDocsAgree(t *testing.T) {
	dockerfile := readFile(t, filepath.Join(repoRoot, "Dockerfile"))
	doc := readFile(t, filepath.Join(repoRoot, "docs/container.md"))
	port, _, _ := strings.Cut(exposedPort, "/")
	for _, tc := range []struct {
		instruction string // the Dockerfile's line
		documented  string // what docs/container.md says of it
	}{
		{"USER " + imageUser, "`" + imageUser + "`"},
		{`ENTRYPOINT ["/bin/sonde"]`, "`[\"/bin/sonde\"]`"},
		{`CMD ["--config.file=` + configPath + `"]`, "`[\"--config.file=" + configPath + "\"]`"},
		{"EXPOSE " + port, "`" + port + "`"},
	} {
		if !hasLine(dockerfile, tc.instruction) {
			t.Errorf("the Dockerfile has no line %q", tc.instruction)
		}
		if !strings.Contains(doc, tc.documented) {
			t.Errorf("docs/container.md does not state %s", tc.documented)
		}
	}
	for _, path := range []string{configPath, blackboxPath} {
		if !strings.Contains(doc, "`"+path+"`") {
			t.Errorf("docs/container.md does not name %s", path)
		}
	}
}

func hasLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}
