// Package quickgzip compresses a small buffer into one gzip member in a
// single call.
//
// A probe's answer is one to a few KiB of exposition text. General
// compressors are built for streams: at their fastest level they still
// count symbol frequencies and build Huffman tables for every block, and
// for an answer this size that fixed cost is most of their time. This
// package does the two cheap parts of deflate only: LZ77 matching with one
// hash probe per position, and the fixed Huffman codes of RFC 1951 section
// 3.2.6, so that nothing is built per call. The output is larger than a
// dynamic-Huffman stream of the same text (docs/performance.md has the
// figures), and it is an ordinary gzip member that any decoder reads.
package quickgzip

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"math/bits"
)

const (
	// hashBits sizes the table of recent positions: 2 KiB, cleared for
	// each answer, which is simpler than telling earlier answers' entries
	// apart and costs less than a cache line per 16 positions. A larger
	// table makes answers barely smaller and is no faster.
	hashBits  = 9
	minMatch  = 4   // the hash covers four bytes
	maxMatch  = 258 // RFC 1951's longest match
	maxOffset = 1 << 15
)

// Encoder holds the table of recent positions, so that it is not
// allocated for every answer. The zero Encoder is ready to use; it is not
// safe for concurrent use.
type Encoder struct {
	// table maps a hash of four bytes to the last position, plus one,
	// where they were seen; 0 is none.
	table [1 << hashBits]uint32
}

// header is a gzip member header: deflate, no name or time, the fastest
// algorithm (XFL 4), unknown operating system.
var header = [10]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff}

// Append appends src, compressed into one gzip member, to dst.
func (e *Encoder) Append(dst, src []byte) []byte {
	clear(e.table[:])
	w := bitWriter{out: append(dst, header[:]...)}
	w.put(1|1<<1, 3) // BFINAL, and BTYPE 01: fixed Huffman codes
	e.deflate(&w, src)
	w.putCode(litLen[endOfBlock])
	w.flush()
	w.out = binary.LittleEndian.AppendUint32(w.out, crc32.ChecksumIEEE(src))
	return binary.LittleEndian.AppendUint32(w.out, uint32(len(src)))
}

// deflate writes src as literals and back-references: at each position the
// last position with the same four-byte hash is tried, and a match is taken
// greedily. Positions past 4 GiB are not remembered.
func (e *Encoder) deflate(w *bitWriter, src []byte) {
	lit := 0 // the first byte not yet written
	for i := 0; i+minMatch <= len(src); {
		cur := binary.LittleEndian.Uint32(src[i:])
		h := hash(cur)
		cand := int(e.table[h]) - 1
		e.remember(h, i)
		if cand < 0 || i-cand > maxOffset || binary.LittleEndian.Uint32(src[cand:]) != cur {
			i++
			continue
		}
		for ; lit < i; lit++ {
			w.putCode(litLen[src[lit]])
		}
		n := minMatch + matchLen(src[cand+minMatch:], src[i+minMatch:min(len(src), i+maxMatch)])
		w.putMatch(n, i-cand)
		i += n
		lit = i
		// Remember a position near the match's end, so that text right
		// after it can refer back to it.
		if i+minMatch-2 <= len(src) {
			e.remember(hash(binary.LittleEndian.Uint32(src[i-2:])), i-2)
		}
	}
	for ; lit < len(src); lit++ {
		w.putCode(litLen[src[lit]])
	}
}

func (e *Encoder) remember(h uint32, pos int) {
	// Compared as uint64: math.MaxUint32 overflows a 32-bit int, and sonde
	// is released for linux/armv7.
	if uint64(pos) < math.MaxUint32 {
		e.table[h] = uint32(pos) + 1
	}
}

func hash(u uint32) uint32 { return (u * 2654435761) >> (32 - hashBits) }

// matchLen returns how many leading bytes b shares with a; a may be longer.
func matchLen(a, b []byte) int {
	n := 0
	for len(b) >= 8 {
		if x := binary.LittleEndian.Uint64(a) ^ binary.LittleEndian.Uint64(b); x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
		n += 8
		a, b = a[8:], b[8:]
	}
	for i := range b {
		if a[i] != b[i] {
			break
		}
		n++
	}
	return n
}

// code is a Huffman code already bit-reversed for deflate's LSB-first
// stream, with its length in bits.
type code struct {
	bits uint16
	len  uint8
}

const endOfBlock = 256

var (
	// litLen holds the fixed codes of the literal/length alphabet.
	litLen [288]code
	// lengthSym maps a match length (3 to 258) to its symbol's index in
	// lengthBase: the code is litLen[257+index].
	lengthSym [maxMatch + 1]uint8
)

// RFC 1951 section 3.2.5: the base value and extra bits of each length
// symbol (257 to 285) and each distance symbol (0 to 29).
var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	offsetBase  = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	offsetExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

func init() {
	// RFC 1951 section 3.2.6: the fixed code lengths, and the first code
	// of each range.
	for sym := range litLen {
		switch {
		case sym < 144:
			litLen[sym] = reversed(0x30+sym, 8)
		case sym < 256:
			litLen[sym] = reversed(0x190+sym-144, 9)
		case sym < 280:
			litLen[sym] = reversed(sym-256, 7)
		default:
			litLen[sym] = reversed(0xc0+sym-280, 8)
		}
	}
	for s := len(lengthBase) - 1; s >= 0; s-- {
		for n := int(lengthBase[s]); n < int(lengthBase[s])+1<<lengthExtra[s] && n <= maxMatch; n++ {
			if lengthSym[n] == 0 {
				lengthSym[n] = uint8(s)
			}
		}
	}
}

func reversed(v, n int) code {
	return code{bits: bits.Reverse16(uint16(v)) >> (16 - n), len: uint8(n)}
}

// offsetSym returns the distance symbol for an offset of 1 to 32768: two
// symbols per power of two, told apart by the bit below the top one.
func offsetSym(d int) int {
	if d <= 4 {
		return d - 1
	}
	top := bits.Len32(uint32(d-1)) - 1
	return 2*top + int((d-1)>>(top-1)&1)
}

// bitWriter packs codes LSB-first, as deflate wants, and appends whole
// 32-bit words to out.
type bitWriter struct {
	out   []byte
	acc   uint64
	nbits uint
}

// put adds the low n bits of v; n is at most 32.
func (w *bitWriter) put(v uint64, n uint) {
	w.acc |= v << w.nbits
	w.nbits += n
	if w.nbits >= 32 {
		w.out = binary.LittleEndian.AppendUint32(w.out, uint32(w.acc))
		w.acc >>= 32
		w.nbits -= 32
	}
}

func (w *bitWriter) putCode(c code) { w.put(uint64(c.bits), uint(c.len)) }

// putMatch writes a length and an offset with their extra bits, at most
// 8+5+5+13 = 31 bits, in one put.
func (w *bitWriter) putMatch(length, offset int) {
	ls := lengthSym[length]
	c := litLen[257+int(ls)]
	v, n := uint64(c.bits), uint(c.len)
	v |= uint64(length-int(lengthBase[ls])) << n
	n += uint(lengthExtra[ls])
	os := offsetSym(offset)
	v |= uint64(bits.Reverse8(uint8(os))>>3) << n // 5-bit fixed code
	n += 5
	v |= uint64(offset-int(offsetBase[os])) << n
	n += uint(offsetExtra[os])
	w.put(v, n)
}

// flush writes the bits left, padding the last byte with zeros.
func (w *bitWriter) flush() {
	for ; w.nbits > 0; w.acc >>= 8 {
		w.out = append(w.out, byte(w.acc))
		w.nbits -= min(w.nbits, 8)
	}
}
