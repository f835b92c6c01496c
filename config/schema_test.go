package config

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// committedSchema is the copy of the schema users and editors point at.
const committedSchema = "../docs/config.schema.json"

func TestCommittedSchemaIsCurrent(t *testing.T) {
	want, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(committedSchema)
	if err != nil {
		t.Fatalf("%v; create it with: go run . config schema > docs/config.schema.json", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/config.schema.json is stale: the configuration types changed since it was generated; " +
			"regenerate it from the repository root with: go run . config schema > docs/config.schema.json")
	}
}

// compileSchema compiles the generated schema with an independent
// validator, which also checks it against the draft 2020-12 meta-schema.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	raw, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(schemaID)
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return s
}

// yamlToJSON converts a YAML document to the JSON instance an editor or a
// CI linter would validate.
func yamlToJSON(t *testing.T, src string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%v (a YAML key that is not a string?)", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// Every configuration the loader accepts in the repository validates.
func TestSchemaAcceptsValidConfigs(t *testing.T) {
	s := compileSchema(t)
	dir := t.TempDir()
	allOptions := renderTemplate(t, "blackbox-all-options.yml", dir, struct {
		TLS                 tlsFiles
		BodyFile, TokenFile string
	}{
		TLS:       writeTLSFiles(t, dir),
		BodyFile:  writeFile(t, dir, "body.json", "{}"),
		TokenFile: writeFile(t, dir, "token", "token\n"),
	})
	for _, path := range []string{"../example.yml", "testdata/no-secrets.yml", allOptions} {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := LoadFile(path); err != nil {
			t.Fatalf("%s does not load: %v", path, err)
		}
		if err := s.Validate(yamlToJSON(t, string(src))); err != nil {
			t.Errorf("%s: the schema rejects a configuration sonde accepts:\n%v", filepath.Base(path), err)
		}
	}
}

// The scalar types with a YAML form of their own, in each of their forms.
func TestSchemaAcceptsEveryForm(t *testing.T) {
	s := compileSchema(t)
	for _, src := range []string{
		"modules: {}\n",
		yml("modules:", "  m:", "    prober: http", "    timeout: 1m30s", "    http:", "      body_size_limit: 1024B"),
		yml("modules:", "  m:", "    prober: http", "    timeout: 0.5s", "    http:", "      body_size_limit: 10MiB"),
		yml("modules:", "  m:", "    prober: grpc", "    grpc:", "      metadata:", "        a: [one]", "        b: [one, two]"),
		yml("modules:", "  m:", "    prober: http", "    http:", "      http_headers:", "        X-A: {values: [a], secrets: [b], files: [c]}"),
		yml("modules:", "  m:", "    prober: http", "    http:", "      proxy_url: http://p:3128", "      proxy_connect_header: {A: [b]}"),
		yml("modules:", "  m:", "    prober: http", "    http:", "      oauth2: {client_id: a, token_url: 'http://t', claims: {n: 1, s: x}}"),
		yml("modules:", "  m:", "    prober: tcp", "    tcp:", "      starttls_preset: smtp", "      tls_config: {min_version: TLS13}"),
		yml("modules:", "  m:", "    prober: tcp", "    retry: {attempts: 3, on: [connect, tls], multiplier: 1.5, jitter: 0}"),
	} {
		if _, err := Load([]byte(src)); err != nil {
			t.Fatalf("sonde refuses the test case:\n%s%v", src, err)
		}
		if err := s.Validate(yamlToJSON(t, src)); err != nil {
			t.Errorf("rejected:\n%s%v", src, err)
		}
	}
}

// Mistakes that sonde refuses are refused by the schema too, so an editor
// shows them before sonde does.
func TestSchemaRejectsMistakes(t *testing.T) {
	s := compileSchema(t)
	tests := []struct{ name, src, want string }{
		{"unknown top-level key", yml("modules: {}", "module: {}"), "additional properties 'module' not allowed"},
		{"unknown module key", yml("modules:", "  m:", "    prober: http", "    timout: 5s"), "'timout' not allowed"},
		{"unknown http key", yml("modules:", "  m:", "    prober: http", "    http:", "      valid_status_code: [200]"), "'valid_status_code' not allowed"},
		{"unknown key in an inline struct's section", yml("modules:", "  m:", "    prober: http", "    http:", "      tls_config: {insecure: true}"), "'insecure' not allowed"},
		{"unknown key in oauth2", yml("modules:", "  m:", "    prober: http", "    http:", "      oauth2: {client: a}"), "'client' not allowed"},
		{"duration without unit", yml("modules:", "  m:", "    prober: http", "    timeout: 5"), "got number, want string"},
		{"duration in words", yml("modules:", "  m:", "    prober: http", "    timeout: 5 seconds"), "does not match pattern"},
		{"list of strings for ints", yml("modules:", "  m:", "    prober: http", "    http:", "      valid_status_codes: ['200']"), "got string, want integer"},
		{"word for a bool", yml("modules:", "  m:", "    prober: http", "    http:", "      fail_if_ssl: maybe"), "got string, want boolean"},
		{"list for a section", yml("modules:", "  m:", "    prober: http", "    http: []"), "got array, want object"},
		{"unknown TLS version", yml("modules:", "  m:", "    prober: tcp", "    tcp:", "      tls_config: {min_version: TLS14}"), "value must be one of"},
		{"class that is never retried", yml("modules:", "  m:", "    prober: tcp", "    retry: {on: [assertion]}"), "value must be one of"},
		{"unknown STARTTLS preset", yml("modules:", "  m:", "    prober: tcp", "    tcp:", "      starttls_preset: smtps"), "value must be one of"},
		{"header value not a header", yml("modules:", "  m:", "    prober: http", "    http:", "      http_headers: {X-A: value}"), "got string, want object"},
		{"metadata of mappings", yml("modules:", "  m:", "    prober: grpc", "    grpc:", "      metadata: {a: {b: c}}"), "got object, want array"},
		{"metadata of one value", yml("modules:", "  m:", "    prober: grpc", "    grpc:", "      metadata: {a: b}"), "got string, want array"},
		{"size without a unit", yml("modules:", "  m:", "    prober: http", "    http:", "      body_size_limit: 1024"), "got number, want string"},
	}
	for _, tc := range tests {
		if _, err := Load([]byte(tc.src)); err == nil {
			t.Errorf("%s: sonde accepts the test case; the schema must not be stricter than sonde", tc.name)
		}
		err := s.Validate(yamlToJSON(t, tc.src))
		if err == nil {
			t.Errorf("%s: the schema accepts\n%s", tc.name, tc.src)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error lacks %q:\n%v", tc.name, tc.want, err)
		}
	}
}

// The schema is stricter than sonde in the few ways docs/cli.md lists,
// where YAML's loose typing lets sonde read a value the schema's JSON
// types do not: if sonde stops accepting one of these, or the schema
// starts to, the documentation must change.
func TestSchemaIsStricterOnlyAsDocumented(t *testing.T) {
	s := compileSchema(t)
	for _, src := range []string{
		// A number or true/false where text is expected.
		yml("modules:", "  m:", "    prober: http", "    http:", "      headers: {X-Count: 5}"),
		yml("modules:", "  m:", "    prober: http", "    http:", "      headers: {X-Flag: true}"),
		// YAML 1.1's words for booleans.
		yml("modules:", "  m:", "    prober: http", "    http:", "      fail_if_ssl: yes"),
		// A key with no value, which sonde reads as "not set".
		yml("modules:", "  m:", "    prober: http", "    http:"),
		// An empty starttls_preset, which means none.
		yml("modules:", "  m:", "    prober: tcp", "    tcp:", "      starttls_preset: ''"),
		// A missing or unknown prober, which sonde loads with a warning,
		// as blackbox_exporter loads it.
		yml("modules:", "  m:", "    timeout: 5s"),
		yml("modules:", "  m:", "    prober: htp"),
	} {
		if _, err := Load([]byte(src)); err != nil {
			t.Errorf("sonde now refuses\n%s%v\nremove the case here and from docs/cli.md", src, err)
		}
		if err := s.Validate(yamlToJSON(t, src)); err == nil {
			t.Errorf("the schema now accepts\n%sremove the case here and from docs/cli.md", src)
		}
	}
}

type percent float64

func (p *percent) UnmarshalYAML(node *yaml.Node) error { return node.Decode((*float64)(p)) }

type opaque struct{ v string }

func (o *opaque) UnmarshalYAML(unmarshal func(any) error) error { return unmarshal(&o.v) }

type withPercent struct {
	Ratio percent `yaml:"ratio"`
}

// A type that decodes itself cannot be described by reflection; the
// generator refuses it instead of describing its Go shape, so a new
// configuration type cannot slip into the schema wrong.
func TestSchemaRefusesTypesItCannotDescribe(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[withPercent](), reflect.TypeFor[opaque](), reflect.TypeFor[map[int]string]()} {
		g := &schemaGen{defs: map[string]*jsonSchema{}, names: map[reflect.Type]string{}}
		if _, err := g.of(typ); err == nil {
			t.Errorf("%s: no error", typ)
		} else if !strings.Contains(err.Error(), "scalarTypes") && !strings.Contains(err.Error(), "string keys") {
			t.Errorf("%s: %v", typ, err)
		}
	}
}

func TestJSONSchemaIsDeterministic(t *testing.T) {
	a, errA := JSONSchema()
	b, errB := JSONSchema()
	if errA != nil || errB != nil || !bytes.Equal(a, b) {
		t.Errorf("two runs differ (%v, %v)", errA, errB)
	}
}
