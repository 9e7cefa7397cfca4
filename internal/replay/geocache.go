package replay

import (
	"encoding/binary"
	"net/netip"

	"github.com/portcullis/portcullis/internal/detect"
	"github.com/portcullis/portcullis/internal/geo"
)

// geoCacheSize is the number of slots of the replay's attribution cache.
const geoCacheSize = 1 << 14

// geoCache is a direct-mapped cache in front of geo.DB.Lookup: access logs
// repeat their clients, so most lookups become a hash and a compare. Not
// safe for concurrent use: the replay's reader stage and its engine (on the
// feeding goroutine) each have their own. Every miss teaches names the
// looked-up AS's name (names is shared and safe for concurrent use), so
// every ASN a replayed source belongs to can be named in incidents.
type geoCache struct {
	db    *geo.DB
	names *detect.ASNames
	slots []geoSlot
}

type geoSlot struct {
	addr netip.Addr
	info geo.Info
}

// newGeoCache returns a cache over db that teaches names (may be nil);
// nil when db is nil.
func newGeoCache(db *geo.DB, names *detect.ASNames) *geoCache {
	if db == nil {
		return nil
	}
	return &geoCache{db: db, names: names, slots: make([]geoSlot, geoCacheSize)}
}

// lookup returns db.Lookup(a), cached. A nil cache answers unknown.
func (c *geoCache) lookup(a netip.Addr) geo.Info {
	if c == nil || !a.IsValid() {
		return geo.Info{}
	}
	b := a.As16()
	h := (binary.LittleEndian.Uint64(b[:8])*0x9E3779B97F4A7C15 ^ binary.LittleEndian.Uint64(b[8:])) * 0xC2B2AE3D27D4EB4F
	s := &c.slots[h>>(64-14)]
	if s.addr == a {
		return s.info
	}
	s.addr, s.info = a, c.db.Lookup(a)
	c.names.Learn(s.info.ASN, s.info.ASOrg)
	return s.info
}

// countryASN adapts the cache to detect.GeoFunc.
func (c *geoCache) countryASN(a netip.Addr) (string, uint32) {
	in := c.lookup(a)
	return in.Country, in.ASN
}
