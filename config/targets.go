package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path"
	"slices"
	"strings"
)

// Targets is the module-level `targets:` block, a sonde addition: which
// targets the module may probe, so that an exporter anyone can reach is
// not a proxy into the networks it can reach. Entries of Allow and Deny
// are CIDRs or addresses, host name patterns, or, for unix modules,
// socket path patterns; Schemes lists the URL schemes an http or
// websocket module may use. The prober package enforces them.
type Targets struct {
	Allow   []string `yaml:"allow,omitempty"`
	Deny    []string `yaml:"deny,omitempty"`
	Schemes []string `yaml:"schemes,omitempty"`
}

// IsSet reports whether the block has any rule.
func (t Targets) IsSet() bool {
	return len(t.Allow) > 0 || len(t.Deny) > 0 || len(t.Schemes) > 0
}

// RuleKind says what a targets rule matches.
type RuleKind int

// The kinds of rule.
const (
	AddressRule RuleKind = iota // a CIDR or one address: matches the address dialled
	HostRule                    // a host name pattern: matches the target's name
	PathRule                    // a path pattern: matches a unix socket path
)

// TargetRule is one parsed entry of targets.allow or targets.deny.
type TargetRule struct {
	Entry  string // as written, for messages
	Kind   RuleKind
	Prefix netip.Prefix // an AddressRule's range
	labels []string     // a HostRule's pattern, label by label, lower case
	path   string       // a PathRule's pattern
}

// ParseTargetRule reads one entry of targets.allow or targets.deny for a
// module of the named prober, refusing entries that could never match
// its targets (an address for a unix module, a path for any other).
func ParseTargetRule(prober, entry string) (TargetRule, error) {
	r, err := parseRule(entry)
	if err != nil {
		return r, err
	}
	return r, ruleFitsProber(r, prober)
}

func parseRule(entry string) (TargetRule, error) {
	r := TargetRule{Entry: entry}
	var err error
	switch {
	case strings.TrimSpace(entry) == "":
		err = errors.New("an empty entry matches nothing; remove it")
	case strings.Contains(entry, "://"):
		err = fmt.Errorf("%q is a URL; write only its host here, and list schemes in targets.schemes", entry)
	case strings.HasPrefix(entry, "/"):
		r.Kind, r.path, err = PathRule, entry, checkPathPattern(entry)
	case hasPort(entry):
		err = fmt.Errorf("%q has a port; rules match hosts and addresses on any port", entry)
	case strings.Contains(entry, "/"):
		r.Kind = AddressRule
		r.Prefix, err = parseCIDR(entry)
	case strings.Contains(entry, ":") || isIPv4Literal(entry):
		r.Kind = AddressRule
		r.Prefix, err = parseSingleAddress(entry)
	default:
		r.Kind = HostRule
		r.labels, err = parseHostPattern(entry)
	}
	return r, err
}

// ruleFitsProber refuses a rule that no target of the prober can match:
// a unix module's targets are paths, every other module's are hosts.
func ruleFitsProber(r TargetRule, prober string) error {
	switch {
	case prober == "unix" && r.Kind != PathRule:
		return fmt.Errorf("%q matches hosts or addresses, but a unix module's targets are socket paths; write an absolute path pattern such as /run/app/*.sock", r.Entry)
	case prober != "unix" && prober != "" && r.Kind == PathRule:
		return fmt.Errorf("%q is a socket path pattern, which only unix modules use; write a host name pattern or a CIDR", r.Entry)
	}
	return nil
}

// CheckTargetScheme refuses a targets.schemes entry the prober's targets
// cannot have.
func CheckTargetScheme(prober, scheme string) error {
	s, _ := sectionOf(prober)
	known := s.Schemes
	switch {
	case len(known) == 0:
		return fmt.Errorf("a %s target has no scheme; only http and websocket modules can list schemes", prober)
	case slices.Contains(known, scheme):
		return nil
	case prober == "websocket" && (scheme == "http" || scheme == "https"):
		return fmt.Errorf("%q is not a websocket scheme; use ws or wss (http:// and https:// targets count as ws:// and wss://)", scheme)
	}
	return fmt.Errorf("%q is not a scheme of the %s prober; use %s", scheme, prober, strings.Join(known, " or "))
}

// parseCIDR reads a range such as 10.0.0.0/8 or fd00::/8. A range with
// bits set past its length is refused: 10.0.0.1/8 is more likely a typo
// for 10.0.0.1/32 than a way to write 10.0.0.0/8.
func parseCIDR(entry string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(entry)
	if err != nil {
		return p, fmt.Errorf("%q is not a CIDR (%v); write e.g. 10.0.0.0/8 or fd00::/8", entry, unquoted(err))
	}
	if p.Addr().Is4In6() {
		return p, fmt.Errorf("%q is an IPv4 range in IPv6 form; write it as IPv4 (IPv4-mapped addresses are matched as IPv4)", entry)
	}
	if m := p.Masked(); m != p {
		return p, fmt.Errorf("%q has bits set past its /%d; write %s for the range, or /%d for the one address", entry, p.Bits(), m, p.Addr().BitLen())
	}
	return p, nil
}

// parseSingleAddress reads an address, which stands for itself.
func parseSingleAddress(entry string) (netip.Prefix, error) {
	a, err := netip.ParseAddr(entry)
	switch {
	case err != nil:
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address (%v)", entry, unquoted(err))
	case a.Zone() != "":
		return netip.Prefix{}, fmt.Errorf("%q has a zone; rules match addresses without their zone, write %s", entry, a.WithZone(""))
	case a.Is4In6():
		return netip.Prefix{}, fmt.Errorf("%q is an IPv4 address in IPv6 form; write %s (IPv4-mapped addresses are matched as IPv4)", entry, a.Unmap())
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// hasPort reports whether entry is host:port or [address]:port.
func hasPort(entry string) bool {
	host, _, err := net.SplitHostPort(entry)
	return err == nil && host != ""
}

// isIPv4Literal reports whether s is written like an IPv4 address, so
// that a malformed one (300.1.1.1) is reported as such, not as a host.
func isIPv4Literal(s string) bool {
	return strings.Count(s, ".") == 3 && strings.Trim(s, "0123456789.") == ""
}

// parseHostPattern reads a host name pattern: labels of letters, digits,
// '-' and '_', where '*' stands for any run of characters and '?' for one,
// never a dot. A fully qualified pattern's final dot is dropped, as it is
// from names. A pattern whose labels are all digits and wildcards is
// refused: 10.0.0.* looks like an address range but would only match
// names.
func parseHostPattern(entry string) ([]string, error) {
	name := strings.TrimSuffix(strings.ToLower(entry), ".")
	if i := strings.IndexFunc(name, func(r rune) bool { return !isHostPatternChar(r) }); i >= 0 {
		return nil, fmt.Errorf("%q is not a host name pattern: %q is not allowed (use letters, digits, '-', '_', '.', and the wildcards * and ?)", entry, name[i:i+1])
	}
	labels := strings.Split(name, ".")
	if slices.Contains(labels, "") {
		return nil, fmt.Errorf("%q is not a host name pattern: it has an empty label (a leading or double dot)", entry)
	}
	if looksLikeAddress(labels) {
		return nil, fmt.Errorf("%q looks like an address pattern, but host name patterns match names only; write a CIDR such as 10.0.0.0/24", entry)
	}
	return labels, nil
}

func isHostPatternChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.*?", r)
}

func looksLikeAddress(labels []string) bool {
	digits := false
	for _, l := range labels {
		if strings.Trim(l, "0123456789*?") != "" {
			return false
		}
		digits = digits || strings.Trim(l, "*?") != ""
	}
	return digits
}

// checkPathPattern refuses a path pattern path.Match cannot use.
func checkPathPattern(pattern string) error {
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("%q is not a valid path pattern (%v)", pattern, err)
	}
	return nil
}

// unquoted drops netip's repetition of the input from its error.
func unquoted(err error) string {
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, "): "); ok {
		return after
	}
	return msg
}

// MatchesHost reports whether a HostRule matches name, which must be in
// the form the prober compares: lower case, ASCII, without a trailing dot.
// The pattern and the name must have as many labels; '*' and '?' never
// match a dot, so *.example.com matches a.example.com but neither
// example.com nor a.b.example.com.
func (r TargetRule) MatchesHost(name string) bool {
	if r.Kind != HostRule {
		return false
	}
	labels := strings.Split(name, ".")
	if len(labels) != len(r.labels) {
		return false
	}
	for i, pattern := range r.labels {
		// path.Match treats '/' as its separator, which a label cannot
		// hold, and the pattern was checked when it was parsed.
		if ok, _ := path.Match(pattern, labels[i]); !ok {
			return false
		}
	}
	return true
}

// MatchesAddr reports whether an AddressRule's range holds a, which must
// have no zone and be unmapped (an IPv4-mapped address as IPv4).
func (r TargetRule) MatchesAddr(a netip.Addr) bool {
	return r.Kind == AddressRule && r.Prefix.Contains(a)
}

// MatchesPath reports whether a PathRule matches a socket path; '*' and
// '?' never match a '/'.
func (r TargetRule) MatchesPath(p string) bool {
	if r.Kind != PathRule {
		return false
	}
	ok, _ := path.Match(r.path, p)
	return ok
}
