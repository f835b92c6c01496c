package dns

import (
	"fmt"
	"log/slog"

	"github.com/miekg/dns"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/check"
	"github.com/sonde-exporter/sonde/prober/probelog"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// rrSection is the validate_*_rrs option of one section of a DNS answer,
// turned into rules of the validator layer once, when the module loads.
type rrSection struct {
	option  string // validate_answer_rrs, ...
	subject string // "the answer records", for messages
	records func(*dns.Msg) []dns.RR
	rules   []check.Rule
	// notMatches is fail_if_not_matches_regexp, which blackbox also fails
	// on an empty section: "every record matches" is not proof enough when
	// there are none.
	notMatches []config.RRPattern
	// broken is the first expression of the section that does not compile:
	// blackbox loads it and fails a probe when a record is checked.
	broken *brokenPattern
}

// brokenPattern is a validate_*_rrs expression that does not compile.
type brokenPattern struct {
	option  string // e.g. validate_answer_rrs.fail_if_matches_regexp[0]
	pattern config.RRPattern
}

func rrSections(d *config.DNSProbe) []rrSection {
	return []rrSection{
		newRRSection("validate_answer_rrs", "answer", &d.ValidateAnswer, func(m *dns.Msg) []dns.RR { return m.Answer }),
		newRRSection("validate_authority_rrs", "authority", &d.ValidateAuthority, func(m *dns.Msg) []dns.RR { return m.Ns }),
		newRRSection("validate_additional_rrs", "additional", &d.ValidateAdditional, func(m *dns.Msg) []dns.RR { return m.Extra }),
	}
}

func newRRSection(option, name string, v *config.DNSRRValidator, records func(*dns.Msg) []dns.RR) rrSection {
	return rrSection{
		option:  option,
		subject: "the " + name + " records",
		records: records,
		rules: []check.Rule{
			{Option: option + ".fail_if_matches_regexp", Regexps: compiled(v.FailIfMatchesRegexp), FailIf: check.FailIfAnyMatches},
			// Whatever its name says, blackbox_exporter fails this rule
			// when a record does not match (validRRs in its dns.go, and
			// its tests): every record must match every pattern, and an
			// empty section passes. Matched as blackbox does.
			{Option: option + ".fail_if_all_match_regexp", Regexps: compiled(v.FailIfAllMatchRegexp), FailIf: check.FailIfAnyMisses},
			{Option: option + ".fail_if_not_matches_regexp", Regexps: compiled(v.FailIfNotMatchesRegexp), FailIf: check.FailIfAnyMisses},
			{Option: option + ".fail_if_none_matches_regexp", Regexps: compiled(v.FailIfNoneMatchesRegexp), FailIf: check.FailIfNoneMatches},
		},
		notMatches: v.FailIfNotMatchesRegexp,
		broken:     firstBroken(option, v),
	}
}

// compiled returns the expressions of a rule that compile; the others fail
// the probe through rrSection.broken.
func compiled(patterns []config.RRPattern) []config.Regexp {
	out := make([]config.Regexp, 0, len(patterns))
	for _, p := range patterns {
		if p.Err == nil {
			out = append(out, p.Regexp)
		}
	}
	return out
}

func firstBroken(option string, v *config.DNSRRValidator) *brokenPattern {
	for _, r := range v.Rules() {
		for i, p := range r.Patterns {
			if p.Err != nil {
				return &brokenPattern{option: fmt.Sprintf("%s.%s[%d]", option, r.Key, i), pattern: p}
			}
		}
	}
	return nil
}

// check applies the section's rules to each record's text form, as
// rr.String() writes it (name, TTL, class, type and data, tab-separated).
func (s *rrSection) check(resp *dns.Msg, logger *slog.Logger) error {
	rrs := s.records(resp)
	if len(rrs) == 0 && len(s.notMatches) > 0 {
		return taxonomy.Failf(taxonomy.ClassAssertion, taxonomy.ReasonDNSRRs, taxonomy.PhaseValidate, "%s.fail_if_not_matches_regexp[0] %q has no record to match: %s are empty",
			s.option, s.notMatches[0].String(), s.subject)
	}
	for _, rr := range rrs {
		probelog.Debug(logger, "Validating RR", "section", s.option, "rr", rrText{rr})
	}
	if b := s.broken; b != nil && len(rrs) > 0 {
		return taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonConfig, taxonomy.PhaseValidate, "%s %q is not a valid regular expression: %v", b.option, b.pattern.String(), b.pattern.Err)
	}
	if len(s.rules) == 0 {
		return nil // nothing to match: the records need no text form
	}
	texts := make([][]byte, len(rrs))
	for i, rr := range rrs {
		texts[i] = []byte(rr.String())
	}
	if err := check.Rules(taxonomy.ReasonDNSRRs, s.subject, texts, s.rules...); err != nil {
		return err
	}
	return nil // not checkRules' result: a nil *Error is not a nil error
}

// rrText logs a record in its zone-file form, formatted only when the log
// line is read, as messageText does for a whole message.
type rrText struct{ rr dns.RR }

func (r rrText) LogValue() slog.Value { return slog.StringValue(r.rr.String()) }
