package challenge

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSingleUse: a solved challenge is redeemed once; a second redemption,
// by the same client or a copy of the answer, gets 409 and no cookie.
func TestSingleUse(t *testing.T) {
	sh := newShield(t, shieldConfig{})
	c := noFollow(sh.client("127.0.0.2", false))
	p := parsePage(t, c.do(t, http.MethodGet, "/", "", "Accept", browserAccept).body)
	nonce := solve(p.seed, p.bits)
	if r := c.submit(t, p, nonce); r.status != http.StatusSeeOther || !contains(setCookies(r.header), sh.svc.clearanceName) {
		t.Fatalf("first redemption: %d %v", r.status, setCookies(r.header))
	}
	// A copy of the answer from a fresh browser on the same network
	// (same prefix and UA, so the token's binding holds).
	copycat := noFollow(sh.client("127.0.0.3", false))
	copycat.do(t, http.MethodGet, "/", "", "Accept", browserAccept) // gets the test cookie
	tests := []struct {
		name string
		c    *client
	}{
		{name: "same client again", c: c},
		{name: "copied answer", c: copycat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.c.submit(t, p, nonce)
			if r.status != http.StatusConflict {
				t.Fatalf("status %d, want 409", r.status)
			}
			if len(r.header.Values("Set-Cookie")) != 0 {
				t.Errorf("replay sets cookies %v", r.header.Values("Set-Cookie"))
			}
		})
	}
}

// TestVerifyOutcomes covers the verify endpoint's answers to bad, foreign,
// expired and hostile submissions.
func TestVerifyOutcomes(t *testing.T) {
	tests := []struct {
		name         string
		opts         Options
		from         string // submitting address; "" = same as the challenged one
		ua           string
		mutate       func(p *page, nonce *string)
		advance      time.Duration
		wantStatus   int
		wantLocation string
		wantCookie   bool
	}{
		{name: "valid", wantStatus: 303, wantLocation: "/about?x=1", wantCookie: true},
		{name: "wrong nonce", mutate: func(p *page, n *string) { *n = wrongNonce(p.seed, p.bits) }, wantStatus: 403},
		{name: "nonce with leading zero", mutate: func(p *page, n *string) { *n = "0" + *n }, wantStatus: 403},
		{name: "nonce beyond 2^53", mutate: func(p *page, n *string) { *n = "9007199254740993" }, wantStatus: 403},
		{name: "forged token", mutate: func(p *page, n *string) { p.token = flipLast(p.token) }, wantStatus: 303, wantLocation: "/about?x=1"},
		{name: "expired challenge: fresh one at the target", advance: DefaultChallengeTTL, wantStatus: 303, wantLocation: "/about?x=1"},
		{name: "submitted from another /24", from: "127.0.5.2", wantStatus: 303, wantLocation: "/about?x=1"},
		{name: "submitted with another UA", ua: "curl/8.5.0", wantStatus: 303, wantLocation: "/about?x=1"},
		{name: "open redirect: scheme-relative", mutate: func(p *page, _ *string) { p.target = "//evil.example/" }, wantStatus: 303, wantLocation: "/", wantCookie: true},
		{name: "open redirect: absolute", mutate: func(p *page, _ *string) { p.target = "https://evil.example/" }, wantStatus: 303, wantLocation: "/", wantCookie: true},
		{name: "open redirect: backslash", mutate: func(p *page, _ *string) { p.target = `/\evil.example` }, wantStatus: 303, wantLocation: "/", wantCookie: true},
		{name: "open redirect: tab", mutate: func(p *page, _ *string) { p.target = "/\t/evil.example" }, wantStatus: 303, wantLocation: "/", wantCookie: true},
		{name: "redirect into the endpoints", mutate: func(p *page, _ *string) { p.target = PathPrefix + "verify" }, wantStatus: 303, wantLocation: "/", wantCookie: true},
		{name: "no-JS disabled", opts: Options{NoJSWait: -1}, mutate: func(_ *page, n *string) { *n = "" }, advance: time.Minute, wantStatus: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sh := newShield(t, shieldConfig{opts: tt.opts})
			c := noFollow(sh.client("127.0.0.2", false))
			p := parsePage(t, c.do(t, http.MethodGet, "/about?x=1", "", "Accept", browserAccept).body)
			if p.target != "/about?x=1" {
				t.Fatalf("page target %q", p.target)
			}
			nonce := solve(p.seed, p.bits)
			if tt.mutate != nil {
				tt.mutate(&p, &nonce)
			}
			sh.clk.Advance(tt.advance)
			sub := c
			if tt.from != "" {
				sub = noFollow(sh.client(tt.from, false))
				sub.Jar = c.Jar
			}
			ua := browserUA
			if tt.ua != "" {
				ua = tt.ua
			}
			r := sub.do(t, http.MethodPost, p.action, url.Values{"t": {p.token}, "r": {p.target}, "n": {nonce}}.Encode(), "User-Agent", ua, "Accept", browserAccept)
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d\n%s", r.status, tt.wantStatus, r.body)
			}
			if tt.wantLocation != "" && r.header.Get("Location") != tt.wantLocation {
				t.Errorf("Location %q, want %q", r.header.Get("Location"), tt.wantLocation)
			}
			if got := contains(setCookies(r.header), sh.svc.clearanceName); got != tt.wantCookie {
				t.Errorf("clearance set %v, want %v", got, tt.wantCookie)
			}
			if r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
			}
		})
	}
}

// wrongNonce returns a nonce that does not solve the challenge.
func wrongNonce(seed string, bits int) string {
	for n := 0; ; n++ {
		s := strconv.Itoa(n)
		sum := sha256.Sum256([]byte(seed + s))
		if leadingZeroBits(&sum) < bits {
			return s
		}
	}
}

// TestFormRefusedWhole: during under-attack mode a POST without clearance
// is refused whole — the origin never sees it — with a page saying the form
// was not sent; with clearance the same body arrives intact.
func TestFormRefusedWhole(t *testing.T) {
	sh := newShield(t, shieldConfig{})
	c := noFollow(sh.client("127.0.0.2", false))
	r := c.do(t, http.MethodPost, "/donate", donation, "Accept", browserAccept, "Referer", sh.srv.URL+"/donate?campaign=spring")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("POST without clearance: %d, want 503 with Retry-After", r.status)
	}
	if !strings.Contains(r.body, "Your form was not sent") {
		t.Errorf("page does not say the form was not sent:\n%s", r.body)
	}
	if sh.origin.Load() != 0 {
		t.Fatalf("%d requests reached the origin", sh.origin.Load())
	}
	p := parsePage(t, r.body)
	if p.target != "/donate?campaign=spring" {
		t.Errorf("return target %q, want the form's page", p.target)
	}
	if p.refresh != "" {
		t.Error("the refused-form page must not navigate away by itself")
	}
	if strings.Contains(r.body, `data-auto="true"`) {
		t.Error("the refused-form page submits the check by itself")
	}
	// Machine clients get a machine answer.
	if j := c.do(t, http.MethodPost, "/api/v1/echo", `{"a":1}`, "Accept", "application/json", "Content-Type", "application/json"); j.status != 503 || !strings.HasPrefix(j.header.Get("Content-Type"), "application/json") {
		t.Errorf("JSON POST: %d %q", j.status, j.header.Get("Content-Type"))
	}
	// Pass the check, then the same body goes through intact.
	if v := c.submit(t, p, solve(p.seed, p.bits)); v.status != http.StatusSeeOther || v.header.Get("Location") != "/donate?campaign=spring" {
		t.Fatalf("check: %d %q", v.status, v.header.Get("Location"))
	}
	ok := c.do(t, http.MethodPost, "/donate", donation, "Accept", browserAccept)
	sum := sha256.Sum256([]byte(donation))
	if ok.status != 200 || ok.header.Get("X-Demo-Body-Sha256") != hex.EncodeToString(sum[:]) {
		t.Fatalf("POST with clearance: %d body sha %q", ok.status, ok.header.Get("X-Demo-Body-Sha256"))
	}
	if sh.bodies.Load() != 1 {
		t.Errorf("%d bodies reached the origin, want 1", sh.bodies.Load())
	}
}

// TestStateBounded: the redeemed set never exceeds its bound, and an id it
// had to forget can never be redeemed again (it is refused as too old).
func TestStateBounded(t *testing.T) {
	clk := newClock()
	s := NewState(4, clk.Now())
	type red struct {
		id     byte
		issued time.Duration // after the state's creation
		want   redeemResult
	}
	steps := []red{
		{id: 1, issued: 1 * time.Second, want: redeemOK},
		{id: 1, issued: 1 * time.Second, want: redeemReplayed},
		{id: 2, issued: 2 * time.Second, want: redeemOK},
		{id: 3, issued: 11 * time.Second, want: redeemOK},
		{id: 4, issued: 12 * time.Second, want: redeemOK},
		{id: 5, issued: 21 * time.Second, want: redeemOK},    // full: forgets ids 1 and 2 (first bucket)
		{id: 1, issued: 1 * time.Second, want: redeemTooOld}, // forgotten, still not redeemable
		{id: 6, issued: 9 * time.Second, want: redeemTooOld}, // issued before the watermark
		{id: 7, issued: 22 * time.Second, want: redeemOK},
		{id: 9, issued: -time.Second, want: redeemTooOld}, // before the state existed (a restart)
	}
	start := clk.Now()
	for i, st := range steps {
		got := s.redeem([16]byte{st.id}, start.Add(st.issued).UnixMilli(), start.Add(time.Hour).Unix(), clk.Now())
		if got != st.want {
			t.Fatalf("step %d (id %d): %v, want %v", i, st.id, got, st.want)
		}
		if s.Redeemed() > 4 {
			t.Fatalf("step %d: %d ids held, bound 4", i, s.Redeemed())
		}
	}
	// Expired ids are swept.
	clk.Advance(2 * time.Hour)
	s.redeem([16]byte{42}, clk.Now().UnixMilli(), clk.Now().Add(time.Minute).Unix(), clk.Now())
	if s.Redeemed() != 1 {
		t.Errorf("after expiry %d ids held, want 1", s.Redeemed())
	}
}
