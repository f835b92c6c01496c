package assert

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ParseError is an assertion that does not parse. Its message shows the
// expression with a caret under the offending position, because a CI log
// is read by someone who did not write the pipeline.
type ParseError struct {
	Expr string
	Pos  int // byte offset in Expr
	Msg  string
}

func (e *ParseError) Error() string {
	col := utf8.RuneCountInString(e.Expr[:e.Pos])
	return fmt.Sprintf("%s at column %d\n  %s\n  %s^", e.Msg, col+1, e.Expr, padding(e.Expr[:e.Pos]))
}

// padding is prefix with every character but tabs turned into a space, so
// the caret lines up whatever the terminal's tab width.
func padding(prefix string) string {
	var b strings.Builder
	for _, r := range prefix {
		if r == '\t' {
			b.WriteRune('\t')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.String()
}

type tokenKind int

const (
	tokEOF tokenKind = iota
	tokNumber
	tokIdent
	tokString
	tokOp
)

type token struct {
	kind tokenKind
	text string  // as written; for tokString the unquoted value
	num  float64 // for tokNumber
	pos  int
}

// operators, longest first so that "<=" is not read as "<" then "=".
var operators = []string{"<=", ">=", "==", "!=", "<", ">", "=", "(", ")", "{", "}", ",", "+", "-", "*", "/"}

// lex splits src into tokens, ending with tokEOF.
func lex(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t':
			i++
			continue
		case isDigit(c) || (c == '.' && i+1 < len(src) && isDigit(src[i+1])):
			t, err := lexNumber(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, t)
			i += len(t.text)
			continue
		case isNameStart(c):
			j := i + 1
			for j < len(src) && isNameChar(src[j]) {
				j++
			}
			toks = append(toks, token{kind: tokIdent, text: src[i:j], pos: i})
			i = j
			continue
		case c == '"' || c == '\'':
			t, end, err := lexString(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, t)
			i = end
			continue
		}
		op := matchOperator(src[i:])
		if c == '~' {
			return nil, &ParseError{Expr: src, Pos: i, Msg: "regular expression matchers (=~, !~) are not supported; use = or !="}
		}
		if op == "" {
			r, _ := utf8.DecodeRuneInString(src[i:])
			return nil, &ParseError{Expr: src, Pos: i, Msg: fmt.Sprintf("unexpected character %q", r)}
		}
		toks = append(toks, token{kind: tokOp, text: op, pos: i})
		i += len(op)
	}
	return append(toks, token{kind: tokEOF, pos: len(src)}), nil
}

func matchOperator(s string) string {
	for _, op := range operators {
		if strings.HasPrefix(s, op) {
			return op
		}
	}
	return ""
}

// lexNumber reads a decimal number with an optional fraction and exponent.
// A number followed by letters is refused with a hint: "500ms" is the
// likeliest mistake, and durations here are plain seconds.
func lexNumber(src string, start int) (token, error) {
	i := digits(src, start)
	if i < len(src) && src[i] == '.' {
		i = digits(src, i+1)
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		j := i + 1
		if j < len(src) && (src[j] == '+' || src[j] == '-') {
			j++
		}
		if j < len(src) && isDigit(src[j]) {
			i = digits(src, j)
		}
	}
	if i < len(src) && isNameChar(src[i]) {
		j := i
		for j < len(src) && isNameChar(src[j]) {
			j++
		}
		return token{}, &ParseError{Expr: src, Pos: start, Msg: fmt.Sprintf("%q is not a number (durations are plain seconds: write 0.5, not 500ms)", src[start:j])}
	}
	text := src[start:i]
	v, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return token{}, &ParseError{Expr: src, Pos: start, Msg: fmt.Sprintf("%q is not a number", text)}
	}
	return token{kind: tokNumber, text: text, num: v, pos: start}, nil
}

func digits(src string, i int) int {
	for i < len(src) && isDigit(src[i]) {
		i++
	}
	return i
}

// lexString reads a string quoted with " or ' and returns its value and
// the offset just past the closing quote.
func lexString(src string, start int) (token, int, error) {
	quote := src[start]
	var b strings.Builder
	for i := start + 1; i < len(src); i++ {
		switch c := src[i]; c {
		case quote:
			return token{kind: tokString, text: b.String(), pos: start}, i + 1, nil
		case '\\':
			if i+1 >= len(src) {
				return token{}, 0, &ParseError{Expr: src, Pos: i, Msg: "unterminated escape"}
			}
			e, ok := escapes[src[i+1]]
			if !ok {
				return token{}, 0, &ParseError{Expr: src, Pos: i, Msg: fmt.Sprintf(`unknown escape \%c (use \\ \" \' \n or \t)`, src[i+1])}
			}
			b.WriteByte(e)
			i++
		default:
			b.WriteByte(c)
		}
	}
	return token{}, 0, &ParseError{Expr: src, Pos: start, Msg: "unterminated string"}
}

var escapes = map[byte]byte{'\\': '\\', '"': '"', '\'': '\'', 'n': '\n', 't': '\t'}

func isDigit(c byte) bool     { return c >= '0' && c <= '9' }
func isLetter(c byte) bool    { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
func isNameStart(c byte) bool { return isLetter(c) || c == ':' }
func isNameChar(c byte) bool  { return isNameStart(c) || isDigit(c) }
