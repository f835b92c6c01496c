package prober

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
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
		q      core.Quantifier
		values [][]byte
		re     string
		fails  bool
		verb   string
	}{
		// fail if any value matches
		{"any matches: no values", core.FailIfAnyMatches, nil, "a", false, ""},
		{"any matches: one of two", core.FailIfAnyMatches, values("xa", "b"), "a", true, "matched"},
		{"any matches: none", core.FailIfAnyMatches, values("b", "c"), "a", false, ""},
		// fail if any value does not match
		{"any misses: no values", core.FailIfAnyMisses, nil, "a", false, ""},
		{"any misses: one of two", core.FailIfAnyMisses, values("a", "b"), "a", true, "did not match"},
		{"any misses: all match", core.FailIfAnyMisses, values("a", "ba"), "a", false, ""},
		// fail if there are values and all match
		// fail if no value matches
		{"none matches: no values", core.FailIfNoneMatches, nil, "a", true, "matched none of"},
		{"none matches: none", core.FailIfNoneMatches, values("b", "c"), "a", true, "matched none of"},
		{"none matches: one of two", core.FailIfNoneMatches, values("b", "a"), "a", false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := core.CheckRules(taxonomy.ReasonBodyRegex, "the records", tc.values,
				core.Rule{Option: "some_option", Regexps: []config.Regexp{config.MustNewRegexp(tc.re)}, FailIf: tc.q})
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
		q      core.Quantifier
		values [][]byte
		want   bool
	}{
		{core.FailIfAnyMatches, nil, false},
		{core.FailIfAnyMatches, values("a"), true},
		{core.FailIfAnyMatches, values("b"), false},
		{core.FailIfAnyMatches, values("b", "a"), true},
		{core.FailIfAnyMisses, nil, false},
		{core.FailIfAnyMisses, values("a"), false},
		{core.FailIfAnyMisses, values("b"), true},
		{core.FailIfAnyMisses, values("a", "b"), true},
		{core.FailIfNoneMatches, nil, true},
		{core.FailIfNoneMatches, values("a"), false},
		{core.FailIfNoneMatches, values("b"), true},
		{core.FailIfNoneMatches, values("b", "a"), false},
	}
	for _, tc := range cases {
		if got := core.Fails(re, tc.values, tc.q); got != tc.want {
			t.Errorf("fails(%q, %q, %d) = %v, want %v", "a", tc.values, tc.q, got, tc.want)
		}
	}
}

func TestCheckRulesOrder(t *testing.T) {
	// The first failing rule wins, in the order the rules are given.
	err := core.CheckRules(taxonomy.ReasonHeaderRegex, "x", values("abc"),
		core.Rule{Option: "first", Regexps: []config.Regexp{config.MustNewRegexp("z")}, FailIf: core.FailIfAnyMatches},
		core.Rule{Option: "second", Regexps: []config.Regexp{config.MustNewRegexp("a"), config.MustNewRegexp("z")}, FailIf: core.FailIfAnyMisses},
		core.Rule{Option: "third", Regexps: []config.Regexp{config.MustNewRegexp("b")}, FailIf: core.FailIfAnyMatches},
	)
	if err == nil || !strings.Contains(err.Error(), `second[1] "z" did not match x`) {
		t.Errorf("checkRules = %v, want the second rule to fail", err)
	}
	if err.Reason != taxonomy.ReasonHeaderRegex {
		t.Errorf("reason %s, want the one given", err.Reason)
	}
	if err := core.CheckRules(taxonomy.ReasonBodyRegex, "x", values("abc")); err != nil {
		t.Errorf("no rules: %v", err)
	}
	if err := core.CheckRules(taxonomy.ReasonBodyRegex, "x", values("abc"), core.Rule{Option: "empty", Regexps: nil, FailIf: core.FailIfNoneMatches}); err != nil {
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
	err := core.CheckHeaders(h, hdr)
	if err == nil || err.Reason != taxonomy.ReasonHeaderRegex || !strings.Contains(err.Error(), `fail_if_header_matches[0] "bad" matched the X-A header`) {
		t.Errorf("checkHeaders = %v", err)
	}
}

func TestCheckCELNotBool(t *testing.T) {
	// A dynamic expression that yields a string at run time.
	p := probertest.CEL(t, `body.name`)
	h := &config.HTTPProbe{FailIfBodyJSONMatchesCEL: p}
	err := core.CheckCEL(context.Background(), h, []byte(`{"name":"x"}`))
	if err == nil || err.Reason != taxonomy.ReasonBodyCEL || !strings.Contains(err.Error(), "not a bool") {
		t.Errorf("checkCEL = %v, want a body_cel failure saying the result is not a bool", err)
	}
	// A missing field is an evaluation error, reported as a failed check.
	h = &config.HTTPProbe{FailIfBodyJSONNotMatchesCEL: probertest.CEL(t, `body.missing == 1`)}
	err = core.CheckCEL(context.Background(), h, []byte(`{}`))
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
		if got := core.DescribeSize(n); got != want {
			t.Errorf("describeSize(%d) = %q, want %q", n, got, want)
		}
	}
}
