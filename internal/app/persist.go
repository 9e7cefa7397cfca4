package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/atomicfile"
	"github.com/portcullis/portcullis/internal/mitigate"
)

// operatorFile is the file under the data dir that keeps operator
// decisions (blocks, allows, under-attack mode) across restarts: a shield
// restarted mid-attack (an upgrade, a crash, a reboot) comes back with the
// staff's decisions still in force. Policy decisions are not kept: the
// detector re-derives them from live traffic within seconds.
const operatorFile = "operator-decisions.json"

// savedDecision is one operator decision as stored: by site name (site
// indices change when the configuration does) and scope value as text.
type savedDecision struct {
	Site    string    `json:"site,omitempty"` // "" = all sites
	Action  string    `json:"action"`
	Scope   string    `json:"scope"`
	Value   string    `json:"value,omitempty"`
	Rate    float64   `json:"rate_per_second,omitempty"`
	Expires time.Time `json:"expires,omitzero"` // zero: until removed
	Reason  string    `json:"reason"`
	Who     string    `json:"who"`
}

// scopeValue is a decision's scope value as an operator writes it.
func scopeValue(d *mitigate.Decision) string {
	switch d.Scope {
	case mitigate.ScopeAddress, mitigate.ScopePrefix:
		return d.Prefix.String()
	case mitigate.ScopeASN:
		return "AS" + strconv.FormatUint(uint64(d.ASN), 10)
	case mitigate.ScopeCountry:
		return d.Country
	case mitigate.ScopeRoute:
		return d.Route
	case mitigate.ScopeFingerprint:
		return d.Fingerprint
	}
	return ""
}

// saveOperatorDecisions writes the operator decisions in force to the data
// dir (write to a temporary file, fsync, rename: a crash leaves the old or
// the new list, never half of one). Errors are logged: the decisions stay
// in force in memory either way.
func (a *App) saveOperatorDecisions() {
	a.mu.Lock()
	g := a.gen
	a.mu.Unlock()
	if g == nil {
		return
	}
	now := time.Now()
	saved := []savedDecision{}
	for _, d := range a.mitigation.set.List() {
		who, ok := strings.CutPrefix(d.Origin, mitigate.OriginOperator)
		if !ok || d.Expired(now) {
			continue
		}
		s := savedDecision{Action: d.Action.String(), Scope: d.Scope.String(), Value: scopeValue(&d),
			Rate: d.RatePerSecond, Expires: d.Expires, Reason: d.Reason, Who: who}
		if d.Site >= 0 {
			if d.Site >= len(g.cfg.Sites) {
				continue
			}
			s.Site = g.cfg.Sites[d.Site].Name
		}
		saved = append(saved, s)
	}
	if err := writeFileAtomic(filepath.Join(g.cfg.DataDir, operatorFile), saved); err != nil {
		a.log.Error("operator decisions not saved; they stay in force until restart", "err", err)
	}
}

// writeFileAtomic writes v as indented JSON to path, atomically and
// readable by its owner only (operator decisions name addresses).
func writeFileAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}

// restoreOperatorDecisions re-applies the saved operator decisions that
// have not expired, each with its remaining lifetime. A decision for a site
// that no longer exists, or one that no longer validates, is skipped with a
// warning; an unreadable file is an error in the log, not a failed start
// (the shield must come up).
func (a *App) restoreOperatorDecisions(dataDir string) {
	path := filepath.Join(dataDir, operatorFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var saved []savedDecision
	if err == nil {
		err = json.Unmarshal(b, &saved)
	}
	if err != nil {
		a.log.Error("operator decisions from the last run not restored", "file", path, "err", err)
		return
	}
	now := time.Now()
	restored := 0
	for _, s := range saved {
		if !s.Expires.IsZero() && !s.Expires.After(now) {
			continue
		}
		var ttl time.Duration
		if !s.Expires.IsZero() {
			ttl = s.Expires.Sub(now)
		}
		if s.Scope == mitigate.ScopeSite.String() {
			site, ok := a.siteIndex(s.Site)
			err = fmt.Errorf("unknown site %q", s.Site)
			if ok {
				err = a.mitigation.ctl.UnderAttack(now, s.Who, site, true, ttl)
			}
		} else {
			var d mitigate.Decision
			d, err = a.decisionFrom(DecisionRequest{Action: s.Action, Scope: s.Scope, Value: s.Value, Site: s.Site, Reason: s.Reason})
			d.TTL, d.RatePerSecond = ttl, s.Rate
			if err == nil {
				_, err = a.mitigation.ctl.Operator(now, s.Who, d)
			}
		}
		if err != nil {
			a.log.Warn("operator decision from the last run skipped", "site", s.Site, "action", s.Action, "scope", s.Scope, "value", s.Value, "err", fmt.Errorf("restore: %w", err))
			continue
		}
		restored++
	}
	if restored > 0 {
		a.mitigation.refresh()
		a.log.Info("operator decisions restored from the last run", "count", restored, "file", path)
	}
}
