package icmp

import (
	"fmt"

	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// The in-kernel filters of raw sockets. A raw ICMP socket is handed a copy
// of every ICMP packet the host receives, so n concurrent probes would
// each read the replies of all the others: n² packets. The type filter
// (ICMP_FILTER) drops what no probe wants before the kernel copies the
// packet; the BPF program then keeps only the echo replies carrying the
// probe's identifier and the ICMP errors quoting one of its requests.

const acceptPacket = 0xffffffff

// icmpFilterV4 passes echo replies and the errors that can quote a
// request: destination unreachable and time exceeded.
func icmpFilterV4() *ipv4.ICMPFilter {
	var f ipv4.ICMPFilter
	f.SetAll(true)
	for _, t := range []ipv4.ICMPType{ipv4.ICMPTypeEchoReply, ipv4.ICMPTypeDestinationUnreachable, ipv4.ICMPTypeTimeExceeded} {
		f.Accept(t)
	}
	return &f
}

func icmpFilterV6() *ipv6.ICMPFilter {
	var f ipv6.ICMPFilter
	f.SetAll(true)
	for _, t := range []ipv6.ICMPType{ipv6.ICMPTypeEchoReply, ipv6.ICMPTypeDestinationUnreachable,
		ipv6.ICMPTypePacketTooBig, ipv6.ICMPTypeTimeExceeded} {
		f.Accept(t)
	}
	return &f
}

// echoFilterV4 is the BPF program of a raw IPv4 socket, which sees each
// packet from its IP header on. X holds the header's length.
func echoFilterV4(id uint16) []bpf.RawInstruction {
	return assemble([]bpf.Instruction{
		/* 0 */ bpf.LoadMemShift{Off: 0}, // X = IP header length
		/* 1 */ bpf.LoadIndirect{Off: 0, Size: 1}, // ICMP type
		/* 2 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(ipv4.ICMPTypeEchoReply), SkipFalse: 2},
		/* 3 */ bpf.LoadIndirect{Off: 4, Size: 2}, // the reply's identifier
		/* 4 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(id), SkipTrue: 13, SkipFalse: 14},
		/* 5 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(ipv4.ICMPTypeDestinationUnreachable), SkipTrue: 1},
		/* 6 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(ipv4.ICMPTypeTimeExceeded), SkipFalse: 12},
		// An error quotes the offending IP header at offset 8, then the
		// first 8 bytes of our request.
		/* 7 */ bpf.LoadIndirect{Off: 8 + 9, Size: 1}, // quoted protocol
		/* 8 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 1, SkipFalse: 10},
		/* 9 */ bpf.LoadIndirect{Off: 8, Size: 1}, // quoted version and header length
		/* 10 */ bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x0f},
		/* 11 */ bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2},
		/* 12 */ bpf.ALUOpX{Op: bpf.ALUOpAdd}, // A = both header lengths
		/* 13 */ bpf.TAX{},
		/* 14 */ bpf.LoadIndirect{Off: 8, Size: 1}, // quoted ICMP type
		/* 15 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(ipv4.ICMPTypeEcho), SkipFalse: 3},
		/* 16 */ bpf.LoadIndirect{Off: 8 + 4, Size: 2}, // quoted identifier
		/* 17 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(id), SkipFalse: 1},
		/* 18 */ bpf.RetConstant{Val: acceptPacket},
		/* 19 */ bpf.RetConstant{Val: 0},
	})
}

// echoFilterV6 is the BPF program of a raw IPv6 socket, which sees each
// packet from its ICMPv6 header on. An error quotes the offending IPv6
// header (40 bytes, no extension headers for an echo request) at offset 8.
func echoFilterV6(id uint16) []bpf.RawInstruction {
	const quoted = 8 + 40
	return assemble([]bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: 0, Size: 1}, // ICMPv6 type
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(ipv6.ICMPTypeEchoReply), SkipFalse: 2},
		/* 2 */ bpf.LoadAbsolute{Off: 4, Size: 2}, // the reply's identifier
		/* 3 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(id), SkipTrue: 9, SkipFalse: 10},
		/* 4 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(ipv6.ICMPTypeDestinationUnreachable), SkipTrue: 2},
		/* 5 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(ipv6.ICMPTypePacketTooBig), SkipTrue: 1},
		/* 6 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(ipv6.ICMPTypeTimeExceeded), SkipFalse: 7},
		/* 7 */ bpf.LoadAbsolute{Off: 8 + 6, Size: 1}, // quoted next header
		/* 8 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 58, SkipFalse: 5},
		/* 9 */ bpf.LoadAbsolute{Off: quoted, Size: 1}, // quoted ICMPv6 type
		/* 10 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(ipv6.ICMPTypeEchoRequest), SkipFalse: 3},
		/* 11 */ bpf.LoadAbsolute{Off: quoted + 4, Size: 2}, // quoted identifier
		/* 12 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(id), SkipFalse: 1},
		/* 13 */ bpf.RetConstant{Val: acceptPacket},
		/* 14 */ bpf.RetConstant{Val: 0},
	})
}

// assemble turns a fixed program into its raw form; the programs above
// are valid by construction, so a failure is a bug caught by the tests.
func assemble(prog []bpf.Instruction) []bpf.RawInstruction {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		panic(fmt.Sprintf("ICMP BPF program: %v", err))
	}
	return raw
}
