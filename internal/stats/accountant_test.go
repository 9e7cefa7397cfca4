package stats

import (
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()

func mustNew(t testing.TB, c Config) *Accountant {
	t.Helper()
	a, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{name: "defaults", cfg: Config{}},
		{name: "ring not power of two", cfg: Config{RingSize: 1000}, wantErr: true},
		{name: "route without slash", cfg: Config{Sites: []SiteConfig{{Name: "a", Routes: []Route{{Name: "r", Path: "login"}}}}}, wantErr: true},
		{name: "route without name", cfg: Config{Sites: []SiteConfig{{Name: "a", Routes: []Route{{Path: "/login"}}}}}, wantErr: true},
		{name: "precision too high", cfg: Config{SourcePrecision: 30}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if (err != nil) != tc.wantErr {
				t.Fatalf("New err = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
}

func TestSnapshotRequests(t *testing.T) {
	a := mustNew(t, Config{Sites: []SiteConfig{
		{Name: "www", Routes: []Route{{Name: "login", Path: "/login", Method: "POST"}}},
		{Name: "members"},
	}})
	a.Begin(t0)
	browser := "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
	reqs := []Request{
		{Site: 0, Addr: netip.MustParseAddr("198.51.100.7"), Country: "DE", ASN: 3320, Method: "GET", Path: "/news/1", UserAgent: browser, Referer: true, Status: 200, Bytes: 1000, OriginLatency: 20 * time.Millisecond},
		{Site: 0, Addr: netip.MustParseAddr("198.51.100.7"), Country: "DE", ASN: 3320, Method: "GET", Path: "/static/a.css", UserAgent: browser, Referer: true, Status: 200, Bytes: 500, OriginLatency: 5 * time.Millisecond},
		{Site: 0, Addr: netip.MustParseAddr("203.0.113.9"), Country: "ru", ASN: 12389, Method: "POST", Path: "/login", UserAgent: "python-requests/2", Status: 401, OriginLatency: 30 * time.Millisecond},
		{Site: 0, Addr: netip.MustParseAddr("203.0.113.9"), Country: "RU", ASN: 12389, Method: "POST", Path: "/login/sso", UserAgent: "python-requests/2", Status: 403, OriginError: true},
		{Site: 0, Addr: netip.MustParseAddr("203.0.113.10"), Method: "GET", Path: "/login", Query: "x=1", Status: 429, Verdict: 2, SampleRate: 10},
		{Site: 1, Addr: netip.MustParseAddr("2001:db8::1"), Method: "GET", Path: "/", Status: 200},
		{Site: 7, Addr: netip.MustParseAddr("192.0.2.1"), Method: "GET", Path: "/"},
	}
	for i := range reqs {
		reqs[i].Time = t0 + int64(i)*int64(time.Millisecond)
		a.ObserveRequest(&reqs[i])
	}
	a.ConnOpened(0)
	a.ConnOpened(0)
	a.ConnClosed(0)
	a.SlowConn(0, SlowPost)
	a.H2Reset(1)
	s := a.Snapshot(t0 + int64(250*time.Millisecond))

	if s.Start != t0 || s.Duration() != 250*time.Millisecond {
		t.Fatalf("span %d..%d", s.Start, s.End)
	}
	if s.BadSite != 1 {
		t.Errorf("BadSite = %d, want 1", s.BadSite)
	}
	w := &s.Sites[0]
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"requests (sample rate 10 scaled)", w.Requests, 14},
		{"bytes", w.Bytes, 1500},
		{"2xx", w.Status[2], 2},
		{"4xx", w.Status[4], 12},
		{"verdict 2", w.Verdicts[2], 10},
		{"origin requests", w.OriginRequests, 4},
		{"origin errors", w.OriginErrors, 1},
		{"referer", w.WithReferer, 2},
		{"assets", w.Assets, 1},
		{"pages", w.Pages, 13},
		{"browser", w.UserAgentClasses[UABrowser], 2},
		{"tool", w.UserAgentClasses[UATool], 2},
		{"sources", w.Sources, 3},
		{"conn new", w.ConnNew, 2},
		{"conn open", uint64(w.ConnOpen), 1},
		{"slow post", w.Slow[SlowPost], 1},
		{"route requests", w.Routes[0].Requests, 2},
		{"route auth failures", w.Routes[0].AuthFailures, 2},
		{"route sources", w.Routes[0].Sources, 1},
		{"site 1 h2 resets", s.Sites[1].H2Resets, 1},
		{"site 1 requests", s.Sites[1].Requests, 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if w.TopAddrs[0].Key != netip.MustParseAddr("203.0.113.10") || w.TopAddrs[0].Count != 10 {
		t.Errorf("top addr %+v", w.TopAddrs[0])
	}
	if w.TopPrefixes[0].Key != netip.MustParsePrefix("203.0.113.0/24") || w.TopPrefixes[0].Count != 12 {
		t.Errorf("top prefix %+v", w.TopPrefixes[0])
	}
	countries := map[string]uint64{}
	for _, c := range w.TopCountries {
		countries[c.Key] = c.Count
	}
	if w.TopCountries[0].Key != "unknown" || countries["RU"] != 2 || countries["DE"] != 2 || len(countries) != 3 {
		t.Errorf("countries %+v (lower-case \"ru\" must count as RU)", w.TopCountries)
	}
	if w.TopPaths[0].Path != "/login" || w.TopPaths[0].Count != 11 || w.TopPaths[0].WithQuery != 10 {
		t.Errorf("top path %+v", w.TopPaths[0])
	}
	if got := s.Sites[1].TopPrefixes[0].Key; got != netip.MustParsePrefix("2001:db8::/64") {
		t.Errorf("v6 prefix %v", got)
	}
	if w.LatencyP99 < 30*time.Millisecond || w.LatencyP99 > 38*time.Millisecond {
		t.Errorf("p99 %v", w.LatencyP99)
	}

	// The next tick starts empty, except for the open-connection gauge.
	s2 := a.Snapshot(t0 + int64(500*time.Millisecond))
	if n := s2.Sites[0]; n.Requests != 0 || n.Sources != 0 || len(n.TopAddrs) != 0 || n.ConnOpen != 1 || n.Routes[0].Requests != 0 {
		t.Errorf("second tick not reset: %+v", n)
	}
	if s2.Start != s.End {
		t.Errorf("second tick starts at %d, want %d", s2.Start, s.End)
	}
}

// TestSnapshotPackets covers flag classes, reflector ports, backscatter and
// sampling-rate scaling (the spirit of HANDED case F30: counts are multiplied
// by the sampling rate, and a missing rate is visible, never silently 1).
func TestSnapshotPackets(t *testing.T) {
	a := mustNew(t, Config{})
	a.Begin(t0)
	victim := netip.MustParseAddr("203.0.113.20")
	attacker := netip.MustParseAddr("172.16.0.5")
	add := func(n int, p Packet) {
		for i := range n {
			p.Time = t0 + int64(i)
			if !p.Src.IsValid() {
				p.Src = netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)})
			}
			a.ObservePacket(&p)
		}
	}
	// sFlow-style: 100 samples of 1500-byte packets at 1:1000 in one second.
	add(100, Packet{Dst: victim, Proto: 17, SrcPort: 40000, DstPort: 80, Length: 1500, SampleRate: 1000})
	add(50, Packet{Dst: victim, Proto: 6, TCPFlags: 0x02, Length: 60, SampleRate: 1})
	add(20, Packet{Dst: victim, Proto: 6, TCPFlags: 0x12, Length: 60, SampleRate: 1})
	add(10, Packet{Dst: victim, Proto: 6, TCPFlags: 0x10, Length: 52, SampleRate: 1})
	add(5, Packet{Dst: victim, Proto: 6, TCPFlags: 0x18, Length: 1500, SampleRate: 1})
	add(7, Packet{Dst: victim, Proto: 17, SrcPort: 161, Length: 400, SampleRate: 1})
	add(3, Packet{Dst: victim, Proto: 17, SrcPort: 4500, Length: 400, SampleRate: 0})
	add(4, Packet{Dst: victim, Proto: 1, Length: 84, Fragment: true, SampleRate: 1})
	// The attacker's own SYNs answered by RSTs: backscatter to it.
	add(1, Packet{Src: victim, Dst: attacker, Proto: 6, TCPFlags: 0x14, Length: 40, SampleRate: 1})
	add(30, Packet{Src: attacker, Dst: victim, Proto: 6, TCPFlags: 0x02, Length: 40, SampleRate: 1})
	add(1, Packet{Src: victim, Dst: attacker, Proto: 6, TCPFlags: 0x14, Length: 40, SampleRate: 1})
	s := a.Snapshot(t0 + int64(time.Second))

	if s.ZeroSampleRate != 3 {
		t.Errorf("ZeroSampleRate = %d, want 3", s.ZeroSampleRate)
	}
	if s.Net.Total.Packets != 100_000+50+20+10+5+7+3+4+2+30 {
		t.Errorf("total packets %d", s.Net.Total.Packets)
	}
	d := s.Net.Dests[0]
	if d.Dst != victim {
		t.Fatalf("heaviest destination %v", d.Dst)
	}
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"udp other pps (F30 ×1000)", d.UDPOther.Packets, 100_000},
		{"udp other bits", d.UDPOther.Bytes * 8, 1_200_000_000},
		{"syn", d.SYN, 80},
		{"synack", d.SYNACK, 20},
		{"ack small", d.ACK, 10},
		{"ack data", d.ACKData, 5},
		{"snmp", d.Amplification[2].Packets, 7},
		{"isakmp 4500", d.Amplification[12].Packets, 3},
		{"icmp", d.ICMP.Packets, 4},
		{"fragments", d.Fragments.Packets, 4},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	var att *DestSnapshot
	for i := range s.Net.Dests {
		if s.Net.Dests[i].Dst == attacker {
			att = &s.Net.Dests[i]
		}
	}
	if att == nil || att.RST != 2 || att.SentSYN != 30 {
		t.Fatalf("attacker backscatter %+v", att)
	}
	av := AmplificationVectors()
	if av[2].Name != "snmp" || av[12].Name != "isakmp" || len(av) != NumAmplificationVectors {
		t.Fatalf("amplification table order changed: %v %v", av[2], av[12])
	}
	for i, v := range av {
		for _, p := range v.Ports {
			if amplificationIndex(p) != i {
				t.Errorf("port %d → %d, want %d (%s)", p, amplificationIndex(p), i, v.Name)
			}
		}
	}
}

// TestConcurrentObserve checks that concurrent producers and drains lose
// nothing silently: every request is in the exact counter, and each is
// either in the sketches or counted as dropped.
func TestConcurrentObserve(t *testing.T) {
	tests := []struct {
		name      string
		ring      int
		producers int
		each      int
	}{
		{name: "roomy ring", ring: 1 << 14, producers: 4, each: 20000},
		{name: "tiny ring forces in-line drains", ring: 4, producers: 4, each: 20000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := mustNew(t, Config{RingSize: tc.ring})
			a.Begin(t0)
			var wg sync.WaitGroup
			for p := range tc.producers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := Request{Method: "GET", Path: "/", Status: 200}
					for i := range tc.each {
						r.Addr = netip.AddrFrom4([4]byte{10, byte(p), byte(i >> 8), byte(i)})
						a.ObserveRequest(&r)
						if i%1000 == 0 {
							a.Drain()
						}
					}
				}()
			}
			wg.Wait()
			s := a.Snapshot(t0 + 1)
			want := uint64(tc.producers * tc.each)
			if got := s.Sites[0].Requests; got != want {
				t.Fatalf("exact requests %d, want %d", got, want)
			}
			if got := s.Sites[0].Status[2] + s.Dropped; got != want {
				t.Fatalf("sketched %d + dropped %d != %d", s.Sites[0].Status[2], s.Dropped, want)
			}
		})
	}
}

// TestTenMillionSources is the memory case of issue 3: 10,000,000 distinct
// source addresses in one tick must fit in ≤512 MiB, keep working, and not
// lose the heaviest sources.
func TestTenMillionSources(t *testing.T) {
	if testing.Short() {
		t.Skip("10M records: skipped in -short")
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	a := mustNew(t, Config{})
	a.Begin(t0)
	heavy := []netip.Addr{
		netip.MustParseAddr("198.51.100.66"), netip.MustParseAddr("203.0.113.77"),
		netip.MustParseAddr("2001:db8:bad::1"),
	}
	r := Request{Method: "GET", Path: "/", Status: 200, UserAgent: "x"}
	var peak uint64
	const distinct = 10_000_000
	for i := range distinct {
		r.Addr = netip.AddrFrom4([4]byte{byte(1 + i>>24), byte(i >> 16), byte(i >> 8), byte(i)})
		a.ObserveRequest(&r)
		if i%100 == 0 { // each heavy source: 100,000 requests (1% of traffic)
			r.Addr = heavy[(i/100)%len(heavy)]
			for range len(heavy) {
				a.ObserveRequest(&r)
			}
		}
		if i%2_000_000 == 0 {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
		}
	}
	s := a.Snapshot(t0 + int64(time.Second))
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	peak = max(peak, m.HeapInuse)
	grown := peak - min(peak, before.HeapInuse)
	t.Logf("heap in use grew by %.1f MiB for %d distinct sources; sources estimate %d", float64(grown)/(1<<20), distinct, s.Sites[0].Sources)
	if grown > 512<<20 {
		t.Fatalf("heap grew by %d MiB > 512 MiB", grown>>20)
	}
	top := map[netip.Addr]bool{}
	for _, e := range s.Sites[0].TopAddrs[:len(heavy)] {
		top[e.Key] = true
	}
	for _, h := range heavy {
		if !top[h] {
			t.Errorf("heavy source %v not among the top %d: %+v", h, len(heavy), s.Sites[0].TopAddrs[:5])
		}
	}
	if est := float64(s.Sites[0].Sources); est < 0.97*distinct || est > 1.03*distinct {
		t.Errorf("distinct sources estimate %v, want ≈%d", est, distinct)
	}
	if s.Dropped != 0 {
		t.Errorf("dropped %d", s.Dropped)
	}
}
