package replay

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/portcullis/portcullis/internal/detect"
	"github.com/portcullis/portcullis/internal/geo"
	"github.com/portcullis/portcullis/internal/stats"
)

// BenchmarkParseCombined reads the 10,000-line real Apache combined log
// (or the 300-line fixture when the shared data is absent) from memory
// through a LogReader; it reports lines/s. One op is one line.
func BenchmarkParseCombined(b *testing.B) {
	raw, err := os.ReadFile(apacheLogs)
	if err != nil {
		raw, err = os.ReadFile(apacheFixture)
		if err != nil {
			b.Fatal(err)
		}
	}
	data := bytes.Repeat(raw, 10)
	lines := bytes.Count(data, []byte("\n"))
	b.SetBytes(int64(len(data) / lines))
	b.ReportAllocs()
	var req stats.Request
	var lr *LogReader
	n := 0
	for b.Loop() {
		if lr == nil || !lr.Next(&req) {
			lr, err = NewLogReader(bytes.NewReader(data), LogOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if !lr.Next(&req) {
				b.Fatal("no records")
			}
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkPcap decodes the real spoofed SYN flood capture (37,841
// Ethernet/IPv4/TCP packets; a synthetic capture of HTTP requests when the
// shared data is absent) from memory through a PcapReader; it reports
// packets/s. One op is one packet.
func BenchmarkPcap(b *testing.B) {
	raw, err := os.ReadFile(sharedData + "/stopddos-packet-captures/pkt.TCP.synflood.spoofed.pcap")
	if err != nil {
		raw = syntheticHTTPCapture(b, 10000)
	}
	var pkt stats.Packet
	var req stats.Request
	var pr *PcapReader
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if pr == nil || !pr.Next(&pkt, &req) {
			pr, err = NewPcapReader(bytes.NewReader(raw), PcapOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if !pr.Next(&pkt, &req) {
				b.Fatal("no packets")
			}
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "packets/s")
}

// BenchmarkPcapHTTP is BenchmarkPcap over TCP segments that all carry an
// HTTP request (the request extraction path).
func BenchmarkPcapHTTP(b *testing.B) {
	raw := syntheticHTTPCapture(b, 10000)
	var pkt stats.Packet
	var req stats.Request
	var pr *PcapReader
	var err error
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if pr == nil || !pr.Next(&pkt, &req) {
			pr, err = NewPcapReader(bytes.NewReader(raw), PcapOptions{})
			if err != nil {
				b.Fatal(err)
			}
			pr.Next(&pkt, &req)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "packets/s")
}

// BenchmarkRunCombined measures the whole replay (parse, attribution,
// accounting, detection) over the real 10,000-line Apache log; it reports
// lines/s. One op is one line.
func BenchmarkRunCombined(b *testing.B) {
	requireShared(b, apacheLogs)
	g, err := geo.Open(sharedData+"/ip-location-db/geo-whois-asn-country.mmdb", sharedData+"/ip-location-db/asn-ipv4.csv.gz")
	if err != nil {
		b.Skip(err)
	}
	defer g.Close()
	lines := 0
	for b.Loop() {
		sum, err := Run(context.Background(), Options{Files: []string{apacheLogs}, Geo: g}, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		lines += int(sum.Files[0].Lines)
	}
	b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
}

// denseLog writes a combined log of n lines at 2,000 requests/s from
// 5,000 addresses and returns its name.
func denseLog(b testing.TB, n int) string {
	var buf bytes.Buffer
	t0 := time.Date(2026, 6, 17, 19, 0, 0, 0, time.UTC)
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Second / 2000)
		fmt.Fprintf(&buf, "198.18.%d.%d - - [%s] \"GET /news/%d?page=%d HTTP/1.1\" 200 5120 \"https://example.org/\" \"Mozilla/5.0 (X11; Linux x86_64)\"\n",
			i%5000/250, i%250+1, at.Format("02/Jan/2006:15:04:05 -0700"), i%300, i%7)
	}
	name := b.TempDir() + "/dense.log"
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	return name
}

// BenchmarkRunDense measures the whole replay, end to end (open, parse,
// accounting, detection, output), over a synthetic dense combined log
// (200,000 lines at 2,000 requests/s from 5,000 addresses, no geo data); it
// reports lines/s. One op is one replay of the file.
func BenchmarkRunDense(b *testing.B) {
	name := denseLog(b, 200_000)
	if st, err := os.Stat(name); err == nil {
		b.SetBytes(st.Size())
	}
	lines := 0
	cpu := processCPU()
	for b.Loop() {
		sum, err := Run(context.Background(), Options{Files: []string{name}}, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		lines += int(sum.Files[0].Lines)
	}
	reportRates(b, lines, processCPU()-cpu, "lines/s")
}

// reportRates reports records per wall-clock second under unit, and the
// process CPU time (all threads: both stages and the garbage collector)
// per record as cpu-ns/record: on a loaded machine the wall-clock rate
// depends on what else runs, the CPU cost much less.
func reportRates(b *testing.B, records int, cpu time.Duration, unit string) {
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), unit)
	if cpu > 0 && records > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(records), "cpu-ns/record")
	}
}

// densePcap writes a classic pcap (nanosecond magic, Ethernet) of n packets
// over n/100,000 s: a SYN flood to 203.0.113.20 from 50,000 spoofed
// sources, with every 20th packet an HTTP GET segment to 192.0.2.80 from
// one of 2,000 clients (the request extraction path). Written by hand:
// pcapgo.Writer is too slow for this many packets.
func densePcap(b testing.TB, n int) string {
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}
	syn := frame(b, eth, ipv4("100.64.0.1", "203.0.113.20", layers.IPProtocolTCP),
		&layers.TCP{SrcPort: 40000, DstPort: 443, SYN: true, Seq: 1, Window: 1024})
	get := frame(b, eth, ipv4("198.51.100.1", "192.0.2.80", layers.IPProtocolTCP),
		&layers.TCP{SrcPort: 40001, DstPort: 80, ACK: true, PSH: true, Seq: 1, Window: 1024},
		gopacket.Payload("GET /news/1?page=2 HTTP/1.1\r\nHost: example.org\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nReferer: https://example.org/\r\n\r\n"))
	out := binary.LittleEndian.AppendUint32(make([]byte, 0, 24+n*(16+len(get))), magicPcapNano)
	out = binary.LittleEndian.AppendUint16(out, 2)
	out = binary.LittleEndian.AppendUint16(out, 4)
	out = append(out, make([]byte, 8)...)
	out = binary.LittleEndian.AppendUint32(out, 65535)
	out = binary.LittleEndian.AppendUint32(out, uint32(layers.LinkTypeEthernet))
	start := time.Date(2026, 6, 17, 19, 0, 0, 0, time.UTC)
	for i := range n {
		data := syn
		if i%20 == 0 {
			data = get
			c := i / 20 % 2000
			copy(data[14+12:], []byte{198, 51, 100 + byte(c>>8), byte(c)})
			binary.BigEndian.PutUint32(data[14+20+4:], uint32(i)) // sequence number: no duplicate
		} else {
			src := i % 50000
			copy(data[14+12:], []byte{100, 64 + byte(src>>16), byte(src >> 8), byte(src)})
			binary.BigEndian.PutUint16(data[14+20:], uint16(1024+i%50000))
		}
		ts := start.Add(time.Duration(i) * time.Second / 100_000)
		out = binary.LittleEndian.AppendUint32(out, uint32(ts.Unix()))
		out = binary.LittleEndian.AppendUint32(out, uint32(ts.Nanosecond()))
		out = binary.LittleEndian.AppendUint32(out, uint32(len(data)))
		out = binary.LittleEndian.AppendUint32(out, uint32(len(data)))
		out = append(out, data...)
	}
	name := b.TempDir() + "/dense.pcap"
	if err := os.WriteFile(name, out, 0o644); err != nil {
		b.Fatal(err)
	}
	return name
}

// BenchmarkRunPcapDense measures the whole replay, end to end, over a
// synthetic dense capture (400,000 packets in 4 s: a spoofed SYN flood at
// 95,000 pps plus 5,000 HTTP requests/s, see densePcap); it reports
// packets/s. One op is one replay of the file.
func BenchmarkRunPcapDense(b *testing.B) {
	name := densePcap(b, 400_000)
	if st, err := os.Stat(name); err == nil {
		b.SetBytes(st.Size())
	}
	packets := 0
	cpu := processCPU()
	for b.Loop() {
		sum, err := Run(context.Background(), Options{Files: []string{name}}, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		if len(sum.Incidents) == 0 {
			b.Fatal("no incident for the SYN flood")
		}
		packets += int(sum.Files[0].Packets)
	}
	reportRates(b, packets, processCPU()-cpu, "packets/s")
}

// BenchmarkStages measures each stage of the two-stage replay alone over
// the BenchmarkRunDense log and the BenchmarkRunPcapDense capture: "read"
// is the reader goroutine (parse, copy into batches, hand over; the
// consumer only recycles them), "feed" the consuming goroutine (pacing
// off, pipeline, Finish) over batches parsed beforehand. End-to-end
// throughput is bounded by the slower stage. One op is one file.
func BenchmarkStages(b *testing.B) {
	for _, file := range []struct{ name, path string }{
		{name: "log", path: denseLog(b, 200_000)},
		{name: "pcap", path: densePcap(b, 400_000)},
	} {
		b.Run(file.name+"/read", func(b *testing.B) {
			records := 0
			for b.Loop() {
				records += readAllBatches(b, file.path, func(*batch) {})
			}
			b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
		})
		b.Run(file.name+"/feed", func(b *testing.B) {
			// All the file's batches, parsed once.
			var batches []*batch
			readAllBatches(b, file.path, func(bt *batch) {
				c := &batch{reqs: append([]stats.Request(nil), bt.reqs...), pkts: append([]stats.Packet(nil), bt.pkts...),
					http: append([]bool(nil), bt.http...), arena: append([]byte(nil), bt.arena...)}
				for i := range c.reqs { // strings into the copy's arena
					c.reqs[i].Path = rebase(c.reqs[i].Path, bt.arena, c.arena)
					c.reqs[i].Query = rebase(c.reqs[i].Query, bt.arena, c.arena)
					c.reqs[i].UserAgent = rebase(c.reqs[i].UserAgent, bt.arena, c.arena)
				}
				batches = append(batches, c)
			})
			records := 0
			for b.Loop() {
				var now time.Time
				pipe, _ := newTestPipeline(b, nil, nil, &now)
				f := feeder{ctx: context.Background(), pipe: pipe, pace: &pacer{}, eventNow: &now, sink: &fanout{mem: &detect.MemorySink{}}}
				var fs FileSummary
				for _, bt := range batches {
					if err := f.feed(bt, &fs); err != nil {
						b.Fatal(err)
					}
					records += bt.records()
				}
				if err := pipe.Finish(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// readAllBatches runs the reader stage over the file and calls use with
// every batch, on the calling goroutine; it returns the records read.
func readAllBatches(b testing.TB, path string, use func(*batch)) int {
	in, err := openInput(path, &Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	free, full, stop := newBatchPool(), make(chan *batch, batchesInFlight), make(chan struct{})
	defer close(stop)
	go (&readStage{in: in, free: free, full: full, stop: stop}).run()
	n := 0
	for bt := range full {
		use(bt)
		n += bt.records()
		free <- bt
	}
	return n
}

// rebase returns the string at s's offset in from, taken in to.
func rebase(s string, from, to []byte) string {
	if s == "" {
		return s
	}
	off := uintptr(unsafe.Pointer(unsafe.StringData(s))) - uintptr(unsafe.Pointer(unsafe.SliceData(from)))
	if off >= uintptr(len(from)) {
		return s // a constant or a string outside the arena
	}
	return unsafe.String(&to[off], len(s))
}

// BenchmarkTwoStageVsSequential replays the BenchmarkRunDense log and the
// BenchmarkRunPcapDense capture alternately with the single-goroutine loop
// Run used before (sequentialReplay: same wiring, no output) and with Run,
// so that both see the same machine load; it reports both rates
// (seq-records/s, records/s) and the median per-pair speedup of Run. One op
// is one pair of replays.
func BenchmarkTwoStageVsSequential(b *testing.B) {
	for _, file := range []struct{ name, path string }{
		{name: "log", path: denseLog(b, 200_000)},
		{name: "pcap", path: densePcap(b, 400_000)},
	} {
		b.Run(file.name, func(b *testing.B) {
			var seq, two time.Duration
			var speedups []float64
			records := 0
			timeSeq := func() time.Duration {
				start := time.Now()
				_, files := sequentialReplay(b, []string{file.path}, nil)
				records += int(files[0].Requests + files[0].Packets)
				return time.Since(start)
			}
			timeRun := func() time.Duration {
				start := time.Now()
				if _, err := Run(context.Background(), Options{Files: []string{file.path}}, io.Discard); err != nil {
					b.Fatal(err)
				}
				return time.Since(start)
			}
			for i := 0; b.Loop(); i++ {
				var s, r time.Duration
				if i%2 == 0 { // alternate the order: neither pays the other's garbage
					s, r = timeSeq(), timeRun()
				} else {
					r, s = timeRun(), timeSeq()
				}
				seq, two = seq+s, two+r
				speedups = append(speedups, float64(s)/float64(r))
			}
			slices.Sort(speedups)
			b.ReportMetric(float64(records)/seq.Seconds(), "seq-records/s")
			b.ReportMetric(float64(records)/two.Seconds(), "records/s")
			b.ReportMetric(speedups[len(speedups)/2], "speedup")
		})
	}
}
