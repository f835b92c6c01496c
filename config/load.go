package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sonde-exporter/sonde/internal/regularfile"
	"github.com/sonde-exporter/sonde/internal/tlsfiles"
)

// Error is one problem found in a configuration file. Line is 0 when the
// problem has no single place in the file.
type Error struct {
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

func lineErrorf(line int, format string, args ...any) error {
	return &Error{Line: line, Msg: fmt.Sprintf(format, args...)}
}

// LoadFile reads and loads a configuration file, for the one-shot
// commands (--config.check, probe). Unlike the server's Reloader it reads
// a pipe too: `--config.file=<(...)` blocks only the command it was
// handed to, as its user meant.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	cfg, err := Load(data)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return cfg, nil
}

// readRegular reads the server's configuration file. What is not a
// regular file is refused, naming the path: a named pipe would hold the
// reload, and every reload queued behind it, until something wrote to it.
func readRegular(path string) ([]byte, error) {
	data, err := regularfile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	return data, nil
}

// Load decodes a configuration and checks it: unknown or repeated keys,
// values of the wrong type, and every rule of every module. It reports all
// errors it finds, sorted by line, not just the first. What
// blackbox_exporter would load but sonde finds wrong does not refuse the
// file: it is listed in the Config's Warnings.
func Load(data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if len(root.Content) == 0 {
		// blackbox_exporter refuses it too ("EOF"): a file truncated by a
		// copy in progress must not remove every module on a reload.
		return nil, errors.New("the file is empty or holds only comments; write `modules:` and the modules under it (`modules: {}` for none)")
	}
	// Unknown keys are reported together with every other problem, so one
	// run of --config.check lists all that needs fixing.
	errs := checkKnownFields(&root, reflect.TypeOf(Config{}), "")
	modules, err := modulesNode(&root)
	if err != nil {
		return nil, joinSorted(append(errs, err))
	}
	cfg := &Config{Modules: map[string]Module{}, tlsFiles: tlsfiles.New()}
	var warns []error
	for _, kv := range mappingPairs(modules) {
		name := kv[0].Value
		m, err := decodeModule(name, kv[0], kv[1])
		if err != nil {
			if !errors.Is(err, errReported) {
				errs = append(errs, err)
			}
			continue // half decoded: its rules would report false problems
		}
		e, w := validateModule(name, &m, newLocator(kv[0], kv[1]), cfg.tlsFiles)
		errs, warns = append(errs, e...), append(warns, w...)
		cfg.Modules[name] = m
	}
	if len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	cfg.Warnings = flatten(warns)
	return cfg, nil
}

// modulesNode returns the mapping under `modules:`; nil when there is none.
func modulesNode(root *yaml.Node) (*yaml.Node, error) {
	doc := resolveAlias(root.Content[0])
	if doc.Kind == yaml.ScalarNode && doc.Tag == "!!null" {
		// A document with nothing in it ("---" alone, or "~") is as empty
		// as an empty file, and yaml.v3 decodes it into an empty Config.
		return &yaml.Node{Kind: yaml.MappingNode}, nil
	}
	if doc.Kind != yaml.MappingNode {
		return nil, lineErrorf(doc.Line, "the file must be a mapping with a `modules:` key, found %s", kindName(doc))
	}
	for _, kv := range mappingPairs(doc) {
		if kv[0].Value != "modules" {
			continue
		}
		m := resolveAlias(kv[1])
		if m.Kind == yaml.ScalarNode && m.Tag == "!!null" {
			return &yaml.Node{Kind: yaml.MappingNode}, nil
		}
		if m.Kind != yaml.MappingNode {
			return nil, lineErrorf(m.Line, "modules: must be a mapping of module name to module, found %s", kindName(m))
		}
		return m, nil
	}
	return &yaml.Node{Kind: yaml.MappingNode}, nil
}

// decodeModule decodes one module, so that a decoding error, which yaml.v3
// reports without saying where it belongs, can be given the module's name.
func decodeModule(name string, key, value *yaml.Node) (m Module, err error) {
	if v := resolveAlias(value); v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		// blackbox loads a module with nothing in it; its prober is missing,
		// which validateModule reports.
		return DefaultModule(), nil
	}
	if resolveAlias(value).Kind != yaml.MappingNode {
		return m, lineErrorf(key.Line, "module %q: must be a mapping with at least `prober:`, found %s", name, kindName(resolveAlias(value)))
	}
	if err := value.Decode(&m); err != nil {
		return m, decodeError(name, key, value, err)
	}
	return m, nil
}

var (
	// (?s): a message may run over several lines, as CEL's do.
	typeErrorLine = regexp.MustCompile(`(?s)^line (\d+): (.*)$`)
	cannotDecode  = regexp.MustCompile("^cannot unmarshal !!\\w+ `(.*)` into (.+)$")
	repeatedKey   = regexp.MustCompile(`mapping key ".*" already defined at line \d+$`)
)

// decodeError turns a yaml.v3 decoding failure into Errors that keep the
// line of each problem and name the module and field.
func decodeError(module string, key, value *yaml.Node, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return withModule(module, key, value, err.Error())
	}
	var errs []error
	for _, msg := range te.Errors {
		if repeatedKey.MatchString(msg) {
			continue // checkKnownFields has reported it, in the user's terms
		}
		errs = append(errs, withModule(module, key, value, msg))
	}
	if len(errs) == 0 {
		return errReported
	}
	return errors.Join(errs...)
}

// errReported marks a decoding failure that checkKnownFields has already
// reported.
var errReported = errors.New("already reported")

// withModule names the module and the field of a decoding message, taking
// the field from the line the message starts with ("line 7: ...").
func withModule(module string, key, value *yaml.Node, msg string) error {
	line := key.Line
	if m := typeErrorLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if m := cannotDecode.FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("%q is not %s", m[1], describeType(m[2]))
	}
	if path := pathAt(value, line); path != "" {
		msg = path + ": " + msg
	}
	return &Error{Line: line, Msg: fmt.Sprintf("module %q: %s", module, msg)}
}

// describeType says in words what a Go type named in a yaml.v3 message
// expects to find.
func describeType(goType string) string {
	switch {
	case goType == "time.Duration":
		return "a duration (e.g. 500ms, 5s, 1m30s)"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["):
		return "a mapping"
	}
	return "a section of options (a mapping)" // a struct of the schema

}

// pathAt returns the dotted path, inside node, of the key or list item on
// the given line: the field a decoding error on that line is about.
func pathAt(node *yaml.Node, line int) string {
	node = resolveAlias(node)
	switch node.Kind {
	case yaml.MappingNode:
		for _, kv := range mappingPairs(node) {
			if kv[0].Line == line && resolveAlias(kv[1]).Kind == yaml.ScalarNode {
				return kv[0].Value
			}
			if sub := pathAt(kv[1], line); sub != "" {
				return joinPath(kv[0].Value, sub)
			}
			if kv[0].Line == line {
				return kv[0].Value
			}
		}
	case yaml.SequenceNode:
		for i, c := range node.Content {
			if sub := pathAt(c, line); sub != "" {
				return fmt.Sprintf("[%d].%s", i, sub)
			}
			if resolveAlias(c).Line == line {
				return fmt.Sprintf("[%d]", i)
			}
		}
	}
	return ""
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("the value %q", n.Value)
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return "something else"
}

// joinSorted joins errors ordered by line, flattening joined errors.
func joinSorted(errs []error) error {
	return errors.Join(flatten(errs)...)
}

// flatten returns errs with joined errors unwrapped, ordered by line.
func flatten(errs []error) []error {
	var flat []error
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		flat = append(flat, err)
	}
	for _, err := range errs {
		walk(err)
	}
	sort.SliceStable(flat, func(i, j int) bool { return errorLine(flat[i]) < errorLine(flat[j]) })
	return flat
}

func errorLine(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Line
	}
	return 0
}

// Marshal renders a configuration as YAML with every secret replaced by
// "<secret>", for the /config page and debug output.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
