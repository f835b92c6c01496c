package http

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"weak"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/core"
)

// writeBundle writes a CA bundle of about size bytes, as an operator's
// copy of a public root store is: many self-signed CA certificates with
// RSA keys (one key for all, to make them quickly).
func writeBundle(tb testing.TB, path string, size int) {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	var bundle []byte
	for i := 0; len(bundle) < size; i++ {
		root := testcert.NewCA(tb, testcert.Spec{Subject: pkix.Name{CommonName: fmt.Sprintf("bundle root %d", i)}, Signer: key})
		bundle = append(bundle, root.PEM()...)
	}
	if err := os.WriteFile(path, bundle, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// manyModules is a configuration of n http modules naming one CA file,
// each with a server name of its own, as modules for different targets
// behind one private CA are written.
func manyModules(n int, caFile string) []byte {
	var b strings.Builder
	b.WriteString("modules:\n")
	for i := range n {
		fmt.Fprintf(&b, "  m%d:\n    prober: http\n    http:\n      tls_config:\n        ca_file: %s\n        server_name: s%d.example\n", i, caFile, i)
	}
	return []byte(b.String())
}

func loadSet(tb testing.TB, yaml []byte) *core.Set {
	tb.Helper()
	cfg, err := config.Load(yaml)
	if err != nil {
		tb.Fatal(err)
	}
	set, err := core.PrepareSet(cfg, probers)
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

// onePool returns the pool every module of set verifies servers with,
// failing unless they all share one.
func onePool(t *testing.T, set *core.Set) *x509.CertPool {
	t.Helper()
	var pool *x509.CertPool
	for _, name := range set.Names() {
		m, _ := set.Module(name)
		base := m.Prepared.(*httpPrepared).tls.Loaded.Load()
		if base == nil || base.RootCAs == nil {
			t.Fatalf("module %s has no CA pool", name)
		}
		if pool == nil {
			pool = base.RootCAs
		}
		if base.RootCAs != pool {
			t.Fatalf("module %s parsed the bundle into a pool of its own", name)
		}
	}
	return pool
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestModulesShareOneCABundle: 2,000 modules naming one 200 KB bundle
// parse it once. Parsed into a pool per module it would hold about 2,000
// times the pool (hundreds of MB); shared, loading and preparing them all
// costs the modules themselves and one pool. A new content gives a new
// pool, and the old one goes with the configuration that used it.
func TestModulesShareOneCABundle(t *testing.T) {
	const modules = 2000
	caFile := filepath.Join(t.TempDir(), "bundle.pem")
	writeBundle(t, caFile, 200<<10)

	before := heapInUse()
	set := loadSet(t, manyModules(modules, caFile))
	grown := max(heapInUse(), before) - before
	if limit := uint64(100 << 20); grown > limit {
		t.Errorf("loading %d modules naming one CA bundle grew the heap by %d MB, want under %d MB", modules, grown>>20, limit>>20)
	}
	t.Logf("%d modules naming one 200 KB bundle: heap grew by %.1f MB", modules, float64(grown)/(1<<20))
	first := onePool(t, set)

	writeBundle(t, caFile, 200<<10)
	next := loadSet(t, manyModules(modules, caFile))
	second := onePool(t, next)
	if second == first || second.Equal(first) {
		t.Fatal("a changed bundle kept the old pool")
	}
	old := weak.Make(first)
	first, set = nil, nil
	runtime.GC()
	if old.Value() != nil {
		t.Error("the old bundle's pool outlived the configuration that used it")
	}
	runtime.KeepAlive(next)
}

// BenchmarkLoadSharedCABundle: loading and preparing 1,000 modules that
// name one 200 KB CA bundle.
func BenchmarkLoadSharedCABundle(b *testing.B) {
	caFile := filepath.Join(b.TempDir(), "bundle.pem")
	writeBundle(b, caFile, 200<<10)
	yaml := manyModules(1000, caFile)
	b.ReportAllocs()
	for b.Loop() {
		loadSet(b, yaml)
	}
}
