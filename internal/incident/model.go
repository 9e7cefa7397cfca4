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
	// the state machine entered "attack"; End when it returned to normal
	// (zero while the incident is open).
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
}

// Open reports whether the incident has not ended.
func (in *Incident) Open() bool { return in.End.IsZero() }
