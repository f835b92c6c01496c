package check

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

func values(vs ...string) [][]byte {
	out := make([][]byte, len(vs))
	for i, v := range vs {
		out[i] = []byte(v)
	}
	return out
}

func TestCheckRulesQuantifiers(t *testing.T) {
	cases := []struct {
		name   string
		q      Quantifier
		values [][]byte
		re     string
		fails  bool
		verb   string
	}{
		// fail if any value matches
		{"any matches: no values", FailIfAnyMatches, nil, "a", false, ""},
		{"any matches: one of two", FailIfAnyMatches, values("xa", "b"), "a", true, "matched"},
		{"any matches: none", FailIfAnyMatches, values("b", "c"), "a", false, ""},
		// fail if any value does not match
		{"any misses: no values", FailIfAnyMisses, nil, "a", false, ""},
		{"any misses: one of two", FailIfAnyMisses, values("a", "b"), "a", true, "did not match"},
		{"any misses: all match", FailIfAnyMisses, values("a", "ba"), "a", false, ""},
		// fail if there are values and all match
		// fail if no value matches
		{"none matches: no values", FailIfNoneMatches, nil, "a", true, "matched none of"},
		{"none matches: none", FailIfNoneMatches, values("b", "c"), "a", true, "matched none of"},
		{"none matches: one of two", FailIfNoneMatches, values("b", "a"), "a", false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Rules(taxonomy.ReasonBodyRegex, "the records", tc.values,
				Rule{Option: "some_option", Regexps: []config.Regexp{config.MustNewRegexp(tc.re)}, FailIf: tc.q})
			if !tc.fails {
				if err != nil {
					t.Fatalf("checkRules = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("checkRules = nil, want a failure")
			}
			if err.Class != taxonomy.ClassAssertion || err.Reason != taxonomy.ReasonBodyRegex || err.Phase != taxonomy.PhaseValidate {
				t.Errorf("labels %s/%s/%s", err.Class, err.Reason, err.Phase)
			}
			want := `some_option[0] "` + tc.re + `" ` + tc.verb + " the records"
			if !strings.HasSuffix(err.Error(), want) {
				t.Errorf("message %q, want it to end with %q", err.Error(), want)
			}
		})
	}
}

// fails, the quantifier logic on its own.
func TestFailsQuantifiers(t *testing.T) {
	re := config.MustNewRegexp("a")
	cases := []struct {
		q      Quantifier
		values [][]byte
		want   bool
	}{
		{FailIfAnyMatches, nil, false},
		{FailIfAnyMatches, values("a"), true},
		{FailIfAnyMatches, values("b"), false},
		{FailIfAnyMatches, values("b", "a"), true},
		{FailIfAnyMisses, nil, false},
		{FailIfAnyMisses, values("a"), false},
		{FailIfAnyMisses, values("b"), true},
		{FailIfAnyMisses, values("a", "b"), true},
		{FailIfNoneMatches, nil, true},
		{FailIfNoneMatches, values("a"), false},
		{FailIfNoneMatches, values("b"), true},
		{FailIfNoneMatches, values("b", "a"), false},
	}
	for _, tc := range cases {
		if got := Fails(re, tc.values, tc.q); got != tc.want {
			t.Errorf("fails(%q, %q, %d) = %v, want %v", "a", tc.values, tc.q, got, tc.want)
		}
	}
}

func TestCheckRulesOrder(t *testing.T) {
	// The first failing rule wins, in the order the rules are given.
	err := Rules(taxonomy.ReasonHeaderRegex, "x", values("abc"),
		Rule{Option: "first", Regexps: []config.Regexp{config.MustNewRegexp("z")}, FailIf: FailIfAnyMatches},
		Rule{Option: "second", Regexps: []config.Regexp{config.MustNewRegexp("a"), config.MustNewRegexp("z")}, FailIf: FailIfAnyMisses},
		Rule{Option: "third", Regexps: []config.Regexp{config.MustNewRegexp("b")}, FailIf: FailIfAnyMatches},
	)
	if err == nil || !strings.Contains(err.Error(), `second[1] "z" did not match x`) {
		t.Errorf("checkRules = %v, want the second rule to fail", err)
	}
	if err.Reason != taxonomy.ReasonHeaderRegex {
		t.Errorf("reason %s, want the one given", err.Reason)
	}
	if err := Rules(taxonomy.ReasonBodyRegex, "x", values("abc")); err != nil {
		t.Errorf("no rules: %v", err)
	}
	if err := Rules(taxonomy.ReasonBodyRegex, "x", values("abc"), Rule{Option: "empty", Regexps: nil, FailIf: FailIfNoneMatches}); err != nil {
		t.Errorf("a rule without patterns: %v", err)
	}
}

func TestCheckHeadersDirect(t *testing.T) {
	h := &config.HTTPProbe{
		FailIfHeaderMatchesRegexp: []config.HeaderMatch{{Header: "x-a", Regexp: config.MustNewRegexp("bad")}},
	}
	hdr := http.Header{}
	hdr.Add("X-A", "good")
	hdr.Add("X-A", "bad")
	err := Headers(h, hdr)
	if err == nil || err.Reason != taxonomy.ReasonHeaderRegex || !strings.Contains(err.Error(), `fail_if_header_matches[0] "bad" matched the X-A header`) {
		t.Errorf("checkHeaders = %v", err)
	}
}

func TestCheckCELNotBool(t *testing.T) {
	// A dynamic expression that yields a string at run time.
	p := celProgram(t, `body.name`)
	h := &config.HTTPProbe{FailIfBodyJSONMatchesCEL: p}
	err := CEL(context.Background(), h, []byte(`{"name":"x"}`))
	if err == nil || err.Reason != taxonomy.ReasonBodyCEL || !strings.Contains(err.Error(), "not a bool") {
		t.Errorf("checkCEL = %v, want a body_cel failure saying the result is not a bool", err)
	}
	// A missing field is an evaluation error, reported as a failed
	h = &config.HTTPProbe{FailIfBodyJSONNotMatchesCEL: celProgram(t, `body.missing == 1`)}
	err = CEL(context.Background(), h, []byte(`{}`))
	if err == nil || err.Reason != taxonomy.ReasonBodyCEL || !strings.Contains(err.Error(), "could not be evaluated") {
		t.Errorf("checkCEL = %v, want an evaluation failure", err)
	}
}

func TestDescribeSize(t *testing.T) {
	for n, want := range map[int64]string{
		10:        "10 bytes",
		1024:      "1KiB",
		1536:      "1536 bytes",
		4 << 20:   "4MiB",
		64 << 20:  "64MiB",
		3<<20 + 1: "3145729 bytes",
	} {
		if got := DescribeSize(n); got != want {
			t.Errorf("describeSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func celProgram(t *testing.T, expr string) *config.CELProgram {
	t.Helper()
	p, err := config.NewCELProgram(expr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
