package assert

import (
	"fmt"
	"slices"
	"strings"
)

// Assertion is a parsed assertion, ready to be evaluated against the
// metrics of any number of probes.
type Assertion struct {
	src         string
	op          string
	left, right node
}

// String returns the assertion as written.
func (a *Assertion) String() string { return a.src }

var comparisons = []string{"<", "<=", ">", ">=", "==", "!="}

// Parse parses one assertion. Its error is a *ParseError.
func Parse(src string) (*Assertion, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks}
	if p.peek().kind == tokEOF {
		return nil, p.errorf(p.peek(), "empty assertion; write e.g. probe_success == 1")
	}
	left, err := p.sum()
	if err != nil {
		return nil, err
	}
	t := p.next()
	if t.kind != tokOp || !slices.Contains(comparisons, t.text) {
		return nil, p.expected(t, "a comparison (< <= > >= == !=)")
	}
	right, err := p.sum()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		if t.kind == tokOp && slices.Contains(comparisons, t.text) {
			return nil, p.errorf(t, "only one comparison is allowed; use one --assert per condition")
		}
		return nil, p.expected(t, "an operator or the end")
	}
	return &Assertion{src: src, op: t.text, left: left, right: right}, nil
}

type parser struct {
	src  string
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

// accept consumes the next token if it is the operator op.
func (p *parser) accept(op string) bool {
	if t := p.peek(); t.kind == tokOp && t.text == op {
		p.i++
		return true
	}
	return false
}

func (p *parser) errorf(t token, format string, args ...any) *ParseError {
	return &ParseError{Expr: p.src, Pos: t.pos, Msg: fmt.Sprintf(format, args...)}
}

// expected reports that t is not what the grammar wants at this point.
func (p *parser) expected(t token, what string) *ParseError {
	switch {
	case t.kind == tokEOF:
		return p.errorf(t, "expected %s, found the end", what)
	case t.kind == tokOp && t.text == "=":
		return p.errorf(t, "expected %s, found = (compare with ==)", what)
	}
	return p.errorf(t, "expected %s, found %s", what, describe(t))
}

func describe(t token) string {
	switch t.kind {
	case tokString:
		return fmt.Sprintf("the string %q", t.text)
	case tokNumber:
		return "the number " + t.text
	}
	return fmt.Sprintf("%q", t.text)
}

// sum = product { ("+" | "-") product } .
func (p *parser) sum() (node, error) {
	return p.binary(p.product, "+", "-")
}

// product = unary { ("*" | "/") unary } .
func (p *parser) product() (node, error) {
	return p.binary(p.unary, "*", "/")
}

// binary parses a left-associative chain of operand separated by ops.
func (p *parser) binary(operand func() (node, error), ops ...string) (node, error) {
	left, err := operand()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if t.kind != tokOp || !slices.Contains(ops, t.text) {
			return left, nil
		}
		p.next()
		right, err := operand()
		if err != nil {
			return nil, err
		}
		left = &binaryNode{op: t.text[0], left: left, right: right}
	}
}

// unary = "-" unary | primary .
func (p *parser) unary() (node, error) {
	if p.accept("-") {
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &negNode{x: x}, nil
	}
	return p.primary()
}

// primary = number | "time" "(" ")" | selector | "(" sum ")" .
func (p *parser) primary() (node, error) {
	t := p.next()
	switch {
	case t.kind == tokNumber:
		return numberNode(t.num), nil
	case t.kind == tokIdent && p.peek().kind == tokOp && p.peek().text == "(":
		return p.call(t)
	case t.kind == tokIdent:
		return p.selector(t)
	case t.kind == tokOp && t.text == "(":
		x, err := p.sum()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tokOp || c.text != ")" {
			return nil, p.expected(c, `")"`)
		}
		return x, nil
	}
	return nil, p.expected(t, "a number, a metric, time() or (")
}

// call parses a function call; time() is the only function.
func (p *parser) call(name token) (node, error) {
	if name.text != "time" {
		return nil, p.errorf(name, "unknown function %s(); the only function is time()", name.text)
	}
	p.next() // "("
	if c := p.next(); c.kind != tokOp || c.text != ")" {
		return nil, p.expected(c, `")": time() takes no arguments`)
	}
	return timeNode{}, nil
}

// selector = metric_name [ "{" [ matcher { "," matcher } [ "," ] ] "}" ] .
func (p *parser) selector(name token) (node, error) {
	s := &selectorNode{name: name.text}
	if !p.accept("{") {
		return s, nil
	}
	for !p.accept("}") {
		m, err := p.matcher()
		if err != nil {
			return nil, err
		}
		s.matchers = append(s.matchers, m)
		if p.accept("}") {
			break
		}
		if c := p.next(); c.kind != tokOp || c.text != "," {
			return nil, p.expected(c, `"," or "}"`)
		}
	}
	return s, nil
}

// matcher = label_name ( "=" | "!=" ) string .
func (p *parser) matcher() (labelMatcher, error) {
	name := p.next()
	if name.kind != tokIdent || strings.Contains(name.text, ":") {
		return labelMatcher{}, p.expected(name, "a label name")
	}
	op := p.next()
	if op.kind != tokOp || (op.text != "=" && op.text != "!=") {
		if op.kind == tokOp && op.text == "==" {
			return labelMatcher{}, p.errorf(op, `a label matcher uses = or !=, not ==`)
		}
		return labelMatcher{}, p.expected(op, "= or !=")
	}
	value := p.next()
	if value.kind != tokString {
		return labelMatcher{}, p.expected(value, `a quoted label value, e.g. "connect"`)
	}
	return labelMatcher{name: name.text, value: value.text, negate: op.text == "!="}, nil
}
