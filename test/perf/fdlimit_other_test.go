//go:build !unix

package perf

// openFileLimit is how many files this process may open, as far as the
// tests know.
func openFileLimit() uint64 { return 1 << 20 }
