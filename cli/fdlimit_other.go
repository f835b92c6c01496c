//go:build !unix

package cli

import "errors"

func raiseFileLimit() (soft, hard uint64, err error) {
	return 0, 0, errors.New("file descriptor limits are not managed on this system")
}
