package quickgzip

import (
	"bytes"
	"compress/gzip"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// exposition is a tcp probe's answer, the kind of text Append is for.
const exposition = `# HELP probe_dns_lookup_time_seconds Returns the time taken for probe dns lookup in seconds
# TYPE probe_dns_lookup_time_seconds gauge
probe_dns_lookup_time_seconds 2.044e-06
# HELP probe_duration_seconds Returns how long the probe took to complete in seconds
# TYPE probe_duration_seconds gauge
probe_duration_seconds 0.000248746
# HELP probe_success Displays whether or not the probe was a success
# TYPE probe_success gauge
probe_success 1.0
# HELP probe_tcp_duration_seconds Duration of the tcp probe by phase
# TYPE probe_tcp_duration_seconds gauge
probe_tcp_duration_seconds{phase="connect"} 0.000161493
probe_tcp_duration_seconds{phase="query"} 2.876e-06
probe_tcp_duration_seconds{phase="resolve"} 2.044e-06
probe_tcp_duration_seconds{phase="tls"} 0.0
# EOF
`

func inputs() map[string][]byte {
	random := make([]byte, 100<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	// A block that repeats after more than deflate's 32 KiB window, so
	// the repeat must not be referred back to.
	far := append(append(bytes.Clone(random[:1000]), make([]byte, 40<<10)...), random[:1000]...)
	every := make([]byte, 0, 512)
	for i := range 512 {
		every = append(every, byte(i))
	}
	return map[string][]byte{
		"empty":                  nil,
		"one byte":               []byte("x"),
		"shorter than a match":   []byte("abc"),
		"exactly a match":        []byte("abcd"),
		"a match and a byte":     []byte("abcdabcde"),
		"one byte repeated":      bytes.Repeat([]byte("a"), 1000),
		"longest match and more": bytes.Repeat([]byte("0123456789"), 100),
		"every byte value":       every,
		"exposition":             []byte(exposition),
		"exposition x40":         []byte(strings.Repeat(exposition, 40)),
		"incompressible":         random,
		"repeat past the window": far,
	}
}

func TestAppendRoundTrip(t *testing.T) {
	var e Encoder // one encoder for all, as a pool reuses them
	for name, in := range inputs() {
		t.Run(name, func(t *testing.T) {
			prefix := []byte("kept")
			out := e.Append(bytes.Clone(prefix), in)
			if !bytes.HasPrefix(out, prefix) {
				t.Fatalf("Append did not keep dst")
			}
			got := gunzip(t, out[len(prefix):])
			if !bytes.Equal(got, in) {
				t.Fatalf("round trip of %d bytes gave %d different bytes", len(in), len(got))
			}
		})
	}
}

// A fresh encoder and a reused one give the same bytes: nothing stored for
// an earlier input is ever referred to.
func TestAppendIgnoresEarlierInputs(t *testing.T) {
	in := []byte(exposition)
	var fresh, reused Encoder
	want := fresh.Append(nil, in)
	reused.Append(nil, []byte(strings.Repeat(exposition[100:], 3)))
	if got := reused.Append(nil, in); !bytes.Equal(got, want) {
		t.Fatalf("a reused encoder wrote %d bytes, a fresh one %d", len(got), len(want))
	}
}

func TestAppendCompresses(t *testing.T) {
	var e Encoder
	out := e.Append(nil, []byte(exposition))
	if ratio := float64(len(out)) / float64(len(exposition)); ratio > 0.5 {
		t.Errorf("an exposition compressed to %.0f%% of its size, want at most half", 100*ratio)
	}
	r, err := gzip.NewReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if r.Header.OS != 0xff || !r.Header.ModTime.IsZero() || r.Header.Name != "" {
		t.Errorf("header = %+v, want no name or time and an unknown OS", r.Header)
	}
}

func TestOffsetSym(t *testing.T) {
	for sym, base := range offsetBase {
		last := int(base) + 1<<offsetExtra[sym] - 1
		for _, d := range []int{int(base), last} {
			if got := offsetSym(d); got != sym {
				t.Errorf("offsetSym(%d) = %d, want %d", d, got, sym)
			}
		}
	}
}

func TestLengthSym(t *testing.T) {
	for n := 3; n <= maxMatch; n++ {
		s := lengthSym[n]
		if n < int(lengthBase[s]) || n-int(lengthBase[s]) >= 1<<lengthExtra[s] && n != maxMatch {
			t.Errorf("length %d: symbol %d covers %d+%d bits", n, 257+int(s), lengthBase[s], lengthExtra[s])
		}
	}
	// 258 has a symbol of its own (285); 284 with all extra bits set is
	// invalid to some decoders.
	if s := lengthSym[maxMatch]; s != 28 {
		t.Errorf("length 258 uses symbol %d, want 285", 257+int(s))
	}
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("reading the gzip header: %v", err)
	}
	r.Multistream(false)
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decompressing: %v", err)
	}
	return got
}

func FuzzQuickGzip(f *testing.F) {
	for _, in := range inputs() {
		if len(in) < 4<<10 {
			f.Add(in)
		}
	}
	var reused Encoder
	f.Fuzz(func(t *testing.T, in []byte) {
		var fresh Encoder
		want := fresh.Append(nil, in)
		if got := gunzip(t, want); !bytes.Equal(got, in) {
			t.Fatalf("round trip of %d bytes failed", len(in))
		}
		if got := reused.Append(nil, in); !bytes.Equal(got, want) {
			t.Fatalf("a reused encoder wrote other bytes than a fresh one")
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	in := []byte(exposition)
	var e Encoder
	var out []byte
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		out = e.Append(out[:0], in)
	}
	b.ReportMetric(float64(len(out)), "bytes/answer")
}
