package assert

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzAssert feeds arbitrary text to the assertion language, which reads
// what a CI pipeline's author typed after --assert. Whatever the text, Parse
// returns an assertion or a *ParseError whose caret message can be
// rendered, and an assertion evaluates against a probe's metrics to an
// outcome, never a panic. The seeds in testdata/fuzz/FuzzAssert cover the
// grammar's productions and the errors TestParseErrors knows.
func FuzzAssert(f *testing.F) {
	env := Env{Samples: probeSamples, Now: now}
	f.Fuzz(func(t *testing.T, src string) {
		a, err := Parse(src)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) error %v is a %T, not a *ParseError", src, err, err)
			}
			if pe.Pos < 0 || pe.Pos > len(pe.Expr) {
				t.Fatalf("Parse(%q): caret position %d is outside the expression", src, pe.Pos)
			}
			if msg := pe.Error(); !strings.Contains(msg, "^") {
				t.Fatalf("Parse(%q): message without a caret: %q", src, msg)
			}
			return
		}
		if a.String() != src {
			t.Fatalf("String() = %q, want the source %q", a.String(), src)
		}
		// Parsing is a pure function of the text: the same text parses again.
		if _, err := Parse(a.String()); err != nil {
			t.Fatalf("%q parsed once but not twice: %v", src, err)
		}
		o := a.Eval(env)
		if o.Err != nil && o.Passed {
			t.Fatalf("%q: an assertion that could not be evaluated passed", src)
		}
		if o.Err == nil && o.Passed != compare(o.Op, o.Left, o.Right) {
			t.Fatalf("%q: Passed = %v disagrees with %v %s %v", src, o.Passed, o.Left, o.Op, o.Right)
		}
		if d := o.Detail(); d == "" || !utf8.ValidString(d) && utf8.ValidString(src) {
			t.Fatalf("%q: Detail() = %q", src, d)
		}
	})
}
