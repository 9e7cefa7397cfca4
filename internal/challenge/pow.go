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
// Expected work is 2^D hashes. The Web Worker in assets/worker.js (pure
// JavaScript SHA-256, one block per try) runs about 1.5–3 million tries a
// second per core on a 2020s laptop and about 0.3–1 million on a low-end
// phone; the page uses up to 4 workers. Expected solve times on one core:
//
//	D = 12:  4,096 tries   — instant (< 10 ms)
//	D = 16:  65,536 tries  — ~0.03 s laptop, ~0.2 s phone
//	D = 18:  262,144 tries — ~0.1 s laptop, ~0.5–1 s phone
//	D = 20:  1 M tries     — ~0.5 s laptop, ~1–3 s phone
//	D = 22:  4 M tries     — ~2 s laptop, ~5–15 s phone
//
// The count of tries is geometric, so one visitor in 20 needs three times
// the mean. MaxDifficulty caps D so that a slow phone is never asked for
// more than about a minute.
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
