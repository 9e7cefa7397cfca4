package app

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"github.com/portcullis/portcullis/internal/challenge"
	"github.com/portcullis/portcullis/internal/clientip"
	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/edge"
	"github.com/portcullis/portcullis/internal/filter"
	"github.com/portcullis/portcullis/internal/netset"
	"github.com/portcullis/portcullis/internal/proxy"
	"github.com/portcullis/portcullis/internal/ratelimit"
)

// state is what survives reloads: rate-limit tables, origin pools, list
// watchers. Keys are stable names derived from the config.
type state struct {
	limiters map[string]*ratelimit.Limiter
	pools    map[string]*proxy.Pool
	watchers map[string]*netset.Watcher
	inflight *ratelimit.Concurrency
	buffer   *edge.BodyBuffer
}

func newState() *state {
	return &state{limiters: map[string]*ratelimit.Limiter{}, pools: map[string]*proxy.Pool{}, watchers: map[string]*netset.Watcher{}}
}

// generation is one built configuration: the handler runtime plus what it
// uses from state (so unused pools/watchers can be closed after a swap).
type generation struct {
	cfg        *config.Config
	rt         *edge.Runtime
	pools      map[string]*proxy.Pool
	watchers   map[string]*netset.Watcher
	limiters   map[string]*ratelimit.Limiter
	newPools   []*proxy.Pool
	challenges []*challenge.Service // by site index
}

// build turns a validated config into a runtime, reusing state where the
// config names the same thing (limiter state, pools, watchers survive
// reloads). It does not start or close anything.
func (a *App) build(cfg *config.Config) (*generation, error) {
	g := &generation{cfg: cfg, pools: map[string]*proxy.Pool{}, watchers: map[string]*netset.Watcher{}, limiters: map[string]*ratelimit.Limiter{}}
	var trusted []netip.Prefix
	for _, p := range cfg.ClientIP.TrustedProxies {
		trusted = append(trusted, p.P())
	}
	res, err := clientip.New(clientip.Config{TrustedProxies: trusted, Headers: cfg.ClientIP.Headers, IPv4PrefixBits: cfg.ClientIP.IPv4Prefix, IPv6PrefixBits: cfg.ClientIP.IPv6Prefix})
	if err != nil {
		return nil, err
	}
	l := cfg.Limits
	rt := &edge.Runtime{
		ByHost:   map[string]*edge.Site{},
		Resolver: res,
		Limits: edge.RequestLimits{
			BodyIdleTimeout: l.BodyIdleTimeout.D(), MinBodyRate: int64(l.MinBodyRate), BodyGrace: l.BodyGrace.D(),
			WriteIdleTimeout: l.WriteIdleTimeout.D(), H2ResetBudget: l.H2ResetBudget,
			H2ResetPenalty: edge.DefaultH2ResetPenalty, // no config setting yet
		},
	}
	if l.MaxInflightPerClient > 0 {
		if a.state.inflight == nil {
			c, err := ratelimit.NewConcurrency(l.MaxInflightPerClient, ratelimit.Options{})
			if err != nil {
				return nil, err
			}
			a.state.inflight = c
		} else if err := a.state.inflight.SetMax(l.MaxInflightPerClient); err != nil {
			return nil, err
		}
		rt.Inflight = a.state.inflight
	}
	bufCfg := edge.BufferConfig{MemoryBytes: int64(l.RequestBufferBytes), TotalBytes: int64(l.RequestBufferTotalBytes),
		PerClientBytes: int64(l.RequestBufferPerClientBytes), SpoolDir: filepath.Join(cfg.DataDir, "spool"),
		IPv4PrefixBits: cfg.ClientIP.IPv4Prefix, IPv6PrefixBits: cfg.ClientIP.IPv6Prefix}
	if a.state.buffer == nil {
		b, err := edge.NewBodyBuffer(bufCfg, a.reg)
		if err != nil {
			return nil, err
		}
		a.state.buffer = b
	} else if err := a.state.buffer.SetLimits(bufCfg); err != nil {
		return nil, err
	}
	rt.Buffer = a.state.buffer
	sampler := filter.NewSampler(a.log.With("component", "shield"), cfg.Log.ShieldPerSecond, cfg.Log.SampleEvery)
	recs, err := a.mitigation.rec.configure(cfg)
	if err != nil {
		return nil, err
	}
	for i, sc := range cfg.Sites {
		site := &edge.Site{Index: i, Name: sc.Name, MaxBodyBytes: int64(l.MaxBodyBytes)}
		for _, r := range sc.Routes {
			stream := r.BufferRequest != nil && !*r.BufferRequest
			if r.MaxBodyBytes > 0 || stream {
				site.Routes = append(site.Routes, edge.Route{Prefix: r.Path, MaxBodyBytes: int64(r.MaxBodyBytes), Stream: stream})
			}
		}
		sort.Slice(site.Routes, func(i, j int) bool { return len(site.Routes[i].Prefix) > len(site.Routes[j].Prefix) })
		stages := map[filter.Stage][]filter.Filter{}
		for _, rules := range []struct {
			scope string
			r     config.Rules
		}{{"global", cfg.Rules}, {"site:" + sc.Name, sc.Rules}} {
			if err := a.addRules(g, stages, rules.scope, sc.Name, rules.r); err != nil {
				return nil, err
			}
		}
		stages[filter.StageDeny] = append([]filter.Filter{&decisionFilter{m: a.mitigation}}, stages[filter.StageDeny]...)
		svc, err := a.siteChallenge(cfg, sc, i, stages)
		if err != nil {
			return nil, err
		}
		g.challenges = append(g.challenges, svc)
		site.Chain = filter.NewChain(stages, sampler)
		site.Chain.OnChallenge(svc.Write)
		site.Chain.OnWrite(recs[i].onWrite(a.explain.add))
		site.Endpoints = recs[i].endpoints(func(w http.ResponseWriter, r *http.Request, fr *filter.Request) bool {
			if !challenge.Handles(r.URL.Path) {
				return false
			}
			svc.ServeEndpoint(w, r, fr)
			return true
		})
		pool, err := a.pool(g, sc)
		if err != nil {
			return nil, err
		}
		site.Origin = recs[i].origin(pool)
		idx := i
		pool.SetResponseHook(recs[i].hook(memberHook(cfg.Challenge.MemberHeader, func() *challenge.Service { return a.currentChallenge(idx) })))
		rt.Sites = append(rt.Sites, site)
		for _, h := range sc.Hosts {
			if h == "*" {
				rt.Default = site
				continue
			}
			rt.ByHost[strings.ToLower(h)] = site
		}
	}
	if rt.Default == nil {
		rt.Default = rt.Sites[0]
	}
	g.rt = rt
	return g, nil
}

func (a *App) addRules(g *generation, stages map[filter.Stage][]filter.Filter, scope, site string, r config.Rules) error {
	if len(r.Allow) > 0 {
		stages[filter.StageAllow] = append(stages[filter.StageAllow], &filter.AllowList{ID: scope + ":allow", Sources: []filter.SetSource{filter.StaticSet{S: netset.New(prefixes(r.Allow)...)}}})
	}
	if len(r.Deny) > 0 {
		stages[filter.StageDeny] = append(stages[filter.StageDeny], &filter.DenyList{ID: scope + ":deny", Sources: []filter.SetSource{filter.StaticSet{S: netset.New(prefixes(r.Deny)...)}}})
	}
	for _, path := range r.DenyLists {
		w, ok := a.state.watchers[path]
		if !ok {
			var err error
			w, err = netset.NewWatcher(a.log.With("component", "deny-list", "file", path), []string{path}, netset.WatcherOptions{})
			if err != nil {
				return fmt.Errorf("deny list %s: %w", path, err)
			}
			a.state.watchers[path] = w
		}
		g.watchers[path] = w
		stages[filter.StageDeny] = append(stages[filter.StageDeny], &filter.DenyList{ID: "deny-list:" + path, Sources: []filter.SetSource{w}})
	}
	for _, rl := range r.RateLimits {
		rate := ratelimit.Rate{Count: rl.Rate.Count, Period: rl.Rate.Period, Burst: rl.Burst}
		key := scope + "/" + site + "/" + rl.Name + "/" + rl.Key
		lim, ok := a.state.limiters[key]
		if ok {
			if err := lim.SetRate(rate); err != nil {
				return fmt.Errorf("rate limit %s: %w", rl.Name, err)
			}
		} else {
			var err error
			lim, err = ratelimit.NewLimiter(rate, ratelimit.Options{})
			if err != nil {
				return fmt.Errorf("rate limit %s: %w", rl.Name, err)
			}
			a.state.limiters[key] = lim
		}
		g.limiters[key] = lim
		kind := filter.KeyAddress
		if rl.Key == "prefix" {
			kind = filter.KeyPrefix
		}
		stages[filter.StageRateLimit] = append(stages[filter.StageRateLimit], &filter.RateLimit{
			ID: rl.Name, Key: kind, Paths: rl.Paths, Limiter: lim, Shadow: rl.Shadow,
			Cause: fmt.Sprintf("per-%s %s burst %d", rl.Key, rl.Rate, rate.EffectiveBurst()),
		})
	}
	return nil
}

func prefixes(ps []config.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		out[i] = p.P()
	}
	return out
}

// pool returns the site's origin pool, reusing the running one when the
// origins and pool settings are unchanged.
func (a *App) pool(g *generation, sc config.Site) (*proxy.Pool, error) {
	pc := proxy.PoolConfig{
		Site: sc.Name, MaxConcurrency: sc.MaxOriginConcurrency, QueueTimeout: sc.QueueTimeout.D(),
		HealthPath: healthPath(sc.HealthCheck.Path), HealthInterval: sc.HealthCheck.Interval.D(), HealthTimeout: sc.HealthCheck.Timeout.D(),
		UnhealthyAfter: sc.HealthCheck.UnhealthyAfter, HealthyAfter: sc.HealthCheck.HealthyAfter,
		DialTimeout: sc.DialTimeout.D(), ResponseHeaderTimeout: sc.OriginTimeout.D(), MaxIdleConns: sc.MaxIdleConns,
		MinConcurrency: sc.MinOriginConcurrency, ReservedShare: sc.ReservedShare, Registerer: a.reg,
	}
	for _, pr := range sc.Priorities {
		prio, err := proxy.ParsePriority(pr.Priority)
		if err != nil {
			return nil, fmt.Errorf("site %s: %w", sc.Name, err)
		}
		pc.Priorities = append(pc.Priorities, proxy.RoutePriority{Prefix: pr.Path, Priority: prio})
	}
	if c := sc.Cache; c.Enabled != nil && *c.Enabled {
		pc.Cache = proxy.CacheConfig{Enabled: true, DefaultTTL: c.DefaultTTL.D(), StaleFor: c.StaleFor.D(), MaxEntries: c.MaxEntries,
			MaxBytes: int64(c.MaxBytes), MaxObjectBytes: int64(c.MaxObjectBytes),
			IgnoreQueryOn: c.IgnoreQueryOn, KeepQuery: c.KeepQuery, AnonymousCookies: c.AnonymousCookies}
	}
	for _, o := range sc.Origins {
		u, err := url.Parse(o)
		if err != nil {
			return nil, fmt.Errorf("site %s: origin %q: %w", sc.Name, o, err)
		}
		pc.Origins = append(pc.Origins, u)
	}
	key := fmt.Sprintf("%s|%v|%+v", sc.Name, sc.Origins, pc)
	if p, ok := a.state.pools[key]; ok {
		g.pools[key] = p
		return p, nil
	}
	p, err := proxy.NewPool(pc, a.log.With("component", "proxy"), edge.ClassifyError)
	if err != nil {
		return nil, err
	}
	a.state.pools[key] = p
	g.pools[key] = p
	g.newPools = append(g.newPools, p)
	return p, nil
}

// healthPath is the pool's HealthPath for a configured path: "" (no
// active checks) for config.HealthCheckOff.
func healthPath(p string) string {
	if p == config.HealthCheckOff {
		return ""
	}
	return p
}
