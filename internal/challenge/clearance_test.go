package challenge

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/filter"
)

// newTestService returns a Service on a test clock.
func newTestService(t *testing.T, o Options) (*Service, *testClock) {
	t.Helper()
	clk := newClock()
	o.Now = clk.Now
	o.Logger = discardLogger()
	if o.Keys == nil {
		o.Keys = NewKeyring(KeyringOptions{Logger: o.Logger}, clk.Now())
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}

// clearanceFor issues a clearance cookie value for prefix and ua at now.
func clearanceFor(s *Service, prefix netip.Prefix, ua string, now time.Time) string {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("User-Agent", ua)
	return s.issueClearance(r, prefix, MethodWork, 16, now).Value
}

func requestWith(ua string, cookies ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("User-Agent", ua)
	for _, c := range cookies {
		r.Header.Add("Cookie", c)
	}
	return r
}

func TestClearanceBinding(t *testing.T) {
	s, clk := newTestService(t, Options{Site: "a"})
	other, _ := newTestService(t, Options{Site: "b", Keys: s.keys})
	home := netip.MustParsePrefix("198.51.100.0/24")
	v := clearanceFor(s, home, browserUA, clk.Now())
	cookie := s.clearanceName + "=" + v
	tests := []struct {
		name    string
		svc     *Service
		prefix  netip.Prefix
		ua      string
		cookies []string
		advance time.Duration
		want    bool
	}{
		{name: "same prefix and UA", svc: s, prefix: home, ua: browserUA, cookies: []string{cookie}, want: true},
		{name: "another address in the same /24", svc: s, prefix: netip.MustParsePrefix("198.51.100.77/24"), ua: browserUA, cookies: []string{cookie}, want: true},
		{name: "another /24", svc: s, prefix: netip.MustParsePrefix("198.51.101.0/24"), ua: browserUA, cookies: []string{cookie}},
		{name: "IPv6 /64", svc: s, prefix: netip.MustParsePrefix("2001:db8::/64"), ua: browserUA, cookies: []string{cookie}},
		{name: "another UA", svc: s, prefix: home, ua: "curl/8.0", cookies: []string{cookie}},
		{name: "another site on the same keyring", svc: other, prefix: home, ua: browserUA, cookies: []string{other.clearanceName + "=" + v}},
		{name: "expired", svc: s, prefix: home, ua: browserUA, cookies: []string{cookie}, advance: DefaultClearanceTTL},
		{name: "just before expiry", svc: s, prefix: home, ua: browserUA, cookies: []string{cookie}, advance: DefaultClearanceTTL - time.Second, want: true},
		{name: "tampered", svc: s, prefix: home, ua: browserUA, cookies: []string{s.clearanceName + "=" + flipLast(v)}},
		{name: "truncated", svc: s, prefix: home, ua: browserUA, cookies: []string{s.clearanceName + "=" + v[:len(v)-2]}},
		{name: "padded (non-canonical)", svc: s, prefix: home, ua: browserUA, cookies: []string{s.clearanceName + "=" + v + "=="}},
		{name: "a standing token is not clearance", svc: s, prefix: home, ua: browserUA, cookies: []string{s.clearanceName + "=" + standingValue(t, s, "M-1")}},
		{name: "good cookie after a bad one of the same name", svc: s, prefix: home, ua: browserUA, cookies: []string{s.clearanceName + "=junk; other=1", cookie}, want: true},
		{name: "quoted value", svc: s, prefix: home, ua: browserUA, cookies: []string{s.clearanceName + `="` + v + `"`}, want: true},
		{name: "no cookie", svc: s, prefix: home, ua: browserUA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			c.Advance(tt.advance)
			_, ok := tt.svc.verifyClearance(requestWith(tt.ua, tt.cookies...).Header, tt.prefix, c.Now(), 0)
			if ok != tt.want {
				t.Errorf("verified %v, want %v", ok, tt.want)
			}
		})
	}
}

func TestClearanceKeyRotation(t *testing.T) {
	s, clk := newTestService(t, Options{})
	p := netip.MustParsePrefix("203.0.113.0/24")
	v := clearanceFor(s, p, browserUA, clk.Now())
	r := requestWith(browserUA, s.clearanceName+"="+v)
	if err := s.keys.Rotate(clk.Now()); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Verify(r, p); !ok {
		t.Fatal("clearance signed by the previous key refused after rotation")
	}
	if s.keys.current().id == s.keys.set.Load().keys[1].id {
		t.Fatal("rotation did not change the signing key")
	}
	if err := s.keys.Revoke(clk.Now()); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Verify(r, p); ok {
		t.Fatal("clearance accepted after Revoke")
	}
}

func flipLast(v string) string {
	b := []byte(v)
	if b[len(b)-2] == 'A' {
		b[len(b)-2] = 'B'
	} else {
		b[len(b)-2] = 'A'
	}
	return string(b)
}

func standingValue(t *testing.T, s *Service, member string) string {
	t.Helper()
	c, err := s.StandingCookie(member, httptest.NewRequest(http.MethodGet, "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	return c.Value
}

func TestDecodeB64Canonical(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{name: "empty", in: "", ok: true},
		{name: "two chars", in: "AA", ok: true},
		{name: "one char", in: "A"},
		{name: "non-zero trailing bits", in: "AB"},
		{name: "padding", in: "AA=="},
		{name: "std alphabet", in: "a+/b"},
		{name: "newline", in: "AA\nAA"},
		{name: "url alphabet", in: "-_-_", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf [maxTokenBytes]byte
			_, ok := decodeB64(tt.in, buf[:])
			if ok != tt.ok {
				t.Errorf("ok %v, want %v", ok, tt.ok)
			}
		})
	}
}

// FuzzDecodeB64 checks the allocation-free decoder against the standard
// library's strict decoder.
func FuzzDecodeB64(f *testing.F) {
	for _, s := range []string{"", "AA", "AB", "A", "AAA", "AAAA", "-_-_", "a+/b", "AA==", strings.Repeat("z", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var buf [maxTokenBytes]byte
		n, ok := decodeB64(s, buf[:])
		want, err := base64.RawURLEncoding.Strict().DecodeString(s)
		if len(s) > maxTokenChars || len(want) > maxTokenBytes {
			if ok {
				t.Fatalf("accepted over-long input of %d chars", len(s))
			}
			return
		}
		if strings.ContainsAny(s, "\r\n") { // the stdlib skips CR/LF; we refuse them
			if ok {
				t.Fatalf("accepted CR/LF in %q", s)
			}
			return
		}
		if ok != (err == nil) {
			t.Fatalf("%q: ok %v, stdlib err %v", s, ok, err)
		}
		if ok && string(buf[:n]) != string(want) {
			t.Fatalf("%q: got %x want %x", s, buf[:n], want)
		}
	})
}

// TestPostGrace: a form posted on a clearance that expired a moment ago is
// not challenged mid-flight; one past the grace is refused whole.
func TestPostGrace(t *testing.T) {
	s, clk := newTestService(t, Options{})
	f := NewFilter(s, FilterOptions{ShouldChallenge: func(*filter.Request) bool { return true }})
	p := netip.MustParsePrefix("203.0.113.0/24")
	v := clearanceFor(s, p, browserUA, clk.Now())
	tests := []struct {
		name    string
		method  string
		advance time.Duration
		want    filter.Action
	}{
		{name: "GET, valid", method: http.MethodGet, want: filter.Pass},
		{name: "GET, just expired", method: http.MethodGet, advance: DefaultClearanceTTL + time.Minute, want: filter.Challenge},
		{name: "POST, just expired", method: http.MethodPost, advance: DefaultClearanceTTL + time.Minute, want: filter.Pass},
		{name: "POST, past grace", method: http.MethodPost, advance: DefaultClearanceTTL + DefaultPostGrace, want: filter.Challenge},
	}
	start := clk.Now()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.mu.Lock()
			clk.t = start.Add(tt.advance)
			clk.mu.Unlock()
			r := httptest.NewRequest(tt.method, "/donate", strings.NewReader("amount=5"))
			r.Header.Set("User-Agent", browserUA)
			r.Header.Set("Accept", browserAccept)
			r.Header.Set("Cookie", s.clearanceName+"="+v)
			got := f.Check(&filter.Request{Addr: p.Addr(), Prefix: p, Method: tt.method, Path: "/donate", HTTP: r})
			if got.Action != tt.want {
				t.Errorf("action %v, want %v", got.Action, tt.want)
			}
		})
	}
}
