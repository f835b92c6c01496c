package faults

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/sonde-exporter/sonde/internal/testkit"
)

// lab is the network the fault tests probe: one namespace holding the
// peer, reached from the root namespace two ways.
//
//   - a veth pair, rootAddr <-> peerAddr, whose peer side has nftables
//     rules that drop, reset or thin out chosen traffic (see nftRules);
//   - a delay line, rootDelayed <-> peerDelayed: two TUN devices, one per
//     namespace, joined by the test process, which holds every packet
//     going to the peer for delay. This is netem's delay in user space:
//     this machine's kernel is built without sch_netem, and a TUN device
//     is in every kernel the tests may meet.
type lab struct {
	ns          string
	rootAddr    net.IP // the root side of the veth pair
	peerAddr    net.IP // the peer side of the veth pair
	peerDelayed net.IP // the peer, behind the delay line
	delay       time.Duration
}

// The peer's ports; peer_linux_test.go serves them.
const (
	portHTTP      = 8080 // a plain HTTP server
	portHTTPS     = 8443 // the same over TLS
	portSilent    = 8081 // accepts, reads, never answers
	portSlowloris = 8082 // answers one byte at a time, too slowly
	portDropped   = 8083 // listens, but nftables drops every packet to it
	portReset     = 8084 // listens, but nftables answers SYNs with a reset
	portDNS       = 5353 // a UDP socket that reads queries and never answers
)

// lossPercent is the share of echo requests nftables drops.
const lossPercent = 30

// nftRules shape the traffic arriving in the peer's namespace.
var nftRules = fmt.Sprintf(`table inet sonde_faults {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport %d drop
		tcp dport %d reject with tcp reset
		icmp type echo-request numgen random mod 100 < %d drop
	}
}
`, portDropped, portReset, lossPercent)

// requireLab checks that the machine can host the lab: root, network
// namespaces and the nft tool. Off CI a missing piece skips the tests
// with the reason; in CI (CI set) a root machine without them fails, as
// .ci/run installs what they need.
func requireLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the fault tests make network namespaces, which needs root; run them as root (CI does)")
	}
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") != "" {
			t.Fatalf("%s; CI runs as root and must run the fault tests", msg)
		}
		t.Skip(msg)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		missing("the ip tool (iproute2) is not installed: %v", err)
	}
	probe := fmt.Sprintf("sonde-nscheck-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		missing("ip netns add is impossible here: %v: %s", err, out)
	}
	_ = exec.Command("ip", "netns", "del", probe).Run()
	if _, err := exec.LookPath("nft"); err != nil {
		missing("the nft tool is not installed (apt-get install nftables): %v", err)
	}
}

// newLab builds the lab, starts the peer in it, and removes everything
// when the test ends, whether it passed or not.
func newLab(t *testing.T, delay time.Duration) *lab {
	t.Helper()
	removeStaleLabs(t)
	// Names unique to this process, so that two runs at once do not
	// collide. Interface names must fit in 15 bytes: a pid has at most 7
	// digits.
	id := os.Getpid()
	net1 := byte(20 + id%200) // 198.18.N.0/30 for the veth pair, 198.19.N.0/30 behind the delay line
	l := &lab{
		ns:          fmt.Sprintf("%s%d", labPrefix, id),
		rootAddr:    net.IPv4(198, 18, net1, 1),
		peerAddr:    net.IPv4(198, 18, net1, 2),
		peerDelayed: net.IPv4(198, 19, net1, 2),
		delay:       delay,
	}
	rootDelayed := net.IPv4(198, 19, net1, 1)
	vethRoot, vethPeer := fmt.Sprintf("sfv%dr", id), fmt.Sprintf("sfv%dp", id)
	tunRoot, tunPeer := fmt.Sprintf("sft%dr", id), fmt.Sprintf("sft%dp", id)

	run(t, "ip", "netns", "add", l.ns)
	t.Cleanup(func() {
		// Deleting the namespace takes its devices, the peer side of the
		// veth pair (and so the root side) and its nftables rules along.
		if out, err := exec.Command("ip", "netns", "del", l.ns).CombinedOutput(); err != nil {
			t.Errorf("removing namespace %s: %v: %s", l.ns, err, out)
		}
	})
	inNS := func(args ...string) { run(t, append([]string{"ip", "-n", l.ns}, args...)...) }
	inNS("link", "set", "lo", "up")

	run(t, "ip", "link", "add", vethRoot, "type", "veth", "peer", "name", vethPeer)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", vethRoot).Run() }) // gone already unless the move failed
	run(t, "ip", "link", "set", vethPeer, "netns", l.ns)
	run(t, "ip", "addr", "add", l.rootAddr.String()+"/30", "dev", vethRoot)
	run(t, "ip", "link", "set", vethRoot, "up")
	inNS("addr", "add", l.peerAddr.String()+"/30", "dev", vethPeer)
	inNS("link", "set", vethPeer, "up")

	rootTun := openTUN(t, tunRoot)
	peerTun := openTUN(t, tunPeer)
	run(t, "ip", "link", "set", tunPeer, "netns", l.ns)
	run(t, "ip", "addr", "add", rootDelayed.String(), "peer", l.peerDelayed.String(), "dev", tunRoot)
	run(t, "ip", "link", "set", tunRoot, "up")
	inNS("addr", "add", l.peerDelayed.String(), "peer", rootDelayed.String(), "dev", tunPeer)
	inNS("link", "set", tunPeer, "up")
	startDelayLine(t, rootTun, peerTun, delay)

	nft := exec.Command("ip", "netns", "exec", l.ns, "nft", "-f", "-")
	nft.Stdin = strings.NewReader(nftRules)
	if out, err := nft.CombinedOutput(); err != nil {
		t.Fatalf("loading the nftables rules: %v: %s\n%s", err, out, nftRules)
	}
	startPeer(t, l.ns)
	return l
}

// labPrefix starts the name of every lab's namespace; the process that
// made it follows.
const labPrefix = "sonde-faults-"

// removeStaleLabs deletes the namespaces of runs that were killed before
// their cleanup ran (their process is gone), with the veth pairs and rules
// inside them.
func removeStaleLabs(t *testing.T) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		pid, err := strconv.Atoi(strings.TrimPrefix(name, labPrefix))
		if !strings.HasPrefix(name, labPrefix) || err != nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
			t.Logf("removing namespace %s, left by a run that was killed", name)
			_ = exec.Command("ip", "netns", "del", name).Run()
		}
	}
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// openTUN creates a TUN device (IP packets, no extra header) held by the
// returned file; closing it removes the device.
func openTUN(t *testing.T, name string) *os.File {
	t.Helper()
	// Opened blocking and made non-blocking only once attached: Go's
	// poller registers the descriptor when the *os.File is made, and a
	// TUN descriptor polled before TUNSETIFF never reports readiness.
	fd, err := syscall.Open("/dev/net/tun", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("opening /dev/net/tun: %v", err)
	}
	const (
		tunSetIff = 0x400454ca // TUNSETIFF
		iffTun    = 0x0001
		iffNoPI   = 0x1000
	)
	var ifr [40]byte // struct ifreq: the name, then the flags
	copy(ifr[:syscall.IFNAMSIZ-1], name)
	*(*uint16)(unsafe.Pointer(&ifr[syscall.IFNAMSIZ])) = iffTun | iffNoPI
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), tunSetIff, uintptr(unsafe.Pointer(&ifr[0]))); errno != 0 {
		syscall.Close(fd)
		t.Fatalf("creating TUN device %s: %v", name, errno)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), name)
	t.Cleanup(func() { f.Close() })
	return f
}

// startDelayLine copies packets between the two TUN devices: those going
// to the peer after delay, those coming back at once, as `tc qdisc add dev
// <root side> root netem delay <delay>` would. Order is kept.
func startDelayLine(t *testing.T, root, peer *os.File, delay time.Duration) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); forward(root, peer, delay) }()
	go func() { defer wg.Done(); forward(peer, root, 0) }()
	t.Cleanup(func() {
		root.Close()
		peer.Close()
		wg.Wait()
	})
}

func forward(from, to *os.File, delay time.Duration) {
	type packet struct {
		due  time.Time
		data []byte
	}
	queue := make(chan packet, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p := range queue {
			time.Sleep(time.Until(p.due))
			if _, err := to.Write(p.data); errors.Is(err, os.ErrClosed) {
				return
			}
		}
	}()
	defer func() { close(queue); <-done }()
	for {
		buf := make([]byte, 65536)
		n, err := from.Read(buf)
		if err != nil {
			return
		}
		queue <- packet{due: time.Now().Add(delay), data: buf[:n]}
	}
}

// startPeer runs this test binary as the peer (peerRole) inside the
// namespace and waits until it listens. The peer exits when its standard
// input closes, so it does not outlive the test process even if that one
// is killed.
func startPeer(t *testing.T, ns string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, self, "-test.run=^$")
	cmd.Env = append(os.Environ(), peerRoleEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the peer: %v", err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("the peer's stderr:\n%s", stderr.String())
		}
	})
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != peerReady {
			err = fmt.Errorf("the peer said %q", line)
		}
		ready <- err
		io.Copy(io.Discard, stdout)
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("the peer did not start: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the peer did not start within 10s; stderr:\n%s", stderr.String())
	}
}

type syncBuffer = testkit.SyncBuffer
