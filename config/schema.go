package config

import (
	"encoding/json"
	"fmt"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	pconfig "github.com/prometheus/common/config"
	"go.yaml.in/yaml/v3"
)

// The JSON Schema of the configuration file is generated from the very
// types the loader decodes into, walked with yamlFields as the strict key
// check walks them, so the schema cannot drift from what sonde accepts.
// docs/config.schema.json is its committed copy (`sonde config schema`).

// schemaID is the schema's $id: where the committed copy is published.
const schemaID = "https://raw.githubusercontent.com/sonde-exporter/sonde/main/docs/config.schema.json"

// jsonSchema is one JSON Schema (draft 2020-12) node. Its field order is the
// order of the output, so the committed file reads well and diffs cleanly.
type jsonSchema struct {
	Schema               string                 `json:"$schema,omitempty"`
	ID                   string                 `json:"$id,omitempty"`
	Ref                  string                 `json:"$ref,omitempty"`
	Title                string                 `json:"title,omitempty"`
	Description          string                 `json:"description,omitempty"`
	Type                 any                    `json:"type,omitempty"` // a name or a list of names
	Enum                 []string               `json:"enum,omitempty"`
	Pattern              string                 `json:"pattern,omitempty"`
	Minimum              *int                   `json:"minimum,omitempty"`
	AnyOf                []*jsonSchema          `json:"anyOf,omitempty"`
	Items                *jsonSchema            `json:"items,omitempty"`
	Required             []string               `json:"required,omitempty"`
	Properties           map[string]*jsonSchema `json:"properties,omitempty"`
	AdditionalProperties any                    `json:"additionalProperties,omitempty"` // false or a *jsonSchema
	Defs                 map[string]*jsonSchema `json:"$defs,omitempty"`
}

// durationPattern matches what time.ParseDuration, and so the loader,
// accepts for a duration.
const durationPattern = `^[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

// scalarTypes are the types whose YAML form is not their Go shape: each
// decodes itself from a scalar (or, for Strings, a scalar or a list). They
// live in $defs under these names.
var scalarTypes = map[reflect.Type]struct {
	name   string
	schema *jsonSchema
}{
	reflect.TypeFor[time.Duration](): {"duration", &jsonSchema{Type: "string", Pattern: durationPattern,
		Description: "A duration: a number with a unit (ns, us, ms, s, m, h), e.g. 500ms, 5s, 1m30s."}},
	reflect.TypeFor[Regexp](): {"regexp", &jsonSchema{Type: "string",
		Description: "A regular expression in Go's RE2 syntax, not anchored."}},
	reflect.TypeFor[RRPattern](): {"rr_regexp", &jsonSchema{Type: "string",
		Description: "A regular expression in Go's RE2 syntax, not anchored, matched against each record's text form."}},
	reflect.TypeFor[CELProgram](): {"cel", &jsonSchema{Type: "string",
		Description: "A CEL expression over the JSON body, bound to `body`, that yields a bool."}},
	reflect.TypeFor[ByteSize](): {"byte_size", &jsonSchema{Type: "string",
		Description: "A size: a number with a unit (e.g. 512KB, 10MiB, 100B; KB means KiB)."}},
	reflect.TypeFor[Strings](): {"strings", &jsonSchema{AnyOf: []*jsonSchema{{Type: "string"}, {Type: "array", Items: &jsonSchema{Type: "string"}}},
		Description: "One string, or a list of strings."}},
	reflect.TypeFor[pconfig.Secret](): {"secret", &jsonSchema{Type: "string",
		Description: "A secret: shown as <secret> on /config."}},
	reflect.TypeFor[pconfig.URL]():        {"url", &jsonSchema{Type: "string", Description: "A URL."}},
	reflect.TypeFor[pconfig.TLSVersion](): {"tls_version", &jsonSchema{Type: "string", Enum: tlsVersionNames()}},
}

func tlsVersionNames() []string {
	names := make([]string, 0, len(pconfig.TLSVersions))
	for name := range pconfig.TLSVersions {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// fieldRule adds what a field's Go type does not say: the values
// validate.go accepts for it, and whether it must be present.
type fieldRule struct {
	enum     []string // the field's values (its items' values, for a list)
	minimum  *int     // the smallest value accepted, for a number
	required bool
}

// fieldRules are the rules by struct and YAML key, their values taken
// from the variables validate.go checks against, so they cannot drift.
var fieldRules = map[reflect.Type]map[string]fieldRule{
	reflect.TypeFor[Module]():   {"prober": {enum: Probers(), required: true}, "max_concurrent": {minimum: new(int)}},
	reflect.TypeFor[TCPProbe](): {"starttls_preset": {enum: StartTLSPresets}},
	reflect.TypeFor[Retry]():    {"on": {enum: RetryableClasses}},
	reflect.TypeFor[OCSP]():     {"check": {enum: OCSPChecks}},
	reflect.TypeFor[Targets]():  {"schemes": {enum: allTargetSchemes()}},
}

// JSONSchema returns the JSON Schema (draft 2020-12) of the configuration
// file, indented, with a final newline. Unknown keys are rejected
// (additionalProperties: false) as the loader rejects them.
func JSONSchema() ([]byte, error) {
	g := &schemaGen{defs: map[string]*jsonSchema{}, names: map[reflect.Type]string{}}
	root, err := g.object(reflect.TypeFor[Config]())
	if err != nil {
		return nil, err
	}
	root.Schema = "https://json-schema.org/draft/2020-12/schema"
	root.ID = schemaID
	root.Title = "sonde configuration"
	root.Description = "sonde's configuration file: blackbox_exporter's format, with sonde's additions. " +
		"Generated from sonde's configuration types by `sonde config schema`; docs/configuration.md documents every option."
	root.Defs = g.defs
	out, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the schema: %w", err)
	}
	return append(out, '\n'), nil
}

// schemaGen builds the schema, keeping each named struct and scalar type
// once in $defs.
type schemaGen struct {
	defs  map[string]*jsonSchema
	names map[reflect.Type]string
}

// of returns the schema of a value of type t.
func (g *schemaGen) of(t reflect.Type) (*jsonSchema, error) {
	t = indirect(t)
	if s, ok := scalarTypes[t]; ok {
		g.defs[s.name] = s.schema
		return &jsonSchema{Ref: "#/$defs/" + s.name}, nil
	}
	if customDecoder(t) && t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%s decodes itself from YAML, so its schema cannot be derived; add it to scalarTypes in config/schema.go", t)
	}
	switch t.Kind() {
	case reflect.Bool:
		return &jsonSchema{Type: "boolean"}, nil
	case reflect.String:
		return &jsonSchema{Type: "string"}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return &jsonSchema{Type: "integer"}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &jsonSchema{Type: "integer", Minimum: new(int)}, nil
	case reflect.Float32, reflect.Float64:
		return &jsonSchema{Type: "number"}, nil
	case reflect.Interface:
		return &jsonSchema{}, nil // any value
	case reflect.Slice, reflect.Array:
		items, err := g.of(t.Elem())
		return &jsonSchema{Type: "array", Items: items}, err
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("%s: only maps with string keys have a YAML form a schema can describe", t)
		}
		values, err := g.of(t.Elem())
		return &jsonSchema{Type: "object", AdditionalProperties: values}, err
	case reflect.Struct:
		return g.ref(t)
	}
	return nil, fmt.Errorf("%s: no JSON Schema for kind %s", t, t.Kind())
}

// ref returns a reference to the struct's definition, adding it first.
func (g *schemaGen) ref(t reflect.Type) (*jsonSchema, error) {
	name, seen := g.names[t]
	if !seen {
		name = g.defName(t)
		g.names[t] = name
		g.defs[name] = nil // taken, while its fields are walked (a type may contain itself)
		def, err := g.object(t)
		if err != nil {
			return nil, err
		}
		g.defs[name] = def
	}
	return &jsonSchema{Ref: "#/$defs/" + name}, nil
}

// defName is the type's name, qualified by its package when another
// package's type took the short name first.
func (g *schemaGen) defName(t reflect.Type) string {
	if _, taken := g.defs[t.Name()]; !taken {
		return t.Name()
	}
	return path.Base(t.PkgPath()) + "." + t.Name()
}

// object returns the schema of a struct: its YAML keys as yamlFields sees
// them (inline structs flattened), with any inline map taking the other
// keys and no other key allowed.
func (g *schemaGen) object(t reflect.Type) (*jsonSchema, error) {
	if !hasYAMLFields(t) && customDecoder(t) {
		return nil, fmt.Errorf("%s decodes itself from YAML and has no yaml fields; add it to scalarTypes in config/schema.go", t)
	}
	fields, rest := yamlFields(t)
	s := &jsonSchema{Type: "object", Properties: make(map[string]*jsonSchema, len(fields)), AdditionalProperties: false}
	for name, ft := range fields {
		fs, err := g.of(ft)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", t.Name(), name, err)
		}
		s.Properties[name] = g.withRule(t, name, fs)
	}
	if rest != nil {
		rs, err := g.of(rest)
		if err != nil {
			return nil, fmt.Errorf("%s: inline map: %w", t.Name(), err)
		}
		s.AdditionalProperties = rs
	}
	for name, rule := range fieldRules[t] {
		if rule.required {
			s.Required = append(s.Required, name)
		}
	}
	slices.Sort(s.Required)
	return s, nil
}

// withRule applies the field's rule, if any, to its schema.
func (g *schemaGen) withRule(t reflect.Type, field string, s *jsonSchema) *jsonSchema {
	rule, ok := fieldRules[t][field]
	if !ok {
		return s
	}
	if rule.minimum != nil {
		s.Minimum = rule.minimum
	}
	if rule.enum == nil {
		return s
	}
	target := s
	if s.Type == "array" {
		target = s.Items
	}
	target.Enum = slices.Clone(rule.enum)
	return s
}

// customDecoder reports whether t decodes itself, with yaml.v3's
// interface or the older one prometheus/common implements.
func customDecoder(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	if p.Implements(reflect.TypeFor[yaml.Unmarshaler]()) {
		return true
	}
	m, ok := p.MethodByName("UnmarshalYAML")
	return ok && m.Type.NumIn() == 2 && m.Type.In(1).Kind() == reflect.Func
}

// hasYAMLFields reports whether any exported field of t has a yaml tag: a
// struct without one that decodes itself (a URL, a compiled regexp) is a
// scalar in YAML, not a section.
func hasYAMLFields(t reflect.Type) bool {
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.IsExported() && strings.TrimSpace(f.Tag.Get("yaml")) != "" {
			return true
		}
	}
	return false
}
