package ratelimit

import (
	"net/netip"
	"testing"
	"time"
)

const (
	ms  = int64(time.Millisecond)
	sec = int64(time.Second)
)

func mustLimiter(tb testing.TB, r Rate, o Options) *Limiter {
	tb.Helper()
	l, err := NewLimiter(r, o)
	if err != nil {
		tb.Fatalf("NewLimiter(%+v, %+v): %v", r, o, err)
	}
	return l
}

func addrKey(s string) Key { return KeyFromAddr(netip.MustParseAddr(s)) }

// v6Key returns the key of a distinct IPv6 /128 for each i.
func v6Key(i uint64) Key {
	var b [16]byte
	b[0], b[1] = 0x20, 0x01
	for j := range 8 {
		b[15-j] = byte(i >> (8 * j))
	}
	return KeyFromAddr(netip.AddrFrom16(b))
}

func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
