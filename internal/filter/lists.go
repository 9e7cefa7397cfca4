package filter

import (
	"github.com/portcullis/portcullis/internal/netset"
)

// SetSource yields the current prefix set; a *netset.Watcher (list files
// reloaded on change) and a StaticSet both satisfy it.
type SetSource interface {
	Set() *netset.Set
}

// StaticSet is a SetSource over a fixed set (inline CIDRs from the config).
type StaticSet struct{ S *netset.Set }

// Set returns the fixed set.
func (s StaticSet) Set() *netset.Set { return s.S }

// AllowList lets matching clients bypass every later filter.
type AllowList struct {
	// ID is the rule id in verdicts ("allow").
	ID      string
	Sources []SetSource
}

// Name implements Filter.
func (a *AllowList) Name() string { return "allow" }

// Check returns Bypass when the client address is in any source.
func (a *AllowList) Check(r *Request) Verdict {
	for _, s := range a.Sources {
		if set := s.Set(); set != nil && set.Contains(r.Addr) {
			return Verdict{Action: Bypass, Rule: a.ID, Cause: "allow list"}
		}
	}
	return Verdict{}
}

// DenyList refuses matching clients with 403.
type DenyList struct {
	// ID is the rule id in verdicts ("deny", "deny-list:FILE").
	ID      string
	Sources []SetSource
	// Shadow decides and logs without enforcing.
	Shadow bool
}

// Name implements Filter.
func (d *DenyList) Name() string { return "deny" }

// Check returns Block when the client address is in any source.
func (d *DenyList) Check(r *Request) Verdict {
	for _, s := range d.Sources {
		if set := s.Set(); set != nil && set.Contains(r.Addr) {
			return Verdict{Action: Block, Rule: d.ID, Reason: "access from your network is blocked", Cause: "deny list", Shadow: d.Shadow}
		}
	}
	return Verdict{}
}
