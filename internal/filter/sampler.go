package filter

import (
	"sync"
)

// samplerState is the sampler's per-second window. A mutex is fine here:
// the critical section is a few integer operations and only refusals
// reach it.
type samplerState struct {
	mu      sync.Mutex
	second  int64
	inSec   int64
	skipped int64
}

// admit decides whether to log an event at monotonic time now (ns). It
// returns the current sampling ratio (1 = every event), the number of
// events skipped since the last logged one, and whether to log.
func (s *samplerState) admit(now, perSecond, every int64) (ratio, skipped int64, ok bool) {
	sec := now / 1_000_000_000
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec != s.second {
		s.second, s.inSec = sec, 0
	}
	s.inSec++
	if s.inSec <= perSecond {
		skipped, s.skipped = s.skipped, 0
		return 1, skipped, true
	}
	if (s.inSec-perSecond)%every == 0 {
		skipped, s.skipped = s.skipped, 0
		return every, skipped, true
	}
	s.skipped++
	return every, 0, false
}
