// Package check is the validator layer every prober shares: the checks a
// module configures on a response (regexps over a body, headers or
// records, CEL over a JSON body), run within the probe's deadline by
// Slots, and the query_response scripts of the tcp, unix and websocket
// probers. A failed check is reported the same way everywhere: class
// assertion, a reason naming the kind of check, and a message naming the
// option, its index and the pattern.
package check

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/textproto"

	"github.com/google/cel-go/common/types"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// Quantifier says when a regexp rule fails over a list of values (one body,
// the values of a header, the records of a DNS section).
type Quantifier int

const (
	FailIfAnyMatches  Quantifier = iota // some value matches
	FailIfAnyMisses                     // some value does not match
	FailIfNoneMatches                   // no value matches
)

// Rule is one configured regexp option, e.g. fail_if_body_matches_regexp.
type Rule struct {
	Option  string
	Regexps []config.Regexp
	FailIf  Quantifier
}

// Rules applies rules in order to values, which stand for subject ("the
// body", "the answer records"), and returns the first failure.
func Rules(reason taxonomy.Reason, subject string, values [][]byte, rules ...Rule) *taxonomy.Error {
	for _, r := range rules {
		for i, re := range r.Regexps {
			if Fails(re, values, r.FailIf) {
				return taxonomy.Failf(taxonomy.ClassAssertion, reason, taxonomy.PhaseValidate, "%s[%d] %q %s %s",
					r.Option, i, re.String(), verb(r.FailIf), subject)
			}
		}
	}
	return nil
}

// Fails reports whether re fails over values, as q says.
func Fails(re config.Regexp, values [][]byte, q Quantifier) bool {
	matched := 0
	for _, v := range values {
		if re.Match(v) {
			matched++
		}
	}
	switch q {
	case FailIfAnyMatches:
		return matched > 0
	case FailIfAnyMisses:
		return matched < len(values)
	default: // FailIfNoneMatches
		return matched == 0
	}
}

func verb(q Quantifier) string {
	switch q {
	case FailIfAnyMatches:
		return "matched"
	case FailIfAnyMisses:
		return "did not match"
	default:
		return "matched none of"
	}
}

// Body applies fail_if_body_matches_regexp and _not_matches_regexp.
func Body(h *config.HTTPProbe, body []byte) *taxonomy.Error {
	return Rules(taxonomy.ReasonBodyRegex, "the body", [][]byte{body},
		Rule{"fail_if_body_matches_regexp", h.FailIfBodyMatchesRegexp, FailIfAnyMatches},
		Rule{"fail_if_body_not_matches_regexp", h.FailIfBodyNotMatchesRegexp, FailIfAnyMisses},
	)
}

// Headers applies fail_if_header_matches and _not_matches. A header with
// several values fails the first if any value matches and the second if
// none does; a missing header fails both unless allow_missing is set.
func Headers(h *config.HTTPProbe, header http.Header) *taxonomy.Error {
	if err := checkHeaderList("fail_if_header_matches", h.FailIfHeaderMatchesRegexp, FailIfAnyMatches, header); err != nil {
		return err
	}
	return checkHeaderList("fail_if_header_not_matches", h.FailIfHeaderNotMatchesRegexp, FailIfNoneMatches, header)
}

func checkHeaderList(option string, matches []config.HeaderMatch, q Quantifier, header http.Header) *taxonomy.Error {
	for i, m := range matches {
		name := textproto.CanonicalMIMEHeaderKey(m.Header)
		values := header.Values(name)
		if len(values) == 0 {
			if m.AllowMissing {
				continue
			}
			return taxonomy.Failf(taxonomy.ClassAssertion, taxonomy.ReasonHeaderRegex, taxonomy.PhaseValidate,
				"%s[%d]: the response has no %s header (set allow_missing to accept that)", option, i, name)
		}
		raw := make([][]byte, len(values))
		for j, v := range values {
			raw[j] = []byte(v)
		}
		if Fails(m.Regexp, raw, q) {
			return taxonomy.Failf(taxonomy.ClassAssertion, taxonomy.ReasonHeaderRegex, taxonomy.PhaseValidate,
				"%s[%d] %q %s the %s header", option, i, m.Regexp.String(), verb(q), name)
		}
	}
	return nil
}

// CEL evaluates fail_if_body_json_matches_cel and _not_matches_cel on the
// body parsed as JSON. A body that is not JSON fails the check.
func CEL(ctx context.Context, h *config.HTTPProbe, body []byte) *taxonomy.Error {
	if h.FailIfBodyJSONMatchesCEL == nil && h.FailIfBodyJSONNotMatchesCEL == nil {
		return nil
	}
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		return taxonomy.Failf(taxonomy.ClassAssertion, taxonomy.ReasonBodyCEL, taxonomy.PhaseValidate, "the body is not JSON, so the CEL checks cannot run: %v", err)
	}
	input := map[string]any{"body": doc}
	if p := h.FailIfBodyJSONMatchesCEL; p != nil {
		if err := evalCEL(ctx, "fail_if_body_json_matches_cel", p, input, true); err != nil {
			return err
		}
	}
	if p := h.FailIfBodyJSONNotMatchesCEL; p != nil {
		return evalCEL(ctx, "fail_if_body_json_not_matches_cel", p, input, false)
	}
	return nil
}

// evalCEL fails when the expression yields failOn, or does not yield a bool.
func evalCEL(ctx context.Context, option string, p *config.CELProgram, input map[string]any, failOn bool) *taxonomy.Error {
	out, _, err := p.ContextEval(ctx, input)
	if err != nil {
		return taxonomy.Failf(taxonomy.ClassAssertion, taxonomy.ReasonBodyCEL, taxonomy.PhaseValidate, "%s %q could not be evaluated on the body: %v", option, p.String(), err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return taxonomy.Failf(taxonomy.ClassAssertion, taxonomy.ReasonBodyCEL, taxonomy.PhaseValidate, "%s %q yielded %v, not a bool", option, p.String(), out)
	}
	if bool(b) != failOn {
		return nil
	}
	what := "matched"
	if !failOn {
		what = "did not match"
	}
	return taxonomy.Failf(taxonomy.ClassAssertion, taxonomy.ReasonBodyCEL, taxonomy.PhaseValidate, "%s %q %s the body", option, p.String(), what)
}

// DescribeSize renders a byte count for messages.
func DescribeSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
