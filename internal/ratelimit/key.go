package ratelimit

import (
	"fmt"
	"net/netip"
)

// Key kinds, stored in the high byte of Key.tag. Zero is reserved for the
// invalid (zero) Key so an empty key can never name a bucket (HANDED F01).
const (
	kindAddr4 uint16 = iota + 1
	kindAddr6
	kindPrefix4
	kindPrefix6
)

// Key names one limiter bucket: a single client address or an aggregate
// prefix. It is a 24-byte comparable value (two uint64 halves of the address
// plus a tag holding kind and prefix length), so it can be built, hashed and
// compared without allocating.
//
// Addresses and prefixes live in distinct keyspaces, as do IPv4 and IPv6:
// KeyFromAddr(192.0.2.1), KeyFromPrefix(192.0.2.1/32) and
// KeyFromAddr(::c000:201) are three different keys, and prefixes of different
// lengths never collide.
//
// The zero Key is invalid (IsValid reports false). Limiters refuse it rather
// than letting every invalid caller share one bucket.
type Key struct {
	hi, lo uint64
	tag    uint16 // kind<<8 | prefix bits
}

// KeyFromAddr returns the key of a single client address. IPv4-mapped IPv6
// addresses (::ffff:a.b.c.d) are unmapped first so a dual-stack listener does
// not split one IPv4 client into two buckets, and an IPv6 zone is dropped
// (fe80::1%eth0 and fe80::1%eth1 share a key). An invalid addr gives the
// invalid zero Key.
func KeyFromAddr(a netip.Addr) Key {
	if !a.IsValid() {
		return Key{}
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return Key{lo: uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3]), tag: kindAddr4<<8 | 32}
	}
	hi, lo := halves(a.As16())
	return Key{hi: hi, lo: lo, tag: kindAddr6<<8 | 128}
}

// KeyFromPrefix returns the key of an aggregate prefix such as a client's /24
// or /64 (HANDED F06). The prefix is masked first, so 2001:db8::1/64 and
// 2001:db8::2/64 give the same key; an IPv4-mapped prefix of at least 96 bits
// is converted to the IPv4 prefix it covers. An invalid prefix gives the
// invalid zero Key. The result never equals any KeyFromAddr result, not even
// for a /32 or /128.
func KeyFromPrefix(p netip.Prefix) Key {
	if !p.IsValid() {
		return Key{}
	}
	a, bits := p.Addr(), p.Bits()
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	p, err := a.Prefix(bits) // masks host bits
	if err != nil {
		return Key{}
	}
	a = p.Addr()
	if a.Is4() {
		b := a.As4()
		return Key{lo: uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3]), tag: kindPrefix4<<8 | uint16(bits)}
	}
	hi, lo := halves(a.As16())
	return Key{hi: hi, lo: lo, tag: kindPrefix6<<8 | uint16(bits)}
}

func halves(b [16]byte) (hi, lo uint64) {
	for i := range 8 {
		hi = hi<<8 | uint64(b[i])
		lo = lo<<8 | uint64(b[8+i])
	}
	return hi, lo
}

// IsValid reports whether k was built from a valid address or prefix.
func (k Key) IsValid() bool { return k.tag != 0 }

// IsPrefix reports whether k names an aggregate prefix (from KeyFromPrefix)
// rather than a single address.
func (k Key) IsPrefix() bool {
	kind := k.tag >> 8
	return kind == kindPrefix4 || kind == kindPrefix6
}

// Prefix returns the address range k covers: the masked prefix for a prefix
// key, a /32 or /128 for an address key, and the invalid Prefix for the zero
// Key. It is meant for logs and decision records.
func (k Key) Prefix() netip.Prefix {
	bits := int(k.tag & 0xff)
	switch k.tag >> 8 {
	case kindAddr4, kindPrefix4:
		v := uint32(k.lo)
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), bits)
	case kindAddr6, kindPrefix6:
		var b [16]byte
		for i := range 8 {
			b[i] = byte(k.hi >> (56 - 8*i))
			b[8+i] = byte(k.lo >> (56 - 8*i))
		}
		return netip.PrefixFrom(netip.AddrFrom16(b), bits)
	}
	return netip.Prefix{}
}

// String formats k for logs: "addr 192.0.2.1", "prefix 2001:db8::/64" or
// "invalid". It allocates; keep it off the hot path.
func (k Key) String() string {
	switch {
	case !k.IsValid():
		return "invalid"
	case k.IsPrefix():
		return fmt.Sprintf("prefix %s", k.Prefix())
	default:
		return fmt.Sprintf("addr %s", k.Prefix().Addr())
	}
}
