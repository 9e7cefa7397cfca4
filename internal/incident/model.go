// Package incident holds the incident model (one attack on one site, from
// detection to end) and its embedded store. Detection (package detect) opens
// and updates incidents; reports (package report) render them.
package incident

import "time"

// State is a site's attack state (the detection state machine).
type State string

// Attack states, in the order a site moves through them.
const (
	StateNormal     State = "normal"
	StateSuspected  State = "suspected"
	StateAttack     State = "attack"
	StateRecovering State = "recovering"
)

// Count is one attribution entry: a key (country code, "AS13335", prefix
// "203.0.113.0/24", path, user agent) and the requests or packets it
// accounted for, already scaled by any sampling rate.
type Count struct {
	Key   string `json:"key"`
	Count uint64 `json:"count"`
	// Name is a human-readable name for the key where one exists: for an
	// ASN the network's registered name ("CLOUDFLARENET"); empty otherwise.
	Name string `json:"name,omitempty"`
}

// Event is one timeline entry of an incident.
type Event struct {
	// Time is when the event happened (event time, UTC).
	Time time.Time `json:"time"`
	// Kind names the event: "state" (a state-machine transition), "vector"
	// (a new attack vector seen), "decision", "operator", "note".
	Kind string `json:"kind"`
	// From and To are the states of a "state" event.
	From State `json:"from,omitempty"`
	To   State `json:"to,omitempty"`
	// Message is a human-readable description.
	Message string `json:"message"`
	// Evidence holds the figures behind the event (detector name → score,
	// rates), for the record.
	Evidence map[string]float64 `json:"evidence,omitempty"`
}

// Incident is one attack on one site.
type Incident struct {
	// ID is unique and sortable by start time, e.g. "20261129T210636Z-site-1a2b".
	ID string `json:"id"`
	// Site is the protected site's name (or the destination address for
	// packet-level incidents).
	Site string `json:"site"`
	// Start is when the anomaly began (first suspicious tick); Detected when
	// the state machine entered "attack"; End when the attack traffic ended
	// (the last tick on which a detector fired; zero while the incident is
	// open). The return to normal, a quiet period later, is the timeline's
	// last "state" event.
	Start    time.Time `json:"start"`
	Detected time.Time `json:"detected"`
	End      time.Time `json:"end,omitzero"`
	// Vectors names the attack classes seen, e.g. "http_flood", "syn_flood",
	// "udp_amplification:snmp".
	Vectors []string `json:"vectors"`
	// PeakRPS, PeakPPS and PeakBPS are the highest per-second request,
	// packet and bit rates seen during the incident.
	PeakRPS float64 `json:"peak_rps"`
	PeakPPS float64 `json:"peak_pps"`
	PeakBPS float64 `json:"peak_bps"`
	// Requests and Packets are totals over the incident.
	Requests uint64 `json:"requests"`
	Packets  uint64 `json:"packets"`
	// Sources is the estimated number of distinct source addresses
	// (HyperLogLog) during the incident.
	Sources uint64 `json:"sources"`
	// Top attribution lists, heaviest first.
	TopCountries  []Count `json:"top_countries"`
	TopASNs       []Count `json:"top_asns"`
	TopPrefixes   []Count `json:"top_prefixes"`
	TopPaths      []Count `json:"top_paths"`
	TopUserAgents []Count `json:"top_user_agents"`
	// Timeline lists the incident's events in time order.
	Timeline []Event `json:"timeline"`
	// Series is the incident's traffic second by second, oldest first;
	// nil when it was not recorded.
	Series []SeriesPoint `json:"series,omitempty"`
	// Impact is what the attack and the mitigations cost real people;
	// nil when not recorded (e.g. packet-level incidents).
	Impact *Impact `json:"impact,omitempty"`
	// Integrity is the evidence on whether data was accessed during the
	// incident; nil when not recorded.
	Integrity *Integrity `json:"integrity,omitempty"`
	// Related lists earlier incidents that share attackers with this one
	// (repeat offenders, repeat attacks).
	Related []Related `json:"related,omitempty"`
}

// SeriesPoint is one second of an incident's traffic: counts over
// [Time, Time+1s). Request counts split by verdict (Passed + Challenged +
// Throttled + Blocked + Shed ≤ Requests; the rest were still in flight or
// refused by the listener).
type SeriesPoint struct {
	// Time is the start of the second (UTC).
	Time time.Time `json:"t"`
	// Requests is every HTTP request received for the site.
	Requests uint64 `json:"requests,omitempty"`
	// Passed were forwarded to the origin; Challenged answered with a
	// challenge; Throttled refused by a rate limit (429); Blocked refused
	// by a block or drop decision; Shed refused by load shedding.
	Passed     uint64 `json:"passed,omitempty"`
	Challenged uint64 `json:"challenged,omitempty"`
	Throttled  uint64 `json:"throttled,omitempty"`
	Blocked    uint64 `json:"blocked,omitempty"`
	Shed       uint64 `json:"shed,omitempty"`
	// Packets and Bits are the packet-level totals (sampling applied).
	Packets uint64 `json:"packets,omitempty"`
	Bits    uint64 `json:"bits,omitempty"`
	// OriginErrors counts forwarded requests the origin failed (5xx,
	// timeouts, refused connections).
	OriginErrors uint64 `json:"origin_errors,omitempty"`
	// OriginLatencyP95 is the 95th percentile of the origin's response
	// time over the second (JSON: nanoseconds).
	OriginLatencyP95 time.Duration `json:"origin_latency_p95_ns,omitempty"`
}

// SumSeries adds up points: every count summed, Time the first point's,
// OriginLatencyP95 the highest of the seconds (a p95 of p95s is not a p95,
// so the worst second stands for the span). Zero for no points.
func SumSeries(points []SeriesPoint) SeriesPoint {
	var t SeriesPoint
	for i, p := range points {
		if i == 0 {
			t.Time = p.Time
		}
		t.Requests += p.Requests
		t.Passed += p.Passed
		t.Challenged += p.Challenged
		t.Throttled += p.Throttled
		t.Blocked += p.Blocked
		t.Shed += p.Shed
		t.Packets += p.Packets
		t.Bits += p.Bits
		t.OriginErrors += p.OriginErrors
		t.OriginLatencyP95 = max(t.OriginLatencyP95, p.OriginLatencyP95)
	}
	return t
}

// Impact is what an incident cost real people: the people the shield knows
// to be legitimate (signed-in members, visitors holding a clearance), the
// requests it refused to protect the origin, and the challenges it showed.
type Impact struct {
	// Members are visitors with member standing (signed in).
	Members CohortImpact `json:"members"`
	// Cleared are visitors holding a clearance (a solved challenge).
	Cleared CohortImpact `json:"cleared"`
	// Shed is the number of requests refused by load shedding.
	Shed uint64 `json:"shed,omitempty"`
	// ChallengesShown and ChallengesSolved count challenge pages served
	// and challenges solved.
	ChallengesShown  uint64 `json:"challenges_shown,omitempty"`
	ChallengesSolved uint64 `json:"challenges_solved,omitempty"`
	// Collateral is the estimated number of known-good users a decision
	// hit (the largest EstimatedCollateral of the incident's decisions).
	Collateral uint64 `json:"collateral,omitempty"`
}

// CohortImpact is one group of legitimate visitors during an incident.
type CohortImpact struct {
	// Requests they made and how many were Served (answered by the origin
	// without a shield refusal or an origin error).
	Requests uint64 `json:"requests"`
	Served   uint64 `json:"served"`
	// LatencyP95 is their 95th-percentile response time during the
	// incident; BaselineLatencyP95 the same before it (JSON: nanoseconds).
	LatencyP95         time.Duration `json:"latency_p95_ns,omitempty"`
	BaselineLatencyP95 time.Duration `json:"baseline_latency_p95_ns,omitempty"`
}

// Integrity is the evidence behind "no data was accessed": the origin's
// error rate and the responses of the routes configured as sensitive (a
// members' export, a donor list), each compared with its baseline.
type Integrity struct {
	// OriginRequests were forwarded to the origin during the incident, of
	// which OriginErrors failed (5xx, timeouts).
	OriginRequests uint64 `json:"origin_requests"`
	OriginErrors   uint64 `json:"origin_errors"`
	// BaselineErrorRate is the share (0..1) of origin requests that failed
	// before the incident.
	BaselineErrorRate float64 `json:"baseline_error_rate"`
	// Routes are the sensitive routes, in configuration order.
	Routes []RouteVolume `json:"routes,omitempty"`
}

// RouteVolume is one sensitive route's traffic during an incident and its
// baseline for a period of the same length.
type RouteVolume struct {
	// Route is the configured route name or path pattern ("/members/export").
	Route string `json:"route"`
	// Requests answered with a success status and their response bytes.
	Requests      uint64 `json:"requests"`
	ResponseBytes uint64 `json:"response_bytes"`
	// BaselineRequests and BaselineResponseBytes are what the baseline
	// rate gives over the incident's duration.
	BaselineRequests      uint64 `json:"baseline_requests"`
	BaselineResponseBytes uint64 `json:"baseline_response_bytes"`
}

// Related links an incident to an earlier one with the same attackers.
type Related struct {
	// ID is the other incident's id.
	ID string `json:"id"`
	// Shared lists what the two have in common: prefixes
	// ("203.0.113.0/24"), ASNs ("AS64500"), fingerprints.
	Shared []string `json:"shared"`
}

// Open reports whether the incident has not ended.
func (in *Incident) Open() bool { return in.End.IsZero() }
