package proxy

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// CacheConfig configures a pool's micro-cache for anonymous GETs.
type CacheConfig struct {
	// Enabled turns the cache (and serve-stale) on.
	Enabled bool
	// DefaultTTL is the freshness of a cacheable response that carries no
	// s-maxage, max-age or Expires; 0 caches only responses the origin
	// marks.
	DefaultTTL time.Duration
	// StaleFor is how long past its freshness an entry is kept, to be
	// served when the origin is overloaded, erroring or down.
	StaleFor time.Duration
	// MaxEntries and MaxBytes bound the cache (least recently used
	// entries go first); MaxObjectBytes bounds one response body.
	MaxEntries     int
	MaxBytes       int64
	MaxObjectBytes int64
	// IgnoreQueryOn lists paths whose query string is dropped from the
	// cache key and from the origin fetch, except the KeepQuery
	// parameters (cache-busting defence): exact paths ("/"), or prefixes
	// ending in "*" ("/articles/*").
	IgnoreQueryOn []string
	KeepQuery     []string
	// AnonymousCookies are cookie names (exact, or prefixes ending in "*")
	// that do not make a request personal, such as the shield's own
	// "portcullis_*" clearance cookies; any other cookie, or an
	// Authorization header, bypasses the cache.
	AnonymousCookies []string
}

// ErrCacheConfig is returned by NewCache for impossible bounds.
var ErrCacheConfig = errors.New("proxy: invalid cache configuration")

const cacheShards = 16

// Cache is a bounded, sharded LRU of origin responses keyed by method,
// scheme, host, path, normalised query and Accept-Encoding class, with
// per-key fill coalescing. Cache-Control semantics follow RFC 9111 for a
// shared cache (s-maxage over max-age over Expires; no-store, private and
// no-cache are not stored; must-revalidate and proxy-revalidate entries
// are never served stale, §4.2.4). Safe for concurrent use.
type Cache struct {
	cfg     CacheConfig
	now     func() time.Time
	ignore  []string // exact paths
	ignoreP []string // prefixes
	keep    map[string]bool
	shards  [cacheShards]cacheShard
	n, size atomic.Int64
}

type cacheShard struct {
	mu         sync.RWMutex
	m          map[string]*entry
	head, tail *entry // most recently used first
	n          int
	size       int64
	fills      map[string]*fill
	// pass marks keys whose last response was uncacheable (expiry). It is
	// kept apart from the entries so that a flood of uncacheable URLs
	// cannot evict stored pages (and their stale copies).
	pass map[string]time.Time
}

// entry is one stored response. Fields other than the LRU links never
// change after insertion, so readers may keep it after the shard lock.
type entry struct {
	key        string
	status     int
	header     http.Header
	body       []byte
	etag       string
	length     []string      // Content-Length value, unless trailers follow
	fetched    time.Time     // when the response arrived
	age        time.Duration // the origin's Age at that time
	fresh      time.Time     // fresh until
	staleUntil time.Time     // kept (and servable stale) until
	noStale    bool          // must-revalidate / proxy-revalidate
	size       int64
	bumped     atomic.Int64 // UnixNano of the last move to the LRU front
	prev, next *entry
}

// bumpEvery is how often a hit moves its entry to the front of the LRU:
// a hot key's hits share the read lock instead of queueing on the write
// lock, and the LRU order is exact to this resolution.
const bumpEvery = 100 * time.Millisecond

// passTTL is how long a key that produced an uncacheable response skips
// coalescing (Varnish's hit-for-miss).
const passTTL = 5 * time.Second

// NewCache returns a cache with cfg's bounds (MaxEntries ≥ 1, MaxBytes ≥
// MaxObjectBytes > 0, or ErrCacheConfig); now is its clock.
func NewCache(cfg CacheConfig, now func() time.Time) (*Cache, error) {
	if cfg.MaxEntries < 1 || cfg.MaxObjectBytes < 1 || cfg.MaxBytes < cfg.MaxObjectBytes {
		return nil, ErrCacheConfig
	}
	if now == nil {
		now = time.Now
	}
	c := &Cache{cfg: cfg, now: now, keep: map[string]bool{}}
	for _, p := range cfg.IgnoreQueryOn {
		if s, ok := strings.CutSuffix(p, "*"); ok {
			c.ignoreP = append(c.ignoreP, s)
		} else {
			c.ignore = append(c.ignore, p)
		}
	}
	for _, k := range cfg.KeepQuery {
		c.keep[k] = true
	}
	for i := range c.shards {
		c.shards[i].m = map[string]*entry{}
		c.shards[i].fills = map[string]*fill{}
		c.shards[i].pass = map[string]time.Time{}
	}
	return c, nil
}

// passed reports whether key is marked uncacheable at now.
func (c *Cache) passed(key []byte, now time.Time) bool {
	s := c.shard(key)
	s.mu.RLock()
	until, ok := s.pass[string(key)]
	s.mu.RUnlock()
	return ok && now.Before(until)
}

// markPass records that key's responses are uncacheable for passTTL. The
// markers of a shard are bounded like its entries; a full set drops an
// arbitrary marker (expired ones first).
func (c *Cache) markPass(key string, now time.Time) {
	s := c.shardOf(key)
	maxN := max(1, c.cfg.MaxEntries/cacheShards)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pass[key]; !ok && len(s.pass) >= maxN {
		victim := ""
		for k, until := range s.pass {
			victim = k
			if now.After(until) {
				break
			}
		}
		delete(s.pass, victim)
	}
	s.pass[key] = now.Add(passTTL)
}

// Len returns the number of entries and the bytes they hold.
func (c *Cache) Len() (entries, bytes int64) { return c.n.Load(), c.size.Load() }

func (c *Cache) shard(key []byte) *cacheShard {
	return &c.shards[xxhash.Sum64(key)%cacheShards]
}

func (c *Cache) shardOf(key string) *cacheShard {
	return &c.shards[xxhash.Sum64String(key)%cacheShards]
}

// get returns the entry under key, or nil; an entry past its stale window
// is dropped. A hit becomes the most recently used (at most once per
// bumpEvery).
func (c *Cache) get(key []byte, now time.Time) *entry {
	s := c.shard(key)
	t := now.UnixNano()
	s.mu.RLock()
	e := s.m[string(key)]
	if e == nil || (!now.After(e.staleUntil) && t-e.bumped.Load() < int64(bumpEvery)) {
		s.mu.RUnlock()
		return e
	}
	s.mu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[string(key)] != e {
		return s.m[string(key)] // replaced meanwhile: the newer entry is fine
	}
	if now.After(e.staleUntil) {
		c.removeLocked(s, e)
		return nil
	}
	e.bumped.Store(t)
	if s.head != e {
		s.unlink(e)
		s.pushFront(e)
	}
	return e
}

// put stores e, replacing an older entry under its key and evicting least
// recently used entries beyond the shard's share of the bounds.
func (c *Cache) put(e *entry) {
	s := c.shardOf(e.key)
	maxN := max(1, c.cfg.MaxEntries/cacheShards)
	maxB := max(c.cfg.MaxObjectBytes, c.cfg.MaxBytes/cacheShards)
	s.mu.Lock()
	delete(s.pass, e.key)
	if old := s.m[e.key]; old != nil {
		c.removeLocked(s, old)
	}
	s.m[e.key] = e
	s.pushFront(e)
	s.n++
	s.size += e.size
	c.n.Add(1)
	c.size.Add(e.size)
	for (s.n > maxN || s.size > maxB) && s.tail != nil && s.tail != e {
		c.removeLocked(s, s.tail)
	}
	s.mu.Unlock()
}

func (c *Cache) removeLocked(s *cacheShard, e *entry) {
	delete(s.m, e.key)
	s.unlink(e)
	s.n--
	s.size -= e.size
	c.n.Add(-1)
	c.size.Add(-e.size)
}

func (s *cacheShard) pushFront(e *entry) {
	e.prev, e.next = nil, s.head
	if s.head != nil {
		s.head.prev = e
	} else {
		s.tail = e
	}
	s.head = e
}

func (s *cacheShard) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// fill is one origin fetch of a key that other requests for the key wait
// on (request coalescing).
type fill struct {
	done     chan struct{}
	finished bool
	outcome  int // fillStored, fillFailed, fillPass
}

// Fill outcomes.
const (
	fillPass   = iota // the response was not cacheable: fetch on your own
	fillStored        // a fresh entry is in the cache
	fillFailed        // the origin was overloaded, erroring or down
)

// join returns the running fill of key, or starts one (leader = true).
func (c *Cache) join(key string) (f *fill, leader bool) {
	s := c.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.fills[key]; f != nil {
		return f, false
	}
	f = &fill{done: make(chan struct{})}
	s.fills[key] = f
	return f, true
}

// finish ends the fill of key with outcome and wakes its waiters; later
// calls do nothing.
func (c *Cache) finish(key string, f *fill, outcome int) {
	s := c.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.finished {
		return
	}
	f.finished, f.outcome = true, outcome
	if s.fills[key] == f {
		delete(s.fills, key)
	}
	close(f.done)
}

// eligible reports whether r may be answered from the cache: a GET or
// HEAD without credentials (Authorization, or a cookie not in
// AnonymousCookies) that is not a protocol upgrade.
func (c *Cache) eligible(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	h := r.Header
	if len(h["Authorization"]) > 0 || len(h["Upgrade"]) > 0 {
		return false
	}
	for _, line := range h["Cookie"] {
		if !c.anonymousCookies(line) {
			return false
		}
	}
	return true
}

// anonymousCookies reports whether every cookie in a Cookie header line is
// named in AnonymousCookies.
func (c *Cache) anonymousCookies(line string) bool {
	for line != "" {
		var part string
		part, line, _ = strings.Cut(line, ";")
		name, _, _ := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !matchName(c.cfg.AnonymousCookies, name) {
			return false
		}
	}
	return true
}

// matchName reports whether name equals a pattern or starts with a
// pattern's text before its trailing "*".
func matchName(patterns []string, name string) bool {
	for _, p := range patterns {
		if pre, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(name, pre) {
				return true
			}
		} else if p == name {
			return true
		}
	}
	return false
}

// ignoresQuery reports whether path is an IgnoreQueryOn route.
func (c *Cache) ignoresQuery(path string) bool {
	for _, p := range c.ignore {
		if p == path {
			return true
		}
	}
	for _, p := range c.ignoreP {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// appendKey appends r's cache key to dst: "GET" (HEAD shares GET's
// entries), scheme, lower-case host, escaped path, normalised query and
// the Accept-Encoding class. On IgnoreQueryOn routes it also returns the
// normalised query and rewrite = true: the fetch uses that query, so the
// stored response matches its key.
func (c *Cache) appendKey(dst []byte, r *http.Request) (key []byte, query string, rewrite bool) {
	dst = append(dst, "GET "...)
	if r.TLS != nil {
		dst = append(dst, "https "...)
	} else {
		dst = append(dst, "http "...)
	}
	for i := 0; i < len(r.Host); i++ {
		b := r.Host[i]
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		dst = append(dst, b)
	}
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	dst = append(dst, ' ')
	dst = append(dst, path...)
	dst = append(dst, '?')
	qStart := len(dst)
	rewrite = c.ignoresQuery(r.URL.Path)
	dst = c.appendQuery(dst, r.URL.RawQuery, rewrite)
	if rewrite && r.URL.RawQuery != string(dst[qStart:]) {
		query = string(dst[qStart:])
	} else {
		rewrite = false
	}
	dst = append(dst, 0, 'a'+encodingClass(r.Header["Accept-Encoding"]))
	return dst, query, rewrite
}

// appendQuery appends the query's non-empty parameters sorted by name
// (stable, so repeated names keep their order); with onlyKept, only the
// KeepQuery parameters.
func (c *Cache) appendQuery(dst []byte, raw string, onlyKept bool) []byte {
	var buf [16]string
	params := buf[:0]
	for raw != "" {
		var p string
		p, raw, _ = strings.Cut(raw, "&")
		if p == "" {
			continue
		}
		if onlyKept {
			name, _, _ := strings.Cut(p, "=")
			if !c.keep[name] {
				continue
			}
		}
		params = append(params, p)
	}
	// Insertion sort by name: queries are short.
	for i := 1; i < len(params); i++ {
		for j := i; j > 0 && paramName(params[j]) < paramName(params[j-1]); j-- {
			params[j], params[j-1] = params[j-1], params[j]
		}
	}
	for i, p := range params {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, p...)
	}
	return dst
}

func paramName(p string) string {
	name, _, _ := strings.Cut(p, "=")
	return name
}

// encodingClass maps Accept-Encoding to a bit set of the content codings
// origins produce (gzip 1, br 2, zstd 4, deflate 8) with q > 0, so that
// arbitrary header values cannot multiply a key's variants.
func encodingClass(lines []string) byte {
	var class byte
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ",")
			coding, params, _ := strings.Cut(part, ";")
			if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
				if v, err := strconv.ParseFloat(strings.TrimSpace(q), 64); err == nil && v <= 0 {
					continue
				}
			}
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				class |= 1
			case "br":
				class |= 2
			case "zstd":
				class |= 4
			case "deflate":
				class |= 8
			}
		}
	}
	return class
}

// storePolicy is what a response's headers allow.
type storePolicy struct {
	store   bool          // store it
	pass    bool          // structurally uncacheable: mark the key
	fresh   time.Duration // freshness lifetime left (may be ≤ 0)
	noStale bool
}

// policy decides whether a response with status and header h may be
// stored (RFC 9111 §3 for a shared cache; only statuses 200, 301 and 404,
// no Set-Cookie, Vary at most Accept-Encoding, no trailers or streams).
func (c *Cache) policy(status int, h http.Header, now time.Time) storePolicy {
	switch status {
	case http.StatusOK, http.StatusMovedPermanently, http.StatusNotFound:
	default:
		return storePolicy{}
	}
	uncacheable := storePolicy{pass: true}
	if len(h["Set-Cookie"]) > 0 || len(h["Trailer"]) > 0 {
		return uncacheable
	}
	for _, line := range h["Vary"] {
		for line != "" {
			var v string
			v, line, _ = strings.Cut(line, ",")
			if v = strings.TrimSpace(v); v != "" && !strings.EqualFold(v, "Accept-Encoding") {
				return uncacheable
			}
		}
	}
	if isStream(h.Get("Content-Type")) {
		return uncacheable
	}
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err != nil || n > c.cfg.MaxObjectBytes {
			return uncacheable
		}
	}
	pol := storePolicy{store: true}
	maxAge, sMaxAge := time.Duration(-1), time.Duration(-1)
	for _, line := range h["Cache-Control"] {
		for line != "" {
			var d string
			d, line, _ = strings.Cut(line, ",")
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "private", "no-cache":
				return uncacheable
			case "must-revalidate", "proxy-revalidate":
				pol.noStale = true
			case "max-age":
				maxAge = parseSeconds(val)
			case "s-maxage":
				sMaxAge = parseSeconds(val)
			}
		}
	}
	switch {
	case sMaxAge >= 0:
		pol.fresh = sMaxAge
	case maxAge >= 0:
		pol.fresh = maxAge
	case len(h["Expires"]) > 0:
		exp, err := http.ParseTime(h.Get("Expires"))
		if err != nil {
			pol.fresh = 0 // an invalid Expires means "already expired" (§5.3)
			break
		}
		date, err := http.ParseTime(h.Get("Date"))
		if err != nil {
			date = now
		}
		pol.fresh = exp.Sub(date)
	case c.cfg.DefaultTTL > 0:
		pol.fresh = c.cfg.DefaultTTL
	default:
		return uncacheable
	}
	pol.fresh -= ageOf(h)
	if pol.fresh <= 0 && (pol.noStale || c.cfg.StaleFor <= 0) {
		return uncacheable
	}
	return pol
}

// parseSeconds parses a delta-seconds value (RFC 9111 §1.2.2); invalid
// values count as 0 (stale), as the RFC advises.
func parseSeconds(v string) time.Duration {
	n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(v), `"`), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(min(n, 1<<31)) * time.Second
}

// ageOf is the response's Age header.
func ageOf(h http.Header) time.Duration {
	if v := h.Get("Age"); v != "" {
		return parseSeconds(v)
	}
	return 0
}

// isStream reports whether a content type is an open-ended stream (SSE,
// NDJSON and friends), which is never cached or buffered.
func isStream(ct string) bool {
	ct, _, _ = strings.Cut(ct, ";")
	switch strings.ToLower(strings.TrimSpace(ct)) {
	case "text/event-stream", "application/x-ndjson", "application/ndjson", "application/stream+json",
		"application/jsonl", "application/json-seq", "multipart/x-mixed-replace", "application/grpc":
		return true
	}
	return false
}
