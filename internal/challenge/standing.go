package challenge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultMemberHeader is the origin response header that names a logged-in
// member (the demo site sends it). The caller's proxy calls IssueStanding
// when it sees it and strips it from the client's response.
const DefaultMemberHeader = "X-Portcullis-Member"

// ErrMemberID is returned by IssueStanding for an empty, over-long
// (MaxMemberIDBytes) or non-printable member id.
var ErrMemberID = errors.New("challenge: invalid member id")

// JWTOptions accepts an origin's own session token as member standing: a
// JWT (RFC 7519) in a cookie, signed HS256 (HMAC-SHA-256, RFC 7518 §3.2)
// with a key shared with the origin. The member id is the "sub" claim; "exp"
// is required; "nbf", if present, is honoured. Other algorithms, "none"
// included, are refused.
type JWTOptions struct {
	// Cookie is the cookie holding the JWT; empty disables JWT standing.
	Cookie string
	// Key is the HS256 key (≥ 32 bytes).
	Key []byte
	// Leeway tolerates clock skew on exp and nbf (default 0).
	Leeway time.Duration
}

// StandingCookie returns a fresh member standing cookie for memberID
// (SetStanding and IssueStanding add it to a response, skipping members
// whose standing is still fresh). The token is signed, expires
// after Options.StandingTTL and is bound to nothing else: a member keeps
// standing when their address changes (mobile networks). Revoke it with
// Keyring.Revoke. Error: ErrMemberID (wrapped).
func (s *Service) StandingCookie(memberID string, r *http.Request) (*http.Cookie, error) {
	if memberID == "" || len(memberID) > MaxMemberIDBytes || !utf8.ValidString(memberID) ||
		strings.ContainsFunc(memberID, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, fmt.Errorf("%w: %d bytes", ErrMemberID, len(memberID))
	}
	now := s.now()
	k := s.keys.current()
	b := make([]byte, headerSize+1+len(memberID)+tagSize)
	putHeader(b, kindStanding, k.id, now.Add(s.opts.StandingTTL))
	b[10] = byte(len(memberID))
	copy(b[11:], memberID)
	v := k.seal(b, binding{site: s.siteHash})
	s.metrics.standingIssued()
	return s.cookie(r, s.standingName, v, s.opts.StandingTTL), nil
}

// IssueStanding sets a member standing cookie for memberID on w, which
// must not have written its header yet; see SetStanding. Error:
// ErrMemberID (wrapped).
func (s *Service) IssueStanding(w http.ResponseWriter, memberID string, r *http.Request) error {
	return s.SetStanding(w.Header(), memberID, r)
}

// SetStanding adds the Set-Cookie for member standing of memberID (see
// StandingCookie) to the response header h — for a reverse proxy's
// ModifyResponse, pass the proxied response's header and the client's
// inbound request r (its cookies and TLS state). An existing valid standing
// cookie for the same member with more than half its lifetime to run is
// left alone, so a logged-in member's page views do not each send a new
// cookie. Error: ErrMemberID (wrapped); h is then unchanged.
func (s *Service) SetStanding(h http.Header, memberID string, r *http.Request) error {
	now := s.now()
	if id, exp, ok := s.standing(r.Header, now); ok && id == memberID && exp.Sub(now) > s.opts.StandingTTL/2 {
		return nil
	}
	c, err := s.StandingCookie(memberID, r)
	if err != nil {
		return err
	}
	if v := c.String(); v != "" {
		h.Add("Set-Cookie", v)
	}
	return nil
}

// VerifyStanding returns the member id of r's valid standing: our standing
// cookie, or else the origin's session JWT when Options.JWT is set.
func (s *Service) VerifyStanding(r *http.Request) (memberID string, ok bool) {
	now := s.now()
	if id, _, ok := s.standing(r.Header, now); ok {
		return id, true
	}
	return s.jwtMember(r.Header, now)
}

// hasStanding is VerifyStanding without building the member id string
// (allocation-free for our own cookie).
func (s *Service) hasStanding(h http.Header, now time.Time) bool {
	sc := cookieScan{lines: h["Cookie"]}
	for {
		v, ok := sc.next(s.standingName)
		if !ok {
			break
		}
		var buf [maxTokenBytes]byte
		if tok, ok := s.keys.open(v, kindStanding, binding{site: s.siteHash}, now, 0, &buf); ok && validStanding(tok) {
			return true
		}
	}
	_, ok := s.jwtMember(h, now)
	return ok
}

func (s *Service) standing(h http.Header, now time.Time) (id string, exp time.Time, ok bool) {
	sc := cookieScan{lines: h["Cookie"]}
	for {
		v, ok := sc.next(s.standingName)
		if !ok {
			return "", time.Time{}, false
		}
		var buf [maxTokenBytes]byte
		if tok, ok := s.keys.open(v, kindStanding, binding{site: s.siteHash}, now, 0, &buf); ok && validStanding(tok) {
			return string(tok[11 : 11+int(tok[10])]), tokenExpiry(tok), true
		}
	}
}

func validStanding(tok []byte) bool {
	return len(tok) >= standingMin && int(tok[10]) > 0 && len(tok) == headerSize+1+int(tok[10])+tagSize
}

// jwtMember verifies the origin's HS256 session JWT, if configured, and
// returns its "sub".
func (s *Service) jwtMember(h http.Header, now time.Time) (string, bool) {
	if s.opts.JWT.Cookie == "" {
		return "", false
	}
	sc := cookieScan{lines: h["Cookie"]}
	for {
		v, ok := sc.next(s.opts.JWT.Cookie)
		if !ok {
			return "", false
		}
		if sub, ok := verifyHS256(v, s.opts.JWT.Key, now, s.opts.JWT.Leeway); ok {
			return sub, true
		}
	}
}

// maxJWTBytes bounds the JWT we are willing to parse.
const maxJWTBytes = 4096

// verifyHS256 checks a compact JWS (RFC 7515 §7.1) signed with HS256 and
// returns the "sub" claim of its JWT payload (RFC 7519). The signature is
// checked before any JSON is parsed; the header must say alg HS256.
func verifyHS256(tok string, key []byte, now time.Time, leeway time.Duration) (string, bool) {
	if len(tok) > maxJWTBytes {
		return "", false
	}
	h64, rest, ok := strings.Cut(tok, ".")
	if !ok {
		return "", false
	}
	p64, s64, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(s64, '.') >= 0 {
		return "", false
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(s64)
	if err != nil || len(sig) != sha256.Size {
		return "", false
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(tok[:len(h64)+1+len(p64)]))
	if !hmac.Equal(m.Sum(nil), sig) {
		return "", false
	}
	hb, err1 := base64.RawURLEncoding.Strict().DecodeString(h64)
	pb, err2 := base64.RawURLEncoding.Strict().DecodeString(p64)
	if err1 != nil || err2 != nil {
		return "", false
	}
	var hdr struct {
		Alg  string   `json:"alg"`
		Crit []string `json:"crit"`
	}
	if json.Unmarshal(hb, &hdr) != nil || hdr.Alg != "HS256" || len(hdr.Crit) > 0 {
		return "", false
	}
	var claims struct {
		Sub string   `json:"sub"`
		Exp *float64 `json:"exp"`
		Nbf *float64 `json:"nbf"`
	}
	if json.Unmarshal(pb, &claims) != nil || claims.Sub == "" || claims.Exp == nil {
		return "", false
	}
	t := float64(now.Unix())
	l := leeway.Seconds()
	if t >= *claims.Exp+l || (claims.Nbf != nil && t < *claims.Nbf-l) {
		return "", false
	}
	return claims.Sub, true
}
