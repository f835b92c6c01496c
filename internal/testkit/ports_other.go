//go:build !unix

package testkit

import "net"

// holdTCPPort, without the socket calls to bind and not listen, picks a
// port nothing listens on and releases it: another test may take it.
func holdTCPPort() (addr string, release func(), err error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr = l.Addr().String()
	l.Close()
	return addr, func() {}, nil
}
