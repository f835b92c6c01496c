package icmp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/sonde-exporter/sonde/prober/netdial"
)

// listenICMP opens an ICMP socket of the given kind. A datagram socket is
// bound to the probe's identifier: on Linux the "port" of a ping socket is
// the echo identifier, which the kernel writes into every request and by
// which it hands each reply to its socket. It also asks for ICMP errors
// (IP_RECVERR), which the kernel otherwise drops for ping sockets.
func listenICMP(kind socketKind, family netdial.IPFamily, src net.IP, id uint16) (*icmpSocket, error) {
	domain, proto := syscall.AF_INET, syscall.IPPROTO_ICMP
	if family == netdial.IP6 {
		domain, proto = syscall.AF_INET6, syscall.IPPROTO_ICMPV6
	}
	typ := syscall.SOCK_DGRAM
	if kind == rawSocket {
		typ = syscall.SOCK_RAW
	}
	fd, err := syscall.Socket(domain, typ|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	s := &icmpSocket{kind: kind, family: family, id: id}
	if err := s.bind(fd, src); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "icmp")
	s.conn, err = net.FilePacketConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	if a, ok := s.conn.LocalAddr().(*net.UDPAddr); ok && kind == datagramSocket {
		s.id = uint16(a.Port) // the kernel's choice when the wanted one was taken
	}
	if family == netdial.IP4 {
		s.v4 = ipv4.NewPacketConn(s.conn)
	} else {
		s.v6 = ipv6.NewPacketConn(s.conn)
	}
	return s, nil
}

// bind binds a raw socket to src, when given, and a datagram socket to src
// and the identifier. Another ping socket may hold the identifier already:
// then a few random others are tried, and at last the kernel picks one.
func (s *icmpSocket) bind(fd int, src net.IP) error {
	if s.kind == rawSocket {
		if src == nil {
			return nil
		}
		return os.NewSyscallError("bind", syscall.Bind(fd, sockaddr(s.family, src, 0)))
	}
	level, opt := syscall.SOL_IP, syscall.IP_RECVERR
	if s.family == netdial.IP6 {
		level, opt = syscall.SOL_IPV6, syscall.IPV6_RECVERR
	}
	if err := syscall.SetsockoptInt(fd, level, opt, 1); err != nil {
		return os.NewSyscallError("setsockopt IP_RECVERR", err)
	}
	s.errQueue = true
	// Ping sockets are created with SO_REUSEADDR on, which lets two of them
	// bind the same identifier; the kernel then hands both sockets' replies
	// to one of them. Turned off, a taken identifier fails the bind.
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 0); err != nil {
		return os.NewSyscallError("setsockopt SO_REUSEADDR", err)
	}
	id := s.id
	for range 4 {
		err := syscall.Bind(fd, sockaddr(s.family, src, id))
		if !errors.Is(err, syscall.EADDRINUSE) {
			return os.NewSyscallError("bind", err)
		}
		id = randomEcho().id
	}
	return os.NewSyscallError("bind", syscall.Bind(fd, sockaddr(s.family, src, 0)))
}

func sockaddr(family netdial.IPFamily, ip net.IP, port uint16) syscall.Sockaddr {
	if family == netdial.IP4 {
		sa := &syscall.SockaddrInet4{Port: int(port)}
		if ip != nil {
			copy(sa.Addr[:], ip.To4())
		}
		return sa
	}
	sa := &syscall.SockaddrInet6{Port: int(port)}
	if ip != nil {
		copy(sa.Addr[:], ip.To16())
	}
	return sa
}

// setDontFragment makes the kernel set DF on every request and never
// fragment one (IP_PMTUDISC_DO): a request too big for the path fails
// instead. Left alone, Linux sets DF only while a packet fits the path MTU.
func setDontFragment(s *icmpSocket) error {
	return control(s, func(fd int) error {
		return os.NewSyscallError("setsockopt IP_MTU_DISCOVER",
			syscall.SetsockoptInt(fd, syscall.IPPROTO_IP, syscall.IP_MTU_DISCOVER, syscall.IP_PMTUDISC_DO))
	})
}

func control(s *icmpSocket, f func(fd int) error) error {
	sc, ok := s.conn.(syscall.Conn)
	if !ok {
		return fmt.Errorf("%T has no file descriptor", s.conn)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// discardQueued drops the packets queued on the socket, without waiting.
// A one-byte read with MSG_TRUNC consumes a whole datagram.
func (s *icmpSocket) discardQueued() error {
	return control(s, func(fd int) error {
		var b [1]byte
		for range 1 << 16 { // a bound, in case packets arrive as fast as they are dropped
			_, _, err := syscall.Recvfrom(fd, b[:], syscall.MSG_DONTWAIT|syscall.MSG_TRUNC)
			if errors.Is(err, syscall.EAGAIN) {
				return nil
			}
			if err != nil {
				return os.NewSyscallError("recvfrom", err)
			}
		}
		return nil
	})
}

// readErrors empties a datagram socket's error queue and returns the ICMP
// errors in it. Local errors (a request too big for the route) are
// dropped: the send that caused them failed with the same error.
func (s *icmpSocket) readErrors() ([]*icmpFailure, error) {
	var failures []*icmpFailure
	err := control(s, func(fd int) error {
		var data [128]byte
		var oob [256]byte
		for range 64 { // a bound, in case errors arrive as fast as they are read
			n, oobn, _, _, err := syscall.Recvmsg(fd, data[:], oob[:], syscall.MSG_ERRQUEUE)
			if errors.Is(err, syscall.EAGAIN) {
				return nil
			}
			if err != nil {
				return os.NewSyscallError("recvmsg MSG_ERRQUEUE", err)
			}
			if f, ok := parseErrQueue(s.family, data[:n], oob[:oobn]); ok {
				failures = append(failures, f)
			}
		}
		return nil
	})
	return failures, err
}

// Origins of a queued socket error (linux/errqueue.h).
const (
	eeOriginICMP  = 2
	eeOriginICMP6 = 3
)

// parseErrQueue reads one error-queue entry of a ping socket: a struct
// sock_extended_err with the offender's address after it, in the control
// message, and the ICMP header of our request in the data.
func parseErrQueue(family netdial.IPFamily, data, oob []byte) (*icmpFailure, bool) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, false
	}
	for _, m := range msgs {
		isErr := (m.Header.Level == syscall.SOL_IP && m.Header.Type == syscall.IP_RECVERR) ||
			(m.Header.Level == syscall.SOL_IPV6 && m.Header.Type == syscall.IPV6_RECVERR)
		if !isErr || len(m.Data) < 16 {
			continue
		}
		origin := m.Data[4]
		if origin != eeOriginICMP && origin != eeOriginICMP6 {
			return nil, false
		}
		f := &icmpFailure{family: family, typ: int(m.Data[5]), code: int(m.Data[6]),
			from: offender(m.Data[16:])}
		if f.isTooBig() {
			f.mtu = int(binary.NativeEndian.Uint32(m.Data[8:12])) // ee_info
		}
		if len(data) < 8 || data[0] != f.requestType() {
			return nil, false
		}
		e := parseEcho(data)
		f.id, f.seq = e.id, e.seq
		return f, true
	}
	return nil, false
}

// offender reads the sockaddr_in or sockaddr_in6 of whoever sent the error.
func offender(sa []byte) net.IP {
	if len(sa) < 2 {
		return nil
	}
	switch binary.NativeEndian.Uint16(sa[:2]) {
	case syscall.AF_INET:
		if len(sa) >= 8 {
			return append(net.IP(nil), sa[4:8]...)
		}
	case syscall.AF_INET6:
		if len(sa) >= 24 {
			return append(net.IP(nil), sa[8:24]...)
		}
	}
	return nil
}
