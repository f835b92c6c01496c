package config

import (
	"fmt"
	"regexp"

	"github.com/google/cel-go/cel"
	"go.yaml.in/yaml/v3"
)

// Regexp is a regular expression compiled once, when the configuration is
// loaded, and written back in its original form on /config.
type Regexp struct {
	*regexp.Regexp
	original string
}

// NewRegexp compiles s. Like blackbox_exporter, the expression is not
// anchored: it matches anywhere in the input.
func NewRegexp(s string) (Regexp, error) {
	re, err := regexp.Compile(s)
	if err != nil {
		return Regexp{}, err
	}
	return Regexp{Regexp: re, original: s}, nil
}

// MustNewRegexp is NewRegexp for expressions known to be valid, as in tests.
func MustNewRegexp(s string) Regexp {
	re, err := NewRegexp(s)
	if err != nil {
		panic(err)
	}
	return re
}

// IsSet reports whether an expression was configured.
func (r Regexp) IsSet() bool { return r.Regexp != nil }

// String returns the expression as written in the configuration.
func (r Regexp) String() string { return r.original }

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *Regexp) UnmarshalYAML(node *yaml.Node) error {
	var s string
	if err := node.Decode(&s); err != nil {
		return err
	}
	re, err := NewRegexp(s)
	if err != nil {
		return fmt.Errorf("line %d: invalid regular expression %q: %w (Go RE2 syntax: https://github.com/google/re2/wiki/Syntax)", node.Line, s, err)
	}
	*r = re
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (r Regexp) MarshalYAML() (any, error) {
	if r.Regexp == nil {
		return nil, nil
	}
	return r.original, nil
}

// CELProgram is a CEL expression over a JSON response body, bound to the
// variable `body`, compiled and type-checked when the configuration loads.
type CELProgram struct {
	cel.Program
	expression string
	output     *cel.Type // what the expression yields, as far as the checker knows
}

// NewCELProgram compiles expr. body is declared dynamic so that a JSON
// array or scalar body works as well as an object. An expression that
// compiles but yields no bool loads, as in blackbox_exporter, and fails
// the probes that evaluate it; YieldsBool tells, for a warning.
func NewCELProgram(expr string) (*CELProgram, error) {
	env, err := cel.NewEnv(cel.Variable("body", cel.DynType))
	if err != nil {
		return nil, fmt.Errorf("creating CEL environment: %w", err)
	}
	ast, issues := env.Compile(expr)
	if issues != nil && issues.Err() != nil {
		return nil, issues.Err()
	}
	// The interrupt check lets a probe deadline stop a long evaluation.
	prg, err := env.Program(ast, cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, err
	}
	return &CELProgram{Program: prg, expression: expr, output: ast.OutputType()}, nil
}

// YieldsBool reports whether the expression can yield a bool: its type is
// bool, or known only when it runs.
func (c *CELProgram) YieldsBool() bool {
	return c.output == nil || c.output == cel.BoolType || c.output == cel.DynType
}

// OutputType names the type the expression yields.
func (c *CELProgram) OutputType() string {
	if c.output == nil {
		return "dyn"
	}
	return c.output.String()
}

// String returns the expression as written in the configuration.
func (c *CELProgram) String() string { return c.expression }

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *CELProgram) UnmarshalYAML(node *yaml.Node) error {
	var s string
	if err := node.Decode(&s); err != nil {
		return err
	}
	p, err := NewCELProgram(s)
	if err != nil {
		return fmt.Errorf("line %d: invalid CEL expression %q: %w", node.Line, s, err)
	}
	*c = *p
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (c CELProgram) MarshalYAML() (any, error) {
	return c.expression, nil
}

// RRPattern is a regular expression of a DNS validate_*_rrs rule.
// blackbox_exporter compiles these only when a record is checked, so one
// that does not compile loads, and fails the probes that get a record in
// its section; Err keeps why, for the warning and for those probes.
type RRPattern struct {
	Regexp
	Err error
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (p *RRPattern) UnmarshalYAML(node *yaml.Node) error {
	var s string
	if err := node.Decode(&s); err != nil {
		return err
	}
	re, err := NewRegexp(s)
	*p = RRPattern{Regexp: re, Err: err}
	p.original = s
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (p RRPattern) MarshalYAML() (any, error) { return p.original, nil }

// MustNewRRPattern compiles s, for expressions known to be valid, as in tests.
func MustNewRRPattern(s string) RRPattern { return RRPattern{Regexp: MustNewRegexp(s)} }
