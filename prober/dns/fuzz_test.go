package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// fuzzDNSModules are the dns modules FuzzDNSAnswer judges each answer
// with: one with no rule, whose every path but the rcode check succeeds,
// and one with every validate_*_rrs rule, so each quantifier of the
// validator layer sees the fuzzed records.
var fuzzDNSModules = map[string]string{
	"plain": `
query_name: example.test
query_type: SOA
valid_rcodes: [NOERROR, NXDOMAIN, SERVFAIL, REFUSED]
`,
	"strict": `
query_name: example.test
query_type: A
validate_answer_rrs:
  fail_if_matches_regexp: ['.*\t127\.0\.0\.1$']
  fail_if_all_match_regexp: ['^ns\d\.']
  fail_if_not_matches_regexp: ['(?i)^example\.test\.\t']
  fail_if_none_matches_regexp: ['\tIN\t(A|AAAA)\t']
validate_authority_rrs:
  fail_if_matches_regexp: ['hostmaster']
  fail_if_none_matches_regexp: ['\tNS\t']
validate_additional_rrs:
  fail_if_not_matches_regexp: ['^ns1\.']
  fail_if_all_match_regexp: ['\tAAAA\t']
`,
}

// FuzzDNSAnswer hands arbitrary bytes to the dns prober as the answer a
// server sent: unpacked with miekg/dns as the prober does, counted into
// the metrics, and checked against valid_rcodes and the validate_*_rrs
// regexps, whose subjects are the records' text forms. Whatever the
// bytes, the probe ends as a success or a classified failure: a message
// that does not parse is protocol/malformed_response or truncated in phase
// query, a parsed one fails only as status/dns_rcode or assertion/dns_rrs
// in phase validate. The seeds in testdata/fuzz/FuzzDNSAnswer are answers
// of the test zone (records of every section, NXDOMAIN with SOA, a CH TXT,
// compressed names, TC set) and broken ones.
func FuzzDNSAnswer(f *testing.F) {
	modules := make(map[string]*core.Module, len(fuzzDNSModules))
	for name, section := range fuzzDNSModules {
		modules[name] = fuzzModule(f, "dns", section)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		// The first two bytes are the id; taking the query's id from the
		// answer lets the fuzzer past the id check most of the time.
		var id uint16
		if len(raw) >= 2 {
			id = binary.BigEndian.Uint16(raw)
		}
		for name, m := range modules {
			for _, transport := range []dnsTransport{dnsUDP, dnsTCP} {
				judgeDNSAnswer(t, name, m, raw, id, transport)
			}
		}
	})
}

// judgeDNSAnswer runs the steps probeDNS takes once an answer arrived.
func judgeDNSAnswer(t *testing.T, name string, m *core.Module, raw []byte, id uint16, transport dnsTransport) {
	t.Helper()
	sink := probemetrics.NewSink()
	p := &dnsProbe{ctx: context.Background(), module: m, cfg: &m.DNS, prepared: m.Prepared.(*dnsPrepared),
		sink: sink, logger: probertest.DiscardLogger, times: map[string]time.Duration{}}
	p.metrics = newDNSMetrics(sink, transport)
	resp, err := parseAnswer(raw, id, transport)
	if err != nil {
		checkFailure(t, name, err, failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseQuery},
			failure{taxonomy.ClassProtocol, taxonomy.ReasonTruncated, taxonomy.PhaseQuery})
		if resp != nil && !resp.Truncated {
			t.Fatalf("%s: an answer came back with %v, and it is not truncated", name, err)
		}
	}
	if resp == nil {
		return
	}
	p.recordAnswer(resp)
	if err != nil {
		return
	}
	if err := p.validate(resp); err != nil {
		checkFailure(t, name, err, failure{taxonomy.ClassStatus, taxonomy.ReasonDNSRcode, taxonomy.PhaseValidate},
			failure{taxonomy.ClassAssertion, taxonomy.ReasonDNSRRs, taxonomy.PhaseValidate})
	}
	p.recordDurations()
	if _, err := sink.Gather(); err != nil {
		t.Fatalf("%s: the answer's metrics do not gather: %v", name, err)
	}
}

// checkFailure asserts err is one of the allowed classified failures.
func checkFailure(t *testing.T, what string, err error, allowed ...failure) {
	t.Helper()
	var perr *taxonomy.Error
	if !errors.As(err, &perr) {
		t.Fatalf("%s: error %v is a %T, not a *prober.Error", what, err, err)
	}
	got := failure{perr.Class, perr.Reason, perr.Phase}
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	t.Fatalf("%s: failure %s is none of %v: %v", what, got, allowed, err)
}
