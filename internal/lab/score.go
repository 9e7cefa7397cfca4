package lab

import (
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/portcullis/portcullis/internal/lab/attack"
)

// Request is one request of a legitimate traffic model as its client saw
// it: a page, an asset, a form POST, a feed or API poll. A request that met
// a challenge and solved it is one Request, its latency including the work.
type Request struct {
	// Start is when the request began, from the start of the run.
	Start time.Duration
	// Latency is the time to the final answer (or the failure).
	Latency time.Duration
	// Class is the traffic model (ClassLegit, ClassMember, ClassFeed,
	// ClassAPI).
	Class Class
	// Kind is page, asset, form, feed or api.
	Kind string
	// Status is the final HTTP status, 0 after a transport error.
	Status int
	// OK reports success: a 2xx, 3xx or 304 from the origin, with, for a
	// form, the origin's checksum echo matching the body sent.
	OK bool
	// Challenged reports that a challenge was met (and solved).
	Challenged bool
	// IntegrityFailure reports a form answered with success whose
	// checksum echo was missing or did not match the body sent.
	IntegrityFailure bool
}

// AttackOutcome is one attack vector of a run and what its driver reported.
type AttackOutcome struct {
	Spec   attack.Spec
	Result attack.Result
	// Err is the driver's error, "" when none.
	Err string
}

// crowd reports whether the vector is legitimate-looking traffic (a flash
// crowd), which is not counted as bot traffic.
func (a AttackOutcome) crowd() bool { return a.Spec.Kind == "flash_crowd" }

// Record is everything a run observed, times as offsets from the start of
// the before phase. Compute turns it into a Score.
type Record struct {
	Scenario string
	Phases   Phases
	// Bin is the width of the Origin series.
	Bin time.Duration
	// Requests are the legitimate models' requests, in any order.
	Requests []Request
	// Origin counts origin arrivals per Bin, by Class.
	Origin []Arrivals
	// Attacks are the vectors with their drivers' results.
	Attacks []AttackOutcome
	// Detections are the times the shield declared an attack (incident
	// detected, attack resumed, new vector; from its admin API),
	// ascending; nil when unknown.
	Detections []time.Duration
	// OriginPeakConcurrency is the most requests the origin handled at
	// once; OriginPeakBotConcurrency the most bot requests.
	OriginPeakConcurrency    int64
	OriginPeakBotConcurrency int64
	// BotHeld samples, once per Bin, the bot requests in progress at the
	// origin (the slots slow attacks hold); nil when not sampled.
	BotHeld []int64
	// Shield is the front's CPU and memory, nil when not measured.
	Shield *ProcUsage
}

// Score is the result of a run (the JSON of `lab run --json`). Pointer
// fields are null when the quantity is unknown or undefined.
type Score struct {
	Scenario string `json:"scenario"`
	// LegitSuccessRate is the share of the legitimate models' requests
	// (visitors, members, feeds, API) that succeeded, over the whole run.
	LegitSuccessRate *float64 `json:"legit_success_rate"`
	// LegitP50MS and LegitP99MS are latency percentiles (nearest rank) of
	// the successful legitimate requests per phase, in milliseconds.
	LegitP50MS PhaseMS `json:"legit_p50_ms"`
	LegitP99MS PhaseMS `json:"legit_p99_ms"`
	// MemberSuccessRate is LegitSuccessRate for members alone.
	MemberSuccessRate *float64 `json:"member_success_rate"`
	// BotLeakRate is bot arrivals at the origin / bot requests sent (for
	// slow_* vectors the unit is connections).
	BotLeakRate *float64 `json:"bot_leak_rate"`
	// TimeToDetectMS is from the start of the attack (the first bot
	// vector's start) to the first time after it the shield declared an
	// attack (incident detected, attack resumed, new vector); null without an admin API or
	// when none was opened.
	TimeToDetectMS *float64 `json:"time_to_detect_ms"`
	// TimeToMitigateMS is from the start of the attack to the first
	// instant after which, in every one-second window, bot arrivals at the
	// origin stay ≤ 5% of the bot requests sent by the flood vectors, and
	// the bot requests held open at the origin stay ≤ 5% of the slow
	// vectors' connections; null when never.
	TimeToMitigateMS *float64 `json:"time_to_mitigate_ms"`
	// OriginPeakConcurrency is the most requests the origin handled at once.
	OriginPeakConcurrency int64 `json:"origin_peak_concurrency"`
	// OriginPeakBotConcurrency is the most bot requests the origin handled
	// at once: the origin slots a slow attack held.
	OriginPeakBotConcurrency int64 `json:"origin_peak_bot_concurrency"`
	// PostIntegrityFailures counts forms answered with success whose
	// checksum echo was missing or wrong.
	PostIntegrityFailures uint64 `json:"post_integrity_failures"`
	// ShieldCPUSeconds and ShieldPeakRSSBytes are the front's cost.
	ShieldCPUSeconds   *float64 `json:"shield_cpu_seconds"`
	ShieldPeakRSSBytes *uint64  `json:"shield_peak_rss_bytes"`
	// CrowdServedRate is the flash-crowd requests answered with a 2xx or
	// 3xx (by the origin or from the shield's cache) / flash-crowd requests
	// sent; null without a flash crowd. (The crowd's driver does not solve
	// challenges: a challenged crowd request counts as not served.)
	CrowdServedRate *float64 `json:"crowd_served_rate"`
	// FalseAlarms counts attack declarations before the attack started.
	FalseAlarms int `json:"false_alarms"`
	// LegitFailures counts failed legitimate requests by "class kind
	// status" (status 0: transport error or timeout), e.g. "feed feed 429".
	LegitFailures map[string]uint64 `json:"legit_failures,omitempty"`
	// Phases are per-phase counts.
	Phases PhaseCountsByPhase `json:"phases"`
	// Attacks are the vectors' client-side results.
	Attacks []AttackScore `json:"attacks"`
}

// PhaseMS is a value in milliseconds per phase.
type PhaseMS struct {
	Before *float64 `json:"before"`
	During *float64 `json:"during"`
	After  *float64 `json:"after"`
}

// PhaseCountsByPhase holds PhaseCounts for each phase.
type PhaseCountsByPhase struct {
	Before PhaseCounts `json:"before"`
	During PhaseCounts `json:"during"`
	After  PhaseCounts `json:"after"`
}

// PhaseCounts are the counts of one phase (requests by their start time,
// origin arrivals by their bin).
type PhaseCounts struct {
	LegitRequests  uint64 `json:"legit_requests"`
	LegitOK        uint64 `json:"legit_ok"`
	MemberRequests uint64 `json:"member_requests"`
	MemberOK       uint64 `json:"member_ok"`
	// Challenged counts legitimate requests that met a challenge.
	Challenged uint64 `json:"challenged"`
	// BotSent is the estimated bot requests sent in the phase (a driver
	// reports only a total: it is spread evenly over the vector's active
	// time, pulses included).
	BotSent       uint64 `json:"bot_sent"`
	BotArrivals   uint64 `json:"bot_arrivals"`
	LegitArrivals uint64 `json:"legit_arrivals"`
	CrowdArrivals uint64 `json:"crowd_arrivals"`
}

// AttackScore is one vector's client-side result.
type AttackScore struct {
	Kind        string            `json:"kind"`
	Tool        string            `json:"tool,omitempty"`
	Sent        uint64            `json:"sent"`
	Connections uint64            `json:"connections"`
	Errors      uint64            `json:"errors"`
	Statuses    map[string]uint64 `json:"statuses,omitempty"`
	Error       string            `json:"error,omitempty"`
}

// Score thresholds.
const (
	// MitigatedShare is the bot arrivals/sent ratio at or below which a
	// one-second window counts as mitigated.
	MitigatedShare = 0.05
	// mitigationWindow is the window of the time-to-mitigate criterion.
	mitigationWindow = time.Second
)

type phaseIdx int

const (
	phaseBefore phaseIdx = iota
	phaseDuring
	phaseAfter
)

func (p Phases) of(t time.Duration) phaseIdx {
	switch {
	case t < p.Before:
		return phaseBefore
	case t < p.Before+p.Attack:
		return phaseDuring
	}
	return phaseAfter
}

// Compute scores a record. It is a pure function of r.
func Compute(r *Record) Score {
	s := Score{Scenario: r.Scenario, OriginPeakConcurrency: r.OriginPeakConcurrency, OriginPeakBotConcurrency: r.OriginPeakBotConcurrency}
	var counts [3]PhaseCounts
	var lat [3][]time.Duration
	var legitN, legitOK, memberN, memberOK uint64
	for _, q := range r.Requests {
		if !q.Class.IsLegit() {
			continue
		}
		ph := r.Phases.of(q.Start)
		c := &counts[ph]
		c.LegitRequests++
		legitN++
		if q.Challenged {
			c.Challenged++
		}
		if q.IntegrityFailure {
			s.PostIntegrityFailures++
		}
		if q.OK {
			c.LegitOK++
			legitOK++
			lat[ph] = append(lat[ph], q.Latency)
		} else {
			if s.LegitFailures == nil {
				s.LegitFailures = map[string]uint64{}
			}
			s.LegitFailures[q.Class.String()+" "+q.Kind+" "+strconv.Itoa(q.Status)]++
		}
		if q.Class == ClassMember {
			c.MemberRequests++
			memberN++
			if q.OK {
				c.MemberOK++
				memberOK++
			}
		}
	}
	s.LegitSuccessRate = ratio(legitOK, legitN)
	s.MemberSuccessRate = ratio(memberOK, memberN)
	for i, l := range lat {
		p50, p99 := percentileMS(l, 0.50), percentileMS(l, 0.99)
		switch phaseIdx(i) {
		case phaseBefore:
			s.LegitP50MS.Before, s.LegitP99MS.Before = p50, p99
		case phaseDuring:
			s.LegitP50MS.During, s.LegitP99MS.During = p50, p99
		case phaseAfter:
			s.LegitP50MS.After, s.LegitP99MS.After = p50, p99
		}
	}

	sent := botSentSeries(r, func(AttackOutcome) bool { return true })
	var botArr, crowdArr, botSent, crowdSent, crowdOK uint64
	for i, a := range r.Origin {
		c := &counts[r.Phases.of(time.Duration(i)*r.Bin)]
		c.BotArrivals += a[ClassBot]
		c.CrowdArrivals += a[ClassCrowd]
		for k := ClassLegit; k <= ClassAPI; k++ {
			c.LegitArrivals += a[k]
		}
		botArr += a[ClassBot]
		crowdArr += a[ClassCrowd]
	}
	var phaseSent [3]float64
	for i, v := range sent {
		phaseSent[r.Phases.of(time.Duration(i)*r.Bin)] += v
	}
	for i := range counts {
		counts[i].BotSent = uint64(math.Round(phaseSent[i]))
	}
	for _, a := range r.Attacks {
		as := AttackScore{Kind: a.Spec.Kind, Tool: a.Spec.Tool, Sent: a.Result.Sent, Connections: a.Result.Connections, Errors: a.Result.Errors, Error: a.Err}
		for code, n := range a.Result.Statuses {
			if as.Statuses == nil {
				as.Statuses = map[string]uint64{}
			}
			as.Statuses[strconv.Itoa(code)] = n
		}
		s.Attacks = append(s.Attacks, as)
		if a.crowd() {
			crowdSent += a.Result.Sent
			for code, n := range a.Result.Statuses {
				if code >= 200 && code < 400 {
					crowdOK += n
				}
			}
		} else {
			botSent += a.Result.Sent
		}
	}
	s.BotLeakRate = ratio(botArr, botSent)
	s.CrowdServedRate = ratio(crowdOK, crowdSent)
	s.Phases = PhaseCountsByPhase{Before: counts[0], During: counts[1], After: counts[2]}
	start := r.attackStart()
	s.TimeToMitigateMS = timeToMitigate(r, start)
	for _, d := range r.Detections {
		if d < start {
			s.FalseAlarms++
			continue
		}
		if s.TimeToDetectMS == nil {
			s.TimeToDetectMS = ms(d - start)
		}
	}
	if r.Shield != nil {
		cpu := math.Round(r.Shield.CPUSeconds*100) / 100
		rss := r.Shield.PeakRSSBytes
		s.ShieldCPUSeconds, s.ShieldPeakRSSBytes = &cpu, &rss
	}
	return s
}

func ratio(n, d uint64) *float64 {
	if d == 0 {
		return nil
	}
	v := math.Round(float64(n)/float64(d)*1e4) / 1e4
	return &v
}

func ms(d time.Duration) *float64 {
	v := math.Round(float64(d)/float64(time.Millisecond)*10) / 10
	return &v
}

// percentileMS is the nearest-rank p-quantile of ds in ms, nil when empty.
func percentileMS(ds []time.Duration, p float64) *float64 {
	if len(ds) == 0 {
		return nil
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := max(0, int(math.Ceil(p*float64(len(s))))-1)
	return ms(s[i])
}
