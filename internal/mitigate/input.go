package mitigate

import (
	"net/netip"
	"time"

	"github.com/portcullis/portcullis/internal/detect"
	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/stats"
)

// Goodness is the oracle of known-good users: members, visitors holding a
// clearance and peace-time visitors seen behind a scope. Counts are
// distinct users (an estimate is fine); 0 means none known. Implementations
// must be fast (called a few hundred times per tick) and safe for the
// controller's goroutine.
type Goodness interface {
	// KnownGood returns the known-good users whose addresses lie inside p
	// (p may be a /32 or /128, or 0.0.0.0/0 and ::/0 for the whole site).
	KnownGood(p netip.Prefix) int
	// KnownGoodASN returns the known-good users seen from network asn.
	KnownGoodASN(asn uint32) int
}

// GoodnessFuncs adapts two functions to Goodness; a nil function answers 0.
type GoodnessFuncs struct {
	Prefix func(netip.Prefix) int
	ASN    func(uint32) int
}

// KnownGood implements Goodness.
func (g GoodnessFuncs) KnownGood(p netip.Prefix) int {
	if g.Prefix == nil {
		return 0
	}
	return g.Prefix(p)
}

// KnownGoodASN implements Goodness.
func (g GoodnessFuncs) KnownGoodASN(asn uint32) int {
	if g.ASN == nil {
		return 0
	}
	return g.ASN(asn)
}

// SiteInput is what the policy sees of one site on one tick: detection's
// verdict and the heavy hitters behind it.
type SiteInput struct {
	// Site is the site index (as in stats and detect).
	Site int
	// State is the detection state machine's state and IncidentID the open
	// incident ("" when none); decisions carry it.
	State      incident.State
	IncidentID string
	// Signals are the detectors' latest signals. Firing vectors, the flash
	// crowd (a Benign signal) and origin distress are read from them.
	Signals []detect.Signal
	// FlashCrowd and OriginDistress may also be set directly (the engine's
	// TargetStatus.FlashCrowd; a proxy's overload signal).
	FlashCrowd, OriginDistress bool
	// Period is the time the counts below cover (a tick, or the detection
	// window); Requests the site's requests in it.
	Period   time.Duration
	Requests uint64
	// Heavy hitters over Period, heaviest first: addresses, aggregate
	// prefixes (/24, /64) and origin networks.
	TopAddrs    []stats.Counted[netip.Addr]
	TopPrefixes []stats.Counted[netip.Prefix]
	TopASNs     []stats.Counted[uint32]
	// FailedChallenges lists the addresses that failed a challenge since
	// the previous Step, one entry per failure (for the auto-ban).
	FailedChallenges []netip.Addr
	// Goodness answers how many known-good users are behind a scope; nil
	// counts none anywhere (collateral protection then rests on challenge
	// being the mildest enforcing action for shared networks).
	Goodness Goodness
}

// SiteInputFromSnapshot returns the counts of one site's accounting tick:
// Site, Period, Requests and the heavy hitters. The caller adds the
// detection state, signals, failed challenges and the goodness oracle.
func SiteInputFromSnapshot(s *stats.SiteSnapshot, period time.Duration) SiteInput {
	return SiteInput{
		Site: s.Site, Period: period, Requests: s.Requests,
		TopAddrs: s.TopAddrs, TopPrefixes: s.TopPrefixes, TopASNs: s.TopASNs,
	}
}

// reading is the policy's interpretation of one SiteInput.
type reading struct {
	vectors     []string // firing vectors, flash-crowd vetoes applied
	flash       bool
	distress    bool
	distributed bool
}

// read interprets the signals as the detection engine does (a flash crowd
// vetoes the suppressible volumetric vectors).
func read(in *SiteInput) reading {
	r := reading{flash: in.FlashCrowd, distress: in.OriginDistress}
	for _, s := range in.Signals {
		if s.Benign && s.Score >= 1 {
			r.flash = true
		}
	}
	for _, s := range in.Signals {
		if !s.Fires() || (r.flash && detect.Suppressible(s.Vector)) {
			continue
		}
		r.vectors = append(r.vectors, s.Vector)
		switch s.Vector {
		case "origin_distress":
			r.distress = true
		case "distributed_flood":
			r.distributed = true
		}
	}
	if r.flash && len(r.vectors) == 0 {
		r.distress = false // a flash crowd straining the origin is not an attack
	}
	return r
}

func (in *SiteInput) rate(count uint64) float64 {
	p := in.Period
	if p <= 0 {
		p = time.Second
	}
	return float64(count) / p.Seconds()
}

func (in *SiteInput) share(count uint64) float64 {
	if in.Requests == 0 {
		return 0
	}
	return float64(count) / float64(in.Requests)
}

func (in *SiteInput) knownGood(p netip.Prefix) int {
	if in.Goodness == nil {
		return 0
	}
	return in.Goodness.KnownGood(p)
}

func (in *SiteInput) knownGoodASN(asn uint32) int {
	if in.Goodness == nil {
		return 0
	}
	return in.Goodness.KnownGoodASN(asn)
}
