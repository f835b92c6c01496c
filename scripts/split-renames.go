//go:build ignore

// Command split-renames rewrites the Go files of the given package
// directories for the split of prober/core into small packages: every
// reference to a core identifier that moved (core.TLSClient) becomes one to
// its new home (tlsfacts.Client), the calls that took a module to dial or
// resolve pass its resolver and policy instead, and the imports follow.
// Doc comments naming a moved identifier are rewritten too.
//
// It is a program rather than gofmt -r rules plus goimports because two
// choices must not be left to a guess: which of two packages named ocsp a
// reference means (golang.org/x/crypto/ocsp has a Malformed too), and how
// to import a package whose name a file already uses for something else
// (it is then imported under an alias, sonde<name>, and said so).
//
// Run it through split-renames.sh, which also checks the result is gofmt
// clean. -only limits the rules to some of the new packages, e.g.
// -only=probelog,idn; a directory ending in /... is walked.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

const (
	module   = "github.com/sonde-exporter/sonde/"
	corePath = module + "prober/core"
)

// paths are the new packages, by name.
var paths = map[string]string{
	"probelog":     module + "prober/probelog",
	"idn":          module + "prober/idn",
	"policy":       module + "prober/policy",
	"netdial":      module + "prober/netdial",
	"ocsp":         module + "prober/ocsp",
	"tlsfacts":     module + "prober/tlsfacts",
	"check":        module + "prober/check",
	"probemetrics": module + "prober/probemetrics",
}

// rule is where one core identifier went. bindModule marks a function
// whose second argument was the module: its resolver and its policy are
// passed instead.
type rule struct {
	pkg, name  string
	bindModule bool
}

// rules are every identifier that left core, by its old name.
var rules = map[string]rule{
	// probelog: a probe's debug lines.
	"Debug": {pkg: "probelog", name: "Debug"},

	// idn: the ASCII form of a host name.
	"ASCIIName": {pkg: "idn", name: "ASCII"},

	// policy: the target policy.
	"TargetPolicy":  {pkg: "policy", name: "Target"},
	"AddressRange":  {pkg: "policy", name: "AddressRange"},
	"PrivateRanges": {pkg: "policy", name: "PrivateRanges"},
	"TargetDenied":  {pkg: "policy", name: "TargetDenied"},
	"AddressForms":  {pkg: "policy", name: "AddressForms"},

	// netdial: resolving and dialing.
	"Resolver":          {pkg: "netdial", name: "Resolver"},
	"Endpoint":          {pkg: "netdial", name: "Endpoint"},
	"Dialed":            {pkg: "netdial", name: "Dialed"},
	"DialEndpoint":      {pkg: "netdial", name: "DialEndpoint", bindModule: true},
	"ResolveTarget":     {pkg: "netdial", name: "ResolveTarget", bindModule: true},
	"NewDialer":         {pkg: "netdial", name: "NewDialer"},
	"LocalDialer":       {pkg: "netdial", name: "LocalDialer"},
	"DialError":         {pkg: "netdial", name: "DialError"},
	"BindDeadline":      {pkg: "netdial", name: "BindDeadline"},
	"IPFamily":          {pkg: "netdial", name: "IPFamily"},
	"IP4":               {pkg: "netdial", name: "IP4"},
	"IP6":               {pkg: "netdial", name: "IP6"},
	"PreferredFamily":   {pkg: "netdial", name: "PreferredFamily"},
	"FamilyOf":          {pkg: "netdial", name: "FamilyOf"},
	"NewResolveMetrics": {pkg: "netdial", name: "NewResolveMetrics"},
	"MalformedHost":     {pkg: "netdial", name: "MalformedHost"},
	"LookupAddress":     {pkg: "netdial", name: "LookupAddress"},
	"IPHash":            {pkg: "netdial", name: "IPHash"},

	// ocsp: the reasons of probe_tls_ocsp_error.
	"OCSPNoResponder": {pkg: "ocsp", name: "NoResponder"},
	"OCSPUnreachable": {pkg: "ocsp", name: "Unreachable"},
	"OCSPTimeout":     {pkg: "ocsp", name: "Timeout"},
	"OCSPHTTPStatus":  {pkg: "ocsp", name: "HTTPStatus"},
	"OCSPMalformed":   {pkg: "ocsp", name: "Malformed"},
	"OCSPDenied":      {pkg: "ocsp", name: "Denied"},

	// tlsfacts: TLS clients, handshakes and what they showed.
	"TLSClient":     {pkg: "tlsfacts", name: "Client"},
	"PrepareTLS":    {pkg: "tlsfacts", name: "NewClient"},
	"TLSFacts":      {pkg: "tlsfacts", name: "Facts"},
	"TLSHandshake":  {pkg: "tlsfacts", name: "HandshakeOnly"},
	"Handshake":     {pkg: "tlsfacts", name: "Handshake"},
	"Fingerprint":   {pkg: "tlsfacts", name: "Fingerprint"},
	"TLSVersion":    {pkg: "tlsfacts", name: "VersionName"},
	"TLSServerName": {pkg: "tlsfacts", name: "ServerName"},
	"UnixSeconds":   {pkg: "probemetrics", name: "UnixSeconds"},

	// check: response checks and query_response scripts.
	"Quantifier":        {pkg: "check", name: "Quantifier"},
	"FailIfAnyMatches":  {pkg: "check", name: "FailIfAnyMatches"},
	"FailIfAnyMisses":   {pkg: "check", name: "FailIfAnyMisses"},
	"FailIfNoneMatches": {pkg: "check", name: "FailIfNoneMatches"},
	"Rule":              {pkg: "check", name: "Rule"},
	"CheckRules":        {pkg: "check", name: "Rules"},
	"Fails":             {pkg: "check", name: "Fails"},
	"CheckBody":         {pkg: "check", name: "Body"},
	"CheckHeaders":      {pkg: "check", name: "Headers"},
	"CheckCEL":          {pkg: "check", name: "CEL"},
	"DescribeSize":      {pkg: "check", name: "DescribeSize"},
	"CheckSlots":        {pkg: "check", name: "Slots"},
	"NewCheckSlots":     {pkg: "check", name: "NewSlots"},
	"Conversation":      {pkg: "check", name: "Conversation"},
	"RunScript":         {pkg: "check", name: "RunScript"},
	"ScriptMetrics":     {pkg: "check", name: "ScriptMetrics"},
	"NewScriptMetrics":  {pkg: "check", name: "NewScriptMetrics"},
	"Stream":            {pkg: "check", name: "Stream"},
	"NewStream":         {pkg: "check", name: "NewStream"},
	"MaxLine":           {pkg: "check", name: "MaxLine"},
}

func main() {
	only := flag.String("only", "", "apply only the rules into these packages, comma-separated (default all)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: split-renames [-only pkg,...] DIR...")
		os.Exit(2)
	}
	if err := selectRules(*only); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	failed := false
	for _, dir := range expand(flag.Args()) {
		if err := rewriteDir(dir); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", dir, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

// selectRules drops the rules into packages only does not name.
func selectRules(only string) error {
	if only == "" {
		return nil
	}
	keep := strings.Split(only, ",")
	for _, p := range keep {
		if _, ok := paths[p]; !ok {
			return fmt.Errorf("-only: no package %q", p)
		}
	}
	for old, r := range rules {
		if !slices.Contains(keep, r.pkg) {
			delete(rules, old)
		}
	}
	return nil
}

// expand turns dir/... into every directory under dir holding Go files.
func expand(args []string) []string {
	var dirs []string
	for _, a := range args {
		root, ok := strings.CutSuffix(a, "/...")
		if !ok {
			dirs = append(dirs, a)
			continue
		}
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				if name := d.Name(); p != root && (name == "testdata" || strings.HasPrefix(name, ".")) {
					return filepath.SkipDir
				}
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	return dirs
}

// rewriteDir rewrites every Go file of dir that imports core.
func rewriteDir(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return err
	}
	declared, err := packageScope(files)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := rewriteFile(f, declared); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	return nil
}

// packageScope returns the names declared at package level, by package
// name (a directory holds a package and its external tests): importing a
// package under one of them would not compile.
func packageScope(files []string) (map[string]map[string]bool, error) {
	scope := map[string]map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		names := scope[file.Name.Name]
		if names == nil {
			names = map[string]bool{}
			scope[file.Name.Name] = names
		}
		for _, d := range file.Decls {
			for _, n := range declaredNames(d) {
				names[n] = true
			}
		}
	}
	return scope, nil
}

func declaredNames(d ast.Decl) []string {
	var names []string
	switch d := d.(type) {
	case *ast.FuncDecl:
		if d.Recv == nil {
			names = append(names, d.Name.Name)
		}
	case *ast.GenDecl:
		for _, s := range d.Specs {
			switch s := s.(type) {
			case *ast.TypeSpec:
				names = append(names, s.Name.Name)
			case *ast.ValueSpec:
				for _, n := range s.Names {
					names = append(names, n.Name)
				}
			}
		}
	}
	return names
}

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// rewriteFile applies the rules to one file, if it imports core.
func rewriteFile(filename string, declared map[string]map[string]bool) error {
	src, err := os.ReadFile(filename)
	if err != nil {
		return err
	}
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, filename, src, parser.ParseComments)
	if err != nil {
		return err
	}
	coreSpec, coreName := findImport(file, corePath)
	if coreSpec == nil {
		return nil
	}
	off := func(p token.Pos) int { return fset.Position(p).Offset }
	used := map[string]bool{} // new packages referred to
	var edits []edit
	coreLeft := false // a core identifier that stays
	ast.Inspect(file, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			if r, ok := ruleOf(n.Fun, coreName); ok && r.bindModule && len(n.Args) >= 2 {
				m := string(src[off(n.Args[1].Pos()):off(n.Args[1].End())])
				if !isSelectorChain(n.Args[1]) {
					m = "(" + m + ")"
				}
				edits = append(edits, edit{off(n.Args[1].Pos()), off(n.Args[1].End()), m + ".Resolver, " + m + ".Policy"})
			}
		case *ast.SelectorExpr:
			id, ok := n.X.(*ast.Ident)
			if !ok || id.Name != coreName || id.Obj != nil {
				return true
			}
			r, ok := rules[n.Sel.Name]
			if !ok {
				coreLeft = true
				return true
			}
			used[r.pkg] = true
			edits = append(edits, edit{off(n.Pos()), off(n.End()), "\x00" + r.pkg + "\x00." + r.name})
			return false
		}
		return true
	})
	edits = append(edits, commentEdits(file, coreName, off, src)...)
	if len(used) == 0 && len(edits) == 0 {
		return nil
	}
	names := importNames(file, filename, declared[file.Name.Name], used, localNames(file))
	edits = append(edits, importEdits(coreSpec, inParentheses(file, coreSpec), coreLeft, names, off, src)...)
	out, err := format.Source(apply(src, edits, names))
	if err != nil {
		return fmt.Errorf("formatting the rewritten file: %w", err)
	}
	return os.WriteFile(filename, out, 0o644)
}

// findImport returns the import of path in file and the name it goes by.
func findImport(file *ast.File, importPath string) (*ast.ImportSpec, string) {
	for _, s := range file.Imports {
		if p, _ := strconv.Unquote(s.Path.Value); p == importPath {
			if s.Name != nil {
				return s, s.Name.Name
			}
			return s, path.Base(importPath)
		}
	}
	return nil, ""
}

// inParentheses reports whether spec is in an import ( ... ) block.
func inParentheses(file *ast.File, spec *ast.ImportSpec) bool {
	for _, d := range file.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.IMPORT && slices.Contains(g.Specs, ast.Spec(spec)) {
			return g.Lparen.IsValid()
		}
	}
	return true
}

func ruleOf(e ast.Expr, coreName string) (rule, bool) {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return rule{}, false
	}
	id, ok := sel.X.(*ast.Ident)
	if !ok || id.Name != coreName || id.Obj != nil {
		return rule{}, false
	}
	r, ok := rules[sel.Sel.Name]
	return r, ok
}

// isSelectorChain reports whether e can take .Resolver without parentheses.
func isSelectorChain(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return true
	case *ast.SelectorExpr:
		return isSelectorChain(e.X)
	case *ast.CallExpr:
		return isSelectorChain(e.Fun)
	case *ast.ParenExpr:
		return true
	}
	return false
}

var commentRef = regexp.MustCompile(`\bcore\.([A-Z][A-Za-z0-9]*)\b`)

// commentEdits rewrites core.X in comments, for the identifiers that moved.
func commentEdits(file *ast.File, coreName string, off func(token.Pos) int, src []byte) []edit {
	if coreName != "core" {
		return nil
	}
	var edits []edit
	for _, g := range file.Comments {
		for _, c := range g.List {
			start := off(c.Pos())
			text := src[start:off(c.End())]
			for _, m := range commentRef.FindAllSubmatchIndex(text, -1) {
				r, ok := rules[string(text[m[2]:m[3]])]
				if !ok {
					continue
				}
				edits = append(edits, edit{start + m[0], start + m[1], r.pkg + "." + r.name})
			}
		}
	}
	return edits
}

// localNames are the names declared inside the file's functions
// (parameters, results, variables): a package of one of these names would
// be shadowed where the local is in scope, so it is imported under an
// alias. Struct fields do not shadow, and are not listed.
func localNames(file *ast.File) map[string]bool {
	names := map[string]bool{}
	add := func(fl *ast.FieldList) {
		if fl == nil {
			return
		}
		for _, f := range fl.List {
			for _, n := range f.Names {
				names[n.Name] = true
			}
		}
	}
	ast.Inspect(file, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncDecl:
			add(n.Recv)
		case *ast.FuncType:
			add(n.Params)
			add(n.Results)
		case *ast.AssignStmt:
			if n.Tok == token.DEFINE {
				for _, e := range n.Lhs {
					if id, ok := e.(*ast.Ident); ok {
						names[id.Name] = true
					}
				}
			}
		case *ast.RangeStmt:
			if n.Tok == token.DEFINE {
				for _, e := range []ast.Expr{n.Key, n.Value} {
					if id, ok := e.(*ast.Ident); ok {
						names[id.Name] = true
					}
				}
			}
		case *ast.DeclStmt:
			if g, ok := n.Decl.(*ast.GenDecl); ok {
				for _, s := range g.Specs {
					if v, ok := s.(*ast.ValueSpec); ok {
						for _, id := range v.Names {
							names[id.Name] = true
						}
					}
				}
			}
		}
		return true
	})
	return names
}

// importNames chooses the name each used package goes by in the file: its
// own, the one the file already imports it as, or sonde<name> when its own
// is taken.
func importNames(file *ast.File, filename string, declared, used, locals map[string]bool) map[string]string {
	names := map[string]string{}
	taken := map[string]string{} // import name -> path
	for _, s := range file.Imports {
		p, _ := strconv.Unquote(s.Path.Value)
		name := importedName(s, p)
		taken[name] = p
	}
	for pkg := range used {
		if _, name := findImport(file, paths[pkg]); name != "" {
			names[pkg] = name
			continue
		}
		name := pkg
		if p, ok := taken[name]; (ok && p != paths[pkg]) || declared[name] || locals[name] {
			name = "sonde" + pkg
			fmt.Fprintf(os.Stderr, "%s: %s is taken, %s is imported as %s\n", filename, pkg, paths[pkg], name)
		}
		names[pkg] = name
	}
	return names
}

// importedName is the name an import goes by, guessed from its path for a
// package outside the module (the last element, without a major version).
func importedName(s *ast.ImportSpec, p string) string {
	if s.Name != nil {
		return s.Name.Name
	}
	base := path.Base(p)
	if v, ok := strings.CutPrefix(base, "v"); ok && v != "" && strings.Trim(v, "0123456789") == "" {
		base = path.Base(path.Dir(p))
	}
	if i := strings.Index(base, ".v"); i > 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "")
}

// importEdits adds the new packages' imports beside core's, which goes
// when nothing of core is left.
func importEdits(coreSpec *ast.ImportSpec, parenthesized, coreLeft bool, names map[string]string, off func(token.Pos) int, src []byte) []edit {
	var lines []string
	for pkg, name := range names {
		if strings.Contains(string(src), strconv.Quote(paths[pkg])) {
			continue // imported already
		}
		line := strconv.Quote(paths[pkg])
		if name != pkg {
			line = name + " " + line
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	start, end := off(coreSpec.Pos()), off(coreSpec.End())
	if coreLeft {
		lines = append([]string{string(src[start:end])}, lines...)
	}
	if len(lines) == 0 && parenthesized {
		// Nothing of core left and nothing to add: drop the whole line.
		for start > 0 && (src[start-1] == ' ' || src[start-1] == '\t') {
			start--
		}
		if end < len(src) && src[end] == '\n' {
			end++
		}
		return []edit{{start, end, ""}}
	}
	if !parenthesized {
		return []edit{{start, end, "(\n\t" + strings.Join(lines, "\n\t") + "\n)"}}
	}
	return []edit{{start, end, strings.Join(lines, "\n\t")}}
}

// apply makes the edits, last first, and names each package as chosen.
func apply(src []byte, edits []edit, names map[string]string) []byte {
	sort.Slice(edits, func(i, j int) bool { return edits[i].start > edits[j].start })
	out := slices.Clone(src)
	last := len(out) + 1
	for _, e := range edits {
		if e.end > last {
			continue // inside an edit already made (a call's rewritten argument)
		}
		out = slices.Concat(out[:e.start], []byte(e.text), out[e.end:])
		last = e.start
	}
	for pkg, name := range names {
		out = bytes.ReplaceAll(out, []byte("\x00"+pkg+"\x00"), []byte(name))
	}
	return out
}
