package probertest

import (
	"bytes"
	"regexp"
	"testing"
	"time"
)

// slowText is text that slowRegexp scans slowly and never matches.
var (
	SlowRegexp = `(\w+\s*)+[0-9]{4}!`
	slowText   = []byte("lorem ipsum dolor sit amet, consectetur adipiscing elit\n")
)

// SlowBody returns slowText repeated so that slowRegexp takes about d to
// scan it on this machine (and under the race detector, which slows
// regexp down many times), within [256 KiB, 48 MiB].
func SlowBody(t *testing.T, d time.Duration) []byte {
	t.Helper()
	re := regexp.MustCompile(SlowRegexp)
	sample := bytes.Repeat(slowText, (256<<10)/len(slowText))
	start := time.Now()
	if re.Match(sample) {
		t.Fatal("the slow regexp matches its text")
	}
	took := max(time.Since(start), time.Microsecond)
	n := min(int(d/took)+1, (48<<20)/len(sample))
	return bytes.Repeat(sample, n)
}
