// Package policy is the target policy: which targets a module may probe.
// It is what keeps an exporter that anyone can reach from being a proxy
// into the networks sonde can reach. Rules come from the module's
// `targets:` block and from deny lists the exporter gives every module
// (--probe.deny-private). Name rules are checked before anything is sent;
// address rules against the address actually dialled, after the lookup,
// so that a name resolving into a denied range is refused too. Resolving
// and dialing (prober/netdial) and the OCSP client (prober/ocsp) enforce
// it; this package only decides.
package policy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/idn"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// AddressRange is a range of addresses a deny list refuses, with the name
// a refusal gives it ("loopback", "link-local", ...).
type AddressRange struct {
	Prefix netip.Prefix
	Name   string
}

// PrivateRanges are the addresses --probe.deny-private refuses: every
// address that is not a public unicast destination, and the cloud
// metadata services. The first range that holds an address names the
// refusal, so the metadata addresses come before the ranges holding them.
func PrivateRanges() []AddressRange {
	return []AddressRange{
		{netip.MustParsePrefix("169.254.169.254/32"), "cloud metadata service"},
		{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata service"},
		{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"}, // 0.0.0.0 reaches the host itself on Linux
		{netip.MustParsePrefix("::/128"), "unspecified"},
		{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
		{netip.MustParsePrefix("::1/128"), "loopback"},
		{netip.MustParsePrefix("10.0.0.0/8"), "private, RFC 1918"},
		{netip.MustParsePrefix("172.16.0.0/12"), "private, RFC 1918"},
		{netip.MustParsePrefix("192.168.0.0/16"), "private, RFC 1918"},
		{netip.MustParsePrefix("100.64.0.0/10"), "shared address space, CGNAT"},
		{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
		{netip.MustParsePrefix("fe80::/10"), "link-local"},
		{netip.MustParsePrefix("fc00::/7"), "unique local"},
		{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
		{netip.MustParsePrefix("ff00::/8"), "multicast"},
		{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	}
}

// DenyList is a list of ranges the exporter refuses for every module,
// whatever a module's own targets.allow says. By names the list's origin
// in refusals, e.g. "--probe.deny-private".
type DenyList struct {
	By     string
	Ranges []AddressRange
}

// Target is what one module may probe. A nil policy allows everything,
// so that modules without rules pay nothing per probe.
type Target struct {
	module  string
	allow   []config.TargetRule
	deny    []config.TargetRule
	schemes []string
	global  []DenyList
}

// New reads module's targets block and adds the global deny lists. It
// returns nil when there is nothing to enforce.
func New(module string, cm *config.Module, global []DenyList) (*Target, error) {
	if !cm.Targets.IsSet() && len(global) == 0 {
		return nil, nil
	}
	p := &Target{module: module, schemes: cm.Targets.Schemes, global: global}
	var errs []error
	p.allow, errs = parseRules(cm.Prober, "allow", cm.Targets.Allow, errs)
	p.deny, errs = parseRules(cm.Prober, "deny", cm.Targets.Deny, errs)
	for i, s := range cm.Targets.Schemes {
		if err := config.CheckTargetScheme(cm.Prober, s); err != nil {
			errs = append(errs, fmt.Errorf("targets.schemes[%d]: %w", i, err))
		}
	}
	return p, errors.Join(errs...)
}

// parseRules parses one list of rules; the configuration has checked
// them already, this guards modules built in code.
func parseRules(prober, key string, entries []string, errs []error) ([]config.TargetRule, []error) {
	rules := make([]config.TargetRule, 0, len(entries))
	for i, entry := range entries {
		r, err := config.ParseTargetRule(prober, entry)
		if err != nil {
			errs = append(errs, fmt.Errorf("targets.%s[%d]: %w", key, i, err))
			continue
		}
		rules = append(rules, r)
	}
	return rules, errs
}

// TargetDenied is the failure of a refused target; err says what refused it.
func TargetDenied(phase taxonomy.Phase, err error) *taxonomy.Error {
	return taxonomy.Fail(taxonomy.ClassProber, taxonomy.ReasonTargetDenied, phase, err)
}

// RefuseScheme says why a URL's scheme is refused, or returns nil.
func (p *Target) RefuseScheme(scheme string) error {
	if p == nil || len(p.schemes) == 0 || slices.Contains(p.schemes, scheme) {
		return nil
	}
	return fmt.Errorf("scheme %q is not in targets.schemes %v of module %q", scheme, p.schemes, p.module)
}

// RefuseName says why a host is refused for its name, or returns nil. An
// IP literal has no name: its address decides, in RefuseAddress. A name
// an allow list does not match is refused here only when no allow rule
// is an address rule; otherwise its address may still be allowed.
func (p *Target) RefuseName(host string) error {
	if p == nil || isIPLiteral(host) {
		return nil
	}
	name := comparableName(host)
	if r, ok := matchingHostRule(p.deny, name); ok {
		return fmt.Errorf("host %q is denied by targets.deny entry %q of module %q", host, r.Entry, p.module)
	}
	if len(p.allow) > 0 && !p.allowsName(name) && !p.allowsByAddress() {
		return fmt.Errorf("host %q matches no targets.allow entry of module %q", host, p.module)
	}
	return nil
}

// RefuseAddress says why ip, the address host resolved to (or host
// itself, for an IP literal), is refused, or returns nil. The global deny
// lists come first: no module rule can allow what they deny.
func (p *Target) RefuseAddress(host string, ip net.IP) error {
	if p == nil {
		return nil
	}
	forms := AddressForms(ip)
	for _, list := range p.global {
		for _, r := range list.Ranges {
			if a, ok := firstMatch(forms, r.Prefix.Contains); ok {
				return fmt.Errorf("%s is denied by %s (%s)", describeForm(host, ip, a), list.By, r.Name)
			}
		}
	}
	for _, r := range p.deny {
		if a, ok := firstMatch(forms, r.MatchesAddr); ok {
			return fmt.Errorf("%s is denied by targets.deny entry %q of module %q", describeForm(host, ip, a), r.Entry, p.module)
		}
	}
	if len(p.allow) == 0 || p.allowsName(comparableName(host)) || p.allowsAddress(forms) {
		return nil
	}
	return fmt.Errorf("%s matches no targets.allow entry of module %q", describeAddress(host, ip), p.module)
}

// firstMatch returns the first of forms that match holds.
func firstMatch(forms []netip.Addr, match func(netip.Addr) bool) (netip.Addr, bool) {
	i := slices.IndexFunc(forms, match)
	if i < 0 {
		return netip.Addr{}, false
	}
	return forms[i], true
}

// RefusePath says why a unix socket path is refused, or returns nil. With
// rules, the path must be clean: /run/app/../docker.sock must not pass
// for a path under /run/app. Symbolic links are not followed.
func (p *Target) RefusePath(socket string) error {
	if p == nil || (len(p.allow) == 0 && len(p.deny) == 0) {
		return nil
	}
	if clean := filepath.Clean(socket); clean != socket {
		return fmt.Errorf("path %q is not in its clean form %q, which the targets rules of module %q require", socket, clean, p.module)
	}
	for _, r := range p.deny {
		if r.MatchesPath(socket) {
			return fmt.Errorf("path %q is denied by targets.deny entry %q of module %q", socket, r.Entry, p.module)
		}
	}
	if len(p.allow) > 0 && !slices.ContainsFunc(p.allow, func(r config.TargetRule) bool { return r.MatchesPath(socket) }) {
		return fmt.Errorf("path %q matches no targets.allow entry of module %q", socket, p.module)
	}
	return nil
}

// CheckHost applies the rules that need no lookup to a host sonde is
// about to reach: its name, or, for an IP literal, its address (always
// phase resolve). namePhase is setup for the target, processing for a
// redirect. It returns a *taxonomy.Error, or nil.
func (p *Target) CheckHost(host string, namePhase taxonomy.Phase) error {
	if err := p.RefuseName(host); err != nil {
		return TargetDenied(namePhase, err)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if err := p.RefuseAddress(host, a.WithZone("").AsSlice()); err != nil {
			return TargetDenied(taxonomy.PhaseResolve, err)
		}
	}
	return nil
}

func (p *Target) allowsName(name string) bool {
	_, ok := matchingHostRule(p.allow, name)
	return ok
}

func (p *Target) allowsAddress(forms []netip.Addr) bool {
	return slices.ContainsFunc(p.allow, func(r config.TargetRule) bool {
		return slices.ContainsFunc(forms, r.MatchesAddr)
	})
}

func (p *Target) allowsByAddress() bool {
	return slices.ContainsFunc(p.allow, func(r config.TargetRule) bool { return r.Kind == config.AddressRule })
}

func matchingHostRule(rules []config.TargetRule, name string) (config.TargetRule, bool) {
	for _, r := range rules {
		if r.MatchesHost(name) {
			return r, true
		}
	}
	return config.TargetRule{}, false
}

// comparableName is host as rules compare it: ASCII (an internationalised
// name in its xn-- form, as it is looked up), lower case, without the
// trailing dot of a fully qualified name, so that no spelling of a denied
// name slips past its rule.
func comparableName(host string) string {
	return strings.TrimSuffix(strings.ToLower(idn.ASCII(host)), ".")
}

func isIPLiteral(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}

// nat64 is the well-known NAT64 prefix (RFC 6052): its addresses reach
// the IPv4 address in their last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Where the kernel sends a connection to an unspecified address: Linux
// (and the BSDs) connect 0.0.0.0 to 127.0.0.1, and :: to ::1, the host
// itself. Only 0.0.0.0 is rewritten: the rest of 0.0.0.0/8 is routed, or
// refused, as any other address.
var (
	loopback4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	loopback6 = netip.IPv6Loopback()
)

// AddressForms are the addresses ip stands for: itself, as IPv4 when it
// is IPv4-mapped, the loopback address an unspecified address reaches,
// and the IPv4 address a NAT64 address reaches. A rule matching any of
// them matches ip, so a deny of 127.0.0.1 refuses 0.0.0.0 and
// ::ffff:0.0.0.0, and a deny of ::1 refuses ::.
func AddressForms(ip net.IP) []netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return nil
	}
	a = a.Unmap()
	forms := []netip.Addr{a}
	switch {
	case a == netip.IPv4Unspecified():
		forms = append(forms, loopback4)
	case a == netip.IPv6Unspecified():
		forms = append(forms, loopback6)
	case nat64.Contains(a):
		b := a.As16()
		forms = append(forms, netip.AddrFrom4([4]byte(b[12:])))
	}
	return forms
}

// describeAddress names an address in a refusal, with the name it was
// found for unless the target was the address itself.
func describeAddress(host string, ip net.IP) string {
	if isIPLiteral(host) {
		return "address " + ip.String()
	}
	return fmt.Sprintf("address %s of %q", ip, host)
}

// describeForm is describeAddress, saying which address a rule matched
// when it is the one ip reaches rather than ip itself.
func describeForm(host string, ip net.IP, matched netip.Addr) string {
	a, _ := netip.AddrFromSlice(ip)
	if matched == a.Unmap() || nat64.Contains(a.Unmap()) {
		return describeAddress(host, ip)
	}
	return fmt.Sprintf("%s (which reaches %s)", describeAddress(host, ip), matched)
}
