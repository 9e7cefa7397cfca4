package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/api"
	"github.com/portcullis/portcullis/internal/filter"
	"github.com/portcullis/portcullis/internal/mitigate"
)

// DecisionRequest is the body of POST /api/v1/decisions.
type DecisionRequest struct {
	// Action: block, allow, challenge, rate_limit, drop.
	Action string `json:"action"`
	// Scope: address, prefix, asn, country; Value its value
	// ("203.0.113.7", "2001:db8::/48", "AS64496", "RU").
	Scope string `json:"scope"`
	Value string `json:"value"`
	// Site name; "" = all sites.
	Site string `json:"site"`
	// TTL as a Go duration ("1h"); "" = until removed.
	TTL string `json:"ttl"`
	// Reason is recorded in the timeline.
	Reason string `json:"reason"`
	// Who is the operator's name (recorded).
	Who string `json:"who"`
}

// UnderAttackRequest is the body of POST /api/v1/sites/{site}/under-attack.
type UnderAttackRequest struct {
	On  bool   `json:"on"`
	TTL string `json:"ttl"`
	Who string `json:"who"`
}

// operatorRoutes adds the operator verbs to the admin mux.
func (a *App) operatorRoutes() []api.Route {
	return []api.Route{
		{Pattern: "GET /api/v1/decisions", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			api.WriteJSON(w, http.StatusOK, a.mitigation.set.List())
		})},
		{Pattern: "POST /api/v1/decisions", Handler: http.HandlerFunc(a.postDecision)},
		{Pattern: "DELETE /api/v1/decisions/{id...}", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			d, err := a.mitigation.ctl.Remove(time.Now(), who(r, ""), r.PathValue("id"))
			if err != nil {
				api.WriteJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
				return
			}
			a.operatorChanged()
			a.log.Info("operator removed decision", "who", who(r, ""), "id", d.ID)
			api.WriteJSON(w, http.StatusOK, d)
		})},
		{Pattern: "POST /api/v1/sites/{site}/under-attack", Handler: http.HandlerFunc(a.postUnderAttack)},
		{Pattern: "GET /api/v1/explain/{id}", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			e, ok := a.explain.get(r.PathValue("id"))
			if !ok {
				api.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "request id not found (only recent refusals and a sample of passes are kept)"})
				return
			}
			api.WriteJSON(w, http.StatusOK, e)
		})},
		{Pattern: "GET /api/v1/shadow", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			since := 15 * time.Minute
			if s := r.URL.Query().Get("since"); s != "" {
				if d, err := time.ParseDuration(s); err == nil {
					since = d
				}
			}
			api.WriteJSON(w, http.StatusOK, a.mitigation.shadow.WouldHaveBlocked(time.Now().Add(-since)))
		})},
	}
}

func who(r *http.Request, body string) string {
	if body != "" {
		return body
	}
	if h := r.Header.Get("X-Portcullis-Operator"); h != "" {
		return h
	}
	return "admin-api"
}

func (a *App) siteIndex(name string) (int, bool) {
	if name == "" {
		return -1, true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, s := range a.gen.cfg.Sites {
		if s.Name == name {
			return i, true
		}
	}
	return 0, false
}

func (a *App) postDecision(w http.ResponseWriter, r *http.Request) {
	var req DecisionRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		api.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON: " + err.Error()})
		return
	}
	d, err := a.decisionFrom(req)
	if err != nil {
		api.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	stored, err := a.mitigation.ctl.Operator(time.Now(), who(r, req.Who), d)
	if err != nil {
		api.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	a.operatorChanged()
	a.log.Info("operator decision", "who", who(r, req.Who), "action", req.Action, "scope", req.Scope, "value", req.Value, "ttl", req.TTL, "reason", req.Reason)
	api.WriteJSON(w, http.StatusCreated, stored)
}

func (a *App) decisionFrom(req DecisionRequest) (mitigate.Decision, error) {
	var d mitigate.Decision
	act, err := mitigate.ParseAction(strings.ReplaceAll(req.Action, "_", "-"))
	if err != nil {
		if act, err = mitigate.ParseAction(req.Action); err != nil {
			return d, err
		}
	}
	scope, err := mitigate.ParseScope(req.Scope)
	if err != nil {
		return d, err
	}
	site, ok := a.siteIndex(req.Site)
	if !ok {
		return d, fmt.Errorf("unknown site %q", req.Site)
	}
	d.Action, d.Scope, d.Site, d.Reason = act, scope, site, req.Reason
	if (scope == mitigate.ScopeASN || scope == mitigate.ScopeCountry) && !a.hasGeo {
		return d, fmt.Errorf("%s decisions need geo data, and none is loaded (set geo.dir; scripts/fetch-geodata.sh fetches the open data): without it no request has a country or ASN, so the decision would match nothing", scope)
	}
	switch scope {
	case mitigate.ScopeAddress, mitigate.ScopePrefix:
		p, err := parsePrefixOrAddr(req.Value)
		if err != nil {
			return d, err
		}
		d.Prefix = p
	case mitigate.ScopeASN:
		n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToUpper(req.Value), "AS"), 10, 32)
		if err != nil {
			return d, fmt.Errorf("invalid ASN %q", req.Value)
		}
		d.ASN = uint32(n)
	case mitigate.ScopeCountry:
		if len(req.Value) != 2 {
			return d, fmt.Errorf("invalid country code %q", req.Value)
		}
		d.Country = strings.ToUpper(req.Value)
	case mitigate.ScopeRoute:
		d.Route = req.Value
	default:
		return d, fmt.Errorf("scope %q cannot be set by an operator here", req.Scope)
	}
	if req.TTL != "" {
		ttl, err := time.ParseDuration(req.TTL)
		if err != nil || ttl < 0 {
			return d, fmt.Errorf("invalid ttl %q", req.TTL)
		}
		d.TTL = ttl
	}
	return d, nil
}

func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("invalid prefix %q", s)
		}
		return p.Masked(), nil
	}
	ad, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid address %q", s)
	}
	ad = ad.Unmap()
	return netip.PrefixFrom(ad, ad.BitLen()), nil
}

func (a *App) postUnderAttack(w http.ResponseWriter, r *http.Request) {
	var req UnderAttackRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<12)).Decode(&req); err != nil {
		api.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON: " + err.Error()})
		return
	}
	site, ok := a.siteIndex(r.PathValue("site"))
	if !ok || site < 0 {
		api.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "unknown site " + r.PathValue("site")})
		return
	}
	var ttl time.Duration
	if req.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(req.TTL); err != nil {
			api.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid ttl"})
			return
		}
	}
	if err := a.mitigation.ctl.UnderAttack(time.Now(), who(r, req.Who), site, req.On, ttl); err != nil {
		api.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	a.operatorChanged()
	a.log.Info("operator under-attack mode", "who", who(r, req.Who), "site", r.PathValue("site"), "on", req.On, "ttl", req.TTL)
	api.WriteJSON(w, http.StatusOK, map[string]any{"site": r.PathValue("site"), "under_attack": req.On})
}

// Explanation is what `portcullis explain REQUEST-ID` shows.
type Explanation struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Site    int       `json:"site"`
	Client  string    `json:"client"`
	Prefix  string    `json:"prefix"`
	Country string    `json:"country,omitempty"`
	ASN     uint32    `json:"asn,omitempty"`
	Method  string    `json:"method"`
	Path    string    `json:"path"`
	Action  string    `json:"action"`
	Rule    string    `json:"rule,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Cause   string    `json:"cause,omitempty"`
	Member  bool      `json:"member"`
}

// explainRing keeps the last refusals (every shield response) so an
// operator can explain a request id a visitor reports. Fixed size; each
// slot has its own lock, so writers rarely contend. A slot keeps the
// request's fields as they are (addresses as netip values, the verdict as
// is) and is formatted only when an operator asks: add runs on every
// refusal of a flood, get a few times a day.
type explainRing struct {
	slots [1 << 14]explainSlot
	pos   atomic.Uint64
}

type explainSlot struct {
	mu      sync.Mutex
	id      string
	at      time.Time
	site    int
	addr    netip.Addr
	prefix  netip.Prefix
	country string
	asn     uint32
	method  string
	path    string
	member  bool
	verdict filter.Verdict
}

func (x *explainRing) add(r *filter.Request, v filter.Verdict) {
	i := x.pos.Add(1) - 1
	s := &x.slots[i%uint64(len(x.slots))]
	now := time.Now()
	s.mu.Lock()
	s.id, s.at, s.site, s.addr, s.prefix = r.ID, now, r.Site, r.Addr, r.Prefix
	s.country, s.asn, s.method, s.path, s.member = r.Country, r.ASN, r.Method, r.Path, r.Member
	s.verdict = v
	s.mu.Unlock()
}

func (x *explainRing) get(id string) (Explanation, bool) {
	for i := range x.slots {
		s := &x.slots[i]
		s.mu.Lock()
		if s.id == "" || s.id != id {
			s.mu.Unlock()
			continue
		}
		v := s.verdict
		e := Explanation{ID: s.id, Time: s.at.UTC(), Site: s.site, Client: s.addr.String(), Prefix: s.prefix.String(),
			Country: s.country, ASN: s.asn, Method: s.method, Path: s.path, Action: v.Action.String(), Rule: v.Rule, Reason: v.Reason, Cause: v.Cause, Member: s.member}
		s.mu.Unlock()
		return e, true
	}
	return Explanation{}, false
}

// operatorChanged applies an operator's change to the request path and
// keeps the operator decisions for the next start.
func (a *App) operatorChanged() {
	a.mitigation.refresh()
	a.saveOperatorDecisions()
}
