// Package netset holds immutable sets of IP prefixes (allow lists, deny lists,
// trusted proxies) and reads the list files they come from.
//
// A [Set] is a longest-prefix-match table (BART, "Balanced Routing Tables",
// github.com/gaissmai/bart) that is built once and then only read, so it can
// be shared between goroutines without locks. [ParseList] reads FireHOL
// netsets, Spamhaus DROP/EDROP text and Spamhaus DROP JSON lines; a [Watcher]
// keeps a Set built from list files current as the files change.
//
// Addresses and prefixes are normalised on the way in: IPv4-mapped IPv6
// (::ffff:a.b.c.d) is treated as the IPv4 address, zones are dropped and
// host bits are masked, so "::ffff:192.0.2.1" matches an entry "192.0.2.0/24".
package netset

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/gaissmai/bart"
)

// ErrInvalidPrefix is wrapped by every error [ParsePrefix] returns.
var ErrInvalidPrefix = errors.New("invalid prefix")

// Set is an immutable set of IP prefixes with longest-prefix-match lookup.
// The zero value and a nil *Set are empty sets. A Set is safe for concurrent
// use by any number of readers.
type Set struct {
	table *bart.Lite
	n     int
}

// New returns a Set holding prefixes after normalisation by [NormalizePrefix]
// (masked, IPv4-mapped prefixes turned into IPv4 ones). Invalid prefixes are
// skipped; duplicates are stored once. Overlapping prefixes are all kept, and
// [Set.Lookup] reports the longest one that matches.
func New(prefixes ...netip.Prefix) *Set {
	t := new(bart.Lite)
	for _, p := range prefixes {
		if np, ok := NormalizePrefix(p); ok {
			t.Insert(np)
		}
	}
	return &Set{table: t, n: t.Size()}
}

// Contains reports whether a (IPv4, IPv6 or IPv4-mapped IPv6; any zone is
// ignored) lies inside any prefix of s. An invalid address is never contained.
func (s *Set) Contains(a netip.Addr) bool {
	if s == nil || s.table == nil {
		return false
	}
	return s.table.Contains(a.Unmap())
}

// Lookup returns the longest prefix of s that contains a, and whether there is
// one. Lookup is slower than [Set.Contains]; use it when the matching entry
// is needed (logs, attribution).
func (s *Set) Lookup(a netip.Addr) (netip.Prefix, bool) {
	if s == nil || s.table == nil || !a.IsValid() {
		return netip.Prefix{}, false
	}
	a = a.Unmap().WithZone("")
	return s.table.LookupPrefixLPM(netip.PrefixFrom(a, a.BitLen()))
}

// Len returns the number of distinct prefixes in s (IPv4 and IPv6 together).
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// Prefixes returns a new slice with the prefixes of s, IPv4 before IPv6, each
// family in ascending address order and, for equal addresses, shorter prefix
// first.
func (s *Set) Prefixes() []netip.Prefix {
	if s == nil || s.table == nil {
		return nil
	}
	out := make([]netip.Prefix, 0, s.n)
	for p := range s.table.AllSorted() {
		out = append(out, p)
	}
	return out
}

// NormalizePrefix returns p with host bits cleared and, when p is an
// IPv4-mapped IPv6 prefix of length 96 or more (::ffff:0:0/96), the equivalent
// IPv4 prefix. It reports false for an invalid prefix and for a mapped prefix
// shorter than /96, which covers more than the IPv4-mapped space and so has no
// IPv4 equivalent.
func NormalizePrefix(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return netip.Prefix{}, false
	}
	a := p.Addr()
	if a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, false
		}
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked(), true
	}
	return p.Masked(), true
}

// ParsePrefix parses one list entry: an address ("192.0.2.1", "2001:db8::1",
// taken as a single-host /32 or /128) or a CIDR prefix ("192.0.2.0/24",
// "2001:db8::/32"). Surrounding spaces and tabs are trimmed, host bits are
// masked, zones are dropped and IPv4-mapped forms become IPv4 (see
// [NormalizePrefix]). Errors wrap [ErrInvalidPrefix].
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.Trim(s, " \t")
	var p netip.Prefix
	if strings.IndexByte(s, '/') >= 0 {
		var err error
		p, err = netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("netset: %w %q: %w", ErrInvalidPrefix, s, err)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("netset: %w %q: %w", ErrInvalidPrefix, s, err)
		}
		a = a.WithZone("")
		p = netip.PrefixFrom(a, a.BitLen())
	}
	np, ok := NormalizePrefix(p)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("netset: %w %q: IPv4-mapped prefix shorter than /96", ErrInvalidPrefix, s)
	}
	return np, nil
}

// Equal reports whether s and o hold the same prefixes.
func (s *Set) Equal(o *Set) bool {
	return slices.Equal(s.Prefixes(), o.Prefixes())
}
