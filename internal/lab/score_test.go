package lab

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/lab/attack"
)

const msec = time.Millisecond

// req builds a recorded legitimate request.
func req(start time.Duration, class Class, latency time.Duration, status int, ok bool) Request {
	return Request{Start: start, Latency: latency, Class: class, Kind: "page", Status: status, OK: ok}
}

// series returns n empty bins with bot arrivals set at the given bins.
func series(n int, bot map[int]uint64, crowd map[int]uint64) []Arrivals {
	out := make([]Arrivals, n)
	for i, v := range bot {
		out[i][ClassBot] = v
	}
	for i, v := range crowd {
		out[i][ClassCrowd] = v
	}
	return out
}

func f(v float64) *float64 { return &v }

func eqPtr(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func show(p *float64) string {
	if p == nil {
		return "null"
	}
	b, _ := json.Marshal(*p)
	return string(b)
}

// fullRecord is a hand-built run with known answers:
// phases 2s/4s/2s, 100 ms bins; a bot vector from 3 s to 5 s that sent
// 2,000 requests (100 per bin) and leaked completely for its first 500 ms,
// 3 more in bin 40; a flash crowd that sent 400 and had 300 served;
// detections at 1 s (false alarm), 3.25 s and 4 s.
func fullRecord() *Record {
	bot := map[int]uint64{30: 100, 31: 100, 32: 100, 33: 100, 34: 100, 40: 3}
	return &Record{
		Scenario: "hand-built",
		Phases:   Phases{Before: 2 * time.Second, Attack: 4 * time.Second, After: 2 * time.Second},
		Bin:      100 * msec,
		Requests: []Request{
			req(100*msec, ClassLegit, 10*msec, 200, true),
			req(500*msec, ClassFeed, 40*msec, 304, true),
			req(900*msec, ClassAPI, 30*msec, 200, true),
			req(1900*msec, ClassLegit, 20*msec, 200, true),
			req(2100*msec, ClassLegit, 50*msec, 200, true),
			req(3000*msec, ClassLegit, 60*msec, 200, true),
			req(3500*msec, ClassLegit, 1000*msec, 200, true),
			req(3600*msec, ClassLegit, 5*msec, 503, false),
			req(4000*msec, ClassMember, 70*msec, 200, true),
			req(4100*msec, ClassMember, 3*msec, 429, false),
			{Start: 4200 * msec, Latency: 80 * msec, Class: ClassLegit, Kind: "form", Status: 200, IntegrityFailure: true},
			req(6100*msec, ClassLegit, 25*msec, 200, true),
			req(7000*msec, ClassLegit, 15*msec, 200, true),
			req(3000*msec, ClassBot, 1*msec, 200, true), // not a legitimate model: ignored
		},
		Origin: series(80, bot, map[int]uint64{15: 100, 40: 200}),
		Attacks: []AttackOutcome{
			{Spec: attack.Spec{Kind: "get_flood", Tool: "go", Start: time.Second, Duration: 2 * time.Second},
				Result: attack.Result{Sent: 2000, Statuses: map[int]uint64{403: 1500, 200: 500}, Connections: 8}},
			{Spec: attack.Spec{Kind: "flash_crowd", Tool: "go", Start: 0, Duration: 4 * time.Second},
				Result: attack.Result{Sent: 400, Statuses: map[int]uint64{200: 310, 304: 30, 503: 60}}, Err: "boom"},
		},
		Detections:            []time.Duration{time.Second, 3250 * msec, 4 * time.Second},
		OriginPeakConcurrency: 42, OriginPeakBotConcurrency: 7,
		Shield: &ProcUsage{CPUSeconds: 1.234, PeakRSSBytes: 1000},
	}
}

func TestCompute(t *testing.T) {
	full := Compute(fullRecord())
	empty := Compute(&Record{Scenario: "empty", Phases: Phases{Before: time.Second, Attack: time.Second, After: time.Second}, Bin: 100 * msec})

	never := fullRecord()
	for i := 30; i < 50; i++ {
		never.Origin[i][ClassBot] = 100 // leaks until the end
	}
	neverScore := Compute(never)

	// Pulses: 1 s on, 1 s off from 1 s to 6 s (on 1–2, 3–4, 5–6), 3,000
	// sent; the first pulse leaks completely, the others not at all. The
	// silent seconds are not judged, so mitigation is at the end of the
	// first pulse.
	pulse := &Record{
		Phases: Phases{Before: time.Second, Attack: 5 * time.Second, After: time.Second}, Bin: 100 * msec,
		Origin: series(70, map[int]uint64{10: 100, 11: 100, 12: 100, 13: 100, 14: 100, 15: 100, 16: 100, 17: 100, 18: 100, 19: 100}, nil),
		Attacks: []AttackOutcome{{Spec: attack.Spec{Kind: "get_flood", Duration: 5 * time.Second, Pulse: &attack.Pulse{On: time.Second, Off: time.Second}},
			Result: attack.Result{Sent: 3000}}},
	}
	pulseScore := Compute(pulse)

	// A vector that never leaks is mitigated at once.
	clean := fullRecord()
	clean.Origin = series(80, nil, nil)
	cleanScore := Compute(clean)

	// Slow vectors: 100 connections from 1 s to 5 s, held at the origin
	// until 3 s, then 2 (≤ 5%) — released 2 s after the attack started.
	slow := func(held map[int]int64, until int) *Record {
		r := &Record{Phases: Phases{Before: time.Second, Attack: 5 * time.Second, After: time.Second}, Bin: 100 * msec,
			Attacks: []AttackOutcome{{Spec: attack.Spec{Kind: "slow_post", Duration: 4 * time.Second}, Result: attack.Result{Sent: 100, Connections: 100}}},
			BotHeld: make([]int64, 70)}
		for i := 10; i < until; i++ {
			r.BotHeld[i] = held[0]
		}
		for i := until; i < 70; i++ {
			r.BotHeld[i] = held[1]
		}
		return r
	}
	slowScore := Compute(slow(map[int]int64{0: 100, 1: 2}, 30))
	slowNever := Compute(slow(map[int]int64{0: 100, 1: 100}, 30))
	slowNone := Compute(slow(map[int]int64{0: 0, 1: 0}, 30))
	mixed := fullRecord()
	mixed.Attacks = append(mixed.Attacks, AttackOutcome{Spec: attack.Spec{Kind: "slowloris", Start: time.Second, Duration: 3 * time.Second}, Result: attack.Result{Sent: 50, Connections: 50}})
	mixed.BotHeld = make([]int64, 80)
	for i := 30; i < 42; i++ {
		mixed.BotHeld[i] = 50 // released at 4.2 s: 1.2 s after the start, later than the flood's 500 ms
	}
	mixedScore := Compute(mixed)

	tests := []struct {
		name      string
		got, want *float64
	}{
		{"slow: released when the held slots drop to ≤ 5%", slowScore.TimeToMitigateMS, f(2000)},
		{"slow: never released is null", slowNever.TimeToMitigateMS, nil},
		{"slow: nothing reached the origin", slowNone.TimeToMitigateMS, f(0)},
		{"mixed: the later of flood and slow", mixedScore.TimeToMitigateMS, f(1200)},
		{"legit success 10 of 13 (bot request ignored)", full.LegitSuccessRate, f(0.7692)},
		{"member success 1 of 2", full.MemberSuccessRate, f(0.5)},
		{"p50 before", full.LegitP50MS.Before, f(20)},
		{"p99 before", full.LegitP99MS.Before, f(40)},
		{"p50 during (successes only)", full.LegitP50MS.During, f(60)},
		{"p99 during", full.LegitP99MS.During, f(1000)},
		{"p50 after", full.LegitP50MS.After, f(15)},
		{"p99 after", full.LegitP99MS.After, f(25)},
		{"bot leak 503 of 2000", full.BotLeakRate, f(0.2515)},
		{"crowd served 340 of 400 (answers, not origin arrivals)", full.CrowdServedRate, f(0.85)},
		{"detect: first after the bot vector's start (3 s)", full.TimeToDetectMS, f(250)},
		{"mitigate: window after the last leaking bin", full.TimeToMitigateMS, f(500)},
		{"cpu rounded", full.ShieldCPUSeconds, f(1.23)},
		{"never mitigated is null", neverScore.TimeToMitigateMS, nil},
		{"pulse: pauses are not judged", pulseScore.TimeToMitigateMS, f(1000)},
		{"no leak: mitigated at once", cleanScore.TimeToMitigateMS, f(0)},
		{"empty: legit success null", empty.LegitSuccessRate, nil},
		{"empty: member success null", empty.MemberSuccessRate, nil},
		{"empty: leak null", empty.BotLeakRate, nil},
		{"empty: crowd null", empty.CrowdServedRate, nil},
		{"empty: detect null", empty.TimeToDetectMS, nil},
		{"empty: mitigate null", empty.TimeToMitigateMS, nil},
		{"empty: p50 null", empty.LegitP50MS.During, nil},
		{"empty: cpu null", empty.ShieldCPUSeconds, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !eqPtr(tc.got, tc.want) {
				t.Errorf("got %s, want %s", show(tc.got), show(tc.want))
			}
		})
	}

	counts := []struct {
		name      string
		got, want uint64
	}{
		{"integrity failures", full.PostIntegrityFailures, 1},
		{"rss", *full.ShieldPeakRSSBytes, 1000},
		{"before: legit requests", full.Phases.Before.LegitRequests, 4},
		{"during: legit requests", full.Phases.During.LegitRequests, 7},
		{"during: legit ok", full.Phases.During.LegitOK, 4},
		{"during: member requests", full.Phases.During.MemberRequests, 2},
		{"during: bot sent (spread evenly)", full.Phases.During.BotSent, 2000},
		{"during: bot arrivals", full.Phases.During.BotArrivals, 503},
		{"before: crowd arrivals", full.Phases.Before.CrowdArrivals, 100},
		{"after: legit requests", full.Phases.After.LegitRequests, 2},
		{"after: bot sent", full.Phases.After.BotSent, 0},
		{"false alarms", uint64(full.FalseAlarms), 1},
		{"failures by class kind status", full.LegitFailures["member page 429"], 1},
		{"peak concurrency", uint64(full.OriginPeakConcurrency), 42},
		{"peak bot concurrency", uint64(full.OriginPeakBotConcurrency), 7},
	}
	for _, tc := range counts {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %d, want %d", tc.got, tc.want)
			}
		})
	}
	if len(full.Attacks) != 2 || full.Attacks[0].Statuses["403"] != 1500 || full.Attacks[1].Error != "boom" {
		t.Errorf("attacks = %+v", full.Attacks)
	}
}

func TestBotSentSeries(t *testing.T) {
	tests := []struct {
		name string
		spec attack.Spec
		sent uint64
		// want maps bins to expected values; all other bins must be 0.
		want map[int]float64
	}{
		{"continuous, bin aligned", attack.Spec{Kind: "get_flood", Start: 0, Duration: 300 * msec}, 300,
			map[int]float64{10: 100, 11: 100, 12: 100}},
		{"continuous, half bins at both ends", attack.Spec{Kind: "get_flood", Start: 50 * msec, Duration: 200 * msec}, 200,
			map[int]float64{10: 50, 11: 100, 12: 50}},
		{"pulse on 100 ms off 200 ms", attack.Spec{Kind: "get_flood", Duration: 700 * msec, Pulse: &attack.Pulse{On: 100 * msec, Off: 200 * msec}}, 300,
			map[int]float64{10: 100, 13: 100, 16: 100}},
		{"flash crowd is not bot traffic", attack.Spec{Kind: "flash_crowd", Duration: 300 * msec}, 300, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Record{Phases: Phases{Before: time.Second, Attack: time.Second, After: time.Second}, Bin: 100 * msec,
				Attacks: []AttackOutcome{{Spec: tc.spec, Result: attack.Result{Sent: tc.sent}}}}
			got := botSentSeries(r, func(AttackOutcome) bool { return true })
			for i, v := range got {
				if d := v - tc.want[i]; d > 1e-9 || d < -1e-9 {
					t.Errorf("bin %d = %v, want %v", i, v, tc.want[i])
				}
			}
		})
	}
}

func TestScoreJSON(t *testing.T) {
	b, err := json.Marshal(Compute(&Record{Scenario: "x", Phases: Phases{Before: time.Second, Attack: time.Second, After: time.Second}, Bin: 100 * msec}))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"scenario":"x"`, `"legit_success_rate":null`, `"time_to_detect_ms":null`, `"time_to_mitigate_ms":null`,
		`"legit_p50_ms":{"before":null,"during":null,"after":null}`, `"shield_cpu_seconds":null`, `"shield_peak_rss_bytes":null`,
		`"bot_leak_rate":null`, `"member_success_rate":null`, `"post_integrity_failures":0`, `"origin_peak_concurrency":0`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("score JSON lacks %s:\n%s", want, b)
		}
	}
	// The record is the input of the score: it must survive JSON.
	rec := fullRecord()
	rb, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var back Record
	if err := json.Unmarshal(rb, &back); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(Compute(rec))
	c, _ := json.Marshal(Compute(&back))
	if string(a) != string(c) {
		t.Errorf("score of the JSON round-tripped record differs:\n%s\n%s", a, c)
	}
}
