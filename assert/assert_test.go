package assert

import (
	"errors"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

var now = time.Unix(1_700_000_000, 0)

// probeSamples are what an HTTPS probe exports, in part.
var probeSamples = []Sample{
	{Name: "probe_success", Labels: map[string]string{}, Value: 1},
	{Name: "probe_duration_seconds", Labels: map[string]string{}, Value: 0.25},
	{Name: "probe_http_status_code", Labels: map[string]string{}, Value: 200},
	{Name: "probe_http_duration_seconds", Labels: map[string]string{"phase": "connect"}, Value: 0.01},
	{Name: "probe_http_duration_seconds", Labels: map[string]string{"phase": "tls"}, Value: 0.04},
	{Name: "probe_http_duration_seconds", Labels: map[string]string{"phase": "transfer"}, Value: 0.001},
	{Name: "probe_ssl_earliest_cert_expiry", Labels: map[string]string{}, Value: float64(now.Add(30 * 24 * time.Hour).Unix())},
	{Name: "probe_tls_version_info", Labels: map[string]string{"version": "TLS 1.3"}, Value: 1},
}

func TestEval(t *testing.T) {
	tests := []struct {
		expr   string
		passed bool
		detail string
	}{
		{"probe_success == 1", true, "1 == 1"},
		{"probe_duration_seconds < 0.5", true, "0.25 < 0.5"},
		{"probe_duration_seconds < 0.1", false, "0.25 < 0.1 is false"},
		{"probe_duration_seconds <= 0.25", true, "0.25 <= 0.25"},
		{"probe_duration_seconds > 0.25", false, "0.25 > 0.25 is false"},
		{"probe_duration_seconds >= .25", true, "0.25 >= 0.25"},
		{"probe_http_status_code != 500", true, "200 != 500"},
		{"probe_http_status_code == 200", true, "200 == 200"},
		{`probe_http_duration_seconds{phase="connect"} < 0.1`, true, "0.01 < 0.1"},
		{`probe_http_duration_seconds{phase='tls',} < 0.01`, false, "0.04 < 0.01 is false"},
		{`probe_tls_version_info{version="TLS 1.3"} == 1`, true, "1 == 1"},
		{`probe_tls_version_info{version!="TLS 1.2"} == 1`, true, "1 == 1"},
		{`probe_success{} == 1`, true, "1 == 1"},
		{`probe_success{job=""} == 1`, true, "1 == 1"}, // an absent label matches ""
		{"probe_ssl_earliest_cert_expiry - time() > 86400*14", true, "2592000 > 1209600"},
		{"probe_ssl_earliest_cert_expiry - time() > 86400 * 60", false, "2592000 > 5184000 is false"},
		{"(probe_ssl_earliest_cert_expiry - time()) / 86400 >= 30", true, "30 >= 30"},
		{"1 + 2 * 3 == 7", true, "7 == 7"},
		{"(1 + 2) * 3 == 9", true, "9 == 9"},
		{"10 - 4 - 3 == 3", true, "3 == 3"}, // left-associative
		{"8 / 4 / 2 == 1", true, "1 == 1"},
		{"-probe_success == -1", true, "-1 == -1"},
		{"- -2 == 2", true, "2 == 2"},
		{"1e3 == 1000", true, "1000 == 1000"},
		{"2.5E-1 == 0.25", true, "0.25 == 0.25"},
		{"\tprobe_success\t==\t1 ", true, "1 == 1"},
		{`probe_http_duration_seconds{phase="transfer"} + probe_http_duration_seconds{phase="tls"} < probe_duration_seconds`, true, "0.041 < 0.25"},

		// Failures that are not crashes.
		{"probe_ssl_earliest_cert_expiry > 0 * probe_nope", false, "probe_nope: the probe exported no such metric"},
		{"probe_sucess == 1", false, "probe_sucess: the probe exported no such metric (did you mean probe_success?)"},
		{`probe_http_duration_seconds{phase="conect"} < 1`, false,
			`probe_http_duration_seconds{phase="conect"} matches none of the series of probe_http_duration_seconds: {phase="connect"}, {phase="tls"}, {phase="transfer"}`},
		{`probe_http_duration_seconds < 1`, false,
			`probe_http_duration_seconds matches 3 series; pick one with a label matcher: {phase="connect"}, {phase="tls"}, {phase="transfer"}`},
		{`probe_http_duration_seconds{phase!="tls"} < 1`, false,
			`probe_http_duration_seconds{phase!="tls"} matches 2 series; pick one with a label matcher: {phase="connect"}, {phase="transfer"}`},
		{"probe_success / 0 > 1", false, "division by zero"},
		{"probe_success / (probe_success - 1) > 1", false, "division by zero"},
	}
	for _, tc := range tests {
		a, err := Parse(tc.expr)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.expr, err)
			continue
		}
		o := a.Eval(Env{Samples: probeSamples, Now: now})
		if o.Passed != tc.passed || o.Detail() != tc.detail {
			t.Errorf("%s:\n got %v %q\nwant %v %q", tc.expr, o.Passed, o.Detail(), tc.passed, tc.detail)
		}
	}
}

func TestTimeHasSubsecondPrecision(t *testing.T) {
	a, err := Parse("time() == 1700000000.5")
	if err != nil {
		t.Fatal(err)
	}
	if o := a.Eval(Env{Now: now.Add(500 * time.Millisecond)}); !o.Passed {
		t.Errorf("%s", o.Detail())
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		expr string
		msg  string
		col  int
	}{
		{"", "empty assertion; write e.g. probe_success == 1", 1},
		{"   ", "empty assertion; write e.g. probe_success == 1", 4},
		{"probe_success", "expected a comparison (< <= > >= == !=), found the end", 14},
		{"probe_success = 1", "expected a comparison (< <= > >= == !=), found = (compare with ==)", 15},
		{"probe_success == ", "expected a number, a metric, time() or (, found the end", 18},
		{"probe_duration_seconds < < 0.5", `expected a number, a metric, time() or (, found "<"`, 26},
		{"probe_duration_seconds < 500ms", `"500ms" is not a number (durations are plain seconds: write 0.5, not 500ms)`, 26},
		{"probe_duration_seconds < 1e", `"1e" is not a number (durations are plain seconds: write 0.5, not 500ms)`, 26},
		{"0 < probe_success < 2", "only one comparison is allowed; use one --assert per condition", 19},
		{"probe_success == 1 1", "expected an operator or the end, found the number 1", 20},
		{"probe_success == 1 && probe_success == 1", `unexpected character '&'`, 20},
		{"(probe_success == 1", `expected ")", found "=="`, 16},
		{"(probe_success + 1 == 1", `expected ")", found "=="`, 20},
		{"now() > 1", "unknown function now(); the only function is time()", 1},
		{"time(1) > 1", `expected ")": time() takes no arguments, found the number 1`, 6},
		{`probe_x{phase} > 1`, `expected = or !=, found "}"`, 14},
		{`probe_x{phase=="a"} > 1`, "a label matcher uses = or !=, not ==", 14},
		{`probe_x{phase=~"a"} > 1`, "regular expression matchers (=~, !~) are not supported; use = or !=", 15},
		{`probe_x{phase=connect} > 1`, `expected a quoted label value, e.g. "connect", found "connect"`, 15},
		{`probe_x{phase="a" job="b"} > 1`, `expected "," or "}", found "job"`, 19},
		{`probe_x{"a"="b"} > 1`, `expected a label name, found the string "a"`, 9},
		{`probe_x{a:b="c"} > 1`, `expected a label name, found "a:b"`, 9},
		{`probe_x{phase="a} > 1`, "unterminated string", 15},
		{`probe_x{phase="\d"} > 1`, `unknown escape \d (use \\ \" \' \n or \t)`, 16},
		{`probe_x{phase="é"} < é`, `unexpected character 'é'`, 22}, // columns count characters, not bytes
		{"probe_success == 1 )", `expected an operator or the end, found ")"`, 20},
	}
	for _, tc := range tests {
		_, err := Parse(tc.expr)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) = %v, want a *ParseError", tc.expr, err)
			continue
		}
		want := tc.msg + " at column "
		if got := err.Error(); !strings.HasPrefix(got, want) {
			t.Errorf("Parse(%q):\n got %s\nwant %s...", tc.expr, got, want)
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != 3 || lines[1] != "  "+tc.expr || len([]rune(lines[2])) != tc.col+2 || !strings.HasSuffix(lines[2], "^") {
			t.Errorf("Parse(%q): caret not at column %d:\n%s", tc.expr, tc.col, err)
		}
	}
}

// A tab before the error is kept in the caret line so that the caret lines
// up whatever the tab width.
func TestCaretKeepsTabs(t *testing.T) {
	_, err := Parse("\tprobe_success ==")
	if err == nil || !strings.HasSuffix(err.Error(), "\n  \t"+strings.Repeat(" ", 16)+"^") {
		t.Errorf("%q", err)
	}
}

func TestStringKeepsTheSource(t *testing.T) {
	const src = ` probe_http_duration_seconds{phase="tls"}  <  0.1 `
	a, err := Parse(src)
	if err != nil || a.String() != src {
		t.Errorf("%v %v", a, err)
	}
}

func TestSamplesFrom(t *testing.T) {
	gauge := dto.MetricType_GAUGE
	counter := dto.MetricType_COUNTER
	mfs := []*dto.MetricFamily{
		{Name: ptr("probe_http_duration_seconds"), Type: &gauge, Metric: []*dto.Metric{
			{Label: []*dto.LabelPair{{Name: ptr("phase"), Value: ptr("tls")}}, Gauge: &dto.Gauge{Value: ptr(0.5)}},
		}},
		{Name: ptr("probe_total"), Type: &counter, Metric: []*dto.Metric{
			{Counter: &dto.Counter{Value: ptr(3.0)}},
		}},
		{Name: ptr("probe_summary"), Metric: []*dto.Metric{{Summary: &dto.Summary{}}}},
	}
	got := SamplesFrom(mfs)
	if len(got) != 2 || got[0].Labels["phase"] != "tls" || got[0].Value != 0.5 || got[1].Name != "probe_total" || got[1].Value != 3 {
		t.Errorf("%+v", got)
	}
}

func TestFormatNumber(t *testing.T) {
	for v, want := range map[float64]string{
		200:                    "200",
		1700000000:             "1700000000",
		0.25:                   "0.25",
		1e-5:                   "1e-05",
		-3:                     "-3",
		1e20:                   "1e+20",
		0.00073112345:          "0.00073112345",
		1.8043971045604143e+09: "1804397104.5604143",
		0:                      "0",
	} {
		if got := FormatNumber(v); got != want {
			t.Errorf("FormatNumber(%v) = %q, want %q", v, got, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }
