package prober

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestDebug(t *testing.T) {
	cases := []struct {
		name  string
		level slog.Level
		want  string // a substring of the output; "" for none at all
	}{
		{"enabled", slog.LevelDebug, `level=DEBUG msg=Connected module=m address=127.0.0.1:80`},
		{"disabled", slog.LevelInfo, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level, AddSource: true}))
			Debug(l.With("module", "m"), "Connected", "address", "127.0.0.1:80")
			out := buf.String()
			if tc.want == "" {
				if out != "" {
					t.Fatalf("wrote %q below the handler's level", out)
				}
				return
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("wrote %q, want it to contain %q", out, tc.want)
			}
			// No caller was looked up, so even a handler that asks for
			// the source has none to write.
			if strings.Contains(out, "source=") {
				t.Errorf("wrote a source: %q", out)
			}
		})
	}
}
