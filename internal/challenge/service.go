package challenge

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// PathPrefix is where the Service's endpoints live: PathPrefix+"verify"
// (GET or POST: redeem a challenge), PathPrefix+"challenge.js" and
// PathPrefix+"worker.js" (the page script and the Web Worker). The caller
// routes every request under it to Service.ServeEndpoint.
const PathPrefix = "/.portcullis/"

// Defaults for Options.
const (
	DefaultChallengeTTL = 10 * time.Minute
	DefaultNoJSWait     = 5 * time.Second
	DefaultClearanceTTL = 24 * time.Hour
	DefaultStandingTTL  = 7 * 24 * time.Hour
	DefaultPostGrace    = time.Hour
	DefaultRetryAfter   = 10 * time.Second
	DefaultCookiePrefix = "portcullis_"
)

// Errors New returns (wrapped, with the offending value).
var (
	// ErrBrand: a brand colour or logo URL is not acceptable.
	ErrBrand = errors.New("challenge: invalid brand")
	// ErrCatalogue: the message catalogue lacks the fallback language.
	ErrCatalogue = errors.New("challenge: invalid message catalogue")
)

// Brand is how the challenge pages look. Colours are CSS hex colours
// ("#rgb" or "#rrggbb"); LogoURL is an https URL or a path on the site.
type Brand struct {
	// SiteName is shown on the pages and in their title.
	SiteName string
	// LogoURL, if set, is shown above the heading (alt text: SiteName).
	LogoURL string
	// Background, Foreground and Accent colour the page; defaults are a
	// high-contrast light theme (WCAG AA).
	Background, Foreground, Accent string
}

// Options configures a Service.
type Options struct {
	// Site is the site id; tokens of one site are worthless on another.
	Site string
	// Keys signs and verifies every token. Nil: an in-memory keyring is
	// created (logged): cookies then do not survive a restart.
	Keys *Keyring
	// State holds redeemed challenges and cookie refusers; share one per
	// process. Nil: a new State.
	State *State
	// Now is the wall clock; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
	// OnFailed, when set, is called with the client address of every
	// challenge answered with wrong work (the policy's auto-ban counts
	// them per prefix, HANDED F06). It must not block.
	OnFailed func(addr netip.Addr)
	// Metrics, if non-nil, counts challenges and redemptions.
	Metrics *Metrics
	// Difficulty is the initial proof-of-work difficulty in leading zero
	// bits (DefaultDifficulty); see SetDifficulty.
	Difficulty int
	// ChallengeTTL is how long an issued challenge can be redeemed.
	ChallengeTTL time.Duration
	// NoJSWait is how long after issue the no-JavaScript path accepts a
	// challenge without proof of work (default 5 s). Negative disables the
	// no-JavaScript path (visitors without JavaScript are then told so).
	NoJSWait time.Duration
	// ClearanceTTL is how long a clearance cookie lasts (default 24 h).
	ClearanceTTL time.Duration
	// StandingTTL is how long a member standing cookie lasts (default 7 d).
	StandingTTL time.Duration
	// PostGrace lets a request with a body (POST, PUT, PATCH) through on a
	// clearance that expired less than PostGrace ago, so a form filled in
	// over a long time is not refused mid-flight (default 1 h).
	PostGrace time.Duration
	// RetryAfter is sent with every challenge-stage refusal (default 10 s).
	RetryAfter time.Duration
	// CookiePrefix prefixes the cookie names: <prefix>clearance,
	// <prefix>standing, <prefix>test (default "portcullis_").
	CookiePrefix string
	// SecureCookies sets Secure on cookies even for plain-HTTP requests
	// (when TLS ends in front of the shield). Requests over TLS always get
	// Secure cookies.
	SecureCookies bool
	// Brand styles the pages.
	Brand Brand
	// Catalogue is the message catalogue by lower-case language tag; it
	// must contain "en" (the fallback). Default DefaultCatalogue().
	Catalogue map[string]Messages
	// JWT optionally accepts an origin session JWT as member standing.
	JWT JWTOptions
}

// Service issues and verifies challenges, clearance and standing, serves
// the endpoints under PathPrefix and writes the challenge-stage responses.
// It is safe for concurrent use.
type Service struct {
	opts     Options
	keys     *Keyring
	state    *State
	log      *slog.Logger
	now      func() time.Time
	metrics  *Metrics
	siteHash uint64
	bits     atomic.Int32

	clearanceName, standingName, testName string

	pages *pages
}

var hexColour = regexp.MustCompile(`^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// New builds a Service, filling defaults. Errors: ErrBrand, ErrCatalogue
// (wrapped).
func New(opts Options) (*Service, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger.With("component", "challenge", "site", opts.Site)
	if opts.Keys == nil {
		log.Warn("no keyring configured; using an in-memory one (clearance will not survive a restart)")
		opts.Keys = NewKeyring(KeyringOptions{Logger: opts.Logger}, opts.Now())
	}
	if opts.State == nil {
		opts.State = NewState(0, opts.Now())
	}
	if opts.Difficulty == 0 {
		opts.Difficulty = DefaultDifficulty
	}
	setDefault(&opts.ChallengeTTL, DefaultChallengeTTL)
	setDefault(&opts.NoJSWait, DefaultNoJSWait)
	setDefault(&opts.ClearanceTTL, DefaultClearanceTTL)
	setDefault(&opts.StandingTTL, DefaultStandingTTL)
	setDefault(&opts.PostGrace, DefaultPostGrace)
	setDefault(&opts.RetryAfter, DefaultRetryAfter)
	if opts.CookiePrefix == "" {
		opts.CookiePrefix = DefaultCookiePrefix
	}
	if strings.ContainsFunc(opts.CookiePrefix, func(r rune) bool { return !isTokenChar(r) }) {
		return nil, fmt.Errorf("%w: cookie prefix %q", ErrBrand, opts.CookiePrefix)
	}
	if opts.Catalogue == nil {
		opts.Catalogue = DefaultCatalogue()
	}
	if _, ok := opts.Catalogue["en"]; !ok {
		return nil, fmt.Errorf("%w: no \"en\" messages", ErrCatalogue)
	}
	if err := opts.Brand.fill(opts.Site); err != nil {
		return nil, err
	}
	if opts.JWT.Cookie != "" && len(opts.JWT.Key) < 32 {
		return nil, fmt.Errorf("challenge: JWT key must be at least 32 bytes (RFC 7518 §3.2), got %d", len(opts.JWT.Key))
	}
	s := &Service{
		opts:          opts,
		keys:          opts.Keys,
		state:         opts.State,
		log:           log,
		now:           opts.Now,
		metrics:       opts.Metrics,
		siteHash:      xxhash.Sum64String(opts.Site),
		clearanceName: opts.CookiePrefix + "clearance",
		standingName:  opts.CookiePrefix + "standing",
		testName:      opts.CookiePrefix + "test",
	}
	s.SetDifficulty(opts.Difficulty)
	p, err := newPages(opts.Brand)
	if err != nil {
		return nil, err
	}
	s.pages = p
	return s, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

func (b *Brand) fill(site string) error {
	if b.SiteName == "" {
		b.SiteName = site
	}
	if b.SiteName == "" {
		b.SiteName = "This site"
	}
	for _, c := range []*string{&b.Background, &b.Foreground, &b.Accent} {
		if *c != "" && !hexColour.MatchString(*c) {
			return fmt.Errorf("%w: colour %q (want #rgb or #rrggbb)", ErrBrand, *c)
		}
	}
	if b.Background == "" {
		b.Background = "#ffffff"
	}
	if b.Foreground == "" {
		b.Foreground = "#1a1a1a"
	}
	if b.Accent == "" {
		b.Accent = "#0b57d0"
	}
	if b.LogoURL != "" && !strings.HasPrefix(b.LogoURL, "https://") && !(strings.HasPrefix(b.LogoURL, "/") && !strings.HasPrefix(b.LogoURL, "//")) {
		return fmt.Errorf("%w: logo URL %q (want https:// or a path)", ErrBrand, b.LogoURL)
	}
	if strings.ContainsAny(b.LogoURL, "\"'<> \\") {
		return fmt.Errorf("%w: logo URL %q", ErrBrand, b.LogoURL)
	}
	return nil
}

// isTokenChar reports RFC 9110 token characters (cookie names).
func isTokenChar(r rune) bool {
	return r < 127 && r > 32 && !strings.ContainsRune(`()<>@,;:\"/[]?={}`, r)
}

// SetDifficulty sets the proof-of-work difficulty, in leading zero bits,
// for challenges issued from now on (clamped to [MinDifficulty,
// MaxDifficulty]). The caller adapts it to load, e.g. 12 in peace time up
// to 20 under a heavy flood; see pow.go for expected solve times.
func (s *Service) SetDifficulty(bits int) {
	s.bits.Store(int32(min(max(bits, MinDifficulty), MaxDifficulty)))
}

// Difficulty returns the current difficulty in bits.
func (s *Service) Difficulty() int { return int(s.bits.Load()) }

// Method is how a clearance was earned.
type Method uint8

// Methods.
const (
	// MethodWork: the client solved the proof of work.
	MethodWork Method = 1
	// MethodWait: the client took the no-JavaScript path (waited).
	MethodWait Method = 2
)

// Clearance is what a valid clearance cookie says.
type Clearance struct {
	// Expires is when the clearance ends (second precision).
	Expires time.Time
	// Method is how it was earned.
	Method Method
	// Difficulty is the proof-of-work difficulty solved (0 for MethodWait).
	Difficulty int
}

// Verify reports whether r carries a valid clearance cookie for the client
// aggregate prefix (IPv4 /24, IPv6 /64 — the caller's) and r's
// User-Agent. Several cookies of the name are tried in turn. It allocates
// nothing and costs one HMAC-SHA-256 per candidate cookie.
func (s *Service) Verify(r *http.Request, prefix netip.Prefix) (Clearance, bool) {
	return s.verifyClearance(r.Header, prefix, s.now(), 0)
}

func (s *Service) verifyClearance(h http.Header, prefix netip.Prefix, now time.Time, grace time.Duration) (Clearance, bool) {
	sc := cookieScan{lines: h["Cookie"]}
	var bind binding
	bound := false
	for {
		v, ok := sc.next(s.clearanceName)
		if !ok {
			return Clearance{}, false
		}
		if !bound {
			bind, bound = s.clientBinding(prefix, first(h["User-Agent"])), true
		}
		var buf [maxTokenBytes]byte
		tok, ok := s.keys.open(v, kindClearance, bind, now, grace, &buf)
		if ok && len(tok) == clearanceSize {
			return Clearance{Expires: tokenExpiry(tok), Method: Method(tok[10]), Difficulty: int(tok[11])}, true
		}
	}
}

// issueClearance returns a clearance cookie for the binding.
func (s *Service) issueClearance(r *http.Request, prefix netip.Prefix, m Method, bits int, now time.Time) *http.Cookie {
	k := s.keys.current()
	var b [clearanceSize]byte
	putHeader(b[:], kindClearance, k.id, now.Add(s.opts.ClearanceTTL))
	b[10] = byte(m)
	b[11] = byte(bits)
	v := k.seal(b[:], s.clientBinding(prefix, r.UserAgent()))
	return s.cookie(r, s.clearanceName, v, s.opts.ClearanceTTL)
}

// cookie builds a Set-Cookie for name=value: Path=/, HttpOnly,
// SameSite=Lax, Secure over TLS (or when configured), Max-Age ttl.
func (s *Service) cookie(r *http.Request, name, value string, ttl time.Duration) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: int(ttl / time.Second),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil || s.opts.SecureCookies,
	}
}

// challengeToken is a decoded, verified challenge.
type challengeToken struct {
	id       [16]byte
	bits     int
	flags    byte
	issuedMs int64
	exp      int64 // unix seconds
}

// issueChallenge returns a fresh challenge token bound to prefix and ua,
// and its proof-of-work seed.
func (s *Service) issueChallenge(prefix netip.Prefix, ua string, now time.Time) (token string, seed string, bits int) {
	k := s.keys.current()
	var b [challengeSize]byte
	putHeader(b[:], kindChallenge, k.id, now.Add(s.opts.ChallengeTTL))
	var id [16]byte
	rand.Read(id[:])
	copy(b[10:26], id[:])
	bits = s.Difficulty()
	b[26] = byte(bits)
	binary.BigEndian.PutUint64(b[28:36], uint64(now.UnixMilli()))
	var sh [32]byte
	seedHex(&id, &sh)
	return k.seal(b[:], s.clientBinding(prefix, ua)), string(sh[:]), bits
}

// openChallenge verifies a challenge token for the binding at now.
func (s *Service) openChallenge(v string, prefix netip.Prefix, ua string, now time.Time) (challengeToken, bool) {
	var buf [maxTokenBytes]byte
	tok, ok := s.keys.open(v, kindChallenge, s.clientBinding(prefix, ua), now, 0, &buf)
	if !ok || len(tok) != challengeSize {
		return challengeToken{}, false
	}
	var c challengeToken
	copy(c.id[:], tok[10:26])
	c.bits = int(tok[26])
	c.flags = tok[27]
	c.issuedMs = int64(binary.BigEndian.Uint64(tok[28:36]))
	c.exp = tokenExpiry(tok).Unix()
	return c, true
}

// hasCookie reports whether r carries a cookie called name (any value).
func hasCookie(h http.Header, name string) bool {
	sc := cookieScan{lines: h["Cookie"]}
	_, ok := sc.next(name)
	return ok
}

// cookieScan iterates the values of one cookie name across Cookie header
// lines (RFC 6265 §5.4 "name=value; name=value") without allocating.
type cookieScan struct {
	lines []string
	line  int
	pos   int
}

// next returns the next value of the cookie called name, with surrounding
// double quotes removed.
func (c *cookieScan) next(name string) (string, bool) {
	for c.line < len(c.lines) {
		s := c.lines[c.line]
		for c.pos < len(s) {
			part := s[c.pos:]
			end := strings.IndexByte(part, ';')
			if end < 0 {
				end = len(part)
			}
			c.pos += end + 1
			part = strings.TrimSpace(part[:end])
			n, v, ok := strings.Cut(part, "=")
			if !ok || strings.TrimSpace(n) != name {
				continue
			}
			v = strings.TrimSpace(v)
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
		c.line++
		c.pos = 0
	}
	return "", false
}
