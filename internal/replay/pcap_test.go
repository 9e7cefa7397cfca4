package replay

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/portcullis/portcullis/internal/stats"
)

// TestPcapSharedCaptures reads every real capture in ../shared/data and
// checks the figures stated in shared/data/SOURCES.md.
func TestPcapSharedCaptures(t *testing.T) {
	tests := []struct {
		file        string
		wantPackets uint64 // capture records
		wantIP      int    // IP packets returned
		wantSources int    // distinct source addresses
		wantSYN     int    // SYN without ACK
		wantSYNACK  int
		wantUDP161  int // from UDP source port 161
		wantUDP4500 int
		wantHTTP    int
	}{
		{file: "stopddos-packet-captures/pkt.TCP.synflood.spoofed.pcap", wantPackets: 37841, wantIP: 37841, wantSources: 37623, wantSYN: 37841},
		{file: "stopddos-packet-captures/amp.TCP.reflection.SYNACK.pcap", wantPackets: 8000, wantIP: 7996, wantSources: 7055, wantSYN: 1, wantSYNACK: 6651, wantUDP161: 14},
		{file: "stopddos-packet-captures/amp.UDP.snmp.src161.pcapng", wantPackets: 4373, wantIP: 4373, wantSources: 4276, wantUDP161: 4079},
		{file: "stopddos-packet-captures/amp.UDP.isakmp.pcap", wantPackets: 3984, wantIP: 3984, wantSources: 2767, wantUDP4500: 3984},
		{file: "stopddos-packet-captures/pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng", wantPackets: 9878, wantIP: 9878, wantSources: 9697, wantSYN: 9639},
		{file: "stopddos-packet-captures/amp.TCP.syn.optionallyACK.optionallysamePort.pcapng", wantPackets: 896, wantIP: 896, wantSources: 60, wantSYN: 354, wantSYNACK: 542},
		{file: "cic-ddos2019-lucid-sample/CIC-DDoS-2019-SynFlood.pcap", wantPackets: 26316, wantIP: 26316, wantSources: 2, wantSYN: 18778},
		{file: "cic-ddos2019-lucid-sample/CIC-DDoS-2019-WebDDoS.pcap", wantPackets: 3104, wantIP: 3104, wantSources: 2, wantSYN: 290, wantSYNACK: 298, wantHTTP: 186},
	}
	for _, tc := range tests {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			name := filepath.Join(sharedData, tc.file)
			requireShared(t, name)
			f, err := os.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			pr, err := NewPcapReader(f, PcapOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if pr.Format() != "pcap" {
				t.Errorf("format = %s, want pcap (sniffed, whatever the file name says)", pr.Format())
			}
			var pkt stats.Packet
			var req stats.Request
			ip, syn, synack, u161, u4500, http := 0, 0, 0, 0, 0, 0
			srcs := map[netip.Addr]bool{}
			for pr.Next(&pkt, &req) {
				ip++
				srcs[pkt.Src] = true
				if pkt.Dst.IsValid() && pkt.Length < 20 {
					t.Fatalf("packet %d: IP length %d", pr.Packets(), pkt.Length)
				}
				switch {
				case pkt.Proto == 6 && pkt.TCPFlags&0x12 == 0x02:
					syn++
				case pkt.Proto == 6 && pkt.TCPFlags&0x12 == 0x12:
					synack++
				case pkt.Proto == 17 && pkt.SrcPort == 161:
					u161++
				case pkt.Proto == 17 && pkt.SrcPort == 4500:
					u4500++
				}
				if pr.HTTP() {
					http++
					if req.Method != "GET" || !strings.HasPrefix(req.Path, "/") || req.UserAgent == "" || req.Addr != pkt.Src {
						t.Errorf("request %+v", req)
					}
				}
			}
			if pr.Malformed().Count != 0 {
				t.Errorf("malformed: %v", pr.Malformed().First)
			}
			gotV := []int{int(pr.Packets()), ip, len(srcs), syn, synack, u161, u4500, http}
			wantV := []int{int(tc.wantPackets), tc.wantIP, tc.wantSources, tc.wantSYN, tc.wantSYNACK, tc.wantUDP161, tc.wantUDP4500, tc.wantHTTP}
			for i, label := range []string{"records", "ip packets", "sources", "syn", "syn-ack", "udp/161", "udp/4500", "http"} {
				if gotV[i] != wantV[i] {
					t.Errorf("%s = %d, want %d", label, gotV[i], wantV[i])
				}
			}
			if uint64(ip)+pr.NonIP() != pr.Packets() {
				t.Errorf("ip %d + non-ip %d != records %d: a packet went uncounted", ip, pr.NonIP(), pr.Packets())
			}
		})
	}
}

var (
	macA = net.HardwareAddr{0, 1, 2, 3, 4, 5}
	macB = net.HardwareAddr{6, 7, 8, 9, 10, 11}
	t0   = time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
)

// frame serialises layers into bytes with lengths and checksums fixed.
func frame(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	type checksummed interface {
		SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
	}
	for _, l := range ls {
		if c, ok := l.(checksummed); ok {
			for _, n := range ls {
				if nl, ok := n.(gopacket.NetworkLayer); ok {
					c.SetNetworkLayerForChecksum(nl)
				}
			}
		}
	}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func ipv4(src, dst string, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
}

func ipv6(src, dst string, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
}

type capPacket struct {
	data   []byte
	capLen int // 0: whole packet
}

// writeCapture writes packets into a classic pcap (or pcapng) capture.
func writeCapture(t testing.TB, ng bool, link layers.LinkType, pkts []capPacket) []byte {
	t.Helper()
	var buf bytes.Buffer
	var write func(ci gopacket.CaptureInfo, data []byte) error
	var flush func() error
	if ng {
		w, err := pcapgo.NewNgWriter(&buf, link)
		if err != nil {
			t.Fatal(err)
		}
		write, flush = w.WritePacket, w.Flush
	} else {
		w := pcapgo.NewWriterNanos(&buf)
		if err := w.WriteFileHeader(65535, link); err != nil {
			t.Fatal(err)
		}
		write, flush = w.WritePacket, func() error { return nil }
	}
	for i, p := range pkts {
		data := p.data
		if p.capLen > 0 {
			data = data[:p.capLen]
		}
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(data), Length: len(p.data)}
		if err := write(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPcapDecoding(t *testing.T) {
	eth := func(typ layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: typ}
	}
	httpPayload := gopacket.Payload("GET /news/1?page=2 HTTP/1.1\r\nHost: example.org\r\nUser-Agent: Mozilla/5.0 (X11)\r\nReferer: https://example.org/\r\n\r\n")
	tcpSyn := &layers.TCP{SrcPort: 40000, DstPort: 443, SYN: true, ECE: true, CWR: true, Seq: 1, Window: 1024}
	httpTCP := &layers.TCP{SrcPort: 40001, DstPort: 80, ACK: true, PSH: true, Seq: 77, Window: 1024}
	udpSNMP := &layers.UDP{SrcPort: 161, DstPort: 3299}

	// Non-first IPv4 fragment: offset 185 (1480 bytes), no transport header.
	frag := ipv4("198.51.100.9", "10.10.10.10", layers.IPProtocolUDP)
	frag.FragOffset = 185
	// First IPv4 fragment: MF set, carries the UDP ports.
	first := ipv4("198.51.100.9", "10.10.10.10", layers.IPProtocolUDP)
	first.Flags = layers.IPv4MoreFragments
	// IPv6 first fragment (RFC 8200 fragment header by hand).
	v6frag := append([]byte{17, 0, 0, 1, 0, 0, 0, 42}, []byte{0x01, 0xf4, 0x30, 0x39, 0, 16, 0, 0}...)
	truncatedTCP := frame(t, eth(layers.EthernetTypeIPv4), ipv4("192.0.2.1", "10.10.10.10", layers.IPProtocolTCP), tcpSyn)

	type wantPkt struct {
		Src, Dst         string
		SrcPort, DstPort uint16
		Proto, Flags     uint8
		Length           int
		Fragment         bool
		HTTPPath         string
	}
	tests := []struct {
		name          string
		link          layers.LinkType
		ng            bool
		pkt           capPacket
		want          *wantPkt // nil: not returned
		wantMalformed uint64
		wantNonIP     uint64
	}{
		{
			name: "ethernet ipv4 tcp syn with ece cwr",
			link: layers.LinkTypeEthernet,
			pkt:  capPacket{data: frame(t, eth(layers.EthernetTypeIPv4), ipv4("192.0.2.1", "10.10.10.10", layers.IPProtocolTCP), tcpSyn)},
			want: &wantPkt{Src: "192.0.2.1", Dst: "10.10.10.10", SrcPort: 40000, DstPort: 443, Proto: 6, Flags: 0x02 | 0x40 | 0x80, Length: 40},
		},
		{
			name: "vlan tagged http request",
			link: layers.LinkTypeEthernet,
			pkt: capPacket{data: frame(t, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 42, Type: layers.EthernetTypeIPv4},
				ipv4("203.0.113.5", "192.0.2.80", layers.IPProtocolTCP), httpTCP, httpPayload)},
			want: &wantPkt{Src: "203.0.113.5", Dst: "192.0.2.80", SrcPort: 40001, DstPort: 80, Proto: 6, Flags: 0x18, Length: 40 + len(httpPayload), HTTPPath: "/news/1"},
		},
		{
			name: "pcapng ipv6 udp",
			link: layers.LinkTypeEthernet, ng: true,
			pkt:  capPacket{data: frame(t, eth(layers.EthernetTypeIPv6), ipv6("2001:db8::1", "2001:db8::2", layers.IPProtocolUDP), udpSNMP, gopacket.Payload("abcd"))},
			want: &wantPkt{Src: "2001:db8::1", Dst: "2001:db8::2", SrcPort: 161, DstPort: 3299, Proto: 17, Length: 40 + 8 + 4},
		},
		{
			name: "linux cooked capture",
			link: layers.LinkTypeLinuxSLL,
			pkt: capPacket{data: append([]byte{0, 0, 0, 1, 0, 6, 0, 1, 2, 3, 4, 5, 0, 0, 0x08, 0x00},
				frame(t, ipv4("192.0.2.7", "10.0.0.1", layers.IPProtocolUDP), udpSNMP)...)},
			want: &wantPkt{Src: "192.0.2.7", Dst: "10.0.0.1", SrcPort: 161, DstPort: 3299, Proto: 17, Length: 28},
		},
		{
			name: "raw ipv6",
			link: layers.LinkTypeRaw,
			pkt:  capPacket{data: frame(t, ipv6("2001:db8::7", "2001:db8::8", layers.IPProtocolTCP), tcpSyn)},
			want: &wantPkt{Src: "2001:db8::7", Dst: "2001:db8::8", SrcPort: 40000, DstPort: 443, Proto: 6, Flags: 0xc2, Length: 60},
		},
		{
			name: "raw ipv4",
			link: layers.LinkTypeRaw,
			pkt:  capPacket{data: frame(t, ipv4("192.0.2.7", "10.0.0.1", layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)})},
			want: &wantPkt{Src: "192.0.2.7", Dst: "10.0.0.1", Proto: 1, Length: 28},
		},
		{
			name: "bsd loopback",
			link: layers.LinkTypeNull,
			pkt:  capPacket{data: append([]byte{2, 0, 0, 0}, frame(t, ipv4("127.0.0.1", "127.0.0.2", layers.IPProtocolUDP), udpSNMP)...)},
			want: &wantPkt{Src: "127.0.0.1", Dst: "127.0.0.2", SrcPort: 161, DstPort: 3299, Proto: 17, Length: 28},
		},
		{
			name: "non-first ipv4 fragment",
			link: layers.LinkTypeEthernet,
			pkt:  capPacket{data: frame(t, eth(layers.EthernetTypeIPv4), frag, gopacket.Payload(bytes.Repeat([]byte{9}, 100)))},
			want: &wantPkt{Src: "198.51.100.9", Dst: "10.10.10.10", Proto: 17, Length: 120, Fragment: true},
		},
		{
			name: "first ipv4 fragment keeps ports",
			link: layers.LinkTypeEthernet,
			pkt:  capPacket{data: frame(t, eth(layers.EthernetTypeIPv4), first, udpSNMP, gopacket.Payload(bytes.Repeat([]byte{9}, 100)))},
			want: &wantPkt{Src: "198.51.100.9", Dst: "10.10.10.10", SrcPort: 161, DstPort: 3299, Proto: 17, Length: 128, Fragment: true},
		},
		{
			name: "ipv6 first fragment",
			link: layers.LinkTypeEthernet,
			pkt:  capPacket{data: frame(t, eth(layers.EthernetTypeIPv6), ipv6("2001:db8::1", "2001:db8::2", layers.IPProtocolIPv6Fragment), gopacket.Payload(v6frag))},
			want: &wantPkt{Src: "2001:db8::1", Dst: "2001:db8::2", SrcPort: 500, DstPort: 12345, Proto: 17, Length: 56, Fragment: true},
		},
		{
			name:      "arp is counted as non-ip",
			link:      layers.LinkTypeEthernet,
			pkt:       capPacket{data: frame(t, eth(layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4, SourceHwAddress: macA, SourceProtAddress: []byte{1, 2, 3, 4}, DstHwAddress: macB, DstProtAddress: []byte{5, 6, 7, 8}})},
			wantNonIP: 1,
		},
		{
			name:          "snaplen-truncated tcp header still counts the ip packet",
			link:          layers.LinkTypeEthernet,
			pkt:           capPacket{data: truncatedTCP, capLen: 14 + 20 + 6},
			want:          &wantPkt{Src: "192.0.2.1", Dst: "10.10.10.10", SrcPort: 40000, DstPort: 443, Proto: 6, Length: 40},
			wantMalformed: 1,
		},
		{
			name:          "garbage ip header",
			link:          layers.LinkTypeEthernet,
			pkt:           capPacket{data: append(frame(t, eth(layers.EthernetTypeIPv4)), 0x41, 0, 0, 10, 0, 0, 0, 0, 64, 6)},
			wantMalformed: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			capture := writeCapture(t, tc.ng, tc.link, []capPacket{tc.pkt})
			pr, err := NewPcapReader(bytes.NewReader(capture), PcapOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var pkt stats.Packet
			var req stats.Request
			ok := pr.Next(&pkt, &req)
			if ok != (tc.want != nil) {
				t.Fatalf("Next = %v (malformed %v), want %v", ok, pr.Malformed().First, tc.want != nil)
			}
			if ok {
				g := wantPkt{Src: pkt.Src.String(), Dst: pkt.Dst.String(), SrcPort: pkt.SrcPort, DstPort: pkt.DstPort,
					Proto: pkt.Proto, Flags: pkt.TCPFlags, Length: pkt.Length, Fragment: pkt.Fragment}
				if pr.HTTP() {
					g.HTTPPath = req.Path
				}
				if g != *tc.want {
					t.Errorf("got  %+v\nwant %+v", g, *tc.want)
				}
				if pkt.Time != t0.UnixNano() || pkt.SampleRate != 1 {
					t.Errorf("time %v rate %d", time.Unix(0, pkt.Time).UTC(), pkt.SampleRate)
				}
				if pr.Next(&pkt, &req) {
					t.Errorf("second Next returned a packet")
				}
			}
			if pr.Malformed().Count != tc.wantMalformed || pr.NonIP() != tc.wantNonIP || pr.Packets() != 1 {
				t.Errorf("records %d malformed %d non-ip %d; want 1, %d, %d", pr.Packets(), pr.Malformed().Count, pr.NonIP(), tc.wantMalformed, tc.wantNonIP)
			}
		})
	}
}

func TestHTTPFromTCP(t *testing.T) {
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}
	mk := func(seq uint32, payload string) capPacket {
		return capPacket{data: frame(t, eth, ipv4("203.0.113.5", "192.0.2.80", layers.IPProtocolTCP),
			&layers.TCP{SrcPort: 40001, DstPort: 80, ACK: true, PSH: true, Seq: seq, Window: 1024}, gopacket.Payload(payload))}
	}
	type wantReq struct {
		Method, Path, Query, UA, Host string
		Referer                       bool
	}
	tests := []struct {
		name    string
		payload string
		want    *wantReq
	}{
		{name: "full request", payload: "POST /login?next=/ HTTP/1.1\r\nhost: example.org\r\nUSER-AGENT: curl/8\r\nContent-Length: 3\r\n\r\na=b",
			want: &wantReq{Method: "POST", Path: "/login", Query: "next=/", UA: "curl/8", Host: "example.org"}},
		{name: "headers cut by segment end", payload: "GET / HTTP/1.1\r\nHost: a.example\r\nReferer: https://x/\r\nUser-Ag",
			want: &wantReq{Method: "GET", Path: "/", Host: "a.example", Referer: true}},
		{name: "bare LF line endings", payload: "HEAD /x HTTP/1.0\nUser-Agent: ua\n\n", want: &wantReq{Method: "HEAD", Path: "/x", UA: "ua"}},
		{name: "absolute form", payload: "GET http://example.org/p?q HTTP/1.1\r\n\r\n", want: &wantReq{Method: "GET", Path: "/p", Query: "q"}},
		{name: "response is not a request", payload: "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n"},
		{name: "lower-case method", payload: "get / HTTP/1.1\r\n\r\n"},
		{name: "no http version", payload: "GET / FOO/1.1\r\nHost: x\r\n\r\n"},
		{name: "http/2 preface", payload: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
		{name: "request line not terminated", payload: "GET /very/long/path HTTP/1.1"},
		{name: "tls client hello", payload: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03abcdefghijklmnop"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			capture := writeCapture(t, false, layers.LinkTypeEthernet, []capPacket{mk(1, tc.payload), mk(1, tc.payload), mk(2, tc.payload)})
			pr, err := NewPcapReader(bytes.NewReader(capture), PcapOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var pkt stats.Packet
			var req stats.Request
			var reqs []wantReq
			for pr.Next(&pkt, &req) {
				if pr.HTTP() {
					if req.Addr != pkt.Src || req.Time != pkt.Time || req.Prefix.Bits() != 24 {
						t.Errorf("request identity %+v", req)
					}
					reqs = append(reqs, wantReq{req.Method, req.Path, req.Query, req.UserAgent, pr.Host(), req.Referer})
				}
			}
			if tc.want == nil {
				if len(reqs) != 0 {
					t.Errorf("found requests %+v in a non-request payload", reqs)
				}
				return
			}
			// The second packet repeats the first segment (same seq): a
			// retransmission, not a new request. The third is new.
			if len(reqs) != 2 || pr.Duplicates() != 1 {
				t.Fatalf("requests %+v, duplicates %d; want 2 and 1", reqs, pr.Duplicates())
			}
			if reqs[0] != *tc.want {
				t.Errorf("got  %+v\nwant %+v", reqs[0], *tc.want)
			}
		})
	}
}

func TestPcapDamagedFiles(t *testing.T) {
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}
	p := capPacket{data: frame(t, eth, ipv4("192.0.2.1", "10.10.10.10", layers.IPProtocolUDP), &layers.UDP{SrcPort: 53, DstPort: 9})}
	good := writeCapture(t, false, layers.LinkTypeEthernet, []capPacket{p, p, p})
	goodNG := writeCapture(t, true, layers.LinkTypeEthernet, []capPacket{p, p, p})

	hugeCapLen := bytes.Clone(good)
	binary.LittleEndian.PutUint32(hugeCapLen[24+len(p.data)+16+8:], 0x7fffffff) // 2nd record caplen

	ngHugeSnap := bytes.Clone(goodNG)
	idb := int(binary.LittleEndian.Uint32(ngHugeSnap[4:8])) // the IDB follows the section header
	if binary.LittleEndian.Uint32(ngHugeSnap[idb:]) != 1 {
		t.Fatal("no interface description block after the section header")
	}
	binary.LittleEndian.PutUint32(ngHugeSnap[idb+12:], 0xffffffff)

	ngHugeCap := bytes.Clone(goodNG)
	epb := -1 // the last enhanced packet block, found by walking the blocks
	for off := 0; off+8 <= len(ngHugeCap); off += int(binary.LittleEndian.Uint32(ngHugeCap[off+4:])) {
		if binary.LittleEndian.Uint32(ngHugeCap[off:]) == 6 {
			epb = off
		}
	}
	if epb < 0 {
		t.Fatal("no enhanced packet block")
	}
	binary.LittleEndian.PutUint32(ngHugeCap[epb+20:], 0x7fffffff)

	tests := []struct {
		name          string
		data          []byte
		wantErr       string
		wantPackets   int
		wantMalformed uint64
		wantReason    string
	}{
		{name: "intact pcap", data: good, wantPackets: 3},
		{name: "intact pcapng", data: goodNG, wantPackets: 3},
		{name: "truncated mid-packet", data: good[:len(good)-5], wantPackets: 2, wantMalformed: 1},
		{name: "truncated mid-header", data: good[:24+16+len(p.data)+7], wantPackets: 1, wantMalformed: 1},
		{name: "huge capture length", data: hugeCapLen, wantPackets: 1, wantMalformed: 1, wantReason: "exceeds snap length"},
		{name: "pcapng with unlimited snaplen", data: ngHugeSnap, wantPackets: 3},
		{name: "pcapng packet claiming 2 GiB", data: ngHugeCap, wantPackets: 2, wantMalformed: 1, wantReason: "claims 2147483647 captured bytes"},
		{name: "pcapng truncated", data: goodNG[:len(goodNG)-10], wantPackets: 2, wantMalformed: 1},
		{name: "header only", data: good[:24], wantPackets: 0},
		{name: "not a capture", data: []byte("GET / HTTP/1.1\r\n"), wantErr: "not a pcap"},
		{name: "empty", data: nil, wantErr: "capture header"},
		{name: "unsupported link type", data: writeCapture(t, false, layers.LinkTypeIEEE802_11, nil), wantErr: "not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pr, err := NewPcapReader(bytes.NewReader(tc.data), PcapOptions{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var pkt stats.Packet
			var req stats.Request
			n := 0
			for pr.Next(&pkt, &req) {
				n++
			}
			if n != tc.wantPackets || pr.Malformed().Count != tc.wantMalformed {
				t.Errorf("packets %d malformed %d (%v); want %d, %d", n, pr.Malformed().Count, pr.Malformed().First, tc.wantPackets, tc.wantMalformed)
			}
			if tc.wantReason != "" && (len(pr.Malformed().First) == 0 || !strings.Contains(pr.Malformed().First[0].Reason, tc.wantReason)) {
				t.Errorf("malformed %v, want reason containing %q", pr.Malformed().First, tc.wantReason)
			}
		})
	}
}

// syntheticHTTPCapture returns a pcap of n TCP segments, each carrying an
// HTTP request.
func syntheticHTTPCapture(t testing.TB, n int) []byte {
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}
	var pkts []capPacket
	for i := range n {
		pkts = append(pkts, capPacket{data: frame(t, eth, ipv4("203.0.113.5", "192.0.2.80", layers.IPProtocolTCP),
			&layers.TCP{SrcPort: 40001, DstPort: 80, ACK: true, PSH: true, Seq: uint32(i), Window: 1024},
			gopacket.Payload("GET /a?b HTTP/1.1\r\nHost: x\r\nUser-Agent: y\r\n\r\n"))})
	}
	return writeCapture(t, false, layers.LinkTypeEthernet, pkts)
}

func TestPcapNextDoesNotAllocate(t *testing.T) {
	pr, err := NewPcapReader(bytes.NewReader(syntheticHTTPCapture(t, 2000)), PcapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pkt stats.Packet
	var req stats.Request
	pr.Next(&pkt, &req)
	if n := testing.AllocsPerRun(1000, func() {
		if !pr.Next(&pkt, &req) || !pr.HTTP() {
			t.Fatal("ran out of requests")
		}
	}); n != 0 {
		t.Errorf("Next allocates %.2f times per packet, want 0", n)
	}
}
