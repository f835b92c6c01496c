//go:build unix

package regularfile

import "syscall"

// openFlags makes opening a named pipe return at once instead of waiting
// for a writer; reads of a regular file are not affected.
const openFlags = syscall.O_NONBLOCK
