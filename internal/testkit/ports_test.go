package testkit

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// A closed port refuses, and stays closed to anyone else wanting to listen
// on it until the test ends.
func TestClosedPorts(t *testing.T) {
	tests := []struct {
		name    string
		addr    func(testing.TB) string
		refused func(addr string) error
		bind    func(addr string) (func() error, error)
	}{
		{"tcp", ClosedTCPAddr, dialTCP, func(addr string) (func() error, error) {
			l, err := net.Listen("tcp4", addr)
			if err != nil {
				return nil, err
			}
			return l.Close, nil
		}},
		{"udp", ClosedUDPPort, exchangeUDP, func(addr string) (func() error, error) {
			pc, err := net.ListenPacket("udp4", addr)
			if err != nil {
				return nil, err
			}
			return pc.Close, nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.addr(t)
			if err := tc.refused(addr); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("%s: %v, want connection refused", addr, err)
			}
			if closeIt, err := tc.bind(addr); err == nil {
				closeIt()
				t.Errorf("another socket could bind %s", addr)
			}
		})
	}
}

func dialTCP(addr string) error {
	c, err := net.DialTimeout("tcp4", addr, 10*time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

func exchangeUDP(addr string) error {
	c, err := net.Dial("udp4", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("anyone?")); err != nil {
		return err
	}
	_, err = c.Read(make([]byte, 16))
	return err
}
