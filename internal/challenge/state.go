package challenge

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// State defaults.
const (
	// DefaultMaxRedeemed bounds the redeemed-challenge memory (entries);
	// about 48 bytes each, so ~12 MB at the default.
	DefaultMaxRedeemed = 1 << 18
	// maxRefusers bounds the cookie-refuser memory.
	maxRefusers = 1 << 16
	// refuserWindow is the window of the per-refuser challenge budget.
	refuserWindow = time.Minute
	// RefuserChallengesPerMinute is how many challenges a client known to
	// refuse cookies is issued per minute (HANDED F27: at most 2).
	RefuserChallengesPerMinute = 2
	// refuserForget drops a refuser this long after it was last seen.
	refuserForget = 10 * time.Minute
	// bucketWidth groups redeemed ids by issue time.
	bucketWidth = 10 * time.Second
)

// State is the mutable memory behind challenges, shared by every Service
// built with it (keep one for the process and pass it across configuration
// reloads, so a reload cannot make a redeemed challenge redeemable again):
//
//   - the ids of redeemed challenges, until their tokens expire (single
//     use), in a bounded set;
//   - the clients that submitted a solution without the test cookie, to
//     answer them "cookies required" and issue them at most
//     RefuserChallengesPerMinute challenges a minute.
//
// Both are bounded. When the redeemed set is full it forgets the ids issued
// earliest and raises a watermark: challenges issued before it are
// refused as expired from then on, so a forgotten id can never be replayed
// (the visitor is simply challenged again). A new State starts with the
// watermark at its creation, so challenges issued before a restart — whose
// redemptions were forgotten with the old process — are refused too.
type State struct {
	mu        sync.Mutex
	buckets   map[int64]*idBucket // by issued-ms / bucketWidth
	count     int
	max       int
	watermark int64 // unix ms; challenges issued before it are refused
	lastSweep int64 // unix seconds

	rmu      sync.Mutex
	refusers map[refuserKey]refuser
	nRef     atomic.Int64
}

type idBucket struct {
	ids    map[[16]byte]struct{}
	maxExp int64 // unix seconds: the latest expiry of any id in the bucket
}

type refuserKey struct {
	addr [16]byte
	ua   uint64
}

type refuser struct {
	window int64 // unix seconds the current window started
	issued int   // challenges issued in the window
	seen   int64 // unix seconds last seen
}

// NewState returns an empty State holding at most maxRedeemed redeemed ids
// (DefaultMaxRedeemed when ≤ 0), created at now.
func NewState(maxRedeemed int, now time.Time) *State {
	if maxRedeemed <= 0 {
		maxRedeemed = DefaultMaxRedeemed
	}
	return &State{
		buckets:   make(map[int64]*idBucket),
		max:       maxRedeemed,
		watermark: now.UnixMilli(),
		refusers:  make(map[refuserKey]refuser),
	}
}

// redeemResult is the outcome of marking a challenge used.
type redeemResult uint8

const (
	redeemOK       redeemResult = iota
	redeemReplayed              // already used
	redeemTooOld                // issued before the watermark
)

// redeem marks challenge id (issued at issuedMs, expiring at expUnix) as
// used at now. Exactly one call per id succeeds while the token is valid.
func (s *State) redeem(id [16]byte, issuedMs, expUnix int64, now time.Time) redeemResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	if issuedMs < s.watermark {
		return redeemTooOld
	}
	s.sweepLocked(now)
	bk := issuedMs / bucketWidth.Milliseconds()
	b := s.buckets[bk]
	if b != nil {
		if _, used := b.ids[id]; used {
			return redeemReplayed
		}
	}
	for s.count >= s.max {
		oldest := int64(-1)
		for k := range s.buckets {
			if oldest < 0 || k < oldest {
				oldest = k
			}
		}
		// Forget the earliest-issued bucket and refuse everything issued
		// up to its end: nothing forgotten can be redeemed again.
		s.count -= len(s.buckets[oldest].ids)
		delete(s.buckets, oldest)
		if wm := (oldest + 1) * bucketWidth.Milliseconds(); wm > s.watermark {
			s.watermark = wm
		}
		if issuedMs < s.watermark {
			return redeemTooOld
		}
	}
	if b = s.buckets[bk]; b == nil {
		b = &idBucket{ids: make(map[[16]byte]struct{})}
		s.buckets[bk] = b
	}
	b.ids[id] = struct{}{}
	if expUnix > b.maxExp {
		b.maxExp = expUnix
	}
	s.count++
	return redeemOK
}

// sweepLocked drops buckets whose every token has expired, at most once a
// second.
func (s *State) sweepLocked(now time.Time) {
	sec := now.Unix()
	if sec == s.lastSweep {
		return
	}
	s.lastSweep = sec
	for k, b := range s.buckets {
		if b.maxExp <= sec {
			s.count -= len(b.ids)
			delete(s.buckets, k)
		}
	}
}

// Redeemed reports how many redeemed challenge ids are held.
func (s *State) Redeemed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

func newRefuserKey(addr netip.Addr, uaHash uint64) refuserKey {
	return refuserKey{addr: addr.As16(), ua: uaHash}
}

// markRefuser records at now that the client submitted a solution without
// the test cookie. The challenge it solved counts against its budget.
func (s *State) markRefuser(k refuserKey, now time.Time) {
	sec := now.Unix()
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if r, ok := s.refusers[k]; ok {
		r.seen = sec
		s.refusers[k] = r
		return
	}
	if len(s.refusers) >= maxRefusers {
		for rk, r := range s.refusers {
			if sec-r.seen >= int64(refuserForget/time.Second) {
				delete(s.refusers, rk)
			}
		}
		for rk := range s.refusers { // still full: forget one at random (fails open)
			if len(s.refusers) < maxRefusers {
				break
			}
			delete(s.refusers, rk)
		}
	}
	s.refusers[k] = refuser{window: sec, issued: 1, seen: sec}
	s.nRef.Store(int64(len(s.refusers)))
}

// allowChallenge reports whether a challenge may be issued to the client
// at now, counting it if so. Clients not known to refuse cookies are always
// allowed (lock-free when no refuser is known).
func (s *State) allowChallenge(k refuserKey, now time.Time) bool {
	if s.nRef.Load() == 0 {
		return true
	}
	sec := now.Unix()
	s.rmu.Lock()
	defer s.rmu.Unlock()
	r, ok := s.refusers[k]
	if !ok {
		return true
	}
	if sec-r.seen >= int64(refuserForget/time.Second) {
		delete(s.refusers, k)
		s.nRef.Store(int64(len(s.refusers)))
		return true
	}
	r.seen = sec
	if sec-r.window >= int64(refuserWindow/time.Second) {
		r.window, r.issued = sec, 0
	}
	allowed := r.issued < RefuserChallengesPerMinute
	if allowed {
		r.issued++
	}
	s.refusers[k] = r
	return allowed
}
