package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sonde-exporter/sonde/internal/suggest"
)

// checkKnownFields walks the YAML tree alongside the Go type it decodes into
// and reports every key the type has no field for, and every key given twice.
// yaml.v3's own strict mode stops at the first unknown key and names the Go
// type ("field x not found in type config.plain"); this names the path a
// user wrote, the line, and the closest known key.
func checkKnownFields(node *yaml.Node, t reflect.Type, path string) []error {
	node = resolveAlias(node)
	t = indirect(t)
	switch node.Kind {
	case yaml.DocumentNode:
		var errs []error
		for _, c := range node.Content {
			errs = append(errs, checkKnownFields(c, t, path)...)
		}
		return errs
	case yaml.MappingNode:
		switch t.Kind() {
		case reflect.Struct:
			return checkStruct(node, t, path)
		case reflect.Map:
			return checkMap(node, t, path)
		}
	case yaml.SequenceNode:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			var errs []error
			for i, c := range node.Content {
				errs = append(errs, checkKnownFields(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
			}
			return errs
		}
	}
	// Scalars, and shapes the decoder will reject with a type error of its own.
	return nil
}

func checkStruct(node *yaml.Node, t reflect.Type, path string) []error {
	fields, rest := yamlFields(t)
	return checkMapping(node, path, func(key *yaml.Node) (reflect.Type, error) {
		if ft, ok := fields[key.Value]; ok {
			return ft, nil
		}
		if rest != nil {
			// An inline map (e.g. prometheus/common's http_headers) takes
			// every key the struct has no field for.
			return rest, nil
		}
		return nil, unknownField(key, path, fields)
	})
}

func checkMap(node *yaml.Node, t reflect.Type, path string) []error {
	return checkMapping(node, path, func(*yaml.Node) (reflect.Type, error) { return t.Elem(), nil })
}

// checkMapping checks every key of a mapping once: a key given twice is
// an error, typeOf gives the type of a key's value (or the error for a key
// with no place in the type), and the value is checked against that type.
func checkMapping(node *yaml.Node, path string, typeOf func(key *yaml.Node) (reflect.Type, error)) []error {
	var errs []error
	seen := map[string]int{}
	for _, kv := range mappingPairs(node) {
		key, value := kv[0], kv[1]
		if prev, dup := seen[key.Value]; dup {
			errs = append(errs, lineErrorf(key.Line, "%s: key %q is given twice (first on line %d); keep one", displayPath(path), key.Value, prev))
			continue
		}
		seen[key.Value] = key.Line
		ft, err := typeOf(key)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, checkKnownFields(value, ft, joinPath(path, key.Value))...)
	}
	return errs
}

// mappingPairs returns the key/value pairs of a mapping with YAML merge keys
// (`<<: *anchor`) expanded, so that keys brought in by a merge are checked
// against the same type. As in yaml.v3's decoder, a key written in the
// mapping itself overrides a merged one, and among several merged mappings
// the first listed wins; overridden merged pairs are left out, so that an
// override is not taken for a key given twice. Keys written twice in the
// mapping itself are all kept, for the duplicate check.
func mappingPairs(node *yaml.Node) [][2]*yaml.Node {
	var pairs, merged [][2]*yaml.Node
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, value := node.Content[i], node.Content[i+1]
		if key.Tag == "!!merge" || key.Value == "<<" {
			merged = append(merged, mergedPairs(resolveAlias(value))...)
			continue
		}
		pairs = append(pairs, [2]*yaml.Node{key, value})
	}
	if len(merged) == 0 {
		return pairs
	}
	have := make(map[string]bool, len(pairs)+len(merged))
	for _, kv := range pairs {
		have[kv[0].Value] = true
	}
	for _, kv := range merged {
		if !have[kv[0].Value] {
			have[kv[0].Value] = true
			pairs = append(pairs, kv)
		}
	}
	return pairs
}

func mergedPairs(value *yaml.Node) [][2]*yaml.Node {
	switch value.Kind {
	case yaml.MappingNode:
		return mappingPairs(value)
	case yaml.SequenceNode:
		var pairs [][2]*yaml.Node
		for _, c := range value.Content {
			pairs = append(pairs, mergedPairs(resolveAlias(c))...)
		}
		return pairs
	}
	return nil
}

func unknownField(key *yaml.Node, path string, fields map[string]reflect.Type) error {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	where := displayPath(path)
	if s := closest(key.Value, names); s != "" {
		return lineErrorf(key.Line, "%s: unknown field %q (did you mean %q?)", where, key.Value, s)
	}
	sort.Strings(names)
	return lineErrorf(key.Line, "%s: unknown field %q; known fields are: %s", where, key.Value, strings.Join(names, ", "))
}

// yamlFields maps each YAML key of a struct to its field type, following
// `,inline` fields the way yaml.v3 does. rest is the element type of an
// inline map, which yaml.v3 fills with every other key; nil when there is
// none.
func yamlFields(t reflect.Type) (fields map[string]reflect.Type, rest reflect.Type) {
	fields = map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.PkgPath != "" && !f.Anonymous {
			continue // unexported
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			ft := indirect(f.Type)
			if ft.Kind() == reflect.Map {
				rest = ft.Elem()
				continue
			}
			inner, innerRest := yamlFields(ft)
			for k, v := range inner {
				fields[k] = v
			}
			if innerRest != nil {
				rest = innerRest
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields, rest
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func indirect(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func joinPath(path, key string) string {
	if path == "" || strings.HasPrefix(key, "[") {
		return path + key
	}
	return path + "." + key
}

// displayPath names a place in the file the way a user reads it: the module
// first, then the field path inside it.
func displayPath(path string) string {
	if path == "" {
		return "top level"
	}
	rest, ok := strings.CutPrefix(path, "modules.")
	if !ok {
		return path
	}
	module, field, found := strings.Cut(rest, ".")
	if !found {
		return fmt.Sprintf("module %q", module)
	}
	return fmt.Sprintf("module %q: %s", module, field)
}

// closest returns the candidate nearest to s, compared in lower case, or
// "" when none is close enough to be a plausible typo.
func closest(s string, candidates []string) string {
	return suggest.Closest(strings.ToLower(s), candidates)
}
