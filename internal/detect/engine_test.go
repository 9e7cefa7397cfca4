package detect

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/stats"
)

func scenarioText(t *testing.T, text string) *scenario {
	t.Helper()
	sc, err := parseScenarioFrom(t.Name(), strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

type transition struct{ from, to incident.State }

func stateEvents(evs []incident.Event) []transition {
	var out []transition
	for _, e := range evs {
		if e.Kind == "state" {
			out = append(out, transition{e.From, e.To})
		}
	}
	return out
}

var (
	toSuspected  = transition{incident.StateNormal, incident.StateSuspected}
	toAttack     = transition{incident.StateSuspected, incident.StateAttack}
	toRecovering = transition{incident.StateAttack, incident.StateRecovering}
	toNormal     = transition{incident.StateRecovering, incident.StateNormal}
	resumed      = transition{incident.StateRecovering, incident.StateAttack}
)

func TestEngineStateMachine(t *testing.T) {
	const background = "0s-100s http rps=20 sources=300 paths=40 ua=browser assets=0.4 referer=0.5\n"
	tests := []struct {
		name      string
		text      string
		incidents int
		timeline  []transition
		// events seen by OnEvent that are not in any incident
		extraEvents []string
	}{
		{
			name:      "attack then recovery",
			text:      background + "20s-40s http rps=2000 sources=100 base=203.0.113.1 path=/ ua=tool\n",
			incidents: 1,
			timeline:  []transition{toSuspected, toAttack, toRecovering, toNormal},
		},
		{
			name: "pause shorter than RecoverAfter resumes the same incident",
			text: background + "20s-30s http rps=2000 sources=100 base=203.0.113.1 path=/ ua=tool\n" +
				"35s-45s http rps=2000 sources=100 base=203.0.113.1 path=/ ua=tool\n",
			incidents: 1,
			timeline:  []transition{toSuspected, toAttack, toRecovering, resumed, toRecovering, toNormal},
		},
		{
			name: "pause longer than RecoverAfter opens a second incident",
			text: background + "20s-30s http rps=2000 sources=100 base=203.0.113.1 path=/ ua=tool\n" +
				"60s-70s http rps=2000 sources=100 base=203.0.113.1 path=/ ua=tool\n",
			incidents: 2,
			timeline:  []transition{toSuspected, toAttack, toRecovering, toNormal},
		},
		{
			name: "short blip below the severe score is only a suspicion",
			text: "config confirm=8\n" + background +
				"20s-20.5s http rps=260 sources=100 base=203.0.113.1 paths=20 ua=tool\n",
			incidents:   0,
			extraEvents: []string{"normal→suspected", "suspected→normal suspicion not confirmed"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := runScenario(t, scenarioText(t, tc.text))
			if len(res.incidents) != tc.incidents {
				for _, e := range res.events {
					t.Log(e)
				}
				t.Fatalf("%d incidents, want %d", len(res.incidents), tc.incidents)
			}
			for _, want := range tc.extraEvents {
				if !slices.ContainsFunc(res.events, func(e string) bool { return strings.Contains(e, want) }) {
					t.Errorf("no event %q in %q", want, res.events)
				}
			}
			if tc.incidents == 0 {
				return
			}
			in := res.incidents[0]
			if got := stateEvents(in.Timeline); !slices.Equal(got, tc.timeline) {
				t.Errorf("timeline %v, want %v", got, tc.timeline)
			}
			for i := 1; i < len(in.Timeline); i++ {
				if in.Timeline[i].Time.Before(in.Timeline[i-1].Time) {
					t.Errorf("timeline out of order at %d", i)
				}
			}
			var attackAt time.Time
			for _, e := range in.Timeline {
				if e.To == incident.StateAttack && attackAt.IsZero() {
					attackAt = e.Time
					if e.Evidence["http_flood"] < 1 {
						t.Errorf("attack event evidence %v lacks the firing score", e.Evidence)
					}
				}
			}
			if !in.Detected.Equal(attackAt) || in.Start.After(in.Detected) || in.End.Before(in.Detected) {
				t.Errorf("start %v detected %v end %v, attack event %v", in.Start, in.Detected, in.End, attackAt)
			}
			if in.Requests == 0 || in.PeakRPS < 1000 || len(in.TopPaths) == 0 || in.TopPaths[0].Key != "/" ||
				len(in.TopPrefixes) == 0 || in.TopPrefixes[0].Key != "203.0.113.0/24" {
				t.Errorf("figures: requests %d peak %v paths %v prefixes %v", in.Requests, in.PeakRPS, in.TopPaths, in.TopPrefixes)
			}
			calls := res.sink.Calls()
			if !strings.HasPrefix(calls[0], "open:") || !strings.HasPrefix(calls[len(calls)-1], "close:") {
				t.Errorf("sink calls %v", calls)
			}
			if in.Open() {
				t.Error("incident still open after the run")
			}
		})
	}
}

// failingSink fails every call.
type failingSink struct{ n int }

var errDiskFull = errors.New("disk full")

func (f *failingSink) Open(context.Context, *incident.Incident) error   { f.n++; return errDiskFull }
func (f *failingSink) Update(context.Context, *incident.Incident) error { f.n++; return errDiskFull }
func (f *failingSink) Close(context.Context, *incident.Incident) error  { f.n++; return errDiskFull }

func TestEngineSinkErrors(t *testing.T) {
	fs := &failingSink{}
	sc := scenarioText(t, "0s-40s http rps=20 sources=300 paths=40\n10s-20s http rps=2000 sources=100 base=203.0.113.1 path=/ ua=tool\n")
	res := runScenarioSink(t, sc, fs)
	if len(res.errs) == 0 || !errors.Is(res.errs[0], errDiskFull) || !strings.Contains(res.errs[0].Error(), "detect: sink open incident") {
		t.Fatalf("errors %v, want wrapped disk full", res.errs)
	}
	if len(res.incidents) != 1 || res.incidents[0].Open() {
		t.Fatalf("detection must carry on despite the sink: %d incidents", len(res.incidents))
	}
	if fs.n < 2 || res.engine.metrics.sinkErrors.Load() != uint64(fs.n) {
		t.Fatalf("sink calls %d, sink error metric %d", fs.n, res.engine.metrics.sinkErrors.Load())
	}
}

// TestEngineStatusAndMetrics steps an engine by hand into an attack and
// checks the live view and the Prometheus collector.
func TestEngineStatusAndMetrics(t *testing.T) {
	acc, err := stats.New(stats.Config{})
	if err != nil {
		t.Fatal(err)
	}
	wall := scenarioT0.Add(time.Hour)
	eng, err := NewEngine(Config{Sites: []SiteConfig{{Name: "www"}}}, 1, &MemorySink{}, Options{Clock: func() time.Time { return wall }})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := eng.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	p := NewPipeline(acc, eng, WithLateness(0))
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 1))
	r := stats.Request{Method: "GET", Path: "/", Status: 200, UserAgent: "curl/8"}
	end := scenarioT0.Add(2 * time.Second)
	for at := scenarioT0; at.Before(end); at = at.Add(time.Millisecond) {
		r.Time = at.UnixNano()
		r.Addr = netip.AddrFrom4([4]byte{203, 0, 113, byte(rng.IntN(200))})
		if err := p.Request(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	st := eng.Status()
	if len(st) != 1 || st[0].Name != "www" || st[0].State != incident.StateAttack || st[0].Incident == nil ||
		st[0].Scores["http_flood"] < 1 || st[0].Incident.Requests == 0 {
		t.Fatalf("status %+v", st)
	}
	if lag := eng.Lag(); lag < 59*time.Minute || lag > time.Hour {
		t.Fatalf("lag %v, want ≈1h (wall clock − event time)", lag)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`^portcullis_detect_[a-z0-9_]+$`)
	found := map[string]float64{}
	for _, mf := range mfs {
		if !name.MatchString(mf.GetName()) || mf.GetHelp() == "" {
			t.Errorf("metric %q (help %q) breaks the naming rules", mf.GetName(), mf.GetHelp())
		}
		if mf.GetType().String() == "COUNTER" && !strings.HasSuffix(mf.GetName(), "_total") {
			t.Errorf("counter %q lacks _total", mf.GetName())
		}
		for _, m := range mf.GetMetric() {
			labels := ""
			for _, l := range m.GetLabel() {
				labels += l.GetName() + "=" + l.GetValue() + ","
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			found[mf.GetName()+"{"+labels+"}"] = v
		}
	}
	checks := map[string]float64{
		"portcullis_detect_state{state=attack,target=www,}": 1,
		"portcullis_detect_state{state=normal,target=www,}": 0,
		"portcullis_detect_incidents_opened_total{}":        1,
		"portcullis_detect_lag_seconds{}":                   wall.Sub(eng.LastTick()).Seconds(),
	}
	for k, want := range checks {
		if got, ok := found[k]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, want)
		}
	}
	if found["portcullis_detect_score_ratio{detector=http_flood,target=www,}"] < 1 {
		t.Errorf("http_flood score not exported: %v", found)
	}
	if err := p.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if st := eng.Status(); st[0].State != incident.StateNormal || st[0].Incident != nil {
		t.Fatalf("after Finish: %+v", st[0])
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "defaults"},
		{name: "tick too long", cfg: Config{Tick: time.Second}, wantErr: "Tick"},
		{name: "window not a multiple", cfg: Config{Window: 1100 * time.Millisecond}, wantErr: "Window"},
		{name: "negative floor", cfg: Config{HTTP: HTTPThresholds{FloorRPS: -1}}, wantErr: "HTTP.FloorRPS"},
		{name: "release above one", cfg: Config{ReleaseScore: 2}, wantErr: "ReleaseScore"},
		{name: "route path", cfg: Config{Sites: []SiteConfig{{Name: "a", AuthRoutes: []Route{{Name: "l", Path: "login"}}}}}, wantErr: "must start with '/'"},
		{name: "route name", cfg: Config{Sites: []SiteConfig{{Name: "a", ExpensiveRoutes: []Route{{Path: "/s"}}}}}, wantErr: "Name is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg.Default()
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.wantErr != "" && (err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want ErrConfig mentioning %q", err, tc.wantErr)
			}
		})
	}
	if _, err := NewEngine(Config{}, 1, nil, Options{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("nil sink: %v", err)
	}
}

// TestPipelineLateness replays a log-like input whose minute is shuffled (as
// in the benign Apache log of ../shared/data): with the default lateness
// the ticks are rebuilt in time order and nothing is detected; without a
// reorder buffer the shuffled records pile into the last ticks of each
// minute and look like a flood. Sorted and shuffled input give the same
// incidents when the disorder is within the lateness.
func TestPipelineLateness(t *testing.T) {
	mk := func(shuffle bool, extra time.Duration) []stats.Request {
		rng := rand.New(rand.NewPCG(3, 4))
		var out []stats.Request
		for minute := range 6 {
			var block []stats.Request
			for i := range 120 { // 2 rps within the minute, 9 at most per second
				at := scenarioT0.Add(time.Duration(minute)*time.Hour + time.Duration(i)*500*time.Millisecond)
				block = append(block, stats.Request{Time: at.UnixNano(), Addr: netip.AddrFrom4([4]byte{198, 18, 0, byte(rng.IntN(50))}),
					Method: "GET", Path: "/p", Status: 200, UserAgent: "Mozilla/5.0 (X11; Linux) Gecko/1 Firefox/1"})
			}
			if minute == 3 { // and one real flood, 3,000 requests in 10 s
				for i := range 3000 {
					at := scenarioT0.Add(3*time.Hour + extra + time.Duration(i)*time.Second/300)
					block = append(block, stats.Request{Time: at.UnixNano(), Addr: netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}),
						Method: "GET", Path: "/", Status: 200, UserAgent: "curl/8"})
				}
				slices.SortStableFunc(block, func(a, b stats.Request) int { return int(a.Time - b.Time) })
			}
			if shuffle {
				rng.Shuffle(len(block), func(i, j int) { block[i], block[j] = block[j], block[i] })
			}
			out = append(out, block...)
		}
		return out
	}
	run := func(reqs []stats.Request, opts ...PipelineOption) []*incident.Incident {
		acc, _ := stats.New(stats.Config{})
		sink := &MemorySink{}
		eng, _ := NewEngine(Config{}, 1, sink, Options{})
		p := NewPipeline(acc, eng, opts...)
		for i := range reqs {
			if err := p.Request(context.Background(), &reqs[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Finish(context.Background()); err != nil {
			t.Fatal(err)
		}
		return sink.Incidents()
	}
	tests := []struct {
		name      string
		reqs      []stats.Request
		opts      []PipelineOption
		incidents int
		atLeast   bool
	}{
		{name: "sorted, default lateness", reqs: mk(false, 30*time.Second), incidents: 1},
		{name: "shuffled, default lateness", reqs: mk(true, 30*time.Second), incidents: 1},
		{name: "shuffled, no reorder buffer", reqs: mk(true, 30*time.Second), opts: []PipelineOption{WithLateness(0)}, incidents: 4, atLeast: true},
	}
	var ref []*incident.Incident
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := run(tc.reqs, tc.opts...)
			for _, in := range got {
				t.Logf("%s %v..%v %v requests=%d", in.ID, in.Start.Sub(scenarioT0), in.End.Sub(scenarioT0), in.Vectors, in.Requests)
			}
			if len(got) != tc.incidents && !(tc.atLeast && len(got) > tc.incidents) {
				t.Fatalf("%d incidents, want %d (at least: %v)", len(got), tc.incidents, tc.atLeast)
			}
			if tc.incidents != 1 {
				return
			}
			in := got[0]
			if !slices.Contains(in.Vectors, "http_flood") || in.Detected.Sub(scenarioT0.Add(3*time.Hour+30*time.Second)) > time.Second {
				t.Fatalf("incident %+v", in)
			}
			if ref == nil {
				ref = got
				return
			}
			if in.ID != ref[0].ID || in.Requests != ref[0].Requests || !in.Detected.Equal(ref[0].Detected) || !in.End.Equal(ref[0].End) {
				t.Fatalf("shuffled input gave %s %d %v..%v, sorted %s %d %v..%v", in.ID, in.Requests, in.Detected, in.End,
					ref[0].ID, ref[0].Requests, ref[0].Detected, ref[0].End)
			}
		})
	}
}
