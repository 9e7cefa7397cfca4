package mitigate

import (
	"fmt"
	"net/netip"
	"time"
)

// failWindow counts failed challenges from one aggregate prefix in a fixed
// window starting at its first failure.
type failWindow struct {
	first time.Time
	n     int
}

// autoBanPrefix returns a's auto-ban prefix: AutoBanIPv6Bits or
// AutoBanIPv4Bits long.
func autoBanPrefix(cfg *SiteConfig, a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	bits := cfg.AutoBanIPv6Bits
	if a.Is4() {
		bits = cfg.AutoBanIPv4Bits
	}
	return netip.PrefixFrom(a, bits).Masked()
}

// autoBan counts the tick's failed challenges per aggregate prefix and
// blocks a prefix (AutoBanTTL) once AutoBanFailures failures fall within
// AutoBanWindow — from one address or many: rotating addresses inside a /64
// does not reset the count (HANDED F06). A prefix with known-good users
// behind it is challenged instead. Counters are bounded by MaxTracked;
// when full, expired windows are swept and new prefixes beyond the bound
// are not counted until room frees up.
func (e *emitter) autoBan() {
	cfg, st := e.cfg, e.st
	if cfg.DisableAutoBan {
		return
	}
	if e.now.Sub(st.lastSweep) >= cfg.AutoBanWindow {
		e.sweepFails()
	}
	for _, a := range e.in.FailedChallenges {
		if !a.IsValid() {
			continue
		}
		p := autoBanPrefix(cfg, a)
		fw := st.fails[p]
		if fw == nil {
			if len(st.fails) >= cfg.MaxTracked {
				e.sweepFails()
				if len(st.fails) >= cfg.MaxTracked {
					continue
				}
			}
			fw = &failWindow{first: e.now}
			st.fails[p] = fw
		}
		if e.now.Sub(fw.first) > cfg.AutoBanWindow {
			*fw = failWindow{first: e.now}
		}
		fw.n++
		if fw.n < cfg.AutoBanFailures {
			continue
		}
		delete(st.fails, p)
		collateral := e.in.knownGood(p)
		act := Block
		reason := fmt.Sprintf("auto-ban: %d failed challenges within %s from %s (prefix length /%d)",
			fw.n, cfg.AutoBanWindow, p, p.Bits())
		if collateral >= cfg.MaxBlockCollateral {
			act = Challenge
			reason += fmt.Sprintf("; challenged, not blocked: %d known-good users behind it", collateral)
		}
		d := Decision{ID: autoBanID(e.in.Site, p), Scope: ScopePrefix, Prefix: p, Action: act, Rule: RuleAutoBan,
			Reason: reason, EstimatedCollateral: collateral, TTL: cfg.AutoBanTTL}
		if p.Bits() == p.Addr().BitLen() {
			d.Scope = ScopeAddress
		}
		e.want(d, e.st.level, false)
	}
}

func (e *emitter) sweepFails() {
	e.st.lastSweep = e.now
	for p, fw := range e.st.fails {
		if e.now.Sub(fw.first) > e.cfg.AutoBanWindow {
			delete(e.st.fails, p)
		}
	}
}
