package app

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/internal/challenge"
	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/detect"
	"github.com/portcullis/portcullis/internal/filter"
	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/netset"
	"github.com/portcullis/portcullis/internal/ratelimit"
)

// challengeShared is the challenge state that outlives config generations:
// signing keys (persisted under the data dir so restarts do not log
// everyone out), the single-use memory of redeemed challenges, metrics.
type challengeShared struct {
	keys    *challenge.Keyring
	state   *challenge.State
	metrics *challenge.Metrics
	// feeds holds each site's per-address feed limiter (site name →
	// *ratelimit.Limiter), kept across reloads.
	feeds sync.Map
}

// Feed requests pass the challenge (HANDED F24); so that exempting them is
// no bypass, each address may fetch a site's feeds feedLimitCount times per
// feedLimitPeriod (burst: the whole minute's allowance, as a reader that
// polls several feeds at once needs).
const (
	feedLimitCount  = 60
	feedLimitPeriod = time.Minute
)

// feedLimiter returns site's feed limiter.
func (c *challengeShared) feedLimiter(site string) (*ratelimit.Limiter, error) {
	if v, ok := c.feeds.Load(site); ok {
		return v.(*ratelimit.Limiter), nil
	}
	l, err := ratelimit.NewLimiter(ratelimit.Rate{Count: feedLimitCount, Period: feedLimitPeriod}, ratelimit.Options{MaxKeys: 1 << 16})
	if err != nil {
		return nil, fmt.Errorf("feed limit: %w", err)
	}
	v, _ := c.feeds.LoadOrStore(site, l)
	return v.(*ratelimit.Limiter), nil
}

// feedLimit is the rate-limit stage filter of feed requests (HANDED F24
// step 4): 429 with Retry-After beyond the per-address feed allowance.
type feedLimit struct {
	lim *ratelimit.Limiter
}

func (f *feedLimit) Name() string { return "feed-limit" }

func (f *feedLimit) Check(r *filter.Request) filter.Verdict {
	if !challenge.IsFeed(r.Path, r.HTTP.URL.RawQuery) {
		return filter.Verdict{}
	}
	if d := f.lim.AllowAt(ratelimit.KeyFromAddr(r.Addr), r.Now); !d.Allowed {
		return filter.Verdict{Action: filter.Throttle, RetryAfter: d.RetryAfter, Rule: "feed-limit",
			Reason: "too many feed requests, please poll less often", Cause: "per-address feed limit 60/min"}
	}
	return filter.Verdict{}
}

func (a *App) initChallenge(cfg *config.Config, reg prometheus.Registerer) error {
	now := time.Now()
	m, err := challenge.NewMetrics(reg)
	if err != nil {
		return err
	}
	a.chal = &challengeShared{
		keys:    challenge.NewKeyring(challenge.KeyringOptions{Path: filepath.Join(cfg.DataDir, "challenge-keys.json"), Logger: a.log.With("component", "challenge")}, now),
		state:   challenge.NewState(0, now),
		metrics: m,
	}
	return nil
}

// siteChallenge builds one site's challenge service and wires it into the
// site: the standing filter (allow stage: members pass before anything
// else), the challenge filter (challenge stage: under-attack mode or a
// challenge decision), the chain's challenge writer, the shield endpoints
// under /.portcullis/, and the member-standing hook on origin responses.
func (a *App) siteChallenge(cfg *config.Config, sc config.Site, index int, stages map[filter.Stage][]filter.Filter) (*challenge.Service, error) {
	opts := challenge.Options{
		Site: sc.Name, Keys: a.chal.keys, State: a.chal.state, Metrics: a.chal.metrics,
		Logger:     a.log.With("component", "challenge", "site", sc.Name),
		Brand:      challenge.Brand{SiteName: sc.Name},
		OnFailed:   func(addr netip.Addr) { a.mitigation.challengeFailed(index, addr) },
		Difficulty: cfg.Challenge.Difficulty,
	}
	if cfg.Challenge.JWTCookie != "" {
		key, err := os.ReadFile(cfg.Challenge.JWTKeyFile)
		if err != nil {
			return nil, fmt.Errorf("challenge: jwt key: %w", err)
		}
		opts.JWT = challenge.JWTOptions{Cookie: cfg.Challenge.JWTCookie, Key: []byte(strings.TrimSpace(string(key)))}
	}
	svc, err := challenge.New(opts)
	if err != nil {
		return nil, err
	}
	var crawlers *netset.Set
	if len(cfg.Challenge.VerifiedCrawlers) > 0 {
		crawlers = netset.New(prefixes(cfg.Challenge.VerifiedCrawlers)...)
	}
	m := a.mitigation
	f := challenge.NewFilter(svc, challenge.FilterOptions{
		// The policy's under-attack mode spares peace-time visitors (see
		// decisionFilter); r.Challenge carries every other challenge.
		ShouldChallenge: func(r *filter.Request) bool {
			return r.Challenge || (m.underAttack(r.Site) && !m.good.peaceTime(r.Site, r.Addr, r.Prefix))
		},
		APIPaths:         []string{"/api/"},
		HealthPaths:      []string{"/healthz", "/health", "/.well-known/"},
		VerifiedCrawlers: crawlers,
	})
	stages[filter.StageAllow] = append([]filter.Filter{&standingFilter{svc: svc, good: m.good, tags: &m.rec.tags}, &knownFilter{good: m.good},
		&cohortFilter{svc: svc, tags: &m.rec.tags}}, stages[filter.StageAllow]...)
	stages[filter.StageChallenge] = append(stages[filter.StageChallenge], f)
	feeds, err := a.chal.feedLimiter(sc.Name)
	if err != nil {
		return nil, err
	}
	stages[filter.StageRateLimit] = append(stages[filter.StageRateLimit], &feedLimit{lim: feeds})
	return svc, nil
}

// standingFilter lets members with valid standing (a signed token issued
// when the origin marked a login) through before any other filter: they
// keep working through an attack even when their address changes.
type standingFilter struct {
	svc  *challenge.Service
	good *goodness
	// tags marks the request as a member's for the incident record.
	tags *tagTable
}

func (f *standingFilter) Name() string { return "standing" }

func (f *standingFilter) Check(r *filter.Request) filter.Verdict {
	if len(r.HTTP.Header["Cookie"]) == 0 {
		return filter.Verdict{}
	}
	if _, ok := f.svc.VerifyStanding(r.HTTP); ok {
		r.Member, r.Known = true, true
		f.good.note(r.Addr, r.Prefix, r.ASN)
		f.tags.set(r.ID, tagMember)
		return filter.Verdict{Action: filter.Bypass, Rule: "member-standing", Cause: "member standing"}
	}
	return filter.Verdict{}
}

// memberHook returns the origin-response hook of a site: a response that
// carries the member header (the origin marks a login) gets a standing
// cookie; the header never reaches the client.
func memberHook(header string, current func() *challenge.Service) func(*http.Response) error {
	header = http.CanonicalHeaderKey(header)
	return func(resp *http.Response) error {
		id := resp.Header.Get(header)
		if _, ok := resp.Header[header]; !ok {
			return nil
		}
		resp.Header.Del(header)
		svc := current()
		if id == "" || svc == nil || resp.Request == nil {
			return nil
		}
		// The outbound request carries the client's cookies; TLS toward
		// the client is known from the proxy's X-Forwarded-Proto.
		in := &http.Request{Header: resp.Request.Header}
		if strings.EqualFold(resp.Request.Header.Get("X-Forwarded-Proto"), "https") {
			in.TLS = &tls.ConnectionState{}
		}
		return svc.SetStanding(resp.Header, id, in)
	}
}

// knownFilter marks peace-time visitors (clients served normally before an
// attack) so the origin proxy gives them priority; it never decides.
type knownFilter struct{ good *goodness }

func (f *knownFilter) Name() string { return "known-good" }

func (f *knownFilter) Check(r *filter.Request) filter.Verdict {
	if !r.Known && f.good.peaceTime(r.Site, r.Addr, r.Prefix) {
		r.Known = true
	}
	return filter.Verdict{}
}

// attackDifficultyBits is added to the configured proof-of-work difficulty
// while a site is under attack: each solve costs a flooding client about
// 16× more, while a visitor's browser still solves it in a few seconds
// (see internal/challenge's solve-time table).
const attackDifficultyBits = 4

// adaptDifficulty sets each site's challenge difficulty from its attack
// state: the configured bits in peace time, more while suspected or under
// attack.
func (a *App) adaptDifficulty(targets []detect.TargetStatus) {
	a.mu.Lock()
	g := a.gen
	a.mu.Unlock()
	if g == nil {
		return
	}
	base := g.cfg.Challenge.Difficulty
	for _, t := range targets {
		if t.Site < 0 || t.Site >= len(g.challenges) {
			continue
		}
		bits := base
		if t.State == incident.StateAttack || t.State == incident.StateSuspected {
			bits = min(base+attackDifficultyBits, 24)
		}
		if g.challenges[t.Site].Difficulty() != bits {
			g.challenges[t.Site].SetDifficulty(bits)
		}
	}
}
