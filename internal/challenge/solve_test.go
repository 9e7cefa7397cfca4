package challenge

import (
	"context"
	"crypto/sha256"
	"strings"
	"testing"
)

// The client side of the challenge: what the page's script does, for test
// clients and the attack lab.
func TestSolve(t *testing.T) {
	tests := []struct {
		name string
		seed string
		bits int
	}{
		{"easy", "00112233445566778899aabbccddeeff", 8},
		{"default difficulty", "0123456789abcdef0123456789abcdef", 14},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, ok := Solve(context.Background(), tc.seed, tc.bits)
			if !ok {
				t.Fatal("no solution")
			}
			sum := sha256.Sum256([]byte(tc.seed + n))
			if leadingZeroBits(&sum) < tc.bits {
				t.Errorf("nonce %s gives %d zero bits, want ≥ %d", n, leadingZeroBits(&sum), tc.bits)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := Solve(ctx, "0123456789abcdef0123456789abcdef", 64); ok {
		t.Error("solved an impossible difficulty after cancellation")
	}
}

func TestParseInterstitial(t *testing.T) {
	tests := []struct {
		name, body string
		ok         bool
	}{
		{"not a challenge", "<html>busy</html>", false},
		{"challenge", `<form id="pc-form" method="post" action="/.portcullis/verify" data-seed="0123456789abcdef0123456789abcdef" data-difficulty="16">
<input type="hidden" name="t" value="tok&amp;en"><input type="hidden" name="r" value="/x">`, true},
		{"off-site action", `<form id="pc-form" method="post" action="https://evil/" data-seed="0123456789abcdef0123456789abcdef" data-difficulty="16">
<input type="hidden" name="t" value="t">`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := ParseInterstitial([]byte(tc.body))
			if ok != tc.ok {
				t.Fatalf("ok=%v, want %v (%+v)", ok, tc.ok, p)
			}
			if ok && (p.Token != "tok&en" || p.Bits != 16 || p.Target != "/x" || !strings.HasPrefix(p.Action, "/.portcullis/")) {
				t.Errorf("parsed %+v", p)
			}
		})
	}
}
