package app

// Mitigation through the running shield (issue 4, "Tests"): members keep
// access across an address change in under-attack mode, a solved challenge
// is redeemed once, and HANDED F12 — the deny-list feed going down keeps
// the last-known list in force.

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/challenge"
	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/demo"
)

// waitUntil polls cond every 20 ms until it holds or d passes, and reports
// whether it held.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			return cond()
		case <-tick.C:
		}
	}
	return true
}

func hasCookieNamed(rs []*http.Cookie, name string) bool {
	for _, c := range rs {
		if c.Name == name && c.Value != "" {
			return true
		}
	}
	return false
}

// donation is the form the tests send; its encoding is the body.
func donation(name string) url.Values {
	return url.Values{"amount": {"25.50"}, "name": {name}, "email": {"ada@example.org"},
		"message": {"Keep going — ünïcode & symbols = fine; 100%"}}
}

func sha256Hex(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

// TestMitigationMemberKeepsAccessAcrossAddressChange: a member logs in to
// the origin in peace time from one address (the origin's member header
// makes the shield set standing), under-attack mode is switched on, and
// the member — now on another /24, or on IPv6 — still loads pages and
// sends a donation whose body reaches the origin intact, while a visitor
// without standing is challenged and its form refused whole.
func TestMitigationMemberKeepsAccessAcrossAddressChange(t *testing.T) {
	s := startDemoShield(t, "", nil)
	m := newBrowser(t, s.URL, "81.2.69.10")

	if r := m.get("/login"); r.Status != http.StatusOK {
		t.Fatalf("GET /login: %d", r.Status)
	}
	login := m.post("/login", url.Values{"username": {demo.DemoUser}, "password": {demo.DemoPassword}})
	if login.Status != http.StatusSeeOther {
		t.Fatalf("POST /login: want 303, got %d %.200q", login.Status, login.Body)
	}
	if v := login.Header.Get(challenge.DefaultMemberHeader); v != "" {
		t.Errorf("the origin's member header reached the client: %q", v)
	}
	u, _ := url.Parse(s.URL)
	if !hasCookieNamed(m.c.Jar.Cookies(u), challenge.DefaultCookiePrefix+"standing") {
		t.Fatalf("no standing cookie after login; Set-Cookie: %q", login.Header.Values("Set-Cookie"))
	}

	s.underAttack(t, true)

	// Control: without standing or clearance the site challenges, and a
	// form is refused whole.
	stranger := newBrowser(t, s.URL, "203.0.113.7")
	if r := stranger.get("/"); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("under-attack mode is not on: stranger got %d", r.Status)
	}
	if r := stranger.post("/donate", donation("Stranger")); r.Status != http.StatusServiceUnavailable || r.Header.Get(demo.BodySHA256Header) != "" {
		t.Fatalf("stranger's donation: want 503 refused whole, got %d (origin hash %q)", r.Status, r.Header.Get(demo.BodySHA256Header))
	}

	tests := []struct {
		name, addr string
	}{
		{name: "same address", addr: "81.2.69.10"},
		{name: "another IPv4 network", addr: "198.51.100.23"},
		{name: "mobile network on IPv6", addr: "2001:db8:4:5::77"},
		{name: "back on IPv4, third network", addr: "5.6.7.8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m.moveTo(tc.addr)
			for _, p := range []string{"/", "/account", "/donate", "/news/1"} {
				if r := m.get(p); r.Status != http.StatusOK {
					t.Errorf("GET %s from %s: %d %.200q", p, tc.addr, r.Status, r.Body)
				}
			}
			form := donation("Member at " + tc.addr)
			r := m.post("/donate", form)
			if r.Status != http.StatusOK {
				t.Fatalf("POST /donate from %s: %d %.300q", tc.addr, r.Status, r.Body)
			}
			if got, want := r.Header.Get(demo.BodySHA256Header), sha256Hex(form.Encode()); got != want {
				t.Errorf("donation body altered: origin hashed %s, sent %s", got, want)
			}
			if !strings.Contains(r.Body, sha256Hex(form.Encode())) {
				t.Errorf("receipt does not show the body's hash")
			}
		})
	}
}

// TestMitigationChallengeRedeemedOnce: through the whole shield, one solved
// challenge yields one clearance: the same answer again — from the same
// client, from another client of the same prefix and browser, or twice at
// the same moment — is refused (409), and refusing it takes nothing away
// from the clearance already earned (HANDED F23's invariant).
func TestMitigationChallengeRedeemedOnce(t *testing.T) {
	s := startDemoShield(t, "", nil)
	s.underAttack(t, true)
	tests := []struct {
		name string
		// replay redeems p (solved by nonce) again and returns the statuses.
		replay func(t *testing.T, first *browser, p challengePage, nonce string) []int
		want   []int
	}{
		{name: "same client again", want: []int{http.StatusConflict},
			replay: func(t *testing.T, b *browser, p challengePage, n string) []int {
				return []int{b.redeem(p, n).Status}
			}},
		{name: "another client of the same prefix and browser", want: []int{http.StatusConflict},
			replay: func(t *testing.T, b *browser, p challengePage, n string) []int {
				other := newBrowser(t, s.URL, "203.0.113.99")
				if r := other.get("/"); r.Status != http.StatusServiceUnavailable { // gets the test cookie
					t.Fatalf("other client: want the interstitial, got %d", r.Status)
				}
				return []int{other.redeem(p, n).Status}
			}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, s.URL, "203.0.113."+string(rune('1'+i)))
			r := b.get("/about")
			p, ok := parseChallenge(r.Body)
			if !ok {
				t.Fatalf("want the interstitial, got %d", r.Status)
			}
			n := solvePoW(t, p.Seed, p.Bits)
			if v := b.redeem(p, n); v.Status != http.StatusSeeOther || v.Header.Get("Location") != "/about" {
				t.Fatalf("first redemption: want 303 to /about, got %d %q", v.Status, v.Header.Get("Location"))
			}
			got := tc.replay(t, b, p, n)
			if len(got) != len(tc.want) || got[0] != tc.want[0] {
				t.Errorf("replay: got %v, want %v", got, tc.want)
			}
			if r := b.get("/about"); r.Status != http.StatusOK {
				t.Errorf("clearance lost after the replay: %d", r.Status)
			}
		})
	}

	t.Run("two redemptions at once", func(t *testing.T) {
		for round := range 5 {
			a := newBrowser(t, s.URL, "198.51.100.40")
			r := a.get("/events")
			p, ok := parseChallenge(r.Body)
			if !ok {
				t.Fatalf("want the interstitial, got %d", r.Status)
			}
			n := solvePoW(t, p.Seed, p.Bits)
			var wg sync.WaitGroup
			codes := make([]int, 4)
			for i := range codes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					codes[i] = a.redeem(p, n).Status
				}()
			}
			wg.Wait()
			won := 0
			for _, c := range codes {
				switch c {
				case http.StatusSeeOther:
					won++
				case http.StatusConflict:
				default:
					t.Errorf("round %d: unexpected status %d", round, c)
				}
			}
			if won != 1 {
				t.Errorf("round %d: %d of %d concurrent redemptions succeeded, want exactly 1 (%v)", round, won, len(codes), codes)
			}
		}
	})
}

// TestF12_DenyListFeedDownKeepsLastKnownList (HANDED F12, step 4): while
// 127.0.0.9 is on the deny list and 127.0.0.2 is not, the list's feed
// goes down — the file deleted, replaced by an error page, or made
// unreadable. The shield keeps the last-known list: 127.0.0.9 stays
// blocked, 127.0.0.2 keeps getting 200, nobody gets a global 403; and when
// the feed comes back its new contents take effect.
func TestF12_DenyListFeedDownKeepsLastKnownList(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(t *testing.T, path string)
	}{
		{name: "file deleted", break_: func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "error page saved instead of the list", break_: func(t *testing.T, p string) {
			writeListAtomic(t, p, "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n<h1>502 Bad Gateway</h1>\n</body>\n</html>\n")
		}},
		{name: "path unreadable (a directory)", break_: func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newOrigin(t)
			list := filepath.Join(t.TempDir(), "feed", "drop.netset")
			if err := os.MkdirAll(filepath.Dir(list), 0o700); err != nil {
				t.Fatal(err)
			}
			writeListAtomic(t, list, "# test feed\n127.0.0.9/32\n192.0.2.0/24\n")
			s := startShield(t, o, func(c *config.Config) {
				c.Rules.DenyLists = []string{list}
			})
			listed, clean := clientFrom(t, "127.0.0.9"), clientFrom(t, "127.0.0.2")
			check := func(stage string) {
				t.Helper()
				for i := range 10 {
					if r := hGet(listed, s.URL+"/page"); r.Status != http.StatusForbidden {
						t.Errorf("%s: 127.0.0.9 request %d: want 403, got %d", stage, i, r.Status)
					}
					if r := hGet(clean, s.URL+"/page"); r.Status != http.StatusOK {
						t.Errorf("%s: 127.0.0.2 request %d: want 200, got %d %v", stage, i, r.Status, r.Err)
					}
				}
			}
			check("feed up")
			failedBefore := len(s.logs.entries("list reload failed; keeping previous set"))
			tc.break_(t, list)
			if !waitUntil(5*time.Second, func() bool {
				return len(s.logs.entries("list reload failed; keeping previous set")) > failedBefore
			}) {
				t.Fatal("the watcher did not notice the broken feed within 5s")
			}
			check("feed down")

			// The feed comes back with 127.0.0.9 delisted: the new list applies.
			if st, err := os.Stat(list); err == nil && st.IsDir() {
				os.Remove(list)
			}
			writeListAtomic(t, list, "127.0.0.7/32\n")
			if !waitUntil(5*time.Second, func() bool { return hGet(listed, s.URL+"/page").Status == http.StatusOK }) {
				t.Fatal("127.0.0.9 still refused 5s after the feed came back without it")
			}
			if r := hGet(clean, s.URL+"/page"); r.Status != http.StatusOK {
				t.Errorf("127.0.0.2 after recovery: %d", r.Status)
			}
		})
	}
}

// writeListAtomic replaces path with content by rename, as a feed fetcher
// does.
func writeListAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
