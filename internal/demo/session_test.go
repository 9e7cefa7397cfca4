package demo

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func loginCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			return c
		}
	}
	return nil
}

func TestLogin(t *testing.T) {
	srv, c := testSite(t, Options{})
	tests := []struct {
		name, username, password string
		status                   int
		wantMember               bool
	}{
		{name: "demo credentials", username: "demo", password: "demo", status: http.StatusSeeOther, wantMember: true},
		{name: "wrong password", username: "demo", password: "demo1", status: http.StatusUnauthorized},
		{name: "wrong user", username: "admin", password: "demo", status: http.StatusUnauthorized},
		{name: "empty", username: "", password: "", status: http.StatusUnauthorized},
		{name: "prefix of password", username: "demo", password: "dem", status: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"username": {tt.username}, "password": {tt.password}}
			resp, body := do(t, c, "POST", srv.URL+"/login", strings.NewReader(form.Encode()), formHeader())
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			cookie := loginCookie(t, resp)
			if got := resp.Header.Get(MemberHeader); (got == DemoMemberID) != tt.wantMember || (!tt.wantMember && got != "") {
				t.Errorf("%s = %q, want member %v", MemberHeader, got, tt.wantMember)
			}
			if !tt.wantMember {
				if cookie != nil {
					t.Errorf("failed login set a cookie")
				}
				mustContain(t, "401 page", body, "did not match", `role="alert"`)
				return
			}
			if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/" {
				t.Fatalf("session cookie %+v", cookie)
			}
			if loc := resp.Header.Get("Location"); loc != "/account" {
				t.Errorf("Location %q, want /account", loc)
			}
			// The account page now opens and names the member.
			resp, body = do(t, c, "GET", srv.URL+"/account", nil, http.Header{"Cookie": {cookie.String()}})
			if resp.StatusCode != 200 || resp.Header.Get(MemberHeader) != DemoMemberID {
				t.Fatalf("account: status %d, member %q", resp.StatusCode, resp.Header.Get(MemberHeader))
			}
			mustContain(t, "account", body, DemoMemberID, "Sign out")
			if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("member page Cache-Control %q, want no-store", cc)
			}
		})
	}
	t.Run("form over 64 KiB", func(t *testing.T) {
		body := "username=demo&password=demo&pad=" + strings.Repeat("x", maxFormBytes)
		resp, _ := do(t, c, "POST", srv.URL+"/login", strings.NewReader(body), formHeader())
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", resp.StatusCode)
		}
	})
}

// TestSessionCookie checks that only cookies this site signed, unexpired,
// open the account page and earn the member header.
func TestSessionCookie(t *testing.T) {
	now := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	key := []byte("0123456789abcdef0123456789abcdef")
	site := NewSite(Options{SessionKey: key, Now: clock, SessionTTL: time.Hour})
	other := NewSite(Options{SessionKey: []byte("ffffffffffffffffffffffffffffffff"), Now: clock})
	srv, c := testSite(t, Options{SessionKey: key, Now: clock, SessionTTL: time.Hour})
	good := site.signSession(DemoMemberID, now.Add(time.Hour))
	payload, sig, _ := strings.Cut(good, ".")
	tests := []struct {
		name       string
		value      string
		wantMember bool
	}{
		{name: "valid", value: good, wantMember: true},
		{name: "expired", value: site.signSession(DemoMemberID, now), wantMember: false},
		{name: "signed with another key", value: other.signSession(DemoMemberID, now.Add(time.Hour)), wantMember: false},
		{name: "payload swapped", value: site.signSession("M-9999", now.Add(time.Hour))[:len(payload)] + "." + sig, wantMember: false},
		{name: "signature truncated", value: payload + "." + sig[:len(sig)-2], wantMember: false},
		{name: "no signature", value: payload, wantMember: false},
		{name: "garbage", value: "not-a-session", wantMember: false},
		{name: "empty member", value: site.signSession("", now.Add(time.Hour)), wantMember: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Cookie": {(&http.Cookie{Name: SessionCookie, Value: tt.value}).String()}}
			resp, _ := do(t, c, "GET", srv.URL+"/account", nil, h)
			if got := resp.StatusCode == 200; got != tt.wantMember {
				t.Errorf("account status %d, want member %v", resp.StatusCode, tt.wantMember)
			}
			if got := resp.Header.Get(MemberHeader) != ""; got != tt.wantMember {
				t.Errorf("%s present %v, want %v", MemberHeader, got, tt.wantMember)
			}
			if !tt.wantMember && resp.Header.Get("Location") != "/login" {
				t.Errorf("Location %q, want /login", resp.Header.Get("Location"))
			}
		})
	}
}

func TestLogout(t *testing.T) {
	srv, c := testSite(t, Options{})
	resp, _ := do(t, c, "POST", srv.URL+"/logout", nil, nil)
	cookie := loginCookie(t, resp)
	if resp.StatusCode != http.StatusSeeOther || cookie == nil || cookie.MaxAge >= 0 {
		t.Fatalf("status %d, cookie %+v; want 303 and an expired cookie", resp.StatusCode, cookie)
	}
}

func TestSecureCookieBehindTLS(t *testing.T) {
	srv, c := testSite(t, Options{})
	tests := []struct {
		name   string
		header http.Header
		secure bool
	}{
		{name: "plain http", header: formHeader(), secure: false},
		{name: "tls at the shield", header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Forwarded-Proto": {"https"}}, secure: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := do(t, c, "POST", srv.URL+"/login", strings.NewReader("username=demo&password=demo"), tt.header)
			if ck := loginCookie(t, resp); ck == nil || ck.Secure != tt.secure {
				t.Fatalf("cookie %+v, want Secure=%v", ck, tt.secure)
			}
		})
	}
}

// FuzzVerifySession: no input other than what signSession produced verifies,
// and nothing panics.
func FuzzVerifySession(f *testing.F) {
	now := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	s := NewSite(Options{SessionKey: []byte("0123456789abcdef0123456789abcdef")})
	good := s.signSession(DemoMemberID, now.Add(time.Hour))
	for _, seed := range []string{good, "", ".", "a.b", good + "x", "TS0wMDAxfDE3NzUwNTAwMDA.", strings.ToUpper(good)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		id, err := s.verifySession(v, now)
		if err == nil && (v != good || id != DemoMemberID) {
			t.Fatalf("value %q verified as %q; only %q should", v, id, good)
		}
	})
}
