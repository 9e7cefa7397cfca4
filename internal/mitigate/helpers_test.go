package mitigate

import (
	"net/netip"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/detect"
	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/stats"
)

const tick = 250 * time.Millisecond

// goodUsers is a Goodness over a list of known-good user addresses and
// per-network counts.
type goodUsers struct {
	addrs []netip.Addr
	asn   map[uint32]int
}

func (g goodUsers) KnownGood(p netip.Prefix) int {
	n := 0
	for _, a := range g.addrs {
		if p.Contains(a) {
			n++
		}
	}
	return n
}

func (g goodUsers) KnownGoodASN(asn uint32) int { return g.asn[asn] }

// usersIn returns n addresses inside p (p's first address + 1 … + n).
func usersIn(p string, n int) []netip.Addr {
	a := netip.MustParsePrefix(p).Addr()
	out := make([]netip.Addr, n)
	for i := range out {
		a = a.Next()
		out[i] = a
	}
	return out
}

// sig returns a firing signal for vector v.
func sig(v string, score float64) detect.Signal {
	return detect.Signal{Detector: v, Vector: v, Score: score}
}

// attack returns an input for site 0 in state attack with the given
// signals, over a 1 s period with requests in total.
func attack(requests uint64, sigs ...detect.Signal) SiteInput {
	return SiteInput{Site: 0, State: incident.StateAttack, IncidentID: "inc-1", Signals: sigs,
		Period: time.Second, Requests: requests}
}

// quiet returns an input for site 0 with no attack.
func quiet(state incident.State) SiteInput {
	return SiteInput{Site: 0, State: state, Period: time.Second, Requests: 20}
}

func addrs(kv ...any) []stats.Counted[netip.Addr] {
	var out []stats.Counted[netip.Addr]
	for i := 0; i < len(kv); i += 2 {
		out = append(out, stats.Counted[netip.Addr]{Key: netip.MustParseAddr(kv[i].(string)), Count: uint64(kv[i+1].(int))})
	}
	return out
}

func prefixes(kv ...any) []stats.Counted[netip.Prefix] {
	var out []stats.Counted[netip.Prefix]
	for i := 0; i < len(kv); i += 2 {
		out = append(out, stats.Counted[netip.Prefix]{Key: netip.MustParsePrefix(kv[i].(string)), Count: uint64(kv[i+1].(int))})
	}
	return out
}

// harness drives a Controller over a Policy and a DecisionSet on event
// time, recording the timeline events.
type harness struct {
	t      *testing.T
	c      *Controller
	set    *DecisionSet
	events []incident.Event
	log    []Change
	next   time.Duration // the next tick advance will step
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	p, err := NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, set: NewDecisionSet(0)}
	h.c, err = NewController(h.set, p, ControllerOptions{OnEvent: func(site int, inc string, ev incident.Event) {
		h.events = append(h.events, ev)
	}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) step(now time.Time, in ...SiteInput) []Change {
	h.t.Helper()
	ch, err := h.c.Step(now, in)
	if err != nil {
		h.t.Fatalf("Step(%v): %v", now.Sub(t0), err)
	}
	h.log = append(h.log, ch...)
	return ch
}

// run steps every tick in [from, to) with the input f returns.
func (h *harness) run(from, to time.Duration, f func(at time.Duration) SiteInput) {
	h.t.Helper()
	for at := from; at < to; at += tick {
		h.step(t0.Add(at), f(at))
	}
}

// action returns the enforced action for a request from addr to site 0
// ("none" when nothing matches).
func (h *harness) action(addr string) string {
	d, ok := h.set.Lookup(0, netip.MustParseAddr(addr), 0, "", "/", 0)
	if !ok {
		return "none"
	}
	return d.Action.String()
}

// advance steps every tick from where the previous advance stopped up to
// and including until, with the input f returns.
func (h *harness) advance(until time.Duration, f func(at time.Duration) SiteInput) {
	h.t.Helper()
	for ; h.next <= until; h.next += tick {
		h.step(t0.Add(h.next), f(h.next))
	}
}
