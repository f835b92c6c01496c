package probelog

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// keeping is a handler that forwards nothing at debug level, as the
// collector's probe handler does unless --log.prober=debug.
type keeping struct{ slog.Handler }

func (keeping) Forwards(level slog.Level) bool { return level > slog.LevelDebug }

func (k keeping) WithAttrs(attrs []slog.Attr) slog.Handler {
	return keeping{k.Handler.WithAttrs(attrs)}
}

func (k keeping) Handle(ctx context.Context, r slog.Record) error { return k.Handler.Handle(ctx, r) }

func TestDebug(t *testing.T) {
	cases := []struct {
		name    string
		level   slog.Level
		keeping bool   // the handler keeps debug records to itself
		want    string // a substring of the output; "" for none at all
		source  bool   // the line names its source
	}{
		{name: "plain handler", level: slog.LevelDebug, want: `level=DEBUG`, source: true},
		{name: "disabled", level: slog.LevelInfo},
		{name: "kept to the probe", level: slog.LevelDebug, keeping: true, want: `level=DEBUG`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			var h slog.Handler = slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level, AddSource: true})
			if tc.keeping {
				h = keeping{h}
			}
			Debug(slog.New(h).With("module", "m"), "Connected", "address", "127.0.0.1:80")
			out := buf.String()
			if tc.want == "" {
				if out != "" {
					t.Fatalf("wrote %q below the handler's level", out)
				}
				return
			}
			if !strings.Contains(out, tc.want) || !strings.Contains(out, "msg=Connected module=m address=127.0.0.1:80") {
				t.Errorf("wrote %q, want a debug line with the logger's and the call's attributes", out)
			}
			if got := strings.Contains(out, "source=") && strings.Contains(out, "log_test.go:"); got != tc.source {
				t.Errorf("wrote %q: names this file as its source = %v, want %v", out, got, tc.source)
			}
		})
	}
}
