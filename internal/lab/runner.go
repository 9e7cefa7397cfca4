package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portcullis/portcullis/internal/lab/attack"
)

// DefaultAttackCountries weights the source countries of an attack vector
// that names none.
var DefaultAttackCountries = map[string]float64{"RU": 0.4, "CN": 0.3, "BR": 0.2, "US": 0.1}

// Bin is the width of the origin's arrival series in a run.
const Bin = 100 * time.Millisecond

// Options configure Run.
type Options struct {
	// Scenario is what to run (validated).
	Scenario *Scenario
	// Target is a running front (http://127.0.0.1:PORT) whose upstream is
	// the origin the lab starts on OriginListen; nil runs self-contained:
	// the lab starts ShieldBinary as `serve` in front of its origin.
	Target *url.URL
	// TargetH2 is where the HTTP/2 attack kinds (rapid_reset, h2_flood)
	// go when the front serves h2c on a separate port (nginx before 1.25
	// serves only HTTP/2 on a cleartext http2 listener); nil: Target.
	TargetH2 *url.URL
	// ProxyProtocol makes the lab's clients (and the attack drivers that
	// can) announce their simulated address in a PROXY v1 header instead
	// of X-Forwarded-For (with Target only).
	ProxyProtocol bool
	// OriginListen is the origin's loopback host:port; required with
	// Target, a free port otherwise.
	OriginListen string
	// TargetPIDs are the front's processes (children included) whose CPU
	// and memory are measured; self-contained runs measure the child.
	TargetPIDs []int
	// Admin is a Portcullis admin API (http://127.0.0.1:PORT) polled for
	// incidents (time to detect); self-contained runs use the child's.
	Admin *url.URL
	// AdminToken is the admin API bearer token, "" for none.
	AdminToken string
	// ShieldBinary is the portcullis executable of a self-contained run.
	ShieldBinary string
	// ShieldLog receives the self-contained shield's log; nil keeps only
	// its tail, shown when it fails to start.
	ShieldLog io.Writer
	// GeoDirs are searched in order for the country mmdb of
	// scripts/fetch-geodata.sh (see OpenPopulation).
	GeoDirs []string
	// Progress receives one status line per second and warnings; nil
	// discards them.
	Progress io.Writer
	// Seed makes the simulated populations and the models' choices
	// reproducible (0 is a valid seed).
	Seed uint64
}

// loopback reports whether host (a name or an address, no port) is on
// loopback.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// Run drives the scenario: the legitimate models through all three
// phases, the attack vectors in the attack phase, while recording what the
// origin received, the shield's incidents and the front's CPU and memory.
// It returns the Record for Compute. Errors: invalid options (a non-
// loopback target or origin), a setup failure (population, origin listener,
// shield start). An attack driver's error does not end the run; it is kept
// in the Record.
func Run(ctx context.Context, o Options) (*Record, error) {
	sc := o.Scenario
	if sc == nil {
		return nil, errors.New("lab: no scenario")
	}
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	if o.Target != nil {
		if o.Target.Scheme != "http" || !loopback(o.Target.Hostname()) {
			return nil, fmt.Errorf("lab: --target %s: want http://127.0.0.1:PORT (loopback only)", o.Target)
		}
		if o.OriginListen == "" {
			return nil, errors.New("lab: --target needs --origin-listen (the target's upstream)")
		}
		if o.TargetH2 != nil && (o.TargetH2.Scheme != "http" || !loopback(o.TargetH2.Hostname())) {
			return nil, fmt.Errorf("lab: --target-h2 %s: want http://127.0.0.1:PORT (loopback only)", o.TargetH2)
		}
	} else if o.ShieldBinary == "" {
		return nil, errors.New("lab: self-contained run needs the portcullis binary")
	}
	if o.Target != nil && len(sc.Shield) > 0 {
		fmt.Fprintf(progress, "lab: the scenario's shield overrides apply to self-contained runs only; ignored with --target\n")
	}
	if o.OriginListen == "" {
		o.OriginListen = "127.0.0.1:0"
	}
	if h, _, err := net.SplitHostPort(o.OriginListen); err != nil || !loopback(h) {
		return nil, fmt.Errorf("lab: --origin-listen %q: want a loopback host:port", o.OriginListen)
	}

	// Populations.
	countries := map[string]bool{}
	for cc := range sc.Legit.Countries {
		countries[cc] = true
	}
	attackCountries := make([]map[string]float64, len(sc.Attacks))
	for i, a := range sc.Attacks {
		attackCountries[i] = a.Countries
		if len(a.Countries) == 0 {
			attackCountries[i] = DefaultAttackCountries
		}
		for cc := range attackCountries[i] {
			countries[cc] = true
		}
	}
	ccs := slices.Sorted(func(yield func(string) bool) {
		for cc := range countries {
			if !yield(cc) {
				return
			}
		}
	})
	pop, fallback, err := OpenPopulation(ccs, o.GeoDirs...)
	if err != nil {
		return nil, err
	}
	if fallback {
		fmt.Fprintf(progress, "lab: no geo data (%s not in %s); drawing sources from the built-in table of real prefixes (4 per country)\n",
			countryMMDB, strings.Join(slices.DeleteFunc(slices.Clone(o.GeoDirs), func(s string) bool { return s == "" }), ", "))
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x1ab))
	legitAddrs, err := pop.Draw(rng, sc.Legit.Countries, sc.Legit.Total(), nil)
	if err != nil {
		return nil, err
	}
	legit24 := map[netip.Prefix]bool{}
	for _, a := range legitAddrs {
		legit24[netip.PrefixFrom(a, 24).Masked()] = true
	}
	notLegit := func(a netip.Addr) bool { return legit24[netip.PrefixFrom(a, 24).Masked()] }
	sources := make([][]netip.Addr, len(sc.Attacks))
	for i, a := range sc.Attacks {
		if sources[i], err = pop.Draw(rng, attackCountries[i], max(1, a.Sources), notLegit); err != nil {
			return nil, err
		}
	}

	// Origin.
	origin := NewOrigin(OriginOptions{Bin: Bin, Span: sc.Phases.Total() + time.Minute})
	ln, err := net.Listen("tcp", o.OriginListen)
	if err != nil {
		return nil, fmt.Errorf("lab: origin: %w", err)
	}
	srv := &http.Server{Handler: origin, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go srv.Serve(ln)
	defer srv.Close()
	originURL := "http://" + ln.Addr().String()

	// Front.
	target, admin, pids := o.Target, o.Admin, o.TargetPIDs
	if target == nil {
		var env []string
		if !fallback && pop.Source != "" {
			env = append(env, "PORTCULLIS_GEODATA="+filepath.Dir(pop.Source))
		}
		sp, err := startShield(ctx, o.ShieldBinary, sc, originURL, env, o.ShieldLog, 30*time.Second)
		if err != nil {
			return nil, err
		}
		defer sp.stop()
		target = &url.URL{Scheme: "http", Host: sp.listen}
		admin = &url.URL{Scheme: "http", Host: sp.admin}
		pids = []int{sp.pid()}
	}
	if err := waitThrough(ctx, target, 30*time.Second); err != nil {
		return nil, err
	}
	var before procSample
	if len(pids) > 0 {
		if before, err = sampleProcs("/proc", pids); err != nil {
			return nil, err
		}
	}

	// Phases.
	run, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	stop := make(chan struct{})
	t0 := time.Now()
	origin.Start(t0)
	rec := &recorder{t0: t0}
	models := startModels(run, stop, rec, target, o.ProxyProtocol, legitAddrs, sc.Legit, o.Seed, min(sc.Phases.Before/2, 5*time.Second))

	held := &heldSeries{s: make([]int64, int(sc.Phases.Total()/Bin)+1)}
	go held.sample(run, origin, t0)
	var det detections
	if admin != nil {
		go det.poll(run, admin, o.AdminToken, t0)
	}
	outcomes := make([]AttackOutcome, len(sc.Attacks))
	var attacks sync.WaitGroup
	attackStart := t0.Add(sc.Phases.Before)
	actx, cancelAttacks := context.WithDeadline(ctx, attackStart.Add(sc.Phases.Attack+5*time.Second))
	defer cancelAttacks()
	for i, spec := range sc.Attacks {
		attacks.Go(func() {
			outcomes[i].Spec = spec
			if !sleepUntil(actx, attackStart) {
				outcomes[i].Err = actx.Err().Error()
				return
			}
			at := target
			if o.TargetH2 != nil && (spec.Kind == attack.KindRapidReset || spec.Kind == attack.KindH2Flood) {
				at = o.TargetH2
			}
			res, err := attack.Run(actx, attack.Target{URL: at, ProxyProtocol: o.ProxyProtocol}, spec, sources[i])
			outcomes[i].Result = res
			if err != nil {
				outcomes[i].Err = err.Error()
			}
		})
	}

	end := t0.Add(sc.Phases.Total())
	tick := time.NewTicker(time.Second)
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case now := <-tick.C:
			if !now.Before(end) {
				running = false
			}
			printProgress(progress, sc, rec, origin, &det, now.Sub(t0))
		}
	}
	tick.Stop()
	close(stop)
	waitTimeout(models, 3*time.Second)
	cancelRun()
	attacks.Wait()

	r := &Record{
		BotHeld:  held.snapshot(),
		Scenario: sc.Name, Phases: sc.Phases, Bin: Bin,
		Requests: rec.requests(), Origin: origin.Arrivals(), Attacks: outcomes,
		OriginPeakConcurrency: origin.PeakConcurrency(), OriginPeakBotConcurrency: origin.PeakConcurrencyOf(ClassBot),
	}
	if admin != nil {
		r.Detections = det.list()
	}
	if len(pids) > 0 {
		if after, err := sampleProcs("/proc", pids); err == nil {
			u := usageBetween(before, after)
			r.Shield = &u
		} else {
			fmt.Fprintf(progress, "lab: %v\n", err)
		}
	}
	if ctx.Err() != nil {
		return r, fmt.Errorf("lab: run interrupted: %w", ctx.Err())
	}
	return r, nil
}

// heldSeries is the per-Bin sample of bot requests in progress at the
// origin (Record.BotHeld). Safe for concurrent use.
type heldSeries struct {
	mu sync.Mutex
	s  []int64
}

// sample writes, every Bin until ctx ends, the bot requests in progress at
// the origin (index = bins since t0).
func (h *heldSeries) sample(ctx context.Context, og *Origin, t0 time.Time) {
	tick := time.NewTicker(Bin)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if i := int(now.Sub(t0) / Bin); i >= 0 && i < len(h.s) {
				h.mu.Lock()
				h.s[i] = og.ConcurrencyOf(ClassBot)
				h.mu.Unlock()
			}
		}
	}
}

func (h *heldSeries) snapshot() []int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.s)
}

// startModels starts one goroutine per simulated person, arriving at
// random over the first ramp (people do not all arrive in the same second;
// a thundering herd of first page loads with cold caches would be a surge
// of its own); the WaitGroup ends when all have returned.
func startModels(run context.Context, stop <-chan struct{}, rec *recorder, target *url.URL, pp bool, addrs []netip.Addr, l Legit, seed uint64, ramp time.Duration) *sync.WaitGroup {
	var wg sync.WaitGroup
	i := 0
	spawn := func(n int, class Class, body func(c *client, rng *rand.Rand, id int)) {
		for id := range n {
			rng := rand.New(rand.NewPCG(seed, uint64(i)+1))
			ua := browserUAs[i%len(browserUAs)]
			switch class {
			case ClassFeed:
				ua = feedUA
			case ClassAPI:
				ua = apiUA
			}
			c := newClient(run, stop, rec, target, pp, addrs[i], class, ua)
			i++
			wg.Go(func() {
				defer c.close()
				if c.pause(time.Duration(rng.Int64N(int64(ramp) + 1))) {
					body(c, rng, id)
				}
			})
		}
	}
	spawn(l.Visitors, ClassLegit, func(c *client, rng *rand.Rand, id int) { c.visitor(rng, id) })
	spawn(l.Members, ClassMember, func(c *client, rng *rand.Rand, id int) { c.member(rng, id) })
	spawn(l.FeedReaders, ClassFeed, func(c *client, rng *rand.Rand, _ int) { c.feedReader(rng) })
	spawn(l.APIClients, ClassAPI, func(c *client, rng *rand.Rand, _ int) { c.apiClient(rng) })
	return &wg
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	tm := time.NewTimer(time.Until(t))
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// waitThrough waits until a probe request through the front reaches the
// origin's /healthz and is answered 200.
func waitThrough(ctx context.Context, target *url.URL, timeout time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(target.String(), "/")+"/healthz", nil)
		req.Header.Set(ClassHeader, ClassProbe.String())
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: front %s does not reach the origin after %s (last: %s)", target, timeout, last)
		}
		if !sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) {
			return fmt.Errorf("lab: waiting for the front: %w", ctx.Err())
		}
	}
}

// detections polls a Portcullis admin API and keeps the times the shield
// declared an attack: an incident detected, an attack resumed (the state
// machine entering "attack" again) or a new vector added to an open
// incident — so an attack that starts while an earlier incident is still
// open is seen too. Safe for concurrent use.
type detections struct {
	mu   sync.Mutex
	seen map[string]time.Duration
}

// statusDoc is the part of /api/v1/status the lab reads.
type statusDoc struct {
	Sites []struct {
		Open *struct {
			ID       string    `json:"id"`
			Detected time.Time `json:"detected"`
			Timeline []struct {
				Time    time.Time `json:"time"`
				Kind    string    `json:"kind"`
				To      string    `json:"to"`
				Message string    `json:"message"`
			} `json:"timeline"`
		} `json:"open_incident"`
	} `json:"sites"`
}

// poll asks admin's /api/v1/status every 100 ms until ctx ends.
func (d *detections) poll(ctx context.Context, admin *url.URL, token string, t0 time.Time) {
	hc := &http.Client{Timeout: time.Second}
	u := strings.TrimSuffix(admin.String(), "/") + "/api/v1/status"
	for sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			continue
		}
		var st statusDoc
		err = json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&st)
		resp.Body.Close()
		if err == nil {
			d.add(st, t0)
		}
	}
}

// add records the detections in one status document.
func (d *detections) add(st statusDoc, t0 time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil {
		d.seen = map[string]time.Duration{}
	}
	for _, s := range st.Sites {
		o := s.Open
		if o == nil || o.ID == "" {
			continue
		}
		if !o.Detected.IsZero() {
			d.seen[o.ID] = o.Detected.Sub(t0)
		}
		for _, e := range o.Timeline {
			if (e.Kind == "state" && e.To == "attack") || e.Kind == "vector" {
				d.seen[o.ID+" "+e.Time.String()] = e.Time.Sub(t0)
			}
		}
	}
}

// list returns the detection times, ascending.
func (d *detections) list() []time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]time.Duration, 0, len(d.seen))
	for _, t := range d.seen {
		out = append(out, t)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// printProgress writes one status line: phase, elapsed, legitimate success
// so far, bot arrivals at the origin in the last second, origin
// concurrency, detection.
func printProgress(w io.Writer, sc *Scenario, rec *recorder, og *Origin, det *detections, el time.Duration) {
	phase := [...]string{"before", "attack", "after"}[sc.Phases.of(el)]
	var n, ok uint64
	for c := ClassLegit; c <= ClassAPI; c++ {
		n += rec.n[c].Load()
		ok += rec.ok[c].Load()
	}
	okPct := "-"
	if n > 0 {
		okPct = fmt.Sprintf("%.1f%%", 100*float64(ok)/float64(n))
	}
	arr := og.Arrivals()
	var botTotal, botLast uint64
	last := int(el / Bin)
	for i, a := range arr {
		botTotal += a[ClassBot]
		if i >= last-int(time.Second/Bin) && i < last {
			botLast += a[ClassBot]
		}
	}
	leak := ""
	if est, ok := pacedBotSent(sc, el); ok && est > 0 {
		leak = fmt.Sprintf(" leak ~%.1f%%", 100*float64(botTotal)/est)
	}
	detected := ""
	if ds := det.list(); len(ds) > 0 {
		detected = fmt.Sprintf("  attack declared %d×", len(ds))
	}
	fmt.Fprintf(w, "[%s %5.1fs/%.0fs] legit ok %s of %d  bot→origin %d/s (total %d)%s  origin conc %d%s\n",
		phase, el.Seconds(), sc.Phases.Total().Seconds(), okPct, n, botLast, botTotal, leak, og.Concurrency(), detected)
}

// pacedBotSent estimates the bot requests sent in the first el of the run
// from the vectors' paced rates; ok is false when a bot vector is unpaced
// (its count is known only when its driver returns).
func pacedBotSent(sc *Scenario, el time.Duration) (float64, bool) {
	var n float64
	for _, a := range sc.Attacks {
		if a.Kind == "flash_crowd" {
			continue
		}
		if a.Rate <= 0 {
			return 0, false
		}
		for _, iv := range activeIntervals(sc.Phases.Before+a.Start, a.Duration, a.Pulse) {
			if el > iv[0] {
				n += a.Rate * (min(el, iv[1]) - iv[0]).Seconds()
			}
		}
	}
	return n, true
}
