package challenge

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/bits"
)

// Proof of work (hashcash, Back 2002): given a seed S (32 lowercase hex
// characters, the challenge id) and a difficulty D, find a nonce N — a
// decimal integer 0 ≤ N < 2^53 written without sign or leading zeros — such
// that SHA-256(S ‖ N) begins with at least D zero bits. The input is at most
// 48 bytes, a single SHA-256 block, so verifying costs one compression.
//
// Expected work is 2^D tries. The Web Worker in assets/worker.js (pure
// JavaScript SHA-256, one block per try, first 8 rounds precomputed) ran
// ~0.45 M tries/s under Node.js on a shared VM core it got about a quarter
// of, i.e. roughly 1.5–2 M tries/s per free laptop core; low-end phones
// are typically 3–5 times slower. The page runs up to 4 workers (one fewer
// than the cores). Expected times on ONE core, laptop / low-end phone:
//
//	D = 12:  4,096 tries   — instant
//	D = 16:  65,536 tries  — ~0.04 s / ~0.2 s   (default)
//	D = 18:  262,144 tries — ~0.15 s / ~0.7 s
//	D = 20:  1 M tries     — ~0.6 s / ~3 s
//	D = 22:  4 M tries     — ~2.5 s / ~10 s
//	D = 24:  16 M tries    — ~10 s / ~40 s      (MaxDifficulty)
//
// The count of tries is geometric: one visitor in 20 needs three times the
// mean. Suggested range under load: 12 (peace time) to 20 (heavy flood).
const (
	// MinDifficulty and MaxDifficulty bound the difficulty in leading zero
	// bits; SetDifficulty clamps to them.
	MinDifficulty = 8
	MaxDifficulty = 24
	// DefaultDifficulty is the initial difficulty (bits).
	DefaultDifficulty = 16
	// maxNonce is 2^53, JavaScript's largest exactly represented integer.
	maxNonce = 1 << 53
)

// seedHex writes the hex seed of challenge id into dst.
func seedHex(id *[16]byte, dst *[32]byte) { hex.Encode(dst[:], id[:]) }

// checkWork reports whether nonce (decimal text) solves the challenge with
// id at difficulty bits. It allocates nothing.
func checkWork(id *[16]byte, nonce string, difficulty int) bool {
	if len(nonce) == 0 || len(nonce) > 16 || (len(nonce) > 1 && nonce[0] == '0') {
		return false
	}
	var n uint64
	for i := 0; i < len(nonce); i++ {
		c := nonce[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + uint64(c-'0')
	}
	if n >= maxNonce {
		return false
	}
	var buf [48]byte
	var seed [32]byte
	seedHex(id, &seed)
	copy(buf[:], seed[:])
	m := 32 + copy(buf[32:], nonce)
	sum := sha256.Sum256(buf[:m])
	return leadingZeroBits(&sum) >= difficulty
}

// leadingZeroBits counts the leading zero bits of sum, up to 64.
func leadingZeroBits(sum *[sha256.Size]byte) int {
	return bits.LeadingZeros64(binary.BigEndian.Uint64(sum[:8]))
}
