package stats

import (
	"fmt"
	"math"
	"math/bits"
)

// HLL is a HyperLogLog distinct-count sketch (Flajolet, Fusy, Gandouet and
// Meunier, "HyperLogLog: the analysis of a near-optimal cardinality
// estimation algorithm", AofA 2007) over 64-bit hashes, with the
// linear-counting correction for small cardinalities from the same paper.
//
// A sketch of precision p has m = 2^p one-byte registers (p=14: 16 KiB,
// standard error 1.04/sqrt(m) ≈ 0.8%). Memory is fixed by p, never by how
// many items are added. The zero value is unusable; use NewHLL. An HLL is
// not safe for concurrent use.
type HLL struct {
	p   uint8
	reg []uint8
}

// Minimum and maximum HLL precision accepted by NewHLL.
const (
	MinHLLPrecision = 4
	MaxHLLPrecision = 18
)

// NewHLL returns an empty sketch with 2^p registers. It panics if p is
// outside [MinHLLPrecision, MaxHLLPrecision]; configurations are validated
// before they get here.
func NewHLL(p uint8) *HLL {
	if p < MinHLLPrecision || p > MaxHLLPrecision {
		panic(fmt.Sprintf("stats: HLL precision %d out of range", p))
	}
	return &HLL{p: p, reg: make([]uint8, 1<<p)}
}

// Precision returns p (the sketch has 2^p registers).
func (h *HLL) Precision() uint8 { return h.p }

// AddHash adds one item given its 64-bit hash. The hash must be well mixed
// (all bits equally likely); use HashAddr or xxhash.
func (h *HLL) AddHash(x uint64) {
	idx := x >> (64 - h.p)
	// Rank of the first 1 bit in the remaining 64-p bits, 1-based; the
	// sentinel bit bounds it at 64-p+1.
	w := x<<h.p | 1<<(h.p-1)
	r := uint8(bits.LeadingZeros64(w)) + 1
	if r > h.reg[idx] {
		h.reg[idx] = r
	}
}

// Reset empties the sketch without freeing its registers.
func (h *HLL) Reset() { clear(h.reg) }

// Merge folds o into h (register-wise maximum), so h estimates the size of
// the union. It returns an error if the precisions differ.
func (h *HLL) Merge(o *HLL) error {
	if o == nil {
		return nil
	}
	if o.p != h.p {
		return fmt.Errorf("stats: merge HLL of precision %d into %d", o.p, h.p)
	}
	for i, v := range o.reg {
		if v > h.reg[i] {
			h.reg[i] = v
		}
	}
	return nil
}

// Clone returns an independent copy of h.
func (h *HLL) Clone() *HLL {
	c := &HLL{p: h.p, reg: make([]uint8, len(h.reg))}
	copy(c.reg, h.reg)
	return c
}

// CopyFrom makes h an exact copy of o, reusing h's registers when the
// precisions match.
func (h *HLL) CopyFrom(o *HLL) {
	if len(h.reg) != len(o.reg) {
		h.reg = make([]uint8, len(o.reg))
	}
	h.p = o.p
	copy(h.reg, o.reg)
}

// Estimate returns the estimated number of distinct items added.
func (h *HLL) Estimate() uint64 {
	m := float64(len(h.reg))
	// Histogram of register values first: one cheap pass over the bytes,
	// then 65 floating-point terms.
	var hist [65]uint32
	for _, v := range h.reg {
		hist[v&63]++
	}
	zeros := int(hist[0])
	if zeros == len(h.reg) {
		return 0
	}
	var sum float64
	for v, n := range hist {
		if n > 0 {
			sum += float64(n) * pow2neg[v]
		}
	}
	var alpha float64
	switch len(h.reg) {
	case 16:
		alpha = 0.673
	case 32:
		alpha = 0.697
	case 64:
		alpha = 0.709
	default:
		alpha = 0.7213 / (1 + 1.079/m)
	}
	e := alpha * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		// Linear counting (small-range correction, Flajolet et al. 2007 §4).
		e = m * math.Log(m/float64(zeros))
	}
	return uint64(e + 0.5)
}

// pow2neg[i] = 2^-i for register values 0..64.
var pow2neg = func() (t [65]float64) {
	for i := range t {
		t[i] = math.Ldexp(1, -i)
	}
	return t
}()

// mix64 is the SplitMix64 / MurmurHash3 finaliser: a bijection on uint64
// whose output bits each depend on all input bits.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// hash128 hashes a 16-byte value given as two halves.
func hash128(hi, lo uint64) uint64 {
	return mix64(hi*0x9e3779b97f4a7c15 ^ mix64(lo+0x632be59bd9b4e019))
}
