package lab

import (
	"time"

	"github.com/portcullis/portcullis/internal/lab/attack"
)

// attackStart is when the attack began: the earliest Start of the bot
// vectors (of all vectors when there is none), from the start of the run.
func (r *Record) attackStart() time.Duration {
	first, any := time.Duration(-1), false
	for _, crowdToo := range []bool{false, true} {
		for _, a := range r.Attacks {
			if (!a.crowd() || crowdToo) && (first < 0 || a.Spec.Start < first) {
				first, any = a.Spec.Start, true
			}
		}
		if any {
			break
		}
	}
	return r.Phases.Before + max(first, 0)
}

// botSentSeries spreads each bot vector's reported Sent evenly over its
// active time (from Before+Start for Duration, only the On parts of a
// pulse) and sums the vectors for which use is true per Bin.
func botSentSeries(r *Record, use func(AttackOutcome) bool) []float64 {
	if r.Bin <= 0 {
		return nil
	}
	n := int((r.Phases.Total() + r.Bin - 1) / r.Bin)
	out := make([]float64, n)
	for _, a := range r.Attacks {
		if a.crowd() || !use(a) || a.Result.Sent == 0 || a.Spec.Duration <= 0 {
			continue
		}
		ivs := activeIntervals(r.Phases.Before+a.Spec.Start, a.Spec.Duration, a.Spec.Pulse)
		var active time.Duration
		for _, iv := range ivs {
			active += iv[1] - iv[0]
		}
		if active <= 0 {
			continue
		}
		perNS := float64(a.Result.Sent) / float64(active)
		for _, iv := range ivs {
			for b := int(iv[0] / r.Bin); b < n && time.Duration(b)*r.Bin < iv[1]; b++ {
				lo, hi := max(iv[0], time.Duration(b)*r.Bin), min(iv[1], time.Duration(b+1)*r.Bin)
				if hi > lo {
					out[b] += perNS * float64(hi-lo)
				}
			}
		}
	}
	return out
}

// activeIntervals returns the [from, to) intervals a vector sends in:
// [start, start+d), cut into On/Off pulses when p is set (Pulse.Bursts).
func activeIntervals(start, d time.Duration, p *attack.Pulse) [][2]time.Duration {
	ivs := p.Bursts(d)
	for i := range ivs {
		ivs[i][0] += start
		ivs[i][1] += start
	}
	return ivs
}

// timeToMitigate combines the flood criterion (floodMitigated) and the
// slow-connection criterion (slowReleased): the later of the two, null when
// either never holds or no bot vector sent anything.
func timeToMitigate(r *Record, start time.Duration) *float64 {
	flood, floodOK := floodMitigated(r, start)
	slow, slowOK := slowReleased(r, start)
	switch {
	case !floodOK && !slowOK:
		return nil
	case floodOK && flood < 0, slowOK && slow < 0:
		return nil
	}
	return ms(max(flood, slow))
}

// isSlow reports whether a vector holds connections open (slowloris, slow
// POST, slow read) rather than sending many requests.
func (a AttackOutcome) isSlow() bool {
	switch a.Spec.Kind {
	case "slowloris", "slow_post", "slow_read":
		return true
	}
	return false
}

// floodMitigated finds the last one-second window (sliding by Bin over the
// part of the attack phase where flood vectors send, from start) whose bot
// arrivals exceed MitigatedShare of the flood requests sent in it; the
// answer is the start of the window after it, from start. Windows in which
// nothing was sent (pulse pauses) are not judged. applies is false without
// flood traffic; the duration is negative when the last window still leaks.
func floodMitigated(r *Record, start time.Duration) (d time.Duration, applies bool) {
	if r.Bin <= 0 {
		return 0, false
	}
	sent := botSentSeries(r, func(a AttackOutcome) bool { return !a.isSlow() })
	a := int(start / r.Bin)
	e := min(int((r.Phases.Before+r.Phases.Attack+r.Bin-1)/r.Bin), len(sent))
	for e > a && sent[e-1] == 0 {
		e--
	}
	if e <= a {
		return 0, false
	}
	w := max(1, int(mitigationWindow/r.Bin))
	w = min(w, e-a)
	arr := func(i int) float64 {
		if i < len(r.Origin) {
			return float64(r.Origin[i][ClassBot])
		}
		return 0
	}
	lastFail := -1
	for u := a; u+w <= e; u++ {
		var s, n float64
		for i := u; i < u+w; i++ {
			s += sent[i]
			n += arr(i)
		}
		if s > 0 && n > MitigatedShare*s {
			lastFail = u
		}
	}
	switch {
	case lastFail < 0:
		return 0, true
	case lastFail+w >= e:
		return -1, true
	}
	return max(0, time.Duration(lastFail+1)*r.Bin-start), true
}

// slowReleased finds the last Bin, while slow vectors are active, in which
// the bot requests held at the origin (BotHeld) exceed MitigatedShare of
// the connections the slow vectors opened; the answer is the end of that
// bin, from start. applies is false without slow vectors or samples; the
// duration is negative when the last active bin still holds too many.
func slowReleased(r *Record, start time.Duration) (d time.Duration, applies bool) {
	if r.Bin <= 0 || len(r.BotHeld) == 0 {
		return 0, false
	}
	var conns uint64
	from, to := time.Duration(-1), time.Duration(0)
	for _, a := range r.Attacks {
		if !a.isSlow() {
			continue
		}
		conns += max(a.Result.Connections, a.Result.Sent)
		b := r.Phases.Before + a.Spec.Start
		if from < 0 || b < from {
			from = b
		}
		to = max(to, b+a.Spec.Duration)
	}
	if conns == 0 {
		return 0, false
	}
	lo, hi := int(from/r.Bin), min(int((to+r.Bin-1)/r.Bin), len(r.BotHeld))
	if hi <= lo {
		return 0, false
	}
	lastFail := -1
	for i := lo; i < hi; i++ {
		if float64(r.BotHeld[i]) > MitigatedShare*float64(conns) {
			lastFail = i
		}
	}
	switch {
	case lastFail < 0:
		return 0, true
	case lastFail == hi-1:
		return -1, true
	}
	return max(0, time.Duration(lastFail+1)*r.Bin-start), true
}
