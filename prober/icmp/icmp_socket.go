package icmp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/sonde-exporter/sonde/prober/netdial"
	"github.com/sonde-exporter/sonde/prober/probelog"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// socketKind is how a probe talks ICMP. A datagram ("unprivileged", ping)
// socket needs the process's group in net.ipv4.ping_group_range; the
// kernel picks the echo replies meant for it by identifier. A raw socket
// needs CAP_NET_RAW and sees every ICMP packet the host receives, so sonde
// filters them in the kernel before they are queued.
type socketKind int

const (
	datagramSocket socketKind = iota
	rawSocket
)

func (k socketKind) String() string {
	if k == rawSocket {
		return "raw"
	}
	return "datagram"
}

// socketOptions are a module's socket settings for one probe.
type socketOptions struct {
	source       string // source_ip_address; empty for the system's choice
	ttl          int    // 0 keeps the system default
	dontFragment bool   // IPv4 only
	echo         echoStart
}

// listenFunc opens an ICMP socket of a kind and family, bound to src (nil
// for any address). id is the echo identifier a datagram socket is bound
// to; the returned socket says which identifier the kernel will use.
type listenFunc func(kind socketKind, family netdial.IPFamily, src net.IP, id uint16) (*icmpSocket, error)

// icmpSocket is one probe's ICMP socket: conn for writes and deadlines,
// and the ipv4 or ipv6 view of it for options and reads with control
// messages (the reply's TTL or hop limit).
type icmpSocket struct {
	conn   net.PacketConn
	v4     *ipv4.PacketConn // nil for IPv6
	v6     *ipv6.PacketConn // nil for IPv4
	kind   socketKind
	family netdial.IPFamily
	id     uint16 // the echo identifier on the wire
	// hopLimit is whether reads report the reply's TTL or hop limit.
	hopLimit bool
	// errQueue is whether ICMP errors about our requests reach the socket
	// as read errors with the details on its error queue (Linux datagram
	// sockets with IP_RECVERR).
	errQueue bool
}

func (s *icmpSocket) Close() error { return s.conn.Close() }

// openICMP opens the probe's socket: the kinds of the module in order,
// moving on when one cannot be had. Only when every kind fails is the
// probe failed, as permission_denied when the system refused them all.
func openICMP(prep *icmpPrepared, target net.IP, o socketOptions, logger *slog.Logger) (*icmpSocket, error) {
	family := netdial.FamilyOf(target)
	src, err := sourceIP(o.source, target)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, kind := range prep.kinds {
		if kind == datagramSocket && prep.recentlyRefused(family) {
			continue
		}
		if kind == rawSocket && prep.pool != nil {
			if s := prep.pool.get(family); s != nil {
				probelog.Debug(logger, "Reusing ICMP socket", "kind", kind.String(), "id", s.id)
				return s, nil
			}
		}
		s, err := prep.listen(kind, family, src, o.echo.id)
		if err == nil {
			probelog.Debug(logger, "Opened ICMP socket", "kind", kind.String(), "id", s.id, "source", o.source)
			if kind == rawSocket && len(errs) > 0 && isPermissionError(errs[0]) {
				prep.datagramRefused[familyIndex(family)].Store(time.Now().UnixNano())
			}
			if err := s.configure(o, logger); err != nil {
				s.Close()
				return nil, err
			}
			return s, nil
		}
		if src != nil && errors.Is(err, syscall.EADDRNOTAVAIL) {
			return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonSourceAddress, taxonomy.PhaseSetup,
				"source_ip_address %s is not an address of this host: %v", src, err)
		}
		probelog.Debug(logger, "Cannot open ICMP socket", "kind", kind.String(), "err", err)
		errs = append(errs, fmt.Errorf("%s socket: %w", kind, err))
	}
	return nil, openError(errs)
}

// refusalMemory is how long a refused datagram socket is not asked for
// again: a change to net.ipv4.ping_group_range takes effect within it.
const refusalMemory = time.Minute

// recentlyRefused reports whether the system refused a datagram socket of
// the family, and a raw one opened instead, within refusalMemory.
func (p *icmpPrepared) recentlyRefused(family netdial.IPFamily) bool {
	at := p.datagramRefused[familyIndex(family)].Load()
	return at != 0 && time.Since(time.Unix(0, at)) < refusalMemory
}

func familyIndex(f netdial.IPFamily) int {
	if f == netdial.IP6 {
		return 1
	}
	return 0
}

// sourceIP reads source_ip_address, which must be of the target's family.
func sourceIP(option string, target net.IP) (net.IP, error) {
	if option == "" {
		return nil, nil
	}
	src := net.ParseIP(option)
	if src == nil {
		return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonSourceAddress, taxonomy.PhaseSetup, "source_ip_address %q is not an IP address", option)
	}
	if netdial.FamilyOf(src) != netdial.FamilyOf(target) {
		return nil, taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonSourceAddress, taxonomy.PhaseSetup,
			"source_ip_address %s is %s but the target resolved to %s; set preferred_ip_protocol to %s and ip_protocol_fallback to false",
			src, netdial.FamilyOf(src), target, netdial.FamilyOf(src))
	}
	return src, nil
}

// openError explains why no socket could be opened. When the system
// refused every kind the fix is a privilege, which the message names.
func openError(errs []error) error {
	if len(errs) == 0 {
		return taxonomy.Failf(taxonomy.ClassProber, taxonomy.ReasonInternal, taxonomy.PhaseSetup, "no ICMP socket kind to try")
	}
	for _, err := range errs {
		if !isPermissionError(err) {
			if errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EPROTONOSUPPORT) || errors.Is(err, syscall.ESOCKTNOSUPPORT) {
				return taxonomy.Fail(taxonomy.ClassProber, taxonomy.ReasonUnsupported, taxonomy.PhaseSetup, fmt.Errorf("this host does not support the address family: %w", errors.Join(errs...)))
			}
			c, r, ok := taxonomy.ErrnoClass(err)
			if !ok {
				c, r = taxonomy.ClassUnknown, taxonomy.ReasonUnclassified
			}
			return taxonomy.Fail(c, r, taxonomy.PhaseSetup, taxonomy.WithHint(fmt.Errorf("opening an ICMP socket: %w", errors.Join(errs...))))
		}
	}
	return taxonomy.Fail(taxonomy.ClassProber, taxonomy.ReasonPermissionDenied, taxonomy.PhaseSetup, fmt.Errorf(
		"not allowed to open an ICMP socket: datagram sockets need one of the process's groups in the sysctl "+
			"net.ipv4.ping_group_range, raw sockets need CAP_NET_RAW (see docs/icmp-privileges.md): %w", errors.Join(errs...)))
}

func isPermissionError(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES)
}

// configure applies the module's settings, which the probe cannot do
// without: ttl and dont_fragment. The hop limit report and the in-kernel
// filters are best effort: without them a probe still works, it just
// exports no probe_icmp_reply_hop_limit or reads more packets.
func (s *icmpSocket) configure(o socketOptions, logger *slog.Logger) error {
	if err := s.setTTL(o.ttl); err != nil {
		return taxonomy.Classify(nil, fmt.Errorf("setting ttl %d on the ICMP socket: %w", o.ttl, err), taxonomy.PhaseSetup)
	}
	switch {
	case o.dontFragment && s.family == netdial.IP6:
		probelog.Debug(logger, "dont_fragment applies to IPv4 only: routers never fragment IPv6")
	case o.dontFragment:
		if err := setDontFragment(s); err != nil {
			return taxonomy.Fail(taxonomy.ClassProber, taxonomy.ReasonUnsupported, taxonomy.PhaseSetup, fmt.Errorf("dont_fragment: %w", err))
		}
	}
	if s.v4 != nil {
		s.hopLimit = s.v4.SetControlMessage(ipv4.FlagTTL, true) == nil
	} else {
		s.hopLimit = s.v6.SetControlMessage(ipv6.FlagHopLimit, true) == nil
	}
	if s.kind == rawSocket {
		if err := s.filter(); err != nil {
			probelog.Debug(logger, "The in-kernel ICMP filters could not be set; replies are filtered in sonde", "err", err)
		}
	}
	return nil
}

// filter attaches the in-kernel filters to a raw socket, then discards
// what the socket was handed before they were in place: with many probes
// running, other probes' replies could fill its buffer and crowd out its
// own reply.
func (s *icmpSocket) filter() error {
	var err error
	if s.v4 != nil {
		err = errors.Join(s.v4.SetICMPFilter(icmpFilterV4()), s.v4.SetBPF(echoFilterV4(s.id)))
	} else {
		err = errors.Join(s.v6.SetICMPFilter(icmpFilterV6()), s.v6.SetBPF(echoFilterV6(s.id)))
	}
	if err != nil {
		return err
	}
	return s.discardQueued()
}

// setTTL sets the TTL (IPv4) or hop limit (IPv6) of the requests; 0
// keeps the system's default.
func (s *icmpSocket) setTTL(ttl int) error {
	if ttl <= 0 {
		return nil
	}
	if s.v4 != nil {
		return s.v4.SetTTL(ttl)
	}
	return s.v6.SetHopLimit(ttl)
}

// read reads one ICMP message (without the IPv4 header a raw socket
// receives) and the TTL or hop limit it arrived with, -1 when unknown.
func (s *icmpSocket) read(b []byte) (n, hopLimit int, from net.IP, err error) {
	hopLimit = -1
	var peer net.Addr
	if s.v4 != nil {
		var cm *ipv4.ControlMessage
		n, cm, peer, err = s.v4.ReadFrom(b)
		if cm != nil && s.hopLimit {
			hopLimit = cm.TTL
		}
	} else {
		var cm *ipv6.ControlMessage
		n, cm, peer, err = s.v6.ReadFrom(b)
		if cm != nil && s.hopLimit {
			hopLimit = cm.HopLimit
		}
	}
	return n, hopLimit, addrIP(peer), err
}

// write sends one message to ip: a datagram socket takes a UDP address
// (the "port" is the identifier, filled in by the kernel), a raw socket
// an IP address.
func (s *icmpSocket) write(b []byte, ip net.IP) error {
	var dst net.Addr = &net.IPAddr{IP: ip}
	if s.kind == datagramSocket {
		dst = &net.UDPAddr{IP: ip}
	}
	_, err := s.conn.WriteTo(b, dst)
	return err
}

func (s *icmpSocket) setReadDeadline(t time.Time) error { return s.conn.SetReadDeadline(t) }

func addrIP(a net.Addr) net.IP {
	switch a := a.(type) {
	case *net.IPAddr:
		return a.IP
	case *net.UDPAddr:
		return a.IP
	}
	return nil
}
