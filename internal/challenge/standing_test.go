package challenge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/demo"
)

// TestStandingSurvivesAddressChange: a member logs in at the origin from
// one network, the shield turns the origin's member header into a standing
// cookie (and strips the header), and during under-attack mode the member
// keeps access from another network (another /24) without a challenge.
func TestStandingSurvivesAddressChange(t *testing.T) {
	sh := newShield(t, shieldConfig{})
	sh.attack.Store(false)
	home := noFollow(sh.client("127.0.0.2", false))
	login := home.do(t, http.MethodPost, "/login", url.Values{"username": {demo.DemoUser}, "password": {demo.DemoPassword}}.Encode())
	if login.status != http.StatusSeeOther {
		t.Fatalf("login: %d", login.status)
	}
	if login.header.Get(DefaultMemberHeader) != "" {
		t.Error("member header reached the client")
	}
	if !contains(setCookies(login.header), sh.svc.standingName) {
		t.Fatalf("no standing cookie on login; cookies %v", setCookies(login.header))
	}
	sh.attack.Store(true)
	// Same cookie jar, another network: a phone moving from Wi-Fi to mobile data.
	mobile := &client{Client: &http.Client{Transport: sh.client("127.0.1.9", true).Transport, Jar: home.Jar,
		CheckRedirect: home.CheckRedirect}, base: home.base}
	tests := []struct {
		name, method, path, body string
		c                        *client
		want                     int
	}{
		{name: "page from home", method: http.MethodGet, path: "/account", c: home, want: 200},
		{name: "page from mobile", method: http.MethodGet, path: "/account", c: mobile, want: 200},
		{name: "donation from mobile", method: http.MethodPost, path: "/donate", body: donation, c: mobile, want: 200},
		{name: "anonymous from mobile network", method: http.MethodGet, path: "/account", c: sh.client("127.0.1.9", false), want: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.c.do(t, tt.method, tt.path, tt.body, "Accept", browserAccept)
			if r.status != tt.want {
				t.Fatalf("status %d, want %d", r.status, tt.want)
			}
		})
	}
	// Standing lasts StandingTTL, then the member is challenged like anyone.
	sh.clk.Advance(DefaultStandingTTL)
	if r := mobile.do(t, http.MethodGet, "/about", "", "Accept", browserAccept); r.status != http.StatusServiceUnavailable {
		t.Errorf("after StandingTTL: %d, want 503", r.status)
	}
}

const donation = "amount=25&name=A+Member&email=member%40example.org&message=keep+going"

func TestIssueStanding(t *testing.T) {
	s, clk := newTestService(t, Options{})
	tests := []struct {
		name       string
		member     string
		existing   string // cookie already held
		advance    time.Duration
		wantErr    bool
		wantCookie bool
	}{
		{name: "new member", member: "M-0001", wantCookie: true},
		{name: "empty id", member: "", wantErr: true},
		{name: "control characters", member: "M\r\n1", wantErr: true},
		{name: "too long", member: strings.Repeat("x", MaxMemberIDBytes+1), wantErr: true},
		{name: "longest id", member: strings.Repeat("x", MaxMemberIDBytes), wantCookie: true},
		{name: "fresh standing for the same member is kept", member: "M-0001", existing: "M-0001"},
		{name: "another member replaces it", member: "M-0002", existing: "M-0001", wantCookie: true},
		{name: "refreshed past half its life", member: "M-0001", existing: "M-0001", advance: DefaultStandingTTL/2 + time.Hour, wantCookie: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.existing != "" {
				r.Header.Set("Cookie", s.standingName+"="+standingValue(t, s, tt.existing))
			}
			clk.Advance(tt.advance)
			defer clk.Advance(-tt.advance)
			w := httptest.NewRecorder()
			err := s.IssueStanding(w, tt.member, r)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			got := w.Result().Cookies()
			if (len(got) == 1) != tt.wantCookie {
				t.Fatalf("cookies %v, want one: %v", got, tt.wantCookie)
			}
			if !tt.wantCookie {
				return
			}
			c := got[0]
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.MaxAge != int(DefaultStandingTTL/time.Second) {
				t.Errorf("cookie attributes %+v", c)
			}
			r2 := httptest.NewRequest(http.MethodGet, "/", nil)
			r2.AddCookie(c)
			if id, ok := s.VerifyStanding(r2); !ok || id != tt.member {
				t.Errorf("VerifyStanding = %q %v, want %q", id, ok, tt.member)
			}
		})
	}
}

func TestStandingSecureOverTLS(t *testing.T) {
	s, _ := newTestService(t, Options{})
	r := httptest.NewRequest(http.MethodGet, "https://example.org/", nil)
	c, err := s.StandingCookie("M-1", r)
	if err != nil || !c.Secure {
		t.Fatalf("cookie %+v err %v, want Secure", c, err)
	}
}

// jwt builds an HS256 JWT (RFC 7519) from raw header and payload JSON.
func jwt(header, payload string, key []byte) string {
	enc := base64.RawURLEncoding
	s := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return s + "." + enc.EncodeToString(m.Sum(nil))
}

func TestJWTStanding(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	s, clk := newTestService(t, Options{JWT: JWTOptions{Cookie: "session", Key: key}})
	now := clk.Now().Unix()
	exp := func(d int64) string { return itoa(now + d) }
	const hs = `{"alg":"HS256","typ":"JWT"}`
	tests := []struct {
		name  string
		token string
		want  string
	}{
		{name: "valid", token: jwt(hs, `{"sub":"M-7","exp":`+exp(60)+`}`, key), want: "M-7"},
		{name: "expired", token: jwt(hs, `{"sub":"M-7","exp":`+exp(0)+`}`, key)},
		{name: "no exp", token: jwt(hs, `{"sub":"M-7"}`, key)},
		{name: "not yet valid", token: jwt(hs, `{"sub":"M-7","exp":`+exp(600)+`,"nbf":`+exp(60)+`}`, key)},
		{name: "no sub", token: jwt(hs, `{"exp":`+exp(60)+`}`, key)},
		{name: "wrong key", token: jwt(hs, `{"sub":"M-7","exp":`+exp(60)+`}`, []byte(strings.Repeat("x", 32)))},
		{name: "alg none", token: jwt(`{"alg":"none"}`, `{"sub":"M-7","exp":`+exp(60)+`}`, key)},
		{name: "alg HS512 header", token: jwt(`{"alg":"HS512"}`, `{"sub":"M-7","exp":`+exp(60)+`}`, key)},
		{name: "unsigned", token: strings.TrimRight(jwt(hs, `{"sub":"M-7","exp":`+exp(60)+`}`, key), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")},
		{name: "crit header", token: jwt(`{"alg":"HS256","crit":["x"]}`, `{"sub":"M-7","exp":`+exp(60)+`}`, key)},
		{name: "garbage", token: "a.b.c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Cookie", "session="+tt.token)
			id, ok := s.VerifyStanding(r)
			if ok != (tt.want != "") || id != tt.want {
				t.Errorf("VerifyStanding = %q %v, want %q", id, ok, tt.want)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
