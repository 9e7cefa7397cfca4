package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/portcullis/portcullis/internal/routepattern"
)

// ApplyDefaults fills every unset field with its documented default (the
// `default` struct tags, which the config reference shows and a test checks
// against this function).
func (c *Config) ApplyDefaults() {
	if len(c.Listeners) == 0 {
		c.Listeners = []Listener{{Address: ":8080"}}
	}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.Address == "" {
			l.Address = ":8080"
		}
		if l.H2C == nil {
			t := true
			l.H2C = &t
		}
	}
	if c.Admin.Address == "" {
		c.Admin.Address = "127.0.0.1:9090"
	}
	if c.DataDir == "" {
		c.DataDir = "./portcullis-data"
	}
	if len(c.ClientIP.Headers) == 0 {
		c.ClientIP.Headers = []string{"X-Forwarded-For"}
	}
	if c.ClientIP.IPv4Prefix == 0 {
		c.ClientIP.IPv4Prefix = 24
	}
	if c.ClientIP.IPv6Prefix == 0 {
		c.ClientIP.IPv6Prefix = 64
	}
	l := &c.Limits
	durationDefault(&l.ReadHeaderTimeout, 10*time.Second)
	durationDefault(&l.BodyIdleTimeout, 10*time.Second)
	durationDefault(&l.BodyGrace, 5*time.Second)
	durationDefault(&l.WriteIdleTimeout, 30*time.Second)
	durationDefault(&l.IdleTimeout, 60*time.Second)
	byteDefault(&l.MinBodyRate, 1<<10)
	byteDefault(&l.MaxHeaderBytes, 32<<10)
	byteDefault(&l.MaxBodyBytes, 10<<20)
	byteDefault(&l.RequestBufferBytes, 1<<20)
	byteDefault(&l.RequestBufferTotalBytes, 64<<20)
	byteDefault(&l.RequestBufferPerClientBytes, max(int64(l.RequestBufferTotalBytes)/8, int64(l.RequestBufferBytes)))
	intDefault(&l.MaxConns, 20000)
	intDefault(&l.MaxConnsPerClient, 256)
	intDefault(&l.MaxInflightPerClient, 64)
	intDefault(&l.H2MaxConcurrentStreams, 100)
	intDefault(&l.H2ResetBudget, 200)
	c.Rules.applyDefaults()
	if len(c.Sites) == 0 {
		c.Sites = []Site{{Name: "default"}}
	}
	for i := range c.Sites {
		s := &c.Sites[i]
		if s.Name == "" {
			s.Name = "default"
			if i > 0 {
				s.Name = fmt.Sprintf("site%d", i)
			}
		}
		if len(s.Hosts) == 0 {
			s.Hosts = []string{"*"}
		}
		h := &s.HealthCheck
		if h.Path == "" {
			h.Path = "/healthz"
		}
		durationDefault(&h.Interval, 5*time.Second)
		durationDefault(&h.Timeout, 2*time.Second)
		intDefault(&h.UnhealthyAfter, 3)
		intDefault(&h.HealthyAfter, 2)
		intDefault(&s.MaxOriginConcurrency, 512)
		intDefault(&s.MinOriginConcurrency, min(4, s.MaxOriginConcurrency))
		if s.ReservedShare == 0 {
			s.ReservedShare = 0.2
		}
		durationDefault(&s.QueueTimeout, 100*time.Millisecond)
		for j := range s.Priorities {
			if s.Priorities[j].Priority == "" {
				s.Priorities[j].Priority = "normal"
			}
		}
		s.Cache.applyDefaults()
		durationDefault(&s.OriginTimeout, 30*time.Second)
		durationDefault(&s.DialTimeout, 3*time.Second)
		intDefault(&s.MaxIdleConns, 512)
		for j := range s.Routes {
			if s.Routes[j].BufferRequest == nil {
				t := true
				s.Routes[j].BufferRequest = &t
			}
		}
		if s.AuthRoutes == nil {
			s.AuthRoutes = []string{"/login"}
		}
		if s.ExpensiveRoutes == nil {
			s.ExpensiveRoutes = []string{"/search"}
		}
		s.Rules.applyDefaults()
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	intDefault(&c.Log.ShieldPerSecond, 50)
	intDefault(&c.Log.SampleEvery, 1000)
	intDefault(&c.Log.RetentionDays, 30)
	durationDefault(&c.Detect.Tick, 250*time.Millisecond)
	if c.Mitigation.Mode == "" {
		c.Mitigation.Mode = "enforce"
	}
	if c.Challenge.MemberHeader == "" {
		c.Challenge.MemberHeader = "X-Portcullis-Member"
	}
	intDefault(&c.Challenge.Difficulty, 14)
	durationDefault(&c.Alerts.EscalationInterval, time.Minute)
	intDefault(&c.Alerts.EscalationsPerHour, 20)
	if c.Alerts.MinPrefixShare == 0 {
		c.Alerts.MinPrefixShare = 0.01
	}
	for i := range c.Alerts.Webhooks {
		if c.Alerts.Webhooks[i].Kind == "" {
			c.Alerts.Webhooks[i].Kind = "generic"
		}
	}
	if c.Alerts.SMTP != nil {
		intDefault(&c.Alerts.SMTP.Port, 587)
	}
	if c.Detect.MinAttackRPS == 0 {
		c.Detect.MinAttackRPS = 50
	}
}

func (c *Cache) applyDefaults() {
	if c.Enabled == nil {
		t := true
		c.Enabled = &t
	}
	durationDefault(&c.StaleFor, 10*time.Minute)
	intDefault(&c.MaxEntries, 10000)
	byteDefault(&c.MaxBytes, 64<<20)
	byteDefault(&c.MaxObjectBytes, 1<<20)
	if c.AnonymousCookies == nil {
		c.AnonymousCookies = []string{"portcullis_*"}
	}
}

func (r *Rules) applyDefaults() {
	for i := range r.RateLimits {
		rl := &r.RateLimits[i]
		if rl.Key == "" {
			rl.Key = "address"
		}
		if rl.Name == "" {
			rl.Name = fmt.Sprintf("rate-limit-%d", i)
		}
	}
}

func intDefault(p *int, v int) {
	if p != nil && *p == 0 {
		*p = v
	}
}

func byteDefault(p *ByteSize, v int64) {
	if *p == 0 {
		*p = ByteSize(v)
	}
}

// Validate checks a defaulted configuration. file and f (the parsed YAML, may
// be nil) position the errors; Validate returns Errors or nil. Warnings (valid
// but suspicious settings) are returned separately by Warnings.
func (c *Config) Validate(file string, f *ast.File) error { return c.validate(file, f) }

func (c *Config) validate(file string, f *ast.File) error {
	v := &validator{file: file, f: f}
	for i, l := range c.Listeners {
		p := fmt.Sprintf("listeners[%d]", i)
		if _, _, err := net.SplitHostPort(l.Address); err != nil {
			v.add(p+".address", "invalid host:port %q", l.Address)
		}
		if t := l.TLS; t != nil {
			hasFiles := t.CertFile != "" || t.KeyFile != ""
			switch {
			case hasFiles && t.ACME != nil:
				v.add(p+".tls", "set either cert_file/key_file or acme, not both")
			case hasFiles && (t.CertFile == "" || t.KeyFile == ""):
				v.add(p+".tls", "cert_file and key_file must both be set")
			case !hasFiles && t.ACME == nil:
				v.add(p+".tls", "set cert_file and key_file, or acme")
			case t.ACME != nil && len(t.ACME.Domains) == 0:
				v.add(p+".tls.acme.domains", "at least one domain is required")
			case t.ACME != nil && !t.ACME.Agreed:
				v.add(p+".tls.acme.agreed", "must be true to accept the CA's terms of service")
			}
			for _, fn := range []struct{ field, name string }{{"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
				if fn.name != "" {
					if _, err := os.Stat(fn.name); err != nil {
						v.add(p+".tls."+fn.field, "cannot read %q: %v", fn.name, err)
					}
				}
			}
		}
	}
	if _, _, err := net.SplitHostPort(c.Admin.Address); c.Admin.Address != "off" && err != nil {
		v.add("admin.address", "invalid host:port %q (or \"off\")", c.Admin.Address)
	}
	if c.Admin.Token != "" && c.Admin.TokenFile != "" {
		v.add("admin.token_file", "set token or token_file, not both")
	}
	if host, _, err := net.SplitHostPort(c.Admin.Address); err == nil && c.Admin.Token == "" && c.Admin.TokenFile == "" && !isLoopbackHost(host) {
		v.add("admin.address", "the admin listener is not on loopback, so admin.token or admin.token_file is required")
	}
	if c.Admin.TokenFile != "" {
		if _, err := os.Stat(c.Admin.TokenFile); err != nil {
			v.add("admin.token_file", "cannot read: %v", err)
		}
	}
	for i, h := range c.ClientIP.Headers {
		switch strings.ToLower(h) {
		case "x-forwarded-for", "forwarded", "x-real-ip":
		default:
			v.add(fmt.Sprintf("client_ip.headers[%d]", i), "unsupported header %q (X-Forwarded-For, Forwarded or X-Real-IP)", h)
		}
	}
	if b := c.ClientIP.IPv4Prefix; b < 8 || b > 32 {
		v.add("client_ip.ipv4_prefix", "must be between 8 and 32, got %d", b)
	}
	if b := c.ClientIP.IPv6Prefix; b < 48 || b > 128 {
		v.add("client_ip.ipv6_prefix", "must be between 48 and 128, got %d", b)
	}
	lim := c.Limits
	for _, n := range []struct {
		field string
		val   int
	}{{"max_conns", lim.MaxConns}, {"max_conns_per_client", lim.MaxConnsPerClient}, {"max_inflight_per_client", lim.MaxInflightPerClient}, {"h2_max_concurrent_streams", lim.H2MaxConcurrentStreams}, {"h2_reset_budget", lim.H2ResetBudget}} {
		if n.val < 0 {
			v.add("limits."+n.field, "must not be negative")
		}
	}
	if lim.MaxHeaderBytes < 1024 {
		v.add("limits.max_header_bytes", "must be at least 1KiB")
	}
	if lim.RequestBufferBytes < 4<<10 {
		v.add("limits.request_buffer_bytes", "must be at least 4KiB, got %d", lim.RequestBufferBytes)
	}
	if lim.RequestBufferTotalBytes < lim.RequestBufferBytes {
		v.add("limits.request_buffer_total_bytes", "must be at least request_buffer_bytes (%d), got %d", lim.RequestBufferBytes, lim.RequestBufferTotalBytes)
	}
	if lim.RequestBufferPerClientBytes < lim.RequestBufferBytes || lim.RequestBufferPerClientBytes > lim.RequestBufferTotalBytes {
		v.add("limits.request_buffer_per_client_bytes", "must be between request_buffer_bytes (%d) and request_buffer_total_bytes (%d), got %d",
			lim.RequestBufferBytes, lim.RequestBufferTotalBytes, lim.RequestBufferPerClientBytes)
	}
	c.Rules.validate(v, "rules")
	names := map[string]bool{}
	hosts := map[string]string{}
	for i, s := range c.Sites {
		p := fmt.Sprintf("sites[%d]", i)
		if names[s.Name] {
			v.add(p+".name", "duplicate site name %q", s.Name)
		}
		names[s.Name] = true
		for j, h := range s.Hosts {
			h = strings.ToLower(h)
			if other, ok := hosts[h]; ok {
				v.add(fmt.Sprintf("%s.hosts[%d]", p, j), "host %q already belongs to site %q", h, other)
			}
			hosts[h] = s.Name
		}
		if len(s.Origins) == 0 {
			v.add(p+".origins", "at least one origin URL is required")
		}
		for j, o := range s.Origins {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				v.add(fmt.Sprintf("%s.origins[%d]", p, j), "invalid origin %q (want http://host:port or https://host)", o)
			}
		}
		if s.HealthCheck.Path != "" && s.HealthCheck.Path != HealthCheckOff && !strings.HasPrefix(s.HealthCheck.Path, "/") {
			v.add(p+".health_check.path", "must start with / (or be %q to disable active checks)", HealthCheckOff)
		}
		for j, r := range s.Routes {
			if !strings.HasPrefix(r.Path, "/") {
				v.add(fmt.Sprintf("%s.routes[%d].path", p, j), "must start with /")
			}
		}
		validateSensitiveRoutes(v, p, s.SensitiveRoutes)
		s.validateOrigin(v, p)
		s.Rules.validate(v, p+".rules")
	}
	if lv := strings.ToLower(c.Log.Level); lv != "debug" && lv != "info" && lv != "warn" && lv != "error" {
		v.add("log.level", "must be debug, info, warn or error")
	}
	if d := c.Challenge.Difficulty; d < 8 || d > 24 {
		v.add("challenge.difficulty", "must be between 8 and 24 bits, got %d", d)
	}
	if (c.Challenge.JWTCookie == "") != (c.Challenge.JWTKeyFile == "") {
		v.add("challenge.jwt_key_file", "jwt_cookie and jwt_key_file go together")
	}
	if f := c.Challenge.JWTKeyFile; f != "" {
		if b, err := os.ReadFile(f); err != nil {
			v.add("challenge.jwt_key_file", "cannot read: %v", err)
		} else if len(strings.TrimSpace(string(b))) < 32 {
			v.add("challenge.jwt_key_file", "the HS256 key must be at least 32 bytes (RFC 7518 §3.2)")
		}
	}
	for i, w := range c.Alerts.Webhooks {
		p := fmt.Sprintf("alerts.webhooks[%d]", i)
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(p+".url", "must be an http:// or https:// URL")
		}
		if w.Kind != "generic" && w.Kind != "slack" {
			v.add(p+".kind", "must be generic or slack, got %q", w.Kind)
		}
	}
	if s := c.Alerts.SMTP; s != nil {
		if s.Host == "" {
			v.add("alerts.smtp.host", "is required")
		}
		if s.From == "" || len(s.To) == 0 {
			v.add("alerts.smtp", "from and at least one to address are required")
		}
		if s.PasswordFile != "" {
			if _, err := os.Stat(s.PasswordFile); err != nil {
				v.add("alerts.smtp.password_file", "cannot read: %v", err)
			}
		}
	}
	switch c.Mitigation.Mode {
	case "enforce", "shadow", "observe":
	default:
		v.add("mitigation.mode", "must be enforce, shadow or observe, got %q", c.Mitigation.Mode)
	}
	if c.Detect.Tick.D() < 10*time.Millisecond || c.Detect.Tick.D() > time.Second {
		v.add("detect.tick", "must be between 10ms and 1s")
	}
	if len(v.errs) > 0 {
		return v.errs
	}
	return nil
}

// validateOrigin checks the origin-protection settings of a site at p.
func (s Site) validateOrigin(v *validator, p string) {
	if s.MaxOriginConcurrency < 1 {
		v.add(p+".max_origin_concurrency", "must be at least 1")
	}
	if s.MinOriginConcurrency < 1 || s.MinOriginConcurrency > s.MaxOriginConcurrency {
		v.add(p+".min_origin_concurrency", "must be between 1 and max_origin_concurrency (%d), got %d", s.MaxOriginConcurrency, s.MinOriginConcurrency)
	}
	if s.ReservedShare < 0 || s.ReservedShare > 0.9 {
		v.add(p+".reserved_share", "must be between 0 and 0.9, got %g", s.ReservedShare)
	}
	for j, pr := range s.Priorities {
		q := fmt.Sprintf("%s.priorities[%d]", p, j)
		if !strings.HasPrefix(pr.Path, "/") {
			v.add(q+".path", "must start with /")
		}
		switch strings.ToLower(pr.Priority) {
		case "critical", "normal", "low":
		default:
			v.add(q+".priority", "must be critical, normal or low, got %q", pr.Priority)
		}
	}
	c := s.Cache
	if c.MaxEntries < 1 {
		v.add(p+".cache.max_entries", "must be at least 1")
	}
	if c.MaxObjectBytes < 1 {
		v.add(p+".cache.max_object_bytes", "must be at least 1")
	}
	if c.MaxBytes < c.MaxObjectBytes {
		v.add(p+".cache.max_bytes", "must be at least max_object_bytes")
	}
	for j, path := range c.IgnoreQueryOn {
		if !strings.HasPrefix(path, "/") {
			v.add(fmt.Sprintf("%s.cache.ignore_query_on[%d]", p, j), "must start with /")
		}
	}
}

func (r Rules) validate(v *validator, p string) {
	for i, rl := range r.RateLimits {
		q := fmt.Sprintf("%s.rate_limits[%d]", p, i)
		if rl.Key != "address" && rl.Key != "prefix" {
			v.add(q+".key", "must be address or prefix, got %q", rl.Key)
		}
		if rl.Rate.Count <= 0 {
			v.add(q+".rate", "is required (COUNT/PERIOD, e.g. 100/10s)")
		}
		if rl.Burst < 0 {
			v.add(q+".burst", "must not be negative")
		}
		for j, path := range rl.Paths {
			if !strings.HasPrefix(path, "/") {
				v.add(fmt.Sprintf("%s.paths[%d]", q, j), "must start with /")
			}
		}
	}
	for i, fn := range r.DenyLists {
		if _, err := os.Stat(fn); err != nil {
			v.add(fmt.Sprintf("%s.deny_lists[%d]", p, i), "cannot read list file: %v", err)
		}
	}
}

// Warnings lists valid but suspicious settings (shown by `check` and at
// start), e.g. a per-minute limit without burst (case F07).
func (c *Config) Warnings() []string {
	var w []string
	check := func(p string, r Rules) {
		for i, rl := range r.RateLimits {
			perSec := float64(rl.Rate.Count) / rl.Rate.Period.Seconds()
			if rl.Burst == 0 && rl.Rate.Period > time.Second {
				w = append(w, fmt.Sprintf("%s.rate_limits[%d]: burst not set for %s; the default burst (COUNT, at least one second's worth) applies, so page loads are not refused but a key may use up to 2×COUNT in one period", p, i, rl.Rate))
			}
			if rl.Burst > 0 && rl.Rate.Period > time.Second {
				if float64(rl.Burst) < perSec {
					w = append(w, fmt.Sprintf("%s.rate_limits[%d]: burst %d is below the per-second equivalent %.0f of %s; normal page loads may be refused", p, i, rl.Burst, perSec, rl.Rate))
				}
			}
		}
	}
	check("rules", c.Rules)
	for i, s := range c.Sites {
		check(fmt.Sprintf("sites[%d].rules", i), s.Rules)
	}
	if c.Admin.Address != "off" && c.Admin.Token == "" && c.Admin.TokenFile == "" {
		w = append(w, "admin: no token configured: the admin API is unauthenticated; it is bound to "+c.Admin.Address+" — keep it on loopback")
	}
	return w
}

type validator struct {
	file string
	f    *ast.File
	errs Errors
}

func (v *validator) add(field, format string, args ...any) {
	line, col := position(v.f, field)
	v.errs = append(v.errs, &FieldError{File: v.file, Line: line, Column: col, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// validateSensitiveRoutes checks a site's sensitive_routes: at most
// routepattern.Max patterns, each valid (routepattern.Validate, the rule
// the incident recorder matches with), no duplicates.
func validateSensitiveRoutes(v *validator, site string, routes []string) {
	if len(routes) > routepattern.Max {
		v.add(site+".sensitive_routes", "at most %d sensitive routes, got %d", routepattern.Max, len(routes))
	}
	seen := map[string]bool{}
	for j, r := range routes {
		f := fmt.Sprintf("%s.sensitive_routes[%d]", site, j)
		if err := routepattern.Validate(r); err != nil {
			v.add(f, "%v", err)
		} else if seen[r] {
			v.add(f, "duplicate sensitive route %q", r)
		}
		seen[r] = true
	}
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
