package report

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/geo"
	"github.com/portcullis/portcullis/internal/incident"
)

// facts is everything a renderer shows, computed once from the incident
// and already redacted: renderers never read the raw incident's addresses.
type facts struct {
	opts Options
	red  *redactor
	// rec is the redacted incident record (what the JSON export holds).
	rec *incident.Incident

	Generated     time.Time
	Reporter      Reporter
	MinShare      float64
	Pseudonymised bool

	ID, Site string
	SiteAddr bool // the site is an address (a packet-level target)
	Start    time.Time
	Detected time.Time
	End      time.Time // zero while open
	Open     bool
	// Until is End, or Generated while the incident is open.
	Until       time.Time
	Duration    time.Duration
	DetectAfter time.Duration

	// Unit names what the counts count: "requests" or "packets".
	Unit string
	// Volume is the traffic the shares are of (requests + packets, or the
	// attribution's own total when larger).
	Volume   uint64
	Requests uint64
	Packets  uint64
	Sources  uint64
	PeakRPS  float64
	PeakPPS  float64
	PeakBPS  float64

	Vectors   []vector
	Countries []share
	// ASNs are the source networks (autonomous systems) at or above the
	// threshold; OtherASNs counts the listed ones below it, which sent
	// OtherASNCount (OtherASNShare of the traffic) together and are never
	// named (networks.go).
	ASNs          []share
	OtherASNs     int
	OtherASNCount uint64
	OtherASNShare float64
	// Attackers are the source prefixes at or above the threshold.
	Attackers []source
	// Withheld counts source prefixes below the threshold (or the target's
	// own network) and their share.
	Withheld      int
	WithheldShare float64
	// NamedShare is the share of the traffic the Attackers sent.
	NamedShare float64
	// Recorded is how many source prefixes the record lists and
	// UnlistedShare the share of the traffic it does not attribute to any
	// of them. Truncated: even the lightest listed prefix is at or above
	// the threshold, so unlisted prefixes may have reached it too.
	Recorded      int
	UnlistedShare float64
	Truncated     bool
	Paths         []share
	Agents        []share
	// Spoofed: sources look forged; Reflected: sources are reflectors.
	Spoofed, Reflected, PacketLevel bool

	Events    []event
	Decisions decisionSummary
	Series    []incident.SeriesPoint
	Impact    *incident.Impact
	Integrity *incident.Integrity
	Related   []incident.Related

	Severity  string
	Access    finding
	NextSteps []string
}

// share is one attribution row.
type share struct {
	Key   string  `json:"key"`
	Label string  `json:"label"`
	Count uint64  `json:"count"`
	Share float64 `json:"share"`
	// Name is the key's registered name (an ASN's network), if any.
	Name string `json:"name,omitempty"`
}

// source is one reportable attacking prefix.
type source struct {
	Prefix  netip.Prefix
	Display string // the prefix or its pseudonym
	Count   uint64
	Share   float64
	Public  bool // publicly routable (not private, loopback, documentation…)
}

// event is one redacted timeline entry.
type event struct {
	Time     time.Time
	Kind     string
	From, To incident.State // of a "state" event
	Message  string
	// Actor is "policy" (automatic), an operator's name, or "".
	Actor string
	// Change and Action are a decision's change kind ("add", "escalate",
	// "remove", …) and action ("block", "rate_limit", …).
	Change, Action string
	Shadow         bool
	Evidence       map[string]float64
}

// decisionSummary counts an incident's decisions.
type decisionSummary struct {
	// Total counts every decision event; Made those that put a decision
	// in force (add, escalate, relax; not shadow ones), by action in
	// ByAction; Shadow the decisions recorded but not enforced; Lifted the
	// removals and expiries; Refreshes the renewals.
	Total, Made, Lifted, Refreshes int
	ByAction                       map[string]int
	// Staff counts decisions made by operators, StaffNames who they were,
	// OperatorEvents the operator entries of the timeline.
	Staff          int
	StaffNames     []string
	OperatorEvents int
	Shadow         int
}

// finding is the answer to "was data accessed?".
type finding struct {
	Known    bool     `json:"evidence_recorded"`
	Concern  bool     `json:"concern"`
	Summary  string   `json:"summary"`
	Evidence []string `json:"evidence,omitempty"`
}

// build computes the facts of in under opts.
func build(in *incident.Incident, opts Options) *facts {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	minShare := opts.MinShare
	if minShare == 0 {
		minShare = DefaultMinShare
	}
	red := &redactor{}
	if opts.Pseudonymise {
		red.key = opts.Key
	}
	fx := &facts{
		opts: opts, red: red,
		Generated: now.UTC(), Reporter: opts.Reporter, MinShare: minShare, Pseudonymised: opts.Pseudonymise,
		Start: in.Start.UTC(), Detected: in.Detected.UTC(), End: in.End.UTC(), Open: in.Open(),
		Requests: in.Requests, Packets: in.Packets, Sources: in.Sources,
		PeakRPS: in.PeakRPS, PeakPPS: in.PeakPPS, PeakBPS: in.PeakBPS,
		Series: in.Series, Impact: in.Impact, Integrity: in.Integrity,
	}
	if fx.Open {
		fx.End = time.Time{}
		fx.Until = fx.Generated
	} else {
		fx.Until = fx.End
	}
	fx.Duration = fx.Until.Sub(fx.Start)
	if !fx.Detected.IsZero() {
		fx.DetectAfter = fx.Detected.Sub(fx.Start)
	}
	fx.Unit = "requests"
	if in.Packets > in.Requests {
		fx.Unit = "packets"
	}
	fx.Volume = in.Requests + in.Packets
	for _, l := range [][]incident.Count{in.TopCountries, in.TopASNs, in.TopPrefixes} {
		fx.Volume = max(fx.Volume, sum(l))
	}

	// The target's own address may appear; so may the reportable sources.
	siteAddr, err := netip.ParseAddr(in.Site)
	if err == nil {
		fx.SiteAddr = true
		red.allow(netip.PrefixFrom(siteAddr.Unmap(), siteAddr.Unmap().BitLen()))
	}
	for _, v := range in.Vectors {
		d := describe(v)
		fx.Vectors = append(fx.Vectors, d)
		fx.Reflected = fx.Reflected || d.Reflected
		fx.PacketLevel = fx.PacketLevel || d.Packet
	}
	fx.Spoofed = fx.PacketLevel && !fx.Reflected && in.Packets > 0 && in.Sources*2 >= in.Packets
	fx.sources(in.TopPrefixes, siteAddr)
	fx.ID, fx.Site = red.text(in.ID), red.text(in.Site)

	same := func(k string) string { return k }
	fx.Countries = fx.shares(in.TopCountries, 0, same, countryLabel)
	fx.asns(in.TopASNs)
	path := func(k string) string { return red.text(stripQuery(k)) }
	fx.Paths = fx.shares(in.TopPaths, minShare, path, func(c incident.Count) string { return path(c.Key) })
	fx.Agents = fx.shares(in.TopUserAgents, minShare, red.agent, func(c incident.Count) string { return red.agent(c.Key) })
	fx.events(in.Timeline)
	for _, r := range in.Related {
		fx.Related = append(fx.Related, incident.Related{ID: red.text(r.ID), Shared: fx.namedShared(r.Shared)})
	}
	fx.Severity = fx.severity()
	fx.Access = fx.access()
	fx.NextSteps = fx.nextSteps()
	fx.rec = fx.record(in)
	return fx
}

func sum(l []incident.Count) uint64 {
	var n uint64
	for _, c := range l {
		n += c.Count
	}
	return n
}

func (fx *facts) frac(n uint64) float64 {
	if fx.Volume == 0 {
		return 0
	}
	return float64(n) / float64(fx.Volume)
}

// sources splits the top prefixes into reportable attackers and withheld
// ones. The site's own network is never an attacker (in a packet capture
// it is the victim's replies).
func (fx *facts) sources(top []incident.Count, site netip.Addr) {
	fx.Recorded = len(top)
	if len(top) > 0 {
		fx.UnlistedShare = max(0, 1-fx.frac(sum(top)))
		lightest := top[0].Count
		for _, c := range top {
			lightest = min(lightest, c.Count)
		}
		fx.Truncated = fx.frac(lightest) >= fx.MinShare && fx.UnlistedShare > 0
	}
	for _, c := range top {
		p, err := netip.ParsePrefix(c.Key)
		if err != nil {
			a, aerr := netip.ParseAddr(c.Key)
			if aerr != nil {
				fx.Withheld++
				fx.WithheldShare += fx.frac(c.Count)
				continue
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		p = p.Masked()
		sh := fx.frac(c.Count)
		if sh < fx.MinShare || site.IsValid() && p.Contains(site.Unmap()) {
			fx.Withheld++
			fx.WithheldShare += sh
			continue
		}
		fx.red.allow(p)
		fx.NamedShare += sh
		fx.Attackers = append(fx.Attackers, source{Prefix: p, Count: c.Count, Share: sh, Public: geo.Public(p.Addr())})
	}
	for i := range fx.Attackers {
		fx.Attackers[i].Display = fx.red.prefix(fx.Attackers[i].Prefix)
	}
}

// shares turns an attribution list into rows (key and label as the
// functions make them); entries below minShare are dropped.
func (fx *facts) shares(l []incident.Count, minShare float64, key func(string) string, label func(incident.Count) string) []share {
	var out []share
	for _, c := range l {
		sh := fx.frac(c.Count)
		if sh < minShare || c.Count == 0 {
			continue
		}
		out = append(out, share{Key: key(c.Key), Label: label(c), Count: c.Count, Share: sh, Name: c.Name})
	}
	return out
}

func countryLabel(c incident.Count) string {
	if c.Name != "" {
		return c.Name
	}
	if n, ok := countryNames[strings.ToUpper(c.Key)]; ok {
		return n + " (" + strings.ToUpper(c.Key) + ")"
	}
	if c.Key == "unknown" || c.Key == "" || c.Key == "ZZ" {
		return "Unknown (private or unlisted addresses)"
	}
	return c.Key
}

func asnLabel(c incident.Count) string {
	if c.Key == "unknown" || c.Key == "" {
		return "Unknown network"
	}
	if c.Name != "" {
		return c.Key + " " + c.Name
	}
	return c.Key
}

// stripQuery drops a path's query string (it can carry personal data).
func stripQuery(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		return p[:i] + "?…"
	}
	return p
}

// events redacts the timeline and summarises its decisions.
func (fx *facts) events(tl []incident.Event) {
	d := decisionSummary{ByAction: map[string]int{}}
	staff := func(name string) {
		if name != "" && !slices.Contains(d.StaffNames, name) {
			d.StaffNames = append(d.StaffNames, name)
		}
	}
	fx.Events = make([]event, 0, len(tl))
	for _, e := range tl {
		ev := event{Time: e.Time.UTC(), Kind: e.Kind, From: e.From, To: e.To, Message: fx.red.text(e.Message), Evidence: e.Evidence}
		switch e.Kind {
		case "decision":
			ev.Change, ev.Action = parseDecision(e.Message)
			ev.Actor = "policy"
			if i := strings.Index(e.Message, "operator:"); i >= 0 {
				name := e.Message[i+len("operator:"):]
				if j := strings.IndexAny(name, ";)"); j >= 0 {
					name = name[:j]
				}
				ev.Actor = fx.red.text(strings.TrimSpace(name))
			}
			ev.Shadow = e.Evidence["shadow"] == 1
			d.Total++
			switch ev.Change {
			case "refresh":
				d.Refreshes++
			case "remove", "expire":
				d.Lifted++
			default:
				if ev.Shadow { // decided, not enforced: not a mitigation
					d.Shadow++
					break
				}
				d.Made++
				d.ByAction[ev.Action]++
				if ev.Actor != "policy" {
					d.Staff++
					staff(ev.Actor)
				}
			}
		case "operator":
			if who, _, ok := strings.Cut(e.Message, ":"); ok && !strings.ContainsAny(who, " ") {
				ev.Actor = fx.red.text(who)
				staff(ev.Actor)
			}
			d.OperatorEvents++
		}
		fx.Events = append(fx.Events, ev)
	}
	fx.Decisions = d
}

// parseDecision reads the change kind and action from a decision event's
// message ("escalate rate_limit → block prefix 203.0.113.0/24 for 10m0s:
// …"; package mitigate's Controller writes them).
func parseDecision(msg string) (change, action string) {
	f := strings.Fields(msg)
	if len(f) == 0 {
		return "", ""
	}
	change = f[0]
	switch {
	case len(f) >= 4 && f[2] == "→":
		action = f[3]
	case len(f) >= 2:
		action = f[1]
	}
	return change, action
}

// severity grades the impact on legitimate users: "low" when at least 99%
// of their requests were served, "medium" from 90%, "high" below;
// "unknown" without impact figures.
func (fx *facts) severity() string {
	if im := fx.Impact; im != nil {
		req := im.Members.Requests + im.Cleared.Requests
		if req > 0 {
			r := float64(im.Members.Served+im.Cleared.Served) / float64(req)
			switch {
			case r >= 0.99:
				return "low"
			case r >= 0.9:
				return "medium"
			}
			return "high"
		}
	}
	return "unknown"
}

// served returns the share of a cohort's requests that were served.
func served(c incident.CohortImpact) float64 {
	if c.Requests == 0 {
		return 0
	}
	return float64(c.Served) / float64(c.Requests)
}

// access answers "was data accessed?" from the integrity evidence. A route
// is a concern when it answered more than twice its baseline requests or
// bytes, by at least 10 requests or 1 MiB.
func (fx *facts) access() finding {
	ig := fx.Integrity
	if ig == nil {
		f := finding{Summary: "Portcullis recorded no integrity evidence for this incident, so it can neither confirm nor rule out access to data. Check the origin's own logs for the incident window before stating that no data was accessed."}
		if fx.PacketLevel && fx.Requests == 0 {
			f.Summary = "The attack consisted of network packets aimed at exhausting bandwidth or connection capacity; it carried no requests for pages or data (" +
				fmtInt(fx.Requests) + " HTTP requests were seen). Portcullis has no view inside the servers themselves: their own logs should confirm that nothing else happened in the same window."
		}
		return f
	}
	f := finding{Known: true}
	if ig.OriginRequests > 0 {
		rate := float64(ig.OriginErrors) / float64(ig.OriginRequests)
		f.Evidence = append(f.Evidence, fmt.Sprintf("Origin error rate %s during the incident (%s of %s forwarded requests failed); %s before it.",
			pct(rate), fmtInt(ig.OriginErrors), fmtInt(ig.OriginRequests), pct(ig.BaselineErrorRate)))
	}
	var worry []string
	for _, r := range ig.Routes {
		route := fx.red.text(r.Route)
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s: %s, %s sent; normal for the same period: %s, %s.",
			route, count(r.Requests, "successful response"), fmtBytes(r.ResponseBytes), count(r.BaselineRequests, "response"), fmtBytes(r.BaselineResponseBytes)))
		reqHigh := r.Requests > 2*r.BaselineRequests && r.Requests-r.BaselineRequests >= 10
		bytesHigh := r.ResponseBytes > 2*r.BaselineResponseBytes && r.ResponseBytes-r.BaselineResponseBytes >= 1<<20
		if reqHigh || bytesHigh {
			worry = append(worry, route)
		}
	}
	switch {
	case len(worry) > 0:
		f.Concern = true
		f.Summary = "Investigate before stating that no data was accessed: " + strings.Join(worry, ", ") +
			" answered well above its normal volume during the attack."
	case len(ig.Routes) > 0:
		f.Summary = "No sign of data being accessed: every sensitive route answered within its normal volume during the attack."
	default:
		f.Summary = "No sensitive routes are configured, so Portcullis can only report the origin's error rate; it cannot show whether data was read."
	}
	return f
}

// nextSteps proposes what to do next, from what the incident shows.
func (fx *facts) nextSteps() []string {
	var s []string
	if fx.Open {
		s = append(s, "The incident is still open: this is an initial report. Send the final report when it has ended.")
	}
	if fx.Access.Concern {
		s = append(s, "Investigate the sensitive routes named above in the origin's logs before any public statement about data.")
	} else if !fx.Access.Known {
		s = append(s, "Confirm from the origin's own logs that nothing but the flood happened in the incident window.")
	} else if len(fx.Integrity.Routes) == 0 && !fx.PacketLevel {
		s = append(s, "Confirm from the origin's own logs that no data was read in the incident window, and list the routes that serve personal data (sites[].sensitive_routes; replay --sensitive-route) so that the next report can answer this itself.")
	}
	switch {
	case fx.Spoofed:
		s = append(s, "The source addresses look forged (spoofed): blocking them achieves little. Ask the upstream provider to filter the flood before it reaches the link (RTBH or FlowSpec).")
	case fx.Reflected:
		s = append(s, "The sources are reflectors (servers abused by the attacker). Ask the upstream provider to filter the reflected protocol, and pass the indicators to the CSIRT so the reflectors' operators can be notified.")
	case len(fx.Attackers) > 0:
		s = append(s, "Share the indicators (STIX or IODEF export) with the CSIRT and the upstream provider; ask the listed networks' abuse contacts to act.")
	}
	if fx.Decisions.Made > 0 {
		s = append(s, "Review the mitigations still in force (portcullis status) and remove those no longer needed.")
	}
	if n := len(fx.Related); n > 0 {
		s = append(s, fmt.Sprintf("This attack shares sources with %s: report them together as one campaign.", plural(n, "earlier incident")))
	}
	return s
}

// record returns the redacted copy of in for the JSON export: attribution
// below the threshold removed (ASNs below it folded into one "other" row),
// addresses in free text withheld or pseudonymised.
func (fx *facts) record(in *incident.Incident) *incident.Incident {
	r := *in
	r.ID, r.Site = fx.ID, fx.Site
	r.TopPrefixes = make([]incident.Count, 0, len(fx.Attackers))
	for _, a := range fx.Attackers {
		r.TopPrefixes = append(r.TopPrefixes, incident.Count{Key: a.Display, Count: a.Count})
	}
	r.TopASNs = fx.asnRecord()
	r.TopPaths, r.TopUserAgents = counts(fx.Paths), counts(fx.Agents)
	r.Timeline = make([]incident.Event, len(in.Timeline))
	for i, e := range in.Timeline {
		e.Time = e.Time.UTC()
		e.Message = fx.Events[i].Message
		r.Timeline[i] = e
	}
	if in.Integrity != nil {
		ig := *in.Integrity
		ig.Routes = slices.Clone(ig.Routes)
		for i := range ig.Routes {
			ig.Routes[i].Route = fx.red.text(ig.Routes[i].Route)
		}
		r.Integrity = &ig
	}
	r.Related = fx.Related
	r.Start, r.Detected, r.End = fx.Start, fx.Detected, fx.End
	return &r
}

func counts(l []share) []incident.Count {
	out := make([]incident.Count, len(l))
	for i, s := range l {
		out[i] = incident.Count{Key: s.Key, Count: s.Count}
	}
	return out
}

// topEvents returns the timeline rows for the human-readable formats:
// every event except decision refreshes, at most max, and how many were
// left out.
func (fx *facts) topEvents(max int) (rows []event, omitted int) {
	if max <= 0 {
		max = 200
	}
	for _, e := range fx.Events {
		if e.Kind == "decision" && e.Change == "refresh" {
			omitted++
			continue
		}
		if len(rows) == max {
			omitted++
			continue
		}
		rows = append(rows, e)
	}
	return rows, omitted
}

// actions returns the sorted (count desc) decision actions as "block ×3".
func (d decisionSummary) actions() []string {
	type kv struct {
		k string
		n int
	}
	var l []kv
	for k, n := range d.ByAction {
		l = append(l, kv{k, n})
	}
	slices.SortFunc(l, func(a, b kv) int { return cmp.Or(b.n-a.n, strings.Compare(a.k, b.k)) })
	out := make([]string, len(l))
	for i, e := range l {
		out[i] = fmt.Sprintf("%s ×%d", strings.ReplaceAll(e.k, "_", " "), e.n)
	}
	return out
}
