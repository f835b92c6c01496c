package cli

import (
	"cmp"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/sonde-exporter/sonde/assert"
	"github.com/sonde-exporter/sonde/collector"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// outcome is one probe of one target in one run, judged.
type outcome struct {
	run         int
	target      string
	res         *collector.Result
	families    []*dto.MetricFamily
	samples     []assert.Sample
	checks      []check
	comparisons []comparison
}

func newOutcome(res *collector.Result, run int) *outcome {
	// A Sink's Gather never fails; it implements prometheus.Gatherer.
	mfs, _ := res.Sink.Gather()
	return &outcome{run: run, target: res.Target, res: res, families: mfs, samples: assert.SamplesFrom(mfs)}
}

// passed: the probe succeeded, every assertion held, nothing regressed.
func (o *outcome) passed() bool {
	if !o.res.Success() {
		return false
	}
	for _, c := range o.checks {
		if !c.Passed {
			return false
		}
	}
	for _, c := range o.comparisons {
		if c.Regressed {
			return false
		}
	}
	return true
}

// invalidTarget returns the failure of a probe whose target could not
// even be read (prober/invalid_target in setup): for a gate, a usage error.
func (o *outcome) invalidTarget() *taxonomy.Error {
	if e := o.res.Err; e != nil && e.Reason == taxonomy.ReasonInvalidTarget && e.Phase == taxonomy.PhaseSetup {
		return e
	}
	return nil
}

// value returns the unlabelled metric's value.
func (o *outcome) value(name string) (float64, bool) {
	return o.res.Sink.Value(name)
}

// check is one evaluated --assert.
type check struct {
	Expr   string `json:"expr"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail"` // "200 == 200", "0.7 < 0.5 is false", or why it could not be evaluated
}

func newCheck(a *assert.Assertion, o assert.Outcome) check {
	return check{Expr: a.String(), Passed: o.Passed, Detail: o.Detail()}
}

// phase is one series of a prober's probe_<prober>_duration_seconds{phase}.
type phase struct {
	Name    string
	Seconds float64
}

// phaseOrder is the order in which probes go through their phases; a
// phase not listed comes after these, by name.
var phaseOrder = []string{"setup", "resolve", "connect", "tls", "starttls", "request", "query", "processing", "transfer", "check", "rtt"}

// phases returns the phase durations of the probe: whatever family of the
// form probe_*_duration_seconds has a phase label and no other, so a new
// prober's phases show up without a change here.
func (o *outcome) phases() []phase {
	var out []phase
	for _, s := range o.samples {
		if _, ok := s.Labels["phase"]; ok && len(s.Labels) == 1 &&
			strings.HasPrefix(s.Name, "probe_") && strings.HasSuffix(s.Name, "_duration_seconds") {
			out = append(out, phase{Name: s.Labels["phase"], Seconds: s.Value})
		}
	}
	rank := func(name string) int {
		if i := slices.Index(phaseOrder, name); i >= 0 {
			return i
		}
		return len(phaseOrder)
	}
	slices.SortStableFunc(out, func(a, b phase) int {
		return cmp.Or(cmp.Compare(rank(a.Name), rank(b.Name)), strings.Compare(a.Name, b.Name))
	})
	return out
}

// tlsFacts are what the TLS metrics say about the handshake and the
// certificate; nil when the server presented none.
type tlsFacts struct {
	Version            string     `json:"version"`
	Cipher             string     `json:"cipher"`
	Subject            string     `json:"subject"`
	Issuer             string     `json:"issuer"`
	DNSNames           []string   `json:"dns_names"`
	SerialNumber       string     `json:"serial_number"`
	FingerprintSHA256  string     `json:"fingerprint_sha256"`
	EarliestCertExpiry *time.Time `json:"earliest_cert_expiry"`
	LastChainExpiry    *time.Time `json:"last_chain_expiry"`
	Verified           bool       `json:"verified"`
	OCSPStatus         string     `json:"ocsp_status,omitempty"` // good, revoked or unknown; empty when OCSP said nothing
}

func (o *outcome) tls() *tlsFacts {
	version, ok := o.label("probe_tls_version_info", "version")
	if !ok {
		return nil
	}
	f := &tlsFacts{Version: version, DNSNames: []string{}}
	f.Cipher, _ = o.label("probe_tls_cipher_info", "cipher")
	f.Subject, _ = o.label("probe_ssl_last_chain_info", "subject")
	f.Issuer, _ = o.label("probe_ssl_last_chain_info", "issuer")
	f.SerialNumber, _ = o.label("probe_ssl_last_chain_info", "serialnumber")
	f.FingerprintSHA256, _ = o.label("probe_ssl_last_chain_info", "fingerprint_sha256")
	if sans, _ := o.label("probe_ssl_last_chain_info", "subjectalternative"); sans != "" {
		f.DNSNames = strings.Split(sans, ",")
	}
	f.EarliestCertExpiry = o.timestamp("probe_ssl_earliest_cert_expiry")
	f.LastChainExpiry = o.timestamp("probe_ssl_last_chain_expiry_timestamp_seconds")
	verified, _ := o.value("probe_tls_verified")
	f.Verified = verified == 1
	f.OCSPStatus, _ = o.label("probe_tls_ocsp_status", "status")
	return f
}

// label returns a label of the first series of an info metric.
func (o *outcome) label(metric, label string) (string, bool) {
	for _, s := range o.samples {
		if s.Name == metric {
			v, ok := s.Labels[label]
			return v, ok
		}
	}
	return "", false
}

func (o *outcome) timestamp(metric string) *time.Time {
	v, ok := o.value(metric)
	if !ok {
		return nil
	}
	t := time.Unix(int64(v), 0).UTC()
	return &t
}

// attempts are what the retry loop did, from the metrics every probe
// exports (docs/metrics.md), which are the contract the server keeps too.
type attempts struct {
	Made                 int            `json:"made"`
	Failed               map[string]int `json:"failed"` // by class
	FirstDurationSeconds float64        `json:"first_duration_seconds"`
}

func (o *outcome) attempts() attempts {
	a := attempts{Failed: map[string]int{}}
	made, _ := o.value("probe_attempts")
	a.Made = int(made)
	a.FirstDurationSeconds, _ = o.value("probe_first_attempt_duration_seconds")
	for _, s := range o.samples {
		if s.Name == "probe_failed_attempts" && s.Value > 0 {
			a.Failed[s.Labels["class"]] = int(s.Value)
		}
	}
	return a
}
