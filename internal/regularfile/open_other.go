//go:build !unix

package regularfile

// openFlags: elsewhere opening does not wait for a writer.
const openFlags = 0
