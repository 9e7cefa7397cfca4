package replay

import (
	"bytes"
	"os"
	"testing"

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
