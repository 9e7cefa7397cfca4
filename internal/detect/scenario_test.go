package detect

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/stats"
)

// The scenario DSL (testdata/scenarios/*.txt), one directive per line, '#'
// comments:
//
//	site NAME [auth=/path] [expensive=/path]      declare a site (default: one site "www")
//	config KEY=VALUE...                           override detect.Config (see applyConfig)
//	FROM-TO http KEY=VALUE...                     request phase (times like 90s, 2m, 1.5s)
//	FROM-TO pkt KEY=VALUE...                      packet phase
//	expect incidents=N                            number of incidents
//	expect incident N KEY=VALUE...                checks on the N-th incident (1-based)
//	expect note=TEXT [target=NAME]                an event message containing TEXT was emitted
//
// Phases may overlap; records are merged on event time and replayed through
// stats.Accountant and Engine with a Pipeline — no wall clock, no sleeps.
// Request phase keys: rps, site, sources (address pool size), base
// (first address), paths (distinct paths), path (fixed path), method,
// ua=browser|tool|bot|none|random, assets and referer (shares), query=unique,
// status, latency, errors (origin error share), country, slow (per second)
// with slowkind, h2resets (per second).
// Packet phase keys: pps (after sampling), rate (sampling rate), proto=
// tcp|udp|icmp, flags=S|SA|A|PA|R|RA, len, sources, base, src (fixed source),
// dst, sport (0 = random high port), dport, frag=1, flows (distinct source
// ports when src is fixed).
// Incident keys: target, has=v,v (vectors present), not=v,v (absent),
// delay<=D@T (detected within D after flood start T), end<=T (ended by
// T), sources=N±P%,
// peak_pps=N±P%, peak_rps=N±P%.

var scenarioT0 = time.Date(2026, 5, 4, 20, 0, 0, 0, time.UTC)

type phase struct {
	from, to time.Duration
	kind     string
	kv       map[string]string
	line     int
}

type expectation struct {
	line int
	kind string // "incidents", "incident", "note"
	n    int
	kv   map[string]string
}

type scenario struct {
	file    string
	sites   []SiteConfig
	config  map[string]string
	phases  []phase
	expects []expectation
}

func parseScenario(path string) (*scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseScenarioFrom(path, f)
}

func parseScenarioFrom(path string, r io.Reader) (*scenario, error) {
	sc := &scenario{file: path, config: map[string]string{}}
	s := bufio.NewScanner(r)
	ln := 0
	for s.Scan() {
		ln++
		line := strings.TrimSpace(s.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		fields := strings.Fields(line)
		bad := func(format string, a ...any) error {
			return fmt.Errorf("%s:%d: %s", path, ln, fmt.Sprintf(format, a...))
		}
		kv := func(from int) (map[string]string, error) {
			m := map[string]string{}
			for _, f := range fields[from:] {
				k, v, ok := strings.Cut(f, "=")
				if !ok {
					return nil, bad("%q is not KEY=VALUE", f)
				}
				m[k] = v
			}
			return m, nil
		}
		switch {
		case fields[0] == "site":
			if len(fields) < 2 {
				return nil, bad("site needs a name")
			}
			m, err := kv(2)
			if err != nil {
				return nil, err
			}
			site := SiteConfig{Name: fields[1]}
			if p := m["auth"]; p != "" {
				site.AuthRoutes = []Route{{Name: strings.Trim(p, "/"), Path: p}}
			}
			if p := m["expensive"]; p != "" {
				site.ExpensiveRoutes = []Route{{Name: strings.Trim(p, "/"), Path: p}}
			}
			sc.sites = append(sc.sites, site)
		case fields[0] == "config":
			m, err := kv(1)
			if err != nil {
				return nil, err
			}
			for k, v := range m {
				sc.config[k] = v
			}
		case fields[0] == "expect":
			if len(fields) < 2 {
				return nil, bad("empty expect")
			}
			e := expectation{line: ln}
			switch {
			case strings.HasPrefix(fields[1], "incidents="):
				e.kind = "incidents"
				n, err := strconv.Atoi(strings.TrimPrefix(fields[1], "incidents="))
				if err != nil {
					return nil, bad("%v", err)
				}
				e.n = n
			case fields[1] == "incident":
				if len(fields) < 3 {
					return nil, bad("expect incident N ...")
				}
				n, err := strconv.Atoi(fields[2])
				if err != nil {
					return nil, bad("%v", err)
				}
				e.kind, e.n = "incident", n
				if e.kv, err = kv(3); err != nil {
					return nil, err
				}
			case strings.HasPrefix(fields[1], "note="):
				e.kind = "note"
				var err error
				if e.kv, err = kv(1); err != nil {
					return nil, err
				}
			default:
				return nil, bad("unknown expectation %q", fields[1])
			}
			sc.expects = append(sc.expects, e)
		default:
			from, to, ok := strings.Cut(fields[0], "-")
			if !ok || len(fields) < 2 {
				return nil, bad("unknown directive %q", fields[0])
			}
			a, err1 := time.ParseDuration(from)
			b, err2 := time.ParseDuration(to)
			if err1 != nil || err2 != nil || b <= a {
				return nil, bad("bad time range %q", fields[0])
			}
			if fields[1] != "http" && fields[1] != "pkt" {
				return nil, bad("phase kind %q, want http or pkt", fields[1])
			}
			m, err := kv(2)
			if err != nil {
				return nil, err
			}
			sc.phases = append(sc.phases, phase{from: a, to: b, kind: fields[1], kv: m, line: ln})
		}
	}
	if len(sc.sites) == 0 {
		sc.sites = []SiteConfig{{Name: "www"}}
	}
	return sc, s.Err()
}

// record is one generated input.
type record struct {
	at  int64
	req *stats.Request
	pkt *stats.Packet
	// connection events
	slow  int // 1+SlowKind
	reset bool
	site  int
}

func num(kv map[string]string, k string, def float64) float64 {
	if v, ok := kv[k]; ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			panic(fmt.Sprintf("%s=%q: %v", k, v, err))
		}
		return f
	}
	return def
}

func dur(kv map[string]string, k string, def time.Duration) time.Duration {
	if v, ok := kv[k]; ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			panic(fmt.Sprintf("%s=%q: %v", k, v, err))
		}
		return d
	}
	return def
}

func addrAt(base netip.Addr, i int) netip.Addr {
	b := base.As16()
	carry := uint32(i)
	for j := 15; j >= 0 && carry > 0; j-- {
		s := uint32(b[j]) + carry&0xff
		b[j] = byte(s)
		carry = carry>>8 + s>>8
	}
	a := netip.AddrFrom16(b)
	if base.Is4() {
		return a.Unmap()
	}
	return a
}

var (
	browserUAs = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
	}
	assetPaths = []string{"/static/app.js", "/static/site.css", "/img/logo.png", "/fonts/a.woff2"}
)

func (p *phase) generate(rng *rand.Rand, siteIdx map[string]int) []record {
	var out []record
	kv := p.kv
	span := p.to - p.from
	if p.kind == "pkt" {
		rate := uint32(num(kv, "rate", 1))
		recPerSec := num(kv, "pps", 0) / float64(rate)
		n := int(recPerSec * span.Seconds())
		flags := map[string]uint8{"": 0, "S": 0x02, "SA": 0x12, "A": 0x10, "PA": 0x18, "R": 0x04, "RA": 0x14}[kv["flags"]]
		proto := map[string]uint8{"tcp": 6, "udp": 17, "icmp": 1}[cmp.Or(kv["proto"], "tcp")]
		base := netip.MustParseAddr(cmp.Or(kv["base"], "100.64.0.1"))
		sources := max(int(num(kv, "sources", 1)), 1)
		dst := netip.MustParseAddr(cmp.Or(kv["dst"], "203.0.113.20"))
		flows := max(int(num(kv, "flows", 1)), 1)
		for i := range n {
			at := p.from + time.Duration(float64(i)/recPerSec*float64(time.Second))
			src := addrAt(base, rng.IntN(sources))
			if s := kv["src"]; s != "" {
				src = netip.MustParseAddr(s)
			}
			sport := uint16(num(kv, "sport", 0))
			if sport == 0 {
				sport = uint16(32768 + rng.IntN(flows))
				if kv["src"] == "" {
					sport = uint16(1024 + rng.IntN(60000))
				}
			}
			out = append(out, record{at: int64(at), pkt: &stats.Packet{
				Src: src, Dst: dst, SrcPort: sport, DstPort: uint16(num(kv, "dport", 80)),
				Proto: proto, TCPFlags: flags, Length: int(num(kv, "len", 60)),
				Fragment: kv["frag"] == "1", SampleRate: rate,
			}})
		}
		return out
	}
	site := siteIdx[cmp.Or(kv["site"], "")]
	if slow := num(kv, "slow", 0); slow > 0 {
		kind := map[string]int{"": 1, "slowloris": 1, "slow_post": 2, "slow_read": 3}[kv["slowkind"]]
		for i := range int(slow * span.Seconds()) {
			out = append(out, record{at: int64(p.from + time.Duration(float64(i)/slow*1e9)), slow: kind, site: site})
		}
	}
	if resets := num(kv, "h2resets", 0); resets > 0 {
		for i := range int(resets * span.Seconds()) {
			out = append(out, record{at: int64(p.from + time.Duration(float64(i)/resets*1e9)), reset: true, site: site})
		}
	}
	rps := num(kv, "rps", 0)
	if rps == 0 {
		return out
	}
	n := int(rps * span.Seconds())
	sources := max(int(num(kv, "sources", 50)), 1)
	paths := max(int(num(kv, "paths", 20)), 1)
	base := netip.MustParseAddr(cmp.Or(kv["base"], "198.18.0.1"))
	assets, referer, errs := num(kv, "assets", 0), num(kv, "referer", 0), num(kv, "errors", 0)
	latency := dur(kv, "latency", 30*time.Millisecond)
	status := int(num(kv, "status", 200))
	method := cmp.Or(kv["method"], "GET")
	for i := range n {
		at := p.from + time.Duration(float64(i)/rps*float64(time.Second))
		r := &stats.Request{Site: site, Addr: addrAt(base, rng.IntN(sources)), Method: method,
			Status: status, Bytes: 2000, OriginLatency: latency, Country: kv["country"]}
		switch {
		case kv["path"] != "":
			r.Path = kv["path"]
		case rng.Float64() < assets:
			r.Path = assetPaths[rng.IntN(len(assetPaths))]
		default:
			r.Path = fmt.Sprintf("/page/%s", strconv.Itoa(rng.IntN(paths))+"x")
		}
		if kv["query"] == "unique" {
			r.Query = "cb=" + strconv.FormatUint(rng.Uint64(), 36)
		}
		switch kv["ua"] {
		case "", "browser":
			r.UserAgent = browserUAs[rng.IntN(len(browserUAs))]
		case "tool":
			r.UserAgent = "python-requests/2.31.0"
		case "bot":
			r.UserAgent = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
		case "random":
			r.UserAgent = fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0) Chrome/%d.0", rng.IntN(1_000_000))
		case "none":
		}
		r.Referer = rng.Float64() < referer
		r.OriginError = rng.Float64() < errs
		if r.OriginError {
			r.Status = 502
		}
		out = append(out, record{at: int64(at), req: r})
	}
	return out
}

// applyConfig maps scenario config keys onto a Config.
func applyConfig(c *Config, kv map[string]string) {
	for k, v := range kv {
		d := func() time.Duration { return dur(kv, k, 0) }
		f := func() float64 { return num(kv, k, 0) }
		switch k {
		case "warmup":
			c.Baseline.WarmUp = d()
		case "halflife":
			c.Baseline.HalfLife = d()
		case "recover":
			c.RecoverAfter = d()
		case "confirm":
			c.ConfirmTicks = int(f())
		case "floor_rps":
			c.HTTP.FloorRPS = f()
		case "syn_pps":
			c.Packet.SYNPPS = f()
		default:
			panic(fmt.Sprintf("unknown config key %q=%q", k, v))
		}
	}
}

type scenarioResult struct {
	incidents []*incident.Incident
	events    []string // "target: kind message"
	sink      *MemorySink
	engine    *Engine
	errs      []error
}

// teeSink writes to two sinks; the first's errors win.
type teeSink struct{ a, b Sink }

func (s teeSink) Open(ctx context.Context, in *incident.Incident) error {
	return errors.Join(s.a.Open(ctx, in), s.b.Open(ctx, in))
}

func (s teeSink) Update(ctx context.Context, in *incident.Incident) error {
	return errors.Join(s.a.Update(ctx, in), s.b.Update(ctx, in))
}

func (s teeSink) Close(ctx context.Context, in *incident.Incident) error {
	return errors.Join(s.a.Close(ctx, in), s.b.Close(ctx, in))
}

func runScenario(t *testing.T, sc *scenario) scenarioResult {
	t.Helper()
	res := runScenarioSink(t, sc, nil)
	for _, err := range res.errs {
		t.Fatal(err)
	}
	return res
}

// runScenarioSink runs sc with an extra sink (besides the MemorySink the
// result reads) and collects pipeline errors instead of failing.
func runScenarioSink(t *testing.T, sc *scenario, extra Sink) scenarioResult {
	t.Helper()
	cfg := Config{Sites: sc.sites}
	applyConfig(&cfg, sc.config)
	acc, err := stats.New(stats.Config{Sites: cfg.StatsSites()})
	if err != nil {
		t.Fatal(err)
	}
	var res scenarioResult
	sink := &MemorySink{}
	var engSink Sink = sink
	if extra != nil {
		engSink = teeSink{sink, extra}
	}
	eng, err := NewEngine(cfg, len(sc.sites), engSink, Options{
		OnEvent: func(target string, e incident.Event) {
			res.events = append(res.events, fmt.Sprintf("%s %s: %s %s→%s %s", e.Time.Sub(scenarioT0), target, e.Kind, e.From, e.To, e.Message))
		},
		Clock: func() time.Time { return scenarioT0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	siteIdx := map[string]int{}
	for i, s := range sc.sites {
		siteIdx[s.Name] = i
	}
	rng := rand.New(rand.NewPCG(7, 11))
	var recs []record
	for i := range sc.phases {
		recs = append(recs, sc.phases[i].generate(rng, siteIdx)...)
	}
	slices.SortStableFunc(recs, func(a, b record) int { return cmp.Compare(a.at, b.at) })
	// Records are generated in time order; connection events go straight to
	// the accountant, so no reorder buffer.
	p := NewPipeline(acc, eng, WithLateness(0))
	ctx := context.Background()
	base := scenarioT0.UnixNano()
	for _, r := range recs {
		now := base + r.at
		switch {
		case r.req != nil:
			r.req.Time = now
			err = p.Request(ctx, r.req)
		case r.pkt != nil:
			r.pkt.Time = now
			err = p.Packet(ctx, r.pkt)
		default:
			err = p.Advance(ctx, now)
			if r.slow > 0 {
				acc.SlowConn(r.site, stats.SlowKind(r.slow-1))
			}
			if r.reset {
				acc.H2Reset(r.site)
			}
		}
		if err != nil {
			res.errs = append(res.errs, err)
		}
	}
	if err := p.Finish(ctx); err != nil {
		res.errs = append(res.errs, err)
	}
	res.incidents = sink.Incidents()
	res.sink, res.engine = sink, eng
	return res
}

func checkScenario(t *testing.T, sc *scenario, res scenarioResult) {
	t.Helper()
	for _, e := range sc.expects {
		where := fmt.Sprintf("%s:%d", filepath.Base(sc.file), e.line)
		switch e.kind {
		case "incidents":
			if len(res.incidents) != e.n {
				t.Errorf("%s: %d incidents, want %d", where, len(res.incidents), e.n)
			}
		case "note":
			found := false
			for _, ev := range res.events {
				if strings.Contains(ev, e.kv["note"]) && strings.Contains(ev, e.kv["target"]) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: no event mentioning %q", where, e.kv["note"])
			}
		case "incident":
			if e.n > len(res.incidents) {
				t.Errorf("%s: incident %d missing (%d incidents)", where, e.n, len(res.incidents))
				continue
			}
			in := res.incidents[e.n-1]
			checkIncident(t, where, in, e.kv)
		}
	}
}

func checkIncident(t *testing.T, where string, in *incident.Incident, kv map[string]string) {
	t.Helper()
	if v, ok := kv["target"]; ok && in.Site != v {
		t.Errorf("%s: incident on %q, want %q", where, in.Site, v)
	}
	if v, ok := kv["has"]; ok {
		for _, vec := range strings.Split(v, ",") {
			if !slices.Contains(in.Vectors, vec) {
				t.Errorf("%s: vectors %v lack %q", where, in.Vectors, vec)
			}
		}
	}
	if v, ok := kv["not"]; ok {
		for _, vec := range strings.Split(v, ",") {
			if slices.Contains(in.Vectors, vec) {
				t.Errorf("%s: vectors %v include %q", where, in.Vectors, vec)
			}
		}
	}
	if v, ok := kv["delay<"]; ok { // "delay<=1s@60s" splits at the first '='
		limit, at, _ := strings.Cut(strings.TrimPrefix(v, "="), "@")
		l, err1 := time.ParseDuration(limit)
		a, err2 := time.ParseDuration(at)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: bad delay %q", where, v)
		}
		start := scenarioT0.Add(a)
		if d := in.Detected.Sub(start); d > l || d < 0 {
			t.Errorf("%s: detected %v after flood start, want within [0, %v]", where, d, l)
		}
	}
	if v, ok := kv["end<"]; ok { // "end<=300s": the incident ended by then
		l, err := time.ParseDuration(strings.TrimPrefix(v, "="))
		if err != nil {
			t.Fatalf("%s: bad end %q", where, v)
		}
		if in.End.IsZero() || in.End.Sub(scenarioT0) > l {
			t.Errorf("%s: incident end %v, want by +%v", where, in.End, l)
		}
	}
	for key, got := range map[string]float64{"sources": float64(in.Sources), "peak_pps": in.PeakPPS, "peak_rps": in.PeakRPS} {
		v, ok := kv[key]
		if !ok {
			continue
		}
		n, tol, _ := strings.Cut(strings.TrimSuffix(v, "%"), "±")
		want, _ := strconv.ParseFloat(n, 64)
		pct, _ := strconv.ParseFloat(tol, 64)
		if math.Abs(got-want) > want*pct/100 {
			t.Errorf("%s: %s %v, want %v ± %v%%", where, key, got, want, pct)
		}
	}
}

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/scenarios/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			sc, err := parseScenario(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(sc.expects) == 0 {
				t.Fatal("scenario has no expectations")
			}
			res := runScenario(t, sc)
			checkScenario(t, sc, res)
			if t.Failed() || testing.Verbose() {
				for _, in := range res.incidents {
					t.Logf("incident %s site=%s start=+%v detected=+%v end=+%v vectors=%v peak_rps=%.0f peak_pps=%.0f sources=%d",
						in.ID, in.Site, in.Start.Sub(scenarioT0), in.Detected.Sub(scenarioT0), in.End.Sub(scenarioT0),
						in.Vectors, in.PeakRPS, in.PeakPPS, in.Sources)
				}
				for _, ev := range res.events {
					t.Log(ev)
				}
			}
		})
	}
}
