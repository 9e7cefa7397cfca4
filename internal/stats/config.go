package stats

import (
	"errors"
	"fmt"
	"strings"
)

// ErrConfig is wrapped by every configuration validation error.
var ErrConfig = errors.New("stats: invalid config")

// Config sizes an Accountant. All memory is fixed by these numbers, never by
// the traffic: roughly, per site, 2^SourcePrecision bytes (distinct
// sources) + 6·TopK·~64 bytes (heavy hitters) + TopPaths·(2^QueryPrecision +
// LabelBytes) bytes (paths with their query sketches) + TopK·LabelBytes
// (user agents); plus MaxDestinations·2^DestPrecision bytes for packets and
// the two rings (RingSize·~340 bytes, PacketRingSize·~80 bytes). The default
// configuration uses about 12 MiB for one site.
type Config struct {
	// Sites lists the protected sites; a Request's Site is an index into it.
	// At least one.
	Sites []SiteConfig
	// RingSize is the capacity of the request ring buffer between the request
	// path and the drain (a power of two; default 16384). When it is full the
	// producer drains in-line if no one else is draining, and otherwise drops
	// the record from the sketches (exact counters still count it) and
	// counts it in Snapshot.Dropped.
	RingSize int
	// PacketRingSize is the same for packets (default 65536).
	PacketRingSize int
	// TopK is the number of counters of each heavy-hitter summary (addresses,
	// prefixes, ASNs, user agents, packet sources; default 256). Any key
	// with more than 1/TopK of a tick's weight is guaranteed to be reported.
	TopK int
	// TopPaths is the number of normalised paths tracked per site, each with
	// its own query-string sketch (default 128).
	TopPaths int
	// TopN is how many entries of each summary a Snapshot reports (default 20,
	// at most the summary's capacity).
	TopN int
	// SourcePrecision is the HyperLogLog precision of per-site and
	// packet-level distinct-source counts (default 14: 16 KiB, ±0.8%).
	SourcePrecision uint8
	// QueryPrecision is the HyperLogLog precision of the per-path
	// query-string counts (default 8: 256 bytes, ±6.5%).
	QueryPrecision uint8
	// DestPrecision is the HyperLogLog precision of per-destination packet
	// source counts (default 14: 16 KiB, ±0.8%; the destination under attack
	// reports its distinct sources from it).
	DestPrecision uint8
	// MaxDestinations bounds the packet destinations with their own
	// counters per tick (default 256); packets to further destinations count
	// in Snapshot.Net totals and OtherDestinations only.
	MaxDestinations int
}

// SiteConfig names one protected site and the routes counted exactly.
type SiteConfig struct {
	// Name is the site's name as shown in incidents.
	Name string
	// Routes are counted separately each tick (auth and expensive routes).
	Routes []Route
}

// Route selects requests by path and, optionally, method.
type Route struct {
	// Name identifies the route in snapshots and vectors ("login").
	Name string
	// Path matches a request path equal to it or below it ("/login" matches
	// "/login" and "/login/sso" but not "/loginx"); a Path ending in '/'
	// matches everything below it.
	Path string
	// Method, when not "", restricts the route to that method ("POST").
	Method string
}

// Match reports whether a request with this method and path belongs to r.
func (r *Route) Match(method, path string) bool {
	if r.Method != "" && r.Method != method {
		return false
	}
	return matchPathPrefix(r.Path, path)
}

func matchPathPrefix[S ~string | ~[]byte](prefix string, path S) bool {
	if len(path) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if path[i] != prefix[i] {
			return false
		}
	}
	return len(path) == len(prefix) || strings.HasSuffix(prefix, "/") || path[len(prefix)] == '/'
}

// Default returns a copy of c with zero fields set to their defaults and a
// single site named "default" when Sites is empty.
func (c Config) Default() Config {
	if len(c.Sites) == 0 {
		c.Sites = []SiteConfig{{Name: "default"}}
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.RingSize, 16384)
	def(&c.PacketRingSize, 65536)
	def(&c.TopK, 256)
	def(&c.TopPaths, 128)
	def(&c.TopN, 20)
	def(&c.MaxDestinations, 256)
	if c.SourcePrecision == 0 {
		c.SourcePrecision = 14
	}
	if c.QueryPrecision == 0 {
		c.QueryPrecision = 8
	}
	if c.DestPrecision == 0 {
		c.DestPrecision = 14
	}
	return c
}

// Validate checks a defaulted configuration; errors wrap ErrConfig and name
// the field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field string, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, a...)))
	}
	if len(c.Sites) == 0 {
		bad("Sites", "at least one site is required")
	}
	if len(c.Sites) > 1<<16 {
		bad("Sites", "%d sites, at most 65536", len(c.Sites))
	}
	for i, s := range c.Sites {
		for j, r := range s.Routes {
			if !strings.HasPrefix(r.Path, "/") {
				bad(fmt.Sprintf("Sites[%d].Routes[%d].Path", i, j), "%q must start with '/'", r.Path)
			}
			if r.Name == "" {
				bad(fmt.Sprintf("Sites[%d].Routes[%d].Name", i, j), "required")
			}
		}
	}
	pow2 := func(field string, v int) {
		if v < 2 || v&(v-1) != 0 || v > 1<<24 {
			bad(field, "%d must be a power of two in [2, 2^24]", v)
		}
	}
	pow2("RingSize", c.RingSize)
	pow2("PacketRingSize", c.PacketRingSize)
	rng := func(field string, v, lo, hi int) {
		if v < lo || v > hi {
			bad(field, "%d out of range [%d, %d]", v, lo, hi)
		}
	}
	rng("TopK", c.TopK, 1, 1<<20)
	rng("TopPaths", c.TopPaths, 1, 1<<16)
	rng("TopN", c.TopN, 1, 1<<16)
	rng("MaxDestinations", c.MaxDestinations, 1, 1<<16)
	rng("SourcePrecision", int(c.SourcePrecision), MinHLLPrecision, MaxHLLPrecision)
	rng("QueryPrecision", int(c.QueryPrecision), MinHLLPrecision, MaxHLLPrecision)
	rng("DestPrecision", int(c.DestPrecision), MinHLLPrecision, MaxHLLPrecision)
	return errors.Join(errs...)
}
