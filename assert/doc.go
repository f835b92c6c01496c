// Package assert is the small expression language of `sonde probe
// --assert`: a comparison between two arithmetic expressions over the
// metrics of one probe, such as
//
//	probe_duration_seconds < 0.5
//	probe_http_status_code == 200
//	probe_http_duration_seconds{phase="connect"} < 0.1
//	probe_ssl_earliest_cert_expiry - time() > 86400 * 14
//
// The grammar, in EBNF; spaces and tabs may appear between any two tokens:
//
//	assertion  = sum comparison sum .
//	comparison = "<" | "<=" | ">" | ">=" | "==" | "!=" .
//	sum        = product { ( "+" | "-" ) product } .
//	product    = unary { ( "*" | "/" ) unary } .
//	unary      = "-" unary | primary .
//	primary    = number | "time" "(" ")" | selector | "(" sum ")" .
//	selector   = metric_name [ "{" [ matcher { "," matcher } [ "," ] ] "}" ] .
//	matcher    = label_name ( "=" | "!=" ) string .
//	number     = digits [ "." [ digits ] ] [ exponent ] | "." digits [ exponent ] .
//	exponent   = ( "e" | "E" ) [ "+" | "-" ] digits .
//	string     = `"` { character } `"` | "'" { character } "'" .
//
// metric_name is [a-zA-Z_:][a-zA-Z0-9_:]* and label_name [a-zA-Z_][a-zA-Z0-9_]*,
// as in Prometheus. Strings take the escapes \\ \" \' \n and \t.
//
// Semantics: a selector stands for the value of the one series of that
// metric whose labels match every matcher (a label the series lacks
// matches ""); it is an error, not a crash, when no series or more than
// one series match, and the message lists the series there are. time() is
// the time of the evaluation in Unix seconds. Arithmetic is float64 with
// the usual precedence (* and / before + and -, left to right); dividing
// by zero is an error. An assertion passes when its comparison holds; an
// error fails it.
//
// The language is deliberately this small: one probe's metrics are a
// handful of gauges, and a gate that needs more belongs in PromQL.
package assert
