package replay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/portcullis/portcullis/internal/geo"
	"github.com/portcullis/portcullis/internal/incident"
)

// requiredKeys are the keys every JSON line must carry (detection issue).
var requiredKeys = []string{"id", "site", "start", "detected", "end", "vectors", "peak_rps", "peak_pps", "peak_bps",
	"sources", "top_countries", "top_asns", "top_prefixes", "top_paths"}

// parseJSONLines checks every line of out is an incident object with the
// required keys, RFC 3339 times and {key,count} lists.
func parseJSONLines(t *testing.T, out []byte) []IncidentJSON {
	t.Helper()
	var res []IncidentJSON
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		for _, k := range requiredKeys {
			if _, ok := m[k]; !ok {
				t.Errorf("line lacks %q: %s", k, sc.Text())
			}
		}
		for _, k := range []string{"start", "detected", "end"} {
			var s string
			if err := json.Unmarshal(m[k], &s); err != nil {
				t.Errorf("%s is not a string: %s", k, m[k])
			} else if _, err := time.Parse(time.RFC3339, s); err != nil {
				t.Errorf("%s %q is not RFC 3339: %v", k, s, err)
			}
		}
		for _, k := range []string{"top_countries", "top_asns", "top_prefixes", "top_paths"} {
			var list []map[string]any
			if err := json.Unmarshal(m[k], &list); err != nil || list == nil {
				t.Errorf("%s is not a list of objects: %s", k, m[k])
			}
			for _, e := range list {
				if _, ok := e["key"].(string); !ok {
					t.Errorf("%s entry without string key: %v", k, e)
				}
				if _, ok := e["count"].(float64); !ok {
					t.Errorf("%s entry without numeric count: %v", k, e)
				}
			}
		}
		var j IncidentJSON
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Fatal(err)
		}
		res = append(res, j)
	}
	return res
}

// TestRunApacheLogNoIncidents replays the real 10,000-line benign log at
// maximum speed: zero incidents, nothing written to the store.
func TestRunApacheLogNoIncidents(t *testing.T) {
	requireShared(t, apacheLogs)
	dir := t.TempDir()
	var out bytes.Buffer
	sum, err := Run(context.Background(), Options{Files: []string{apacheLogs}, JSON: true, DataDir: dir}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Incidents) != 0 || out.Len() != 0 {
		t.Errorf("%d incidents, output %q; want none", len(sum.Incidents), out.String())
	}
	if f := sum.Files[0]; f.Requests != 10000 || f.Malformed.Count != 0 || f.Format != "combined" {
		t.Errorf("file summary %+v", f)
	}
	st, err := incident.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if list, err := st.List(context.Background(), incident.Filter{}); err != nil || len(list) != 0 {
		t.Errorf("store holds %d incidents (%v), want 0", len(list), err)
	}
}

// TestRunCaptures replays the real attack captures: one incident each, with
// the attack's vector, and the same record in the JSON output and the store.
func TestRunCaptures(t *testing.T) {
	g, err := geo.Open(filepath.Join(sharedData, "ip-location-db/geo-whois-asn-country.mmdb"),
		filepath.Join(sharedData, "ip-location-db/asn-ipv4.csv.gz"))
	if err != nil {
		t.Skipf("shared geo data absent: %v", err)
	}
	defer g.Close()
	tests := []struct {
		file        string
		wantVector  string
		wantSources float64 // approximate (HyperLogLog), 0: not checked
		wantSite    string
	}{
		{file: "stopddos-packet-captures/pkt.TCP.synflood.spoofed.pcap", wantVector: "syn_flood", wantSources: 37623, wantSite: "10.10.10.10"},
		{file: "stopddos-packet-captures/pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng", wantVector: "syn_flood", wantSite: "10.10.10.10"},
		{file: "stopddos-packet-captures/amp.UDP.snmp.src161.pcapng", wantVector: "udp_amplification:snmp", wantSite: "10.10.10.10"},
		{file: "stopddos-packet-captures/amp.UDP.isakmp.pcap", wantVector: "udp_amplification:isakmp", wantSite: "10.10.10.10"},
		{file: "stopddos-packet-captures/amp.TCP.reflection.SYNACK.pcap", wantVector: "tcp_reflection:synack", wantSite: "10.10.10.10"},
		{file: "cic-ddos2019-lucid-sample/CIC-DDoS-2019-SynFlood.pcap", wantVector: "syn_flood", wantSite: "192.168.50.4"},
	}
	for _, tc := range tests {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			name := filepath.Join(sharedData, tc.file)
			requireShared(t, name)
			dir := t.TempDir()
			var out bytes.Buffer
			sum, err := Run(context.Background(), Options{Files: []string{name}, JSON: true, DataDir: dir, Geo: g}, &out)
			if err != nil {
				t.Fatal(err)
			}
			lines := parseJSONLines(t, out.Bytes())
			if len(lines) != 1 || len(sum.Incidents) != 1 {
				t.Fatalf("%d JSON lines, %d incidents; want 1", len(lines), len(sum.Incidents))
			}
			j := lines[0]
			if !slices.Contains(j.Vectors, tc.wantVector) || j.Site != tc.wantSite {
				t.Errorf("site %s vectors %v, want %s with %s", j.Site, j.Vectors, tc.wantSite, tc.wantVector)
			}
			if tc.wantSources > 0 && math.Abs(float64(j.Sources)-tc.wantSources)/tc.wantSources > 0.03 {
				t.Errorf("sources %d, want about %.0f", j.Sources, tc.wantSources)
			}
			if j.PeakPPS <= 0 || j.End == nil || j.Detected.Before(j.Start) {
				t.Errorf("figures %+v", j)
			}
			if tc.wantSite == "10.10.10.10" && len(j.TopCountries) == 0 {
				t.Errorf("no country attribution for a capture of public sources")
			}
			st, err := incident.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			stored, err := st.Get(context.Background(), j.ID)
			if err != nil {
				t.Fatal(err)
			}
			if stored.Open() || !slices.Equal(stored.Vectors, j.Vectors) || stored.Sources != j.Sources || len(stored.Timeline) == 0 {
				t.Errorf("stored incident %+v differs from output %+v", stored, j)
			}
		})
	}
}

// floodLog writes a combined log: quiet browsing, then a flood of
// requests from 200 addresses in 8.8.8.0/24 (AS15169 in the fixture).
func floodLog(t *testing.T) string {
	t.Helper()
	return writeFlood(t, "flood.log", func(i int) string { return fmt.Sprintf("8.8.8.%d", i%200+1) })
}

func TestRunLogFloodWithAttribution(t *testing.T) {
	g, err := geo.Open(fixtureASN)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sum, err := Run(context.Background(), Options{Files: []string{floodLog(t)}, Geo: g}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Incidents) != 1 {
		t.Fatalf("%d incidents, want 1:\n%s", len(sum.Incidents), out.String())
	}
	in := sum.Incidents[0]
	if len(in.TopASNs) == 0 || in.TopASNs[0].Key != "AS15169" {
		t.Errorf("top ASNs %v, want AS15169 first", in.TopASNs)
	}
	if len(in.TopPrefixes) == 0 || in.TopPrefixes[0].Key != "8.8.8.0/24" {
		t.Errorf("top prefixes %v, want 8.8.8.0/24 first", in.TopPrefixes)
	}
	if in.PeakRPS < 500 {
		t.Errorf("peak rps %.0f, want about 1000", in.PeakRPS)
	}
	for _, want := range []string{in.ID, "AS15169", "flood.log (combined): 20360 lines, 20360 requests"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunReportsMalformed(t *testing.T) {
	good := `192.0.2.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua"`
	name := filepath.Join(t.TempDir(), "mixed.log")
	os.WriteFile(name, []byte(strings.Join([]string{good, "garbage", good, `{"not":"clf"}`, good}, "\n")), 0o644)
	tests := []struct {
		name string
		json bool
	}{
		{name: "table output"},
		{name: "json output reports on diagnostics", json: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, diag bytes.Buffer
			sum, err := Run(context.Background(), Options{Files: []string{name}, JSON: tc.json, Diagnostics: &diag}, &out)
			if err != nil {
				t.Fatal(err)
			}
			f := sum.Files[0]
			if f.Requests != 3 || f.Malformed.Count != 2 {
				t.Errorf("requests %d malformed %d, want 3 and 2", f.Requests, f.Malformed.Count)
			}
			report := out.String()
			if tc.json {
				report = diag.String()
				if out.Len() != 0 {
					t.Errorf("JSON stdout carries more than incidents: %q", out.String())
				}
			}
			for _, want := range []string{"malformed line 2: " + reasonAddr, "malformed line 4: " + reasonAddr, "2 malformed"} {
				if !strings.Contains(report, want) {
					t.Errorf("report lacks %q:\n%s", want, report)
				}
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	notLog := filepath.Join(dir, "notes.txt")
	os.WriteFile(notLog, []byte("dear diary\nnothing happened\n"), 0o644)
	good := filepath.Join(dir, "ok.log")
	os.WriteFile(good, []byte(`192.0.2.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1`+"\n"), 0o644)
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, []byte("x"), 0o644)
	tests := []struct {
		name    string
		opts    Options
		wantSub string
		// replayed is set when the good file must still be replayed and
		// reported: a bad file is skipped, not fatal to the others.
		replayed bool
	}{
		{name: "no files", opts: Options{}, wantSub: "no input files"},
		{name: "missing file skipped", opts: Options{Files: []string{good, filepath.Join(dir, "nope.log")}}, wantSub: "nope.log", replayed: true},
		{name: "unknown format skipped", opts: Options{Files: []string{good, notLog}}, wantSub: "notes.txt", replayed: true},
		{name: "only unknown format", opts: Options{Files: []string{notLog}}, wantSub: "notes.txt"},
		{name: "data dir unusable", opts: Options{Files: []string{good}, DataDir: filepath.Join(blocker, "sub")}, wantSub: "data dir"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := Run(context.Background(), tc.opts, &out)
			if err == nil || !strings.Contains(err.Error(), tc.wantSub) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.wantSub)
			}
			if tc.replayed {
				if !strings.Contains(out.String(), "ok.log") {
					t.Errorf("the good file was not replayed and reported: %q", out.String())
				}
			} else if out.Len() != 0 {
				t.Errorf("output on error: %q", out.String())
			}
		})
	}
}

// fakeClock is a wall clock that only moves when the replay sleeps.
type fakeClock struct {
	now   time.Time
	slept time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.now = c.now.Add(d)
	c.slept += d
	return ctx.Err()
}

func TestRunPaced(t *testing.T) {
	var b strings.Builder
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for s := range 21 { // 20 s of event time
		fmt.Fprintf(&b, "192.0.2.1 - - [%s] \"GET / HTTP/1.1\" 200 1\n", t0.Add(time.Duration(s)*time.Second).Format("02/Jan/2006:15:04:05 -0700"))
	}
	name := filepath.Join(t.TempDir(), "paced.log")
	os.WriteFile(name, []byte(b.String()), 0o644)
	tests := []struct {
		name      string
		speed     float64
		wantSlept time.Duration
	}{
		{name: "max speed never sleeps", speed: 0, wantSlept: 0},
		{name: "real time", speed: 1, wantSlept: 20 * time.Second},
		{name: "ten times real time", speed: 10, wantSlept: 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{now: time.Unix(1e9, 0)}
			var out bytes.Buffer
			if _, err := Run(context.Background(), Options{Files: []string{name}, Speed: tc.speed, Now: clk.Now, Sleep: clk.Sleep}, &out); err != nil {
				t.Fatal(err)
			}
			if diff := clk.slept - tc.wantSlept; diff < -time.Millisecond || diff > time.Millisecond {
				t.Errorf("slept %v, want %v", clk.slept, tc.wantSlept)
			}
		})
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	_, err := Run(ctx, Options{Files: []string{apacheFixture}}, &out)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestProgressBar(t *testing.T) {
	tests := []struct {
		name        string
		done, total int64
		want        string
	}{
		{name: "start", done: 0, total: 100, want: "[>         ]   0%"},
		{name: "half", done: 50, total: 100, want: "[=====>    ]  50%"},
		{name: "done", done: 100, total: 100, want: "[==========] 100%"},
		{name: "overshoot clamps", done: 150, total: 100, want: "[==========] 100%"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := renderBar(tc.done, tc.total, 10); got != tc.want {
				t.Errorf("renderBar = %q, want %q", got, tc.want)
			}
		})
	}
	// Not a terminal: nothing is drawn.
	var buf bytes.Buffer
	p := newProgress(&buf, 100, time.Now)
	p.update(1, 1, 50, 10, 0)
	p.clear()
	if buf.Len() != 0 {
		t.Errorf("progress drawn on a non-terminal: %q", buf.String())
	}
}

// TestRunF28 is HANDED case F28 on a packet capture: one large download (a
// single flow of full-size ACK/PSH segments at about 950 Mbit/s, ~82k pps)
// is not an attack; a spoofed SYN flood to the same host (50k pps from 5,000
// sources) is a syn_flood incident for that host only.
func TestRunF28(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and replays 260k packets")
	}
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}
	download := frame(t, eth, ipv4("198.51.100.10", "203.0.113.20", layers.IPProtocolTCP),
		&layers.TCP{SrcPort: 443, DstPort: 50000, ACK: true, PSH: true, Seq: 1, Window: 65535},
		gopacket.Payload(bytes.Repeat([]byte{0x5a}, 1448)))
	syn := frame(t, eth, ipv4("192.0.2.1", "203.0.113.20", layers.IPProtocolTCP),
		&layers.TCP{SrcPort: 40000, DstPort: 443, SYN: true, Seq: 1, Window: 1024})
	t0 := time.Date(2026, 6, 17, 19, 0, 0, 0, time.UTC)
	// Classic pcap written by hand (nanosecond magic): pcapgo.Writer is too
	// slow for a few hundred thousand packets in a unit test.
	type pcapBuf struct{ b []byte }
	write := func(name string, gen func(w *pcapBuf)) string {
		w := &pcapBuf{b: binary.LittleEndian.AppendUint32(nil, magicPcapNano)}
		w.b = binary.LittleEndian.AppendUint16(w.b, 2)
		w.b = binary.LittleEndian.AppendUint16(w.b, 4)
		w.b = append(w.b, make([]byte, 8)...)
		w.b = binary.LittleEndian.AppendUint32(w.b, 65535)
		w.b = binary.LittleEndian.AppendUint32(w.b, uint32(layers.LinkTypeEthernet))
		gen(w)
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, w.b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// put records data captured with a 96-byte snaplen, as tcpdump -s 96
	// would: rates come from the IP header's length, not the capture.
	put := func(w *pcapBuf, at time.Duration, data []byte) {
		ts := t0.Add(at)
		captured := data[:min(len(data), 96)]
		w.b = binary.LittleEndian.AppendUint32(w.b, uint32(ts.Unix()))
		w.b = binary.LittleEndian.AppendUint32(w.b, uint32(ts.Nanosecond()))
		w.b = binary.LittleEndian.AppendUint32(w.b, uint32(len(captured)))
		w.b = binary.LittleEndian.AppendUint32(w.b, uint32(len(data)))
		w.b = append(w.b, captured...)
	}
	downloadCap := write("download.pcap", func(w *pcapBuf) {
		const pps, secs = 82_000, 3
		for i := range pps * secs {
			binary.BigEndian.PutUint32(download[14+20+4:], uint32(i*1448)) // sequence number
			put(w, time.Duration(i)*time.Second/pps, download)
		}
	})
	synCap := write("synflood.pcap", func(w *pcapBuf) {
		const pps, secs = 50_000, 3
		for i := range pps * secs {
			src := 5000 + i%5000
			copy(syn[14+12:], []byte{100, 64 + byte(src>>16), byte(src >> 8), byte(src)}) // spoofed sources
			binary.BigEndian.PutUint16(syn[14+20:], uint16(1024+i%50000))
			put(w, time.Duration(i)*time.Second/pps, syn)
		}
	})
	tests := []struct {
		name        string
		file        string
		packets     uint64
		wantVectors []string // nil: no incident
	}{
		{name: "single download is not an attack", file: downloadCap, packets: 246_000},
		{name: "spoofed syn flood", file: synCap, packets: 150_000, wantVectors: []string{"syn_flood"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			sum, err := Run(context.Background(), Options{Files: []string{tc.file}, JSON: true}, &out)
			if err != nil {
				t.Fatal(err)
			}
			if f := sum.Files[0]; f.Malformed.Count != 0 || f.Packets != tc.packets {
				t.Errorf("%d packets, malformed %v; want %d, none", f.Packets, f.Malformed.First, tc.packets)
			}
			if tc.wantVectors == nil {
				if len(sum.Incidents) != 0 {
					t.Errorf("incidents for a download: %s", out.String())
				}
				return
			}
			if len(sum.Incidents) != 1 {
				t.Fatalf("%d incidents, want 1: %s", len(sum.Incidents), out.String())
			}
			in := sum.Incidents[0]
			if in.Site != "203.0.113.20" || !slices.Equal(in.Vectors, tc.wantVectors) {
				t.Errorf("incident for %s with %v, want 203.0.113.20 with %v", in.Site, in.Vectors, tc.wantVectors)
			}
			if in.PeakPPS < 40_000 {
				t.Errorf("peak pps %.0f, want about 50,000", in.PeakPPS)
			}
			if d := in.Detected.Sub(in.Start); d > time.Second {
				t.Errorf("detected %v after the start, want within 1 s", d)
			}
		})
	}
}

// TestRunOrdersFilesByFirstRecord replays rotated logs given newest first
// (`replay access.log*` expands to access.log before access.log.1): they
// are replayed oldest first, so detection's clock never jumps back and no
// flood is invented from the overlap.
func TestRunOrdersFilesByFirstRecord(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, from int) string {
		var b strings.Builder
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := 0; i < 120; i++ {
			ts := start.Add(time.Duration(from+i) * time.Second).Format("02/Jan/2006:15:04:05 -0700")
			fmt.Fprintf(&b, "192.0.2.%d - - [%s] \"GET /p%d HTTP/1.1\" 200 512\n", i%50+1, ts, i%7)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	older, newer := write("access.log.1", 0), write("access.log", 120)
	var out bytes.Buffer
	sum, err := Run(context.Background(), Options{Files: []string{newer, older}}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Files) != 2 || sum.Files[0].Name != older || sum.Files[1].Name != newer {
		t.Fatalf("replay order = %+v, want %s then %s", sum.Files, older, newer)
	}
	if len(sum.Incidents) != 0 {
		t.Fatalf("%d incidents from two consecutive 1 req/s logs: %+v", len(sum.Incidents), sum.Incidents[0])
	}
}
