package stats

import (
	"encoding/binary"
	"net/netip"
)

// addrKey is a compact, pointer-free map key for an address (bits = -1) or
// a prefix (bits ≥ 0, in the address family's own length). IPv4 is held in
// its IPv4-mapped IPv6 form; hashing 17 plain bytes is cheaper than hashing
// a netip.Addr with its zone handle.
type addrKey struct {
	hi, lo uint64
	bits   int16
}

const v4Marker = 0xffff << 32

func halves(a netip.Addr) (hi, lo uint64) {
	b := a.Unmap().As16()
	if a.Is4() || a.Is4In6() {
		return 0, v4Marker | uint64(binary.BigEndian.Uint32(b[12:]))
	}
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

func keyOfAddr(a netip.Addr) addrKey {
	hi, lo := halves(a)
	return addrKey{hi: hi, lo: lo, bits: -1}
}

func (k addrKey) is4() bool { return k.hi == 0 && k.lo>>32 == 0xffff }

func (k addrKey) addr() netip.Addr {
	if k.is4() {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(k.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	return netip.AddrFrom16(b)
}

func (k addrKey) prefix() netip.Prefix {
	return netip.PrefixFrom(k.addr(), int(k.bits))
}

// keyOfDefaultPrefix returns the key of DefaultPrefix(a) from a's halves.
func keyOfDefaultPrefix(hi, lo uint64) addrKey {
	if hi == 0 && lo>>32 == 0xffff {
		return addrKey{hi: 0, lo: lo &^ 0xff, bits: 24}
	}
	return addrKey{hi: hi, lo: 0, bits: 64}
}

// keyOfPrefix returns the key of a masked prefix.
func keyOfPrefix(p netip.Prefix) addrKey {
	p = p.Masked()
	hi, lo := halves(p.Addr())
	return addrKey{hi: hi, lo: lo, bits: int16(p.Bits())}
}

func topAddrs(t *TopK[addrKey], n int) []Counted[netip.Addr] {
	var out []Counted[netip.Addr]
	for _, e := range t.Top(nil, n) {
		out = append(out, Counted[netip.Addr]{Key: e.Key.addr(), Count: e.Count, Err: e.Err})
	}
	return out
}

func topPrefixes(t *TopK[addrKey], n int) []Counted[netip.Prefix] {
	var out []Counted[netip.Prefix]
	for _, e := range t.Top(nil, n) {
		out = append(out, Counted[netip.Prefix]{Key: e.Key.prefix(), Count: e.Count, Err: e.Err})
	}
	return out
}
