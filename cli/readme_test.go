package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// README.md is where a newcomer looks for what sonde serves and what is
// documented: its endpoints table names every path the server routes, and
// its documentation list every page of docs/.
func TestReadmeListsEndpointsAndDocs(t *testing.T) {
	readme := readText(t, "../README.md")
	serve := readText(t, "serve.go")

	routes := regexp.MustCompile(`mux\.Handle(?:Func)?\(prefix\+"([^"{]+)"`).FindAllStringSubmatch(serve, -1)
	if len(routes) == 0 {
		t.Fatal("no route found in serve.go: has the way it registers them changed?")
	}
	for _, r := range routes {
		if path := "/" + r[1]; !strings.Contains(readme, "| `"+path) && !strings.Contains(readme, ", `"+path) {
			t.Errorf("README.md's endpoints table does not name %s, which serve.go routes", path)
		}
	}

	docs, err := filepath.Glob("../docs/*.md")
	if err != nil || len(docs) == 0 {
		t.Fatalf("listing docs/: %v (found %d)", err, len(docs))
	}
	for _, doc := range docs {
		link := "](docs/" + filepath.Base(doc) + ")"
		if !strings.Contains(readme, link) {
			t.Errorf("README.md's documentation list does not link docs/%s", filepath.Base(doc))
		}
	}
}

func readText(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
