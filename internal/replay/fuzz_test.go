package replay

import (
	"bytes"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/portcullis/portcullis/internal/stats"
)

// FuzzParseLogLine feeds arbitrary lines to both line parsers and to a
// LogReader; a parsed request must be consistent and every line accounted
// for.
func FuzzParseLogLine(f *testing.F) {
	for _, s := range []string{
		`83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /a/b.png?x=1 HTTP/1.1" 200 203023 "http://x/" "Mozilla/5.0"`,
		`10.1.2.3 - frank [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 304 -`,
		`12.34.56.78 - - [20/Jan/2015:19:53:28 +0100] "\x03\x00\x00/*\xE0" 400 47 "-" "-" "-"`,
		`www.example.org:443 2001:db8::1 - - [01/Jan/2026:00:00:00.5 +0000] "GET http://h/p HTTP/1.1" 200 1 "-" "a \"b\""`,
		`{"ts":1767261600.5,"request":{"client_ip":"203.0.113.9","method":"GET","uri":"/n?x=y","headers":{"User-Agent":["M"]}},"status":200,"size":1}`,
		`{"time_local":"10/Oct/2000:13:55:36 -0700","remote_addr":"192.0.2.1","request":"POST /login HTTP/1.1","status":"401","http_user_agent":"a\"\u00e9\ud83d\ude00"}`,
		`{"StartUTC":"2026-01-01T10:00:00.123456789Z","ClientAddr":"192.0.2.10:5","RequestPath":"/","DownstreamStatus":429}`,
		"# comment", "", "{", `"`, "[",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		p := lineParser{bits4: 24, bits6: 64}
		var req stats.Request
		check := func(format string) {
			if !req.Addr.IsValid() || !req.Prefix.IsValid() || !req.Prefix.Contains(req.Addr) {
				t.Fatalf("%s: parsed request with addr %v prefix %v", format, req.Addr, req.Prefix)
			}
			if req.Addr.Is4In6() || req.Addr.Zone() != "" {
				t.Fatalf("%s: addr %v not normalised", format, req.Addr)
			}
			if req.Status < 0 || req.Status > 999 || req.Bytes < 0 {
				t.Fatalf("%s: status %d bytes %d", format, req.Status, req.Bytes)
			}
			if req.Path != "" && req.Method == "" && format == "clf" {
				t.Fatalf("%s: path %q without method", format, req.Path)
			}
		}
		if _, reason := p.parseCLF(line, &req); reason == "" {
			check("clf")
		}
		req = stats.Request{}
		if p.parseJSON(line, &req) == "" {
			check("json")
		}

		// Whole-reader accounting: three copies of the line.
		input := bytes.Join([][]byte{line, line, line}, []byte("\n"))
		for _, format := range []Format{FormatAuto, FormatCombined, FormatJSON} {
			lr, err := NewLogReader(bytes.NewReader(input), LogOptions{Format: format})
			if err != nil {
				continue
			}
			n := uint64(0)
			for lr.Next(&req) {
				n++
			}
			if lr.Err() != nil {
				t.Fatalf("read error on in-memory input: %v", lr.Err())
			}
			if got := n + lr.Malformed().Count + lr.Skipped(); got != uint64(lr.Lines()) {
				t.Fatalf("format %v: %d records + %d malformed + %d skipped != %d lines", format, n, lr.Malformed().Count, lr.Skipped(), lr.Lines())
			}
		}
	})
}

// FuzzPcap feeds arbitrary bytes as a capture file: the reader must never
// panic, never allocate without bound, and account for every record.
func FuzzPcap(f *testing.F) {
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}
	tcp := frame(f, eth, ipv4("203.0.113.5", "192.0.2.80", layers.IPProtocolTCP),
		&layers.TCP{SrcPort: 40001, DstPort: 80, ACK: true, PSH: true, Seq: 9, Window: 1024},
		gopacket.Payload("GET /a?b HTTP/1.1\r\nHost: x\r\nUser-Agent: y\r\n\r\n"))
	udp6 := frame(f, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv6},
		ipv6("2001:db8::1", "2001:db8::2", layers.IPProtocolUDP), &layers.UDP{SrcPort: 161, DstPort: 9})
	frag := ipv4("198.51.100.9", "10.10.10.10", layers.IPProtocolUDP)
	frag.Flags = layers.IPv4MoreFragments
	fragPkt := frame(f, eth, frag, &layers.UDP{SrcPort: 53, DstPort: 9}, gopacket.Payload("xxxx"))
	pkts := []capPacket{{data: tcp}, {data: udp6}, {data: fragPkt}, {data: tcp, capLen: 40}}
	f.Add(writeCapture(f, false, layers.LinkTypeEthernet, pkts))
	f.Add(writeCapture(f, true, layers.LinkTypeEthernet, pkts))
	f.Add(writeCapture(f, false, layers.LinkTypeRaw, []capPacket{{data: tcp[14:]}, {data: udp6[14:]}}))
	f.Add(writeCapture(f, false, layers.LinkTypeLinuxSLL, []capPacket{{data: append([]byte{0, 0, 0, 1, 0, 6, 0, 1, 2, 3, 4, 5, 0, 0, 0x08, 0x00}, tcp[14:]...)}}))
	f.Add(writeCapture(f, false, layers.LinkTypeNull, []capPacket{{data: append([]byte{2, 0, 0, 0}, tcp[14:]...)}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		pr, err := NewPcapReader(bytes.NewReader(data), PcapOptions{MaxMalformed: 2})
		if err != nil {
			return
		}
		var pkt stats.Packet
		var req stats.Request
		n := uint64(0)
		for pr.Next(&pkt, &req) {
			n++
			if !pkt.Src.IsValid() || !pkt.Dst.IsValid() || pkt.SampleRate != 1 {
				t.Fatalf("packet %+v", pkt)
			}
			if pr.HTTP() && (req.Method == "" || req.Addr != pkt.Src) {
				t.Fatalf("request %+v from packet %+v", req, pkt)
			}
			if n > uint64(len(data)) {
				t.Fatalf("%d packets from %d bytes", n, len(data))
			}
		}
		if n+pr.NonIP() > pr.Packets() {
			t.Fatalf("%d returned + %d non-IP > %d records", n, pr.NonIP(), pr.Packets())
		}
	})
}
