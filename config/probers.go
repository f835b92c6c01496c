package config

import (
	"slices"
	"strings"
)

// ProberSection is what the configuration knows of one prober: the value
// of a module's prober field, which is also the key of its section, the
// URL schemes its targets may have (none when they are not URLs), whether
// its request can carry a trace context, and how its section is checked.
// The prober package's registry has a descriptor of the same name for
// each, and a test keeps the two in step.
type ProberSection struct {
	Name            string
	Schemes         []string
	PropagatesTrace bool
	// check checks the section, when it is written or the module's
	// prober reads it.
	check func(c *checker, m *Module)
}

// proberSections are the probers a module may use, in blackbox's order.
var proberSections = []ProberSection{
	{Name: "http", Schemes: []string{"http", "https"}, PropagatesTrace: true,
		check: func(c *checker, m *Module) { c.http(&m.HTTP, c.written("http")) }},
	{Name: "tcp", check: func(c *checker, m *Module) { c.tcp(&m.TCP) }},
	{Name: "icmp", check: func(c *checker, m *Module) { c.icmp(&m.ICMP) }},
	{Name: "dns", check: func(c *checker, m *Module) { c.dns(&m.DNS, m.Prober == "dns", c.written("dns")) }},
	{Name: "grpc", PropagatesTrace: true, check: func(c *checker, m *Module) { c.grpc(&m.GRPC) }},
	{Name: "unix", check: func(c *checker, m *Module) { c.unix(&m.Unix) }},
	{Name: "websocket", Schemes: []string{"ws", "wss"}, PropagatesTrace: true,
		check: func(c *checker, m *Module) { c.websocket(&m.Websocket) }},
}

// ProberSections returns the probers a module may use, in blackbox's
// order.
func ProberSections() []ProberSection { return slices.Clone(proberSections) }

// Probers returns the prober names a module may use, in blackbox's order.
// Whether sonde can run each one is up to the prober package.
func Probers() []string {
	names := make([]string, len(proberSections))
	for i, s := range proberSections {
		names[i] = s.Name
	}
	return names
}

// sectionOf returns the named prober's entry.
func sectionOf(prober string) (ProberSection, bool) {
	i := slices.IndexFunc(proberSections, func(s ProberSection) bool { return s.Name == prober })
	if i < 0 {
		return ProberSection{}, false
	}
	return proberSections[i], true
}

// tracePropagating names the probers whose request carries a trace
// context, those whose targets are URLs first, as messages have always
// listed them.
func tracePropagating() string {
	var urls, others []string
	for _, s := range proberSections {
		switch {
		case !s.PropagatesTrace:
		case len(s.Schemes) > 0:
			urls = append(urls, s.Name)
		default:
			others = append(others, s.Name)
		}
	}
	return strings.Join(append(urls, others...), ", ")
}

// allTargetSchemes are the values of targets.schemes over all probers,
// for the JSON schema.
func allTargetSchemes() []string {
	var all []string
	for _, s := range proberSections {
		all = append(all, s.Schemes...)
	}
	return all
}
