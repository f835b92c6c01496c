package dns

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// dnsCase is one probe of the test DNS server and what must come of it.
type dnsCase struct {
	name    string
	module  string                                   // the module's dns: section, YAML
	target  func(s *probertest.DNSTestServer) string // s.addr when nil
	timeout time.Duration                            // 5s when zero; when set, also an upper bound (+200ms) of the probe's duration
	want    failure
	message string             // the error must say this
	metrics map[string]float64 // unlabelled series and their values
	extra   []string           // families exported besides the dns and resolve ones
	check   func(t *testing.T, s *probertest.DNSTestServer, sink *probemetrics.Sink)
}

// dnsBase are the families every dns probe that reached the resolve phase
// exports, whatever its outcome, as blackbox does.
var dnsBase = []string{
	"probe_dns_additional_rrs", "probe_dns_answer_rrs", "probe_dns_authority_rrs", "probe_dns_duration_seconds",
	"probe_dns_lookup_time_seconds", "probe_dns_query_succeeded", "probe_ip_addr_hash", "probe_ip_protocol",
}

func runDNSCases(t *testing.T, s *probertest.DNSTestServer, cases []dnsCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.Reset()
			m := dnsModule(t, tc.module)
			target := s.Addr
			if tc.target != nil {
				target = tc.target(s)
			}
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			sink, took, err := probeDNSWithin(t, m, target, timeout, probertest.DiscardLogger)
			if tc.timeout != 0 && took > tc.timeout+200*time.Millisecond {
				t.Errorf("the probe took %v with a %v deadline", took, tc.timeout)
			}
			perr := checkOutcome(t, err, tc.want)
			if tc.message != "" && (perr == nil || !strings.Contains(perr.Error(), tc.message)) {
				t.Errorf("error %v does not say %q", err, tc.message)
			}
			for name, want := range tc.metrics {
				probertest.Metric(t, sink, want, name)
			}
			dnsCheckFamilies(t, sink, tc.extra...)
			if tc.check != nil {
				tc.check(t, s, sink)
			}
		})
	}
}

// checkFamilies asserts the exact set of exported families: dnsBase plus
// extra. This is how the presence rules are tested.
func dnsCheckFamilies(t *testing.T, sink *probemetrics.Sink, extra ...string) {
	t.Helper()
	want := slices.Sorted(slices.Values(append(slices.Clone(dnsBase), extra...)))
	if got := probertest.FamilyNames(sink); !slices.Equal(got, want) {
		t.Errorf("exported families\n got %v\nwant %v", got, want)
	}
}

// tlsFamiliesDNS are the TLS families a handshake adds once the server
// has shown its certificate, verified or not.
var tlsFamiliesDNS = append([]string{
	"probe_ssl_earliest_cert_expiry", "probe_ssl_last_chain_expiry_timestamp_seconds", "probe_ssl_last_chain_info",
	"probe_tls_cipher_info", "probe_tls_version_info",
}, probertest.ChainFamilies...)

// answered are the metrics of an answer to a query of qtype for the zone.
func dnsAnswered(qtype uint16) map[string]float64 {
	return map[string]float64{
		"probe_dns_query_succeeded": 1,
		"probe_dns_answer_rrs":      float64(probertest.DNSAnswerCount(qtype)),
		"probe_dns_authority_rrs":   float64(len(probertest.DNSAuthority)),
		"probe_dns_additional_rrs":  float64(len(probertest.DNSAdditional)),
	}
}

// dnsUnanswered are the metrics of a probe that got no usable answer.
var dnsUnanswered = map[string]float64{
	"probe_dns_query_succeeded": 0, "probe_dns_answer_rrs": 0, "probe_dns_authority_rrs": 0, "probe_dns_additional_rrs": 0,
}

// seenQuery asserts what the server received.
func dnsSeenQuery(via string, qtype, qclass uint16, rd bool) func(t *testing.T, s *probertest.DNSTestServer, _ *probemetrics.Sink) {
	return func(t *testing.T, s *probertest.DNSTestServer, _ *probemetrics.Sink) {
		t.Helper()
		q := s.Last(t)
		if q.Via != via {
			t.Errorf("the query came over %s, want %s", q.Via, via)
		}
		got := q.Msg.Question[0]
		if got.Qtype != qtype || got.Qclass != qclass {
			t.Errorf("the server saw %s %s, want %s %s", dns.TypeToString[got.Qtype], dns.ClassToString[got.Qclass],
				dns.TypeToString[qtype], dns.ClassToString[qclass])
		}
		if q.Msg.RecursionDesired != rd {
			t.Errorf("the server saw recursion desired %v, want %v", q.Msg.RecursionDesired, rd)
		}
	}
}

// phases asserts the series of probe_dns_duration_seconds: exactly the
// given phases, and those in positive ones with a non-zero time.
func dnsDurations(want []string, positive ...string) func(t *testing.T, _ *probertest.DNSTestServer, sink *probemetrics.Sink) {
	return func(t *testing.T, _ *probertest.DNSTestServer, sink *probemetrics.Sink) {
		t.Helper()
		for _, p := range []string{"resolve", "connect", "tls", "request"} {
			v, ok := sink.Value("probe_dns_duration_seconds", p)
			if ok != slices.Contains(want, p) {
				t.Errorf("probe_dns_duration_seconds{phase=%q} present = %v, want %v", p, ok, !ok)
			}
			if slices.Contains(positive, p) && v <= 0 {
				t.Errorf("probe_dns_duration_seconds{phase=%q} = %v, want > 0", p, v)
			}
		}
	}
}

func dnsSeenFrom(ip string) func(t *testing.T, s *probertest.DNSTestServer, _ *probemetrics.Sink) {
	return func(t *testing.T, s *probertest.DNSTestServer, _ *probemetrics.Sink) {
		t.Helper()
		if got := s.Last(t).Remote; !got.Equal(net.ParseIP(ip)) {
			t.Errorf("the server saw the query from %v, want %s", got, ip)
		}
	}
}

func dnsChecks(checks ...func(*testing.T, *probertest.DNSTestServer, *probemetrics.Sink)) func(*testing.T, *probertest.DNSTestServer, *probemetrics.Sink) {
	return func(t *testing.T, s *probertest.DNSTestServer, sink *probemetrics.Sink) {
		t.Helper()
		for _, c := range checks {
			c(t, s, sink)
		}
	}
}

func dnsWith(m map[string]float64, name string, v float64) map[string]float64 {
	out := make(map[string]float64, len(m)+1)
	for k, x := range m {
		out[k] = x
	}
	out[name] = v
	return out
}

func TestDNSProbe(t *testing.T) {
	s := probertest.NewDNSTestServer(t, "127.0.0.1")
	plain := []string{"resolve", "connect", "request"}
	refused := failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect}
	rcode := failure{taxonomy.ClassStatus, taxonomy.ReasonDNSRcode, taxonomy.PhaseValidate}
	runDNSCases(t, s, []dnsCase{
		{
			name:    "A over udp",
			module:  "query_name: example.test\nquery_type: A",
			metrics: dnsWith(dnsAnswered(dns.TypeA), "probe_ip_protocol", 4),
			check:   dnsChecks(dnsSeenQuery("udp", dns.TypeA, dns.ClassINET, true), dnsDurations(plain, "connect", "request")),
		},
		{
			name:    "AAAA over tcp",
			module:  "query_name: example.test\nquery_type: AAAA\ntransport_protocol: tcp",
			metrics: dnsAnswered(dns.TypeAAAA),
			check:   dnsChecks(dnsSeenQuery("tcp", dns.TypeAAAA, dns.ClassINET, true), dnsDurations(plain, "connect", "request")),
		},
		{
			name:    "MX",
			module:  "query_name: example.test\nquery_type: MX",
			metrics: dnsAnswered(dns.TypeMX),
			check:   dnsSeenQuery("udp", dns.TypeMX, dns.ClassINET, true),
		},
		{
			name:    "SOA exports the serial",
			module:  "query_name: example.test\nquery_type: SOA\ntransport_protocol: tcp",
			metrics: dnsWith(dnsAnswered(dns.TypeSOA), "probe_dns_serial", probertest.DNSSerial()),
			extra:   []string{"probe_dns_serial"},
		},
		{
			name:    "SOA query whose answer has no SOA exports serial 0, as blackbox does",
			module:  "query_name: nx.test\nquery_type: SOA\nvalid_rcodes: [NXDOMAIN]",
			metrics: map[string]float64{"probe_dns_serial": 0, "probe_dns_answer_rrs": 0, "probe_dns_authority_rrs": 1},
			extra:   []string{"probe_dns_serial"},
		},
		{
			name:    "query type defaults to ANY, class to IN",
			module:  "query_name: example.test",
			metrics: dnsAnswered(dns.TypeANY),
			check:   dnsSeenQuery("udp", dns.TypeANY, dns.ClassINET, true),
		},
		{
			name:    "query_class CH",
			module:  "query_name: version.bind\nquery_type: TXT\nquery_class: CH",
			metrics: map[string]float64{"probe_dns_answer_rrs": 1},
			check:   dnsSeenQuery("udp", dns.TypeTXT, dns.ClassCHAOS, true),
		},
		{
			name:    "recursion_desired false reaches the server",
			module:  "query_name: example.test\nquery_type: A\nrecursion_desired: false",
			check:   dnsSeenQuery("udp", dns.TypeA, dns.ClassINET, false),
			metrics: dnsAnswered(dns.TypeA),
		},
		{
			name:    "NXDOMAIN fails with the default valid_rcodes",
			module:  "query_name: nx.test\nquery_type: A",
			want:    rcode,
			message: "NXDOMAIN is not one of valid_rcodes [NOERROR]",
			metrics: map[string]float64{"probe_dns_query_succeeded": 1, "probe_dns_authority_rrs": 1},
		},
		{
			name:    "NXDOMAIN passes when listed",
			module:  "query_name: nx.test\nquery_type: A\nvalid_rcodes: [NOERROR, NXDOMAIN]",
			metrics: map[string]float64{"probe_dns_query_succeeded": 1},
		},
		{
			name:    "SERVFAIL",
			module:  "query_name: servfail.test\nquery_type: A\ntransport_protocol: tcp",
			want:    rcode,
			message: "SERVFAIL",
		},
		{
			name:    "REFUSED for the chaos name in class IN",
			module:  "query_name: version.bind\nquery_type: TXT",
			want:    rcode,
			message: "REFUSED",
		},
		{
			name:    "truncated answer over udp",
			module:  "query_name: big.test\nquery_type: A",
			want:    failure{taxonomy.ClassProtocol, taxonomy.ReasonTruncated, taxonomy.PhaseQuery},
			message: "TC bit",
			metrics: map[string]float64{"probe_dns_query_succeeded": 1, "probe_dns_answer_rrs": 0},
		},
		{
			name:    "the same name over tcp is whole",
			module:  "query_name: big.test\nquery_type: A\ntransport_protocol: tcp",
			metrics: map[string]float64{"probe_dns_answer_rrs": float64(len(probertest.DNSAnswers[dns.TypeA]))},
		},
		{
			name:    "garbage answer over udp",
			module:  "query_name: garbage.test\nquery_type: A",
			want:    failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseQuery},
			metrics: dnsUnanswered,
		},
		{
			name:    "garbage answer over tcp",
			module:  "query_name: garbage.test\nquery_type: A\ntransport_protocol: tcp",
			want:    failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseQuery},
			metrics: dnsUnanswered,
		},
		{
			name:    "no answer over udp",
			module:  "query_name: silent.test\nquery_type: A",
			timeout: 300 * time.Millisecond,
			want:    failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseQuery},
			metrics: dnsUnanswered,
			check:   dnsDurations(plain, "request"),
		},
		{
			name:    "no answer over tcp",
			module:  "query_name: silent.test\nquery_type: A\ntransport_protocol: tcp",
			timeout: 300 * time.Millisecond,
			want:    failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseQuery},
			metrics: dnsUnanswered,
		},
		{
			name:    "a host name as target",
			module:  "query_name: example.test\nquery_type: A\npreferred_ip_protocol: ip4",
			target:  func(s *probertest.DNSTestServer) string { return "v4only.test:" + probertest.Port(t, s.Addr) },
			metrics: dnsWith(dnsAnswered(dns.TypeA), "probe_ip_protocol", 4),
		},
		{
			name:    "a name without an address of the wanted family",
			module:  "query_name: example.test\npreferred_ip_protocol: ip6\nip_protocol_fallback: false",
			target:  func(s *probertest.DNSTestServer) string { return "v4only.test:" + probertest.Port(t, s.Addr) },
			want:    failure{taxonomy.ClassDNS, taxonomy.ReasonNoAddress, taxonomy.PhaseResolve},
			metrics: dnsWith(dnsUnanswered, "probe_ip_protocol", 0),
		},
		{
			name:   "source_ip_address over udp",
			module: "query_name: example.test\nquery_type: A\nsource_ip_address: 127.0.0.2\npreferred_ip_protocol: ip4",
			check:  dnsSeenFrom("127.0.0.2"),
		},
		{
			name:   "source_ip_address over tcp",
			module: "query_name: example.test\nquery_type: A\nsource_ip_address: 127.0.0.2\ntransport_protocol: tcp",
			check:  dnsSeenFrom("127.0.0.2"),
		},
		{
			name:    "source_ip_address not on this host",
			module:  "query_name: example.test\nsource_ip_address: 192.0.2.1",
			want:    failure{taxonomy.ClassProber, taxonomy.ReasonSourceAddress, taxonomy.PhaseConnect},
			metrics: dnsUnanswered,
		},
		{
			name:    "refused over tcp: the dns and resolve families, at 0",
			module:  "query_name: example.test\nquery_type: SOA\ntransport_protocol: tcp",
			target:  func(*probertest.DNSTestServer) string { return testkit.ClosedTCPAddr(t) },
			want:    refused,
			metrics: dnsWith(dnsUnanswered, "probe_ip_protocol", 4),
			check:   dnsDurations(plain, "connect"),
		},
		{
			name:    "refused over udp, reported like tcp",
			module:  "query_name: example.test\nquery_type: SOA",
			target:  func(*probertest.DNSTestServer) string { return testkit.ClosedUDPPort(t) },
			want:    refused,
			metrics: dnsUnanswered,
		},
	})
}

// Each validate_*_rrs rule, failing and passing, on each section of the
// answer to `example.test A`: two A records, an NS in authority and the
// name server's address in additional.
func TestDNSRRValidation(t *testing.T) {
	s := probertest.NewDNSTestServer(t, "127.0.0.1")
	type ruleCase struct {
		section, rule, pattern string
		fails                  bool
	}
	rules := []ruleCase{
		{"validate_answer_rrs", "fail_if_matches_regexp", `192\.0\.2\.2$`, true},
		{"validate_answer_rrs", "fail_if_matches_regexp", `198\.51\.100\.`, false},
		// fail_if_all_match_regexp fails, as in blackbox, when a record
		// does NOT match: the name says the opposite.
		{"validate_answer_rrs", "fail_if_all_match_regexp", `\tA\t192\.0\.2\.`, false},
		{"validate_answer_rrs", "fail_if_all_match_regexp", `192\.0\.2\.1$`, true},
		{"validate_answer_rrs", "fail_if_not_matches_regexp", `192\.0\.2\.1$`, true},
		{"validate_answer_rrs", "fail_if_not_matches_regexp", `^example\.test\.\t300\tIN\tA\t`, false},
		{"validate_answer_rrs", "fail_if_none_matches_regexp", `198\.51\.100\.`, true},
		{"validate_answer_rrs", "fail_if_none_matches_regexp", `192\.0\.2\.2$`, false},
		{"validate_authority_rrs", "fail_if_matches_regexp", `NS\tns1\.example\.test\.$`, true},
		{"validate_authority_rrs", "fail_if_matches_regexp", `ns2`, false},
		{"validate_authority_rrs", "fail_if_all_match_regexp", `\tNS\t`, false},
		{"validate_authority_rrs", "fail_if_all_match_regexp", `ns2`, true},
		{"validate_authority_rrs", "fail_if_not_matches_regexp", `ns2`, true},
		{"validate_authority_rrs", "fail_if_not_matches_regexp", `\tNS\t`, false},
		{"validate_authority_rrs", "fail_if_none_matches_regexp", `ns2`, true},
		{"validate_authority_rrs", "fail_if_none_matches_regexp", `ns1`, false},
		{"validate_additional_rrs", "fail_if_matches_regexp", `192\.0\.2\.53$`, true},
		{"validate_additional_rrs", "fail_if_matches_regexp", `192\.0\.2\.1$`, false},
		{"validate_additional_rrs", "fail_if_all_match_regexp", `^ns1\.`, false},
		{"validate_additional_rrs", "fail_if_all_match_regexp", `^ns2\.`, true},
		{"validate_additional_rrs", "fail_if_not_matches_regexp", `^ns2\.`, true},
		{"validate_additional_rrs", "fail_if_not_matches_regexp", `^ns1\.`, false},
		{"validate_additional_rrs", "fail_if_none_matches_regexp", `^ns2\.`, true},
		{"validate_additional_rrs", "fail_if_none_matches_regexp", `^ns1\.`, false},
	}
	var cases []dnsCase
	for _, r := range rules {
		c := dnsCase{
			name:    fmt.Sprintf("%s %s %s fails=%v", r.section, r.rule, r.pattern, r.fails),
			module:  fmt.Sprintf("query_name: example.test\nquery_type: A\n%s: {%s: ['%s']}", r.section, r.rule, r.pattern),
			metrics: dnsAnswered(dns.TypeA), // the answer is counted whatever its checks say
		}
		if r.fails {
			c.want = failure{taxonomy.ClassAssertion, taxonomy.ReasonDNSRRs, taxonomy.PhaseValidate}
			c.message = fmt.Sprintf("%s.%s[0] %q", r.section, r.rule, r.pattern)
		}
		cases = append(cases, c)
	}
	// An empty answer section (NXDOMAIN, accepted): blackbox fails the two
	// rules that need a record to match, and passes the other two
	// (fail_if_all_match_regexp: no record fails to match).
	for _, r := range []ruleCase{
		{"validate_answer_rrs", "fail_if_matches_regexp", `.`, false},
		{"validate_answer_rrs", "fail_if_all_match_regexp", `.`, false},
		{"validate_answer_rrs", "fail_if_not_matches_regexp", `.`, true},
		{"validate_answer_rrs", "fail_if_none_matches_regexp", `.`, true},
	} {
		c := dnsCase{
			name:   fmt.Sprintf("empty answer %s fails=%v", r.rule, r.fails),
			module: fmt.Sprintf("query_name: nx.test\nvalid_rcodes: [NXDOMAIN]\n%s: {%s: ['%s']}", r.section, r.rule, r.pattern),
		}
		if r.fails {
			c.want = failure{taxonomy.ClassAssertion, taxonomy.ReasonDNSRRs, taxonomy.PhaseValidate}
			c.message = fmt.Sprintf("%s.%s[0] %q", r.section, r.rule, r.pattern)
		}
		cases = append(cases, c)
	}
	cases = append(cases,
		dnsCase{
			name:    "fail_if_all_match_regexp: every record matches every pattern, passes",
			module:  "query_name: example.test\nquery_type: A\nvalidate_answer_rrs: {fail_if_all_match_regexp: ['\\tA\\t', '^example\\.test\\.']}",
			metrics: dnsAnswered(dns.TypeA),
		},
		dnsCase{
			name:    "fail_if_all_match_regexp: a pattern that one record misses fails",
			module:  "query_name: example.test\nquery_type: A\nvalidate_answer_rrs: {fail_if_all_match_regexp: ['\\tA\\t', '192\\.0\\.2\\.2$']}",
			metrics: dnsAnswered(dns.TypeA),
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonDNSRRs, taxonomy.PhaseValidate},
			message: `validate_answer_rrs.fail_if_all_match_regexp[1] "192\\.0\\.2\\.2$" did not match the answer records`,
		},
		dnsCase{
			name:    "the rcode is checked before the records",
			module:  "query_name: nx.test\nvalidate_answer_rrs: {fail_if_none_matches_regexp: ['.']}",
			want:    failure{taxonomy.ClassStatus, taxonomy.ReasonDNSRcode, taxonomy.PhaseValidate},
			message: "NXDOMAIN",
		},
		dnsCase{
			name: "the first failing rule is reported: answer before authority, index named",
			module: "query_name: example.test\nquery_type: A\n" +
				"validate_authority_rrs: {fail_if_matches_regexp: ['NS']}\n" +
				"validate_answer_rrs: {fail_if_matches_regexp: ['nothing', '192\\.0\\.2\\.1$']}",
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonDNSRRs, taxonomy.PhaseValidate},
			message: `validate_answer_rrs.fail_if_matches_regexp[1] "192\\.0\\.2\\.1$" matched the answer records`,
		},
	)
	runDNSCases(t, s, cases)
}

func TestDNSOverTLS(t *testing.T) {
	s := probertest.NewDNSTestServer(t, "127.0.0.1")
	caFile, otherFile := s.CA.File(t), testcert.NewCA(t, testcert.Spec{}).File(t)
	dot := func(s *probertest.DNSTestServer) string { return s.Dot }
	tlsPhases := []string{"resolve", "connect", "tls", "request"}
	runDNSCases(t, s, []dnsCase{
		{
			name:    "verified",
			module:  "query_name: example.test\nquery_type: A\ndns_over_tls: true\ntls_config: {ca_file: " + caFile + "}",
			target:  dot,
			metrics: dnsAnswered(dns.TypeA),
			extra:   tlsFamiliesDNS,
			check:   dnsChecks(dnsSeenQuery("dot", dns.TypeA, dns.ClassINET, true), dnsDurations(tlsPhases, "connect", "tls", "request")),
		},
		{
			name:    "with transport_protocol tcp written out",
			module:  "query_name: example.test\nquery_type: A\ndns_over_tls: true\ntransport_protocol: tcp\ntls_config: {ca_file: " + caFile + "}",
			target:  dot,
			metrics: dnsAnswered(dns.TypeA),
			extra:   tlsFamiliesDNS,
		},
		{
			name:    "unknown authority",
			module:  "query_name: example.test\ndns_over_tls: true\ntls_config: {ca_file: " + otherFile + "}",
			target:  dot,
			want:    failure{taxonomy.ClassTLS, taxonomy.ReasonCertUnknownAuthority, taxonomy.PhaseTLS},
			metrics: dnsUnanswered,
			extra:   tlsFamiliesDNS,
			check:   dnsChecks(dnsDurations(tlsPhases, "tls"), dnsChainSurvived),
		},
		{
			name:   "server_name the certificate is not for",
			module: "query_name: example.test\ndns_over_tls: true\ntls_config: {ca_file: " + caFile + ", server_name: dns.example}",
			target: dot,
			want:   failure{taxonomy.ClassTLS, taxonomy.ReasonCertHostnameMismatch, taxonomy.PhaseTLS},
			extra:  tlsFamiliesDNS,
			check:  dnsChainSurvived,
		},
		{
			name:   "server_name the certificate is for",
			module: "query_name: example.test\ndns_over_tls: true\ntls_config: {ca_file: " + caFile + ", server_name: localhost}",
			target: dot,
			extra:  tlsFamiliesDNS,
		},
		{
			name:    "refused",
			module:  "query_name: example.test\ndns_over_tls: true",
			target:  func(*probertest.DNSTestServer) string { return testkit.ClosedTCPAddr(t) },
			want:    failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect},
			metrics: dnsUnanswered,
			check:   dnsDurations(tlsPhases),
		},
		{
			name:    "no answer",
			module:  "query_name: silent.test\ndns_over_tls: true\ntls_config: {ca_file: " + caFile + "}",
			target:  dot,
			timeout: 300 * time.Millisecond,
			want:    failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseQuery},
			extra:   tlsFamiliesDNS,
		},
	})
}

func TestDNSOverHTTPS(t *testing.T) {
	s := probertest.NewDNSTestServer(t, "127.0.0.1")
	otherFile := testcert.NewCA(t, testcert.Spec{}).File(t)
	doh := "transport_protocol: https\ntls_config: {ca_file: " + s.CA.File(t) + "}\n"
	url := func(s *probertest.DNSTestServer) string { return s.Doh }
	tlsPhases := []string{"resolve", "connect", "tls", "request"}
	runDNSCases(t, s, []dnsCase{
		{
			name:    "POST by default, over HTTP/2",
			module:  doh + "query_name: example.test\nquery_type: A",
			target:  url,
			metrics: dnsAnswered(dns.TypeA),
			extra:   tlsFamiliesDNS,
			check: dnsChecks(dnsSeenQuery("doh", dns.TypeA, dns.ClassINET, true), dnsDurations(tlsPhases, "connect", "tls", "request"),
				dnsSeenHTTP(http.MethodPost, "HTTP/2.0")),
		},
		{
			name:    "GET",
			module:  doh + "query_name: example.test\nquery_type: MX\ndoh_method: GET",
			target:  url,
			metrics: dnsAnswered(dns.TypeMX),
			extra:   tlsFamiliesDNS,
			check:   dnsChecks(dnsSeenQuery("doh", dns.TypeMX, dns.ClassINET, true), dnsSeenHTTP(http.MethodGet, "HTTP/2.0")),
		},
		{
			name:   "POST over HTTP/1.1",
			module: doh + "query_name: example.test\nquery_type: A",
			target: func(s *probertest.DNSTestServer) string { return s.Doh1 },
			extra:  tlsFamiliesDNS,
			check:  dnsSeenHTTP(http.MethodPost, "HTTP/1.1"),
		},
		{
			name:   "GET over HTTP/1.1",
			module: doh + "query_name: example.test\nquery_type: A\ndoh_method: get",
			target: func(s *probertest.DNSTestServer) string { return s.Doh1 },
			extra:  tlsFamiliesDNS,
			check:  dnsSeenHTTP(http.MethodGet, "HTTP/1.1"),
		},
		{
			name:   "host:port target gets https:// and /dns-query",
			module: doh + "query_name: example.test\nquery_type: A",
			target: func(s *probertest.DNSTestServer) string {
				return strings.TrimSuffix(strings.TrimPrefix(s.Doh, "https://"), "/dns-query")
			},
			extra: tlsFamiliesDNS,
			check: dnsSeenPath("/dns-query"),
		},
		{
			name:   "a URL's own path is kept",
			module: doh + "query_name: example.test\nquery_type: A\ndoh_method: GET",
			target: func(s *probertest.DNSTestServer) string {
				return strings.TrimSuffix(s.Doh, "/dns-query") + "/custom/path?x=1"
			},
			extra: tlsFamiliesDNS,
			check: dnsSeenPath("/custom/path"),
		},
		{
			name:    "HTTP 500",
			module:  doh + "query_name: error.test",
			target:  url,
			want:    failure{taxonomy.ClassStatus, taxonomy.ReasonHTTPStatus, taxonomy.PhaseQuery},
			message: "500",
			metrics: dnsUnanswered,
			extra:   tlsFamiliesDNS,
		},
		{
			name:    "a body that is not a DNS message",
			module:  doh + "query_name: garbage.test",
			target:  url,
			want:    failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseQuery},
			metrics: dnsUnanswered,
			extra:   tlsFamiliesDNS,
		},
		{
			name:    "rcode checked as for the other transports",
			module:  doh + "query_name: nx.test",
			target:  url,
			want:    failure{taxonomy.ClassStatus, taxonomy.ReasonDNSRcode, taxonomy.PhaseValidate},
			extra:   tlsFamiliesDNS,
			metrics: map[string]float64{"probe_dns_query_succeeded": 1},
		},
		{
			name:    "records checked as for the other transports",
			module:  doh + "query_name: example.test\nquery_type: A\nvalidate_answer_rrs: {fail_if_matches_regexp: ['192\\.0\\.2\\.1$']}",
			target:  url,
			want:    failure{taxonomy.ClassAssertion, taxonomy.ReasonDNSRRs, taxonomy.PhaseValidate},
			extra:   tlsFamiliesDNS,
			metrics: dnsAnswered(dns.TypeA),
		},
		{
			name:    "no answer",
			module:  doh + "query_name: silent.test",
			target:  url,
			timeout: 300 * time.Millisecond,
			want:    failure{taxonomy.ClassTimeout, taxonomy.ReasonDeadline, taxonomy.PhaseQuery},
			extra:   tlsFamiliesDNS,
		},
		{
			name:    "unknown authority",
			module:  "transport_protocol: https\nquery_name: example.test\ntls_config: {ca_file: " + otherFile + "}",
			target:  url,
			want:    failure{taxonomy.ClassTLS, taxonomy.ReasonCertUnknownAuthority, taxonomy.PhaseTLS},
			metrics: dnsUnanswered,
			extra:   tlsFamiliesDNS,
			check:   dnsChainSurvived,
		},
		{
			name:   "source_ip_address",
			module: doh + "query_name: example.test\nsource_ip_address: 127.0.0.2",
			target: url,
			extra:  tlsFamiliesDNS,
			check:  dnsSeenFrom("127.0.0.2"),
		},
		{
			name:    "refused",
			module:  doh + "query_name: example.test",
			target:  func(*probertest.DNSTestServer) string { return "https://" + testkit.ClosedTCPAddr(t) + "/dns-query" },
			want:    failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect},
			metrics: dnsUnanswered,
		},
	})
}

// seenHTTP asserts the DoH request: method, protocol, RFC 8484's headers
// and id 0, and for GET the query in ?dns= as base64url without padding.
func dnsSeenHTTP(method, proto string) func(t *testing.T, s *probertest.DNSTestServer, _ *probemetrics.Sink) {
	return func(t *testing.T, s *probertest.DNSTestServer, _ *probemetrics.Sink) {
		t.Helper()
		q := s.Last(t)
		if q.Req.Method != method || q.Req.Proto != proto {
			t.Errorf("the server saw %s over %s, want %s over %s", q.Req.Method, q.Req.Proto, method, proto)
		}
		if got := q.Req.Header.Get("Accept"); got != dnsMessageType {
			t.Errorf("Accept = %q, want %q", got, dnsMessageType)
		}
		if q.Msg.Id != 0 {
			t.Errorf("the query has id %d, want 0 (RFC 8484 4.1)", q.Msg.Id)
		}
		param := q.Req.URL.Query().Get("dns")
		if (method == http.MethodGet) != (param != "") || strings.Contains(param, "=") {
			t.Errorf("?dns=%q for a %s request", param, method)
		}
	}
}

func dnsSeenPath(path string) func(t *testing.T, s *probertest.DNSTestServer, _ *probemetrics.Sink) {
	return func(t *testing.T, s *probertest.DNSTestServer, _ *probemetrics.Sink) {
		t.Helper()
		if got := s.Last(t).Req.URL.Path; got != path {
			t.Errorf("the server saw path %q, want %q", got, path)
		}
	}
}

func TestDNSOverIPv6(t *testing.T) {
	s := probertest.NewDNSTestServer(t, "::1") // skips when [::1] cannot be listened on
	v6 := map[string]float64{"probe_ip_protocol": 6, "probe_dns_query_succeeded": 1}
	tls := "tls_config: {ca_file: " + s.CA.File(t) + "}\n"
	runDNSCases(t, s, []dnsCase{
		{name: "udp", module: "query_name: example.test\nquery_type: A", metrics: v6, check: dnsSeenFrom("::1")},
		{name: "tcp", module: "query_name: example.test\ntransport_protocol: tcp", metrics: v6, check: dnsSeenFrom("::1")},
		{
			name: "tls", module: tls + "query_name: example.test\ndns_over_tls: true",
			target: func(s *probertest.DNSTestServer) string { return s.Dot }, metrics: v6, extra: tlsFamiliesDNS,
		},
		{
			name: "https", module: tls + "query_name: example.test\ntransport_protocol: https",
			target: func(s *probertest.DNSTestServer) string { return s.Doh }, metrics: v6, extra: tlsFamiliesDNS,
		},
		{
			name: "source_ip_address of the other family", module: "query_name: example.test\nsource_ip_address: 127.0.0.1",
			want: failure{taxonomy.ClassProber, taxonomy.ReasonSourceAddress, taxonomy.PhaseConnect},
		},
	})
}

// A target without a port gets 53, or 853 with DNS over TLS, or 443 with
// DNS over HTTPS. The probes are pointed at this host's own ports; what
// answers there does not matter, only the address dialled.
func TestDNSDefaultPorts(t *testing.T) {
	for _, tc := range []struct {
		module, target, dialled string
	}{
		{"query_name: example.test", "127.0.0.1", "127.0.0.1:53"},
		{"query_name: example.test\ntransport_protocol: tcp", "127.0.0.1", "127.0.0.1:53"},
		{"query_name: example.test\ndns_over_tls: true", "127.0.0.1", "127.0.0.1:853"},
		{"query_name: example.test\ntransport_protocol: https", "127.0.0.1", "127.0.0.1:443"},
		{"query_name: example.test\ntransport_protocol: https", "https://127.0.0.1/dns-query", "127.0.0.1:443"},
		{"query_name: example.test\ntransport_protocol: https", "::1", "[::1]:443"},
		{"query_name: example.test", "::1", "[::1]:53"},
		{"query_name: example.test", "[::1]", "[::1]:53"},
		{"query_name: example.test\npreferred_ip_protocol: ip4", "v4only.test", "127.0.0.1:53"},
		{"query_name: example.test\ndns_over_tls: true", "127.0.0.1:5353", "127.0.0.1:5353"},
	} {
		t.Run(tc.target+" "+strings.ReplaceAll(tc.module, "\n", " "), func(t *testing.T) {
			log := &probertest.DialLog{}
			_, _, err := probeDNSWithin(t, dnsModule(t, tc.module), tc.target, 300*time.Millisecond, slog.New(log))
			if got := log.Dialled(); !slices.Equal(got, []string{tc.dialled}) {
				t.Errorf("dialled %v, want [%s] (probe error: %v)", got, tc.dialled, err)
			}
		})
	}
}

func TestDNSInvalidTargets(t *testing.T) {
	for _, tc := range []struct {
		module, target string
	}{
		{"query_name: example.test", ""},
		{"query_name: example.test", "[::1"},
		{"query_name: example.test", "a:b:c"},
		{"query_name: example.test", "127.0.0.1:0"},
		{"query_name: example.test", "127.0.0.1:65536"},
		{"query_name: example.test", "127.0.0.1:domain"},
		{"query_name: example.test", "127.0.0.1:"},
		{"query_name: example.test", "dns://127.0.0.1"},
		{"query_name: example.test", "example.test/path"},
		{"query_name: example.test\ndns_over_tls: true", "[]:853"},
		{"query_name: example.test\ntransport_protocol: https", "http://127.0.0.1/dns-query"},
		{"query_name: example.test\ntransport_protocol: https", "ftp://127.0.0.1/"},
		{"query_name: example.test\ntransport_protocol: https", "https:///dns-query"},
		{"query_name: example.test\ntransport_protocol: https", "https://127.0.0.1:99999/dns-query"},
		{"query_name: example.test\ntransport_protocol: https", "https://127.0.0.1/%zz"},
		{"query_name: example.test\ntransport_protocol: https", ""},
	} {
		t.Run(tc.target+" "+strings.ReplaceAll(tc.module, "\n", " "), func(t *testing.T) {
			log := &probertest.DialLog{}
			sink, _, err := probeDNSWithin(t, dnsModule(t, tc.module), tc.target, 2*time.Second, slog.New(log))
			checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup})
			if got := log.Dialled(); len(got) > 0 {
				t.Errorf("an invalid target was dialled: %v", got)
			}
			probertest.Metric(t, sink, 0, "probe_dns_query_succeeded")
		})
	}
}

// query_name is sent in its ASCII form; names IDNA would refuse, such as
// service names with underscores, are sent as written.
func TestDNSQueryNameForms(t *testing.T) {
	s := probertest.NewDNSTestServer(t, "127.0.0.1")
	for _, tc := range []struct{ name, sent string }{
		{"bücher.test", "xn--bcher-kva.test."},
		{"_dmarc.Example.test.", "_dmarc.Example.test."},
		{"example.test", "example.test."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := dnsModule(t, "query_name: "+tc.name+"\nvalid_rcodes: [NOERROR, NXDOMAIN]")
			_, _, err := probeDNSWithin(t, m, s.Addr, 5*time.Second, probertest.DiscardLogger)
			checkOutcome(t, err, failure{})
			if got := s.Last(t).Msg.Question[0].Name; got != tc.sent {
				t.Errorf("the server was asked about %q, want %q", got, tc.sent)
			}
		})
	}
}

// dnsChainSurvived is chainSurvived in the shape of a dnsCase check.
func dnsChainSurvived(t *testing.T, _ *probertest.DNSTestServer, sink *probemetrics.Sink) {
	t.Helper()
	probertest.ChainSurvived(t, sink)
}

// probeDNSWithin runs one dns probe under a deadline, logging to logger.
func probeDNSWithin(t *testing.T, m *core.Module, target string, timeout time.Duration, logger *slog.Logger) (*probemetrics.Sink, time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	sink := probemetrics.NewSink()
	start := time.Now()
	err := probeDNS(ctx, target, m, sink, logger)
	probertest.Observe(t, sink)
	return sink, time.Since(start), err
}

func probeDNS(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return m.Prepared.(*dnsPrepared).Probe(ctx, target, m, sink, logger)
}
