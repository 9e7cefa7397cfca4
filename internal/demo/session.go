package demo

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The one demo account: POST /login with username DemoUser and password
// DemoPassword signs in member DemoMemberID, the value MemberHeader carries.
const (
	DemoUser     = "demo"
	DemoPassword = "demo"
	DemoMemberID = "M-0001"
)

// signSession returns the value of a SessionCookie for member, valid until
// expires: base64url(member "|" unix-seconds) "." base64url(HMAC-SHA-256
// (RFC 2104) of the first part under Options.SessionKey).
func (s *Site) signSession(member string, expires time.Time) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(member + "|" + strconv.FormatInt(expires.Unix(), 10)))
	return payload + "." + base64.RawURLEncoding.EncodeToString(s.mac(payload))
}

func (s *Site) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.opts.SessionKey)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// errBadSession is returned for any cookie that is malformed, forged or
// expired; callers do not need to tell these apart.
var errBadSession = errors.New("demo: invalid session")

// verifySession returns the member id a cookie value names, or errBadSession.
func (s *Site) verifySession(v string, now time.Time) (string, error) {
	// Only the canonical encoding verifies: base64 decoding alone would skip
	// CR and LF, making values malleable.
	if strings.IndexFunc(v, notCookieChar) >= 0 {
		return "", errBadSession
	}
	payload, sig, ok := strings.Cut(v, ".")
	if !ok {
		return "", errBadSession
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(payload)) {
		return "", errBadSession
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(payload)
	if err != nil {
		return "", errBadSession
	}
	member, exp, ok := strings.Cut(string(raw), "|")
	unix, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || member == "" || !now.Before(time.Unix(unix, 0)) {
		return "", errBadSession
	}
	return member, nil
}

// notCookieChar reports runes outside base64url and the separator '.'.
func notCookieChar(c rune) bool {
	return !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.')
}

// sessionMember reports the member id of r's valid session cookie, if any.
func (s *Site) sessionMember(r *http.Request) (string, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return "", false
	}
	id, err := s.verifySession(c.Value, s.opts.Now())
	return id, err == nil
}

// secure reports whether cookies for r should carry the Secure attribute: the
// client reached us (or the shield in front of us) over TLS. The forwarding
// header only ever adds protection here, so trusting it is harmless.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

type loginData struct {
	Username string
	Failed   bool
}

func (s *Site) loginForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "login", "account", "Member login", loginData{})
}

// login checks the posted username and password. Success: session cookie,
// MemberHeader and 303 to /account. Failure: 401 with the form again.
func (s *Site) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.formError(w, r, err)
		return
	}
	user, pass := r.PostForm.Get("username"), r.PostForm.Get("password")
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(DemoUser))
	passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(DemoPassword))
	if userOK&passOK != 1 {
		s.log.Info("demo: login failed")
		s.render(w, r, http.StatusUnauthorized, "login", "account", "Member login", loginData{Username: user, Failed: true})
		return
	}
	now := s.opts.Now()
	http.SetCookie(w, &http.Cookie{
		Name:     SessionCookie,
		Value:    s.signSession(DemoMemberID, now.Add(s.opts.SessionTTL)),
		Path:     "/",
		MaxAge:   int(s.opts.SessionTTL / time.Second),
		HttpOnly: true,
		Secure:   secure(r),
		SameSite: http.SameSiteLaxMode,
	})
	w.Header().Set(MemberHeader, DemoMemberID)
	w.Header().Set("Cache-Control", "no-store")
	s.log.Info("demo: login", "member", DemoMemberID)
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

func (s *Site) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteLaxMode})
	w.Header().Del(MemberHeader)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

type accountData struct {
	MemberID string
}

// account shows the member area; without a valid session it sends the
// visitor to /login.
func (s *Site) account(w http.ResponseWriter, r *http.Request) {
	id := memberOf(r)
	if id == "" {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "account", "account", "Your account", accountData{MemberID: id})
}
