package challenge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"html"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Interstitial is what a browser reads from the challenge page
// (assets/page.html): the signed challenge token, the page to return to,
// the proof-of-work seed and difficulty, and where to post the answer.
// Test clients and the attack lab's visitors use it to do what the page's
// script does.
type Interstitial struct {
	Token, Target, Seed, Action string
	// Bits is the difficulty: leading zero bits of the hash.
	Bits int
}

var (
	rePageInput  = regexp.MustCompile(`<input type="hidden" name="([a-z])" value="([^"]*)">`)
	rePageSeed   = regexp.MustCompile(`data-seed="([0-9a-f]{32})"`)
	rePageBits   = regexp.MustCompile(`data-difficulty="(\d+)"`)
	rePageAction = regexp.MustCompile(`<form id="pc-form" method="post" action="([^"]+)"`)
)

// ParseInterstitial reads a challenge page; ok is false when body is not
// one (or lacks the token, seed or a same-site answer path).
func ParseInterstitial(body []byte) (p Interstitial, ok bool) {
	if !bytes.Contains(body, []byte(`id="pc-form"`)) {
		return p, false
	}
	for _, m := range rePageInput.FindAllSubmatch(body, -1) {
		switch string(m[1]) {
		case "t":
			p.Token = html.UnescapeString(string(m[2]))
		case "r":
			p.Target = html.UnescapeString(string(m[2]))
		}
	}
	if m := rePageSeed.FindSubmatch(body); m != nil {
		p.Seed = string(m[1])
	}
	if m := rePageBits.FindSubmatch(body); m != nil {
		p.Bits, _ = strconv.Atoi(string(m[1]))
	}
	if m := rePageAction.FindSubmatch(body); m != nil {
		p.Action = html.UnescapeString(string(m[1]))
	}
	return p, p.Token != "" && p.Seed != "" && strings.HasPrefix(p.Action, "/")
}

// Answer is the form the page's script posts to Action with nonce.
func (p Interstitial) Answer(nonce string) url.Values {
	return url.Values{"t": {p.Token}, "r": {p.Target}, "n": {nonce}}
}

// maxSolveTries bounds Solve (2^26: four times the mean work at 24 bits).
const maxSolveTries = 1 << 26

// Solve returns the smallest nonce n, in decimal, such that
// SHA-256(seed ‖ decimal(n)) begins with at least bits zero bits: the
// hashcash proof of work (A. Back, "Hashcash — a denial of service
// counter-measure", 2002) that checkWork verifies and worker.js computes in
// a visitor's browser. ok is false when ctx ends or 2^26 tries pass.
func Solve(ctx context.Context, seed string, bits int) (nonce string, ok bool) {
	buf := make([]byte, 0, len(seed)+20)
	buf = append(buf, seed...)
	for n := uint64(0); n < maxSolveTries; n++ {
		if n&0xffff == 0xffff && ctx.Err() != nil {
			return "", false
		}
		b := strconv.AppendUint(buf[:len(seed)], n, 10)
		sum := sha256.Sum256(b)
		if leadingZeroBits(&sum) >= bits {
			return string(b[len(seed):]), true
		}
	}
	return "", false
}
