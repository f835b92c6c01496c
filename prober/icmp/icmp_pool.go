package icmp

import (
	"slices"
	"sync"
	"time"

	"github.com/sonde-exporter/sonde/prober/netdial"
)

// A raw ICMP socket is costly to make ready: besides the socket call, its
// kernel filters (icmp_filter.go) must be attached, and attaching a BPF
// program is costly: kept, it is paid once per socket, not per probe. A module's raw sockets are
// therefore kept between probes: everything they were set up with (source
// address, ttl, dont_fragment, the filter on the socket's echo identifier)
// is the module's, so a socket one probe used serves the next as well. A
// probe has its socket to itself, and tells its replies from late replies
// to an earlier probe by their sequence numbers, which start at random.
// Datagram sockets are not kept: the kernel sorts their replies, and they
// are ready as soon as they are open.

const (
	// maxIdleSockets bounds the sockets a module keeps per address
	// family: enough for the probes of a busy module to find one, few
	// enough that a burst of probes does not leave its sockets open.
	maxIdleSockets = 64
	// socketIdleTime is how long a socket may wait for its next probe.
	socketIdleTime = 30 * time.Second
)

// socketPool is a module's idle raw sockets, by address family.
type socketPool struct {
	mu    sync.Mutex
	idle  [2][]idleSocket // oldest first
	sweep *time.Timer     // closes expired sockets while any is idle; nil when none is
}

type idleSocket struct {
	sock  *icmpSocket
	since time.Time
}

// get returns an idle socket of the family, the one used last, or nil.
// Queued packets, late replies to an earlier probe, are discarded first.
func (p *socketPool) get(family netdial.IPFamily) *icmpSocket {
	for {
		s := p.take(family)
		if s == nil || s.discardQueued() == nil {
			return s
		}
		s.Close()
	}
}

func (p *socketPool) take(family netdial.IPFamily) *icmpSocket {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := familyIndex(family)
	p.expire(i, time.Now())
	n := len(p.idle[i])
	if n == 0 {
		return nil
	}
	s := p.idle[i][n-1].sock
	p.idle[i][n-1] = idleSocket{}
	p.idle[i] = p.idle[i][:n-1]
	return s
}

// put keeps a raw socket whose probe ended without an error on it, or
// closes it when the pool is full.
func (p *socketPool) put(s *icmpSocket) {
	now := time.Now()
	p.mu.Lock()
	i := familyIndex(s.family)
	p.expire(i, now)
	full := len(p.idle[i]) >= maxIdleSockets
	if !full {
		p.idle[i] = append(p.idle[i], idleSocket{sock: s, since: now})
		if p.sweep == nil {
			p.sweep = time.AfterFunc(socketIdleTime, p.sweepIdle)
		}
	}
	p.mu.Unlock()
	if full {
		s.Close()
	}
}

// sweepIdle closes the sockets that expired since the last sweep, so that
// a module no longer probed (or removed by a reload) does not keep its
// sockets open, and runs again while some are left.
func (p *socketPool) sweepIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.expire(0, now)
	p.expire(1, now)
	if len(p.idle[0]) == 0 && len(p.idle[1]) == 0 {
		p.sweep = nil
		return
	}
	p.sweep.Reset(socketIdleTime / 2)
}

// expire closes the sockets of family index i idle for longer than
// socketIdleTime. p.mu is held.
func (p *socketPool) expire(i int, now time.Time) {
	n := 0
	for n < len(p.idle[i]) && now.Sub(p.idle[i][n].since) > socketIdleTime {
		p.idle[i][n].sock.Close()
		n++
	}
	p.idle[i] = slices.Delete(p.idle[i], 0, n)
}

// release ends a probe's use of its socket: a raw socket whose exchange
// ended cleanly (reusable) goes back to the module's pool, any other is
// closed.
func (p *icmpPrepared) release(s *icmpSocket, reusable bool) {
	if s.kind != rawSocket || !reusable || p.pool == nil {
		s.Close()
		return
	}
	p.pool.put(s)
}
