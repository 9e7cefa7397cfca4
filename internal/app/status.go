package app

import (
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// SiteStatus is one site in /api/v1/status.
type SiteStatus struct {
	Name    string         `json:"name"`
	State   string         `json:"state"`
	Origins []OriginStatus `json:"origins"`
	// Requests counts requests by verdict action since start.
	Requests map[string]uint64 `json:"requests"`
	// Incident is the open incident id, "" when none; OpenIncident its
	// live record (vectors, peaks, attribution, timeline).
	Incident     string             `json:"incident,omitempty"`
	OpenIncident *incident.Incident `json:"open_incident,omitempty"`
	// UnderAttack reports under-attack mode (everyone without clearance or
	// standing is challenged); Decisions counts the site's active
	// decisions by action (site-wide ones included).
	UnderAttack bool           `json:"under_attack"`
	Decisions   map[string]int `json:"decisions,omitempty"`
	// FlashCrowd reports a legitimate surge being recognised.
	FlashCrowd bool `json:"flash_crowd"`
	// Scores are the latest detector scores (≥ 1 fires).
	Scores map[string]float64 `json:"scores,omitempty"`
}

// OriginStatus is one origin's health.
type OriginStatus struct {
	URL      string `json:"url"`
	Healthy  bool   `json:"healthy"`
	Inflight int64  `json:"inflight"`
	// Limit is the origin's current adaptive concurrency limit.
	Limit int `json:"concurrency_limit"`
}

// Status is the /api/v1/status document.
type Status struct {
	Version string       `json:"version"`
	Time    time.Time    `json:"time"`
	Sites   []SiteStatus `json:"sites"`
}

// Version is set by the cmd package at start.
var Version = "dev"

func (a *App) status() any {
	a.mu.Lock()
	g := a.gen
	a.mu.Unlock()
	st := Status{Version: Version, Time: time.Now().UTC()}
	targets := a.detect.eng.Status()
	for i, s := range g.rt.Sites {
		ss := SiteStatus{Name: s.Name, State: "normal", Requests: map[string]uint64{}}
		for _, t := range targets {
			if t.Site == i {
				ss.State = string(t.State)
				ss.FlashCrowd = t.FlashCrowd
				ss.Scores = t.Scores
				if t.Incident != nil {
					ss.Incident = t.Incident.ID
					ss.OpenIncident = t.Incident
				}
			}
		}
		if p, ok := s.Origin.(interface{ Origins() []*proxyOrigin }); ok {
			for _, o := range p.Origins() {
				ss.Origins = append(ss.Origins, OriginStatus{URL: o.Key, Healthy: o.Healthy(), Inflight: o.Inflight(), Limit: o.Limit()})
			}
		}
		ss.UnderAttack = a.mitigation.underAttack(i)
		for _, d := range a.mitigation.set.List() {
			if d.Site == i || d.Site < 0 {
				if ss.Decisions == nil {
					ss.Decisions = map[string]int{}
				}
				ss.Decisions[d.Action.String()]++
			}
		}
		a.metrics.mu.RLock()
		if i < len(a.metrics.cache) {
			for act, c := range a.metrics.cache[i] {
				if v := counterValue(c); v > 0 {
					ss.Requests[actionName(act)] = v
				}
			}
		}
		a.metrics.mu.RUnlock()
		st.Sites = append(st.Sites, ss)
	}
	return st
}
