package challenge

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Token layout (all integers big-endian), base64url without padding
// (RFC 4648 §5) on the wire:
//
//	0      version (tokenVersion)
//	1      kind (kindChallenge, kindClearance, kindStanding)
//	2..5   key id
//	6..9   expiry, Unix seconds (uint32: valid until 2106)
//	10..   kind-specific body
//	last 16 bytes: HMAC-SHA-256 tag, truncated (RFC 2104 §5)
//
// The tag covers the bytes before it, then (never sent) an 8-byte hash of
// the site id — so a token from one site is worthless on another sharing
// the keyring — and, for challenge and clearance tokens, the client binding:
// the aggregate prefix (16 address bytes + 1 length byte) and an 8-byte
// xxHash64 of the User-Agent.
const (
	tokenVersion  = 1
	kindChallenge = 1
	kindClearance = 2
	kindStanding  = 3

	headerSize = 10
	tagSize    = 16

	// challenge body: id[16] bits[1] flags[1] issued-unix-ms[8]
	challengeSize = headerSize + 16 + 1 + 1 + 8 + tagSize
	// clearance body: method[1] bits[1]
	clearanceSize = headerSize + 2 + tagSize
	// standing body: len[1] member[len]
	standingMin = headerSize + 1 + 1 + tagSize

	// MaxMemberIDBytes is the longest member id a standing token carries.
	MaxMemberIDBytes = 128

	maxTokenBytes = headerSize + 1 + MaxMemberIDBytes + tagSize
	maxTokenChars = (maxTokenBytes*8 + 5) / 6
)

// binding is what a token's tag covers beyond its own bytes.
type binding struct {
	site   uint64 // xxHash64 of the site id
	prefix netip.Prefix
	ua     uint64 // xxHash64 of the User-Agent
	bound  bool   // prefix and ua are covered
}

// clientBinding binds to prefix (masked) and the User-Agent ua.
func (s *Service) clientBinding(prefix netip.Prefix, ua string) binding {
	return binding{site: s.siteHash, prefix: prefix.Masked(), ua: xxhash.Sum64String(ua), bound: true}
}

// putHeader writes the common header into b.
func putHeader(b []byte, kind byte, kid uint32, exp time.Time) {
	b[0] = tokenVersion
	b[1] = kind
	binary.BigEndian.PutUint32(b[2:6], kid)
	binary.BigEndian.PutUint32(b[6:10], uint32(clampUnix(exp)))
}

func clampUnix(t time.Time) int64 {
	u := t.Unix()
	if u < 0 {
		return 0
	}
	if u > 1<<32-1 {
		return 1<<32 - 1
	}
	return u
}

// tag computes the truncated HMAC of body and bind under k into out. It
// allocates nothing.
func (k *key) tag(body []byte, bind binding, out []byte) {
	st := k.pool.Get().(*macState)
	n := copy(st.buf[:], body)
	binary.BigEndian.PutUint64(st.buf[n:], bind.site)
	n += 8
	if bind.bound {
		a := bind.prefix.Addr().As16()
		n += copy(st.buf[n:], a[:])
		st.buf[n] = byte(bind.prefix.Bits())
		if !bind.prefix.IsValid() {
			st.buf[n] = 0xff
		}
		n++
		binary.BigEndian.PutUint64(st.buf[n:], bind.ua)
		n += 8
	}
	st.h.Reset()
	st.h.Write(st.buf[:n])
	sum := st.h.Sum(st.sum[:0])
	copy(out, sum[:tagSize])
	k.pool.Put(st)
}

// seal signs b (a token of the right size whose header names k, with room
// for the tag at the end) and returns its wire form.
func (k *key) seal(b []byte, bind binding) string {
	k.tag(b[:len(b)-tagSize], bind, b[len(b)-tagSize:])
	return base64.RawURLEncoding.EncodeToString(b)
}

// open decodes s into buf and checks version, kind, expiry at now (with
// grace added), key and tag. It returns the decoded token (header, body and
// tag) or ok == false. It allocates nothing.
func (kr *Keyring) open(s string, kind byte, bind binding, now time.Time, grace time.Duration, buf *[maxTokenBytes]byte) (tok []byte, ok bool) {
	n, ok := decodeB64(s, buf[:])
	if !ok || n < headerSize+tagSize || buf[0] != tokenVersion || buf[1] != kind {
		return nil, false
	}
	tok = buf[:n]
	exp := int64(binary.BigEndian.Uint32(tok[6:10]))
	if now.Add(-grace).Unix() >= exp {
		return nil, false
	}
	k := kr.find(binary.BigEndian.Uint32(tok[2:6]))
	if k == nil {
		return nil, false
	}
	var want [tagSize]byte
	k.tag(tok[:n-tagSize], bind, want[:])
	if subtle.ConstantTimeCompare(want[:], tok[n-tagSize:]) != 1 {
		return nil, false
	}
	return tok, true
}

// tokenExpiry returns the expiry a decoded token carries.
func tokenExpiry(tok []byte) time.Time {
	return time.Unix(int64(binary.BigEndian.Uint32(tok[6:10])), 0)
}

// b64index maps a base64url character to its 6-bit value, 0xff if none.
var b64index = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// decodeB64 decodes unpadded base64url from s into dst, rejecting any
// non-canonical input (stray characters, padding, non-zero trailing bits,
// a length of 1 mod 4), so that every token has exactly one encoding. It
// reports the decoded length; it allocates nothing.
func decodeB64(s string, dst []byte) (int, bool) {
	if len(s) > maxTokenChars || len(s)%4 == 1 {
		return 0, false
	}
	n := len(s) * 6 / 8
	if n > len(dst) {
		return 0, false
	}
	var acc uint32
	var nbits uint
	j := 0
	for i := 0; i < len(s); i++ {
		v := b64index[s[i]]
		if v == 0xff {
			return 0, false
		}
		acc = acc<<6 | uint32(v)
		nbits += 6
		if nbits >= 8 {
			nbits -= 8
			dst[j] = byte(acc >> nbits)
			j++
			acc &= 1<<nbits - 1
		}
	}
	if acc != 0 { // leftover bits must be zero (canonical)
		return 0, false
	}
	return j, true
}
