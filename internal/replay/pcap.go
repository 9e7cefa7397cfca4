package replay

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/portcullis/portcullis/internal/stats"
)

// maxSnaplen bounds the per-packet capture length (tcpdump's
// MAXIMUM_SNAPLEN): it caps the reader's packet buffer whatever the file
// header claims.
const maxSnaplen = 262144

// Capture magic numbers (first four bytes, as read little-endian).
const (
	magicPcapMicro   = 0xa1b2c3d4
	magicPcapMicroBE = 0xd4c3b2a1
	magicPcapNano    = 0xa1b23c4d
	magicPcapNanoBE  = 0x4d3cb2a1
	magicPcapNG      = 0x0a0d0d0a
)

// Reasons a packet is malformed.
const (
	reasonPacketDecode = "packet does not decode"
	reasonPacketRead   = "capture record unreadable; rest of file skipped"
)

// IsCapture reports whether head (the first bytes of a file, at least 4)
// starts with a libpcap or pcapng magic number.
func IsCapture(head []byte) bool {
	if len(head) < 4 {
		return false
	}
	switch binary.LittleEndian.Uint32(head) {
	case magicPcapMicro, magicPcapMicroBE, magicPcapNano, magicPcapNanoBE, magicPcapNG:
		return true
	}
	return false
}

// PcapOptions configures a PcapReader. The zero value is usable.
type PcapOptions struct {
	// PrefixBits4 and PrefixBits6 are the aggregate prefix lengths written
	// to stats.Request.Prefix for HTTP requests (default 24 and 64).
	PrefixBits4, PrefixBits6 int
	// MaxMalformed is how many malformed packets are kept as samples
	// (default DefaultMalformedSamples; all are counted).
	MaxMalformed int
	// Site is written to stats.Request.Site for HTTP requests.
	Site int
	// NoHTTP disables looking for HTTP requests in TCP payloads.
	NoHTTP bool
}

// packetSource is what pcapgo.Reader and pcapgo.NgReader have in common.
type packetSource interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// PcapReader reads a libpcap or pcapng capture into stats.Packet values,
// and an HTTP request for every TCP payload that starts one.
//
// Classic pcap files are read with pcapgo.NewReader and pcapng files with
// pcapgo.NewNgReader, chosen by the magic number, not the file name (the
// StopDDoS "*.pcapng" files are classic pcap). Link types: Ethernet (with
// 802.1Q VLAN tags), Linux cooked (SLL), BSD loopback/null and raw IPv4/IPv6.
//
// Packets are decoded with one reused gopacket.DecodingLayerParser. Non-IP
// frames (ARP, LLDP, ...) are counted in NonIP and skipped. A packet whose
// layers do not decode is counted in Malformed; if its IP header decoded it
// is still returned (with the transport fields it could read), so packet and
// byte rates stay right. An unreadable capture record ends the read: the
// record boundaries are lost, which is counted as one malformed record.
//
// A PcapReader is not safe for concurrent use.
type PcapReader struct {
	src      packetSource
	format   string
	linkType layers.LinkType
	opts     PcapOptions

	parser, parser6 *gopacket.DecodingLayerParser
	decoded         []gopacket.LayerType
	eth             layers.Ethernet
	dot1q           layers.Dot1Q
	sll             layers.LinuxSLL
	loop            layers.Loopback
	ip4             layers.IPv4
	ip6             layers.IPv6
	tcp             layers.TCP
	udp             layers.UDP
	icmp4           layers.ICMPv4
	icmp6           layers.ICMPv6

	// seenSegs remembers hashes of recent HTTP request segments (addresses,
	// ports, TCP sequence number) so that a retransmitted or
	// duplicate-captured segment is not counted as a second request.
	seenSegs                  [4096]uint64
	packets, nonIP, httpCount uint64
	duplicates                uint64
	malformed                 Malformed
	isHTTP                    bool
	host                      []byte
	err                       error
}

// NewPcapReader reads the capture header from r and returns a reader. Errors
// (not a capture, unsupported link type, truncated header) are prefixed
// "replay:".
func NewPcapReader(r io.Reader, opts PcapOptions) (pr *PcapReader, err error) {
	// pcapgo trusts its input; a corrupt header must be an error, not a
	// crash.
	defer func() {
		if p := recover(); p != nil {
			pr, err = nil, fmt.Errorf("replay: corrupt capture header: %v", p)
		}
	}()
	if opts.PrefixBits4 <= 0 || opts.PrefixBits4 > 32 {
		opts.PrefixBits4 = 24
	}
	if opts.PrefixBits6 <= 0 || opts.PrefixBits6 > 128 {
		opts.PrefixBits6 = 64
	}
	pr = &PcapReader{opts: opts}
	pr.malformed.limit = opts.MaxMalformed
	if pr.malformed.limit <= 0 {
		pr.malformed.limit = DefaultMalformedSamples
	}
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("replay: capture header: %w", err)
	}
	switch binary.LittleEndian.Uint32(head) {
	case magicPcapNG:
		ng, err := pcapgo.NewNgReader(&ngSanitizer{r: br}, pcapgo.NgReaderOptions{})
		if err != nil {
			return nil, fmt.Errorf("replay: pcapng: %w", err)
		}
		pr.src, pr.format, pr.linkType = ng, "pcapng", ng.LinkType()
	case magicPcapMicro, magicPcapMicroBE, magicPcapNano, magicPcapNanoBE:
		pc, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("replay: pcap: %w", err)
		}
		// Bound the packet buffer (the header's snaplen can be anything) and
		// accept packets larger than a too-small declared snaplen, as
		// tcpdump and Wireshark do.
		pc.SetSnaplen(maxSnaplen)
		pr.src, pr.format, pr.linkType = pc, "pcap", pc.LinkType()
	default:
		return nil, fmt.Errorf("replay: not a pcap or pcapng capture (magic %x)", head)
	}

	l3 := []gopacket.DecodingLayer{&pr.ip4, &pr.ip6, &pr.tcp, &pr.udp, &pr.icmp4, &pr.icmp6}
	newParser := func(first gopacket.LayerType, extra ...gopacket.DecodingLayer) *gopacket.DecodingLayerParser {
		p := gopacket.NewDecodingLayerParser(first)
		p.SetDecodingLayerContainer(gopacket.DecodingLayerSparse(nil))
		for _, d := range append(extra, l3...) {
			p.AddDecodingLayer(d)
		}
		p.IgnoreUnsupported = true
		return p
	}
	switch pr.linkType {
	case layers.LinkTypeEthernet:
		pr.parser = newParser(layers.LayerTypeEthernet, &pr.eth, &pr.dot1q)
	case layers.LinkTypeLinuxSLL:
		pr.parser = newParser(layers.LayerTypeLinuxSLL, &pr.sll, &pr.dot1q)
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		pr.parser = newParser(layers.LayerTypeLoopback, &pr.loop)
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, 12, 14:
		// Raw IP (12 and 14 are LINKTYPE_RAW on some BSDs): the version
		// nibble picks the parser.
		pr.parser = newParser(layers.LayerTypeIPv4)
		pr.parser6 = newParser(layers.LayerTypeIPv6)
	default:
		return nil, fmt.Errorf("replay: %s link type %v (%d) is not supported (Ethernet, Linux SLL, null/loopback, raw IP are)",
			pr.format, pr.linkType, int(pr.linkType))
	}
	pr.decoded = make([]gopacket.LayerType, 0, 8)
	return pr, nil
}

// Format returns "pcap" or "pcapng".
func (pr *PcapReader) Format() string { return pr.format }

// LinkType returns the capture's link type.
func (pr *PcapReader) LinkType() layers.LinkType { return pr.linkType }

// Next fills pkt from the next IP packet and reports whether it did; at the
// end of the capture it returns false (see Err). When the packet's TCP
// payload begins an HTTP/1.x request, req is filled too and HTTP reports
// true until the next call. Strings in req alias the reader's packet buffer
// and are valid until the next call to Next.
func (pr *PcapReader) Next(pkt *stats.Packet, req *stats.Request) bool {
	pr.isHTTP = false
	for pr.err == nil {
		data, ci, err := pr.read()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				pr.malformed.add(int64(pr.packets+1), reasonPacketRead+": "+err.Error(), nil, true)
			}
			pr.err = io.EOF
			return false
		}
		pr.packets++
		*pkt = stats.Packet{Time: ci.Timestamp.UnixNano(), SampleRate: 1}
		ok, bad := pr.decode(data, pkt)
		if bad {
			pr.malformed.add(int64(pr.packets), reasonPacketDecode, data[:min(len(data), 64)], true)
		}
		if !ok {
			if !bad {
				pr.nonIP++
			}
			continue
		}
		if !pr.opts.NoHTTP && pkt.Proto == 6 && !pkt.Fragment && len(pr.tcp.Payload) > 0 {
			pr.isHTTP = pr.httpRequest(pkt, req)
		}
		return true
	}
	return false
}

// read returns the next capture record, turning a pcapgo panic on a
// corrupt file into an error.
func (pr *PcapReader) read() (data []byte, ci gopacket.CaptureInfo, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt capture: %v", r)
		}
	}()
	return pr.src.ZeroCopyReadPacketData()
}

// decode fills pkt's IP and transport fields. ok: pkt holds an IP packet;
// bad: some layer failed to decode.
func (pr *PcapReader) decode(data []byte, pkt *stats.Packet) (ok, bad bool) {
	parser := pr.parser
	if pr.parser6 != nil && len(data) > 0 && data[0]>>4 == 6 {
		parser = pr.parser6
	}
	err := parser.DecodeLayers(data, &pr.decoded)
	bad = err != nil
	var ipPayload []byte
	haveIP, haveTransport := false, false
	for _, lt := range pr.decoded {
		switch lt {
		case layers.LayerTypeIPv4:
			haveIP = true
			ip := &pr.ip4
			pkt.Src = netip.AddrFrom4([4]byte(ip.SrcIP))
			pkt.Dst = netip.AddrFrom4([4]byte(ip.DstIP))
			pkt.Proto = uint8(ip.Protocol)
			pkt.Length = int(ip.Length)
			pkt.Fragment = ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0
			ipPayload = ip.Payload
			if pkt.Fragment && ip.FragOffset == 0 {
				transportPorts(pkt, ipPayload)
			}
		case layers.LayerTypeIPv6:
			haveIP = true
			ip := &pr.ip6
			pkt.Src = netip.AddrFrom16([16]byte(ip.SrcIP)).Unmap()
			pkt.Dst = netip.AddrFrom16([16]byte(ip.DstIP)).Unmap()
			pkt.Proto = uint8(ip.NextHeader)
			pkt.Length = 40 + int(ip.Length)
			if ip.Length == 0 { // jumbogram or TSO: use what was captured
				pkt.Length = len(ip.Contents) + len(ip.Payload)
			}
			ipPayload = ip.Payload
			if ip.NextHeader == layers.IPProtocolIPv6Fragment && len(ipPayload) >= 8 {
				// RFC 8200 §4.5: next header, reserved, offset<<3 | M.
				pkt.Fragment = true
				pkt.Proto = ipPayload[0]
				if binary.BigEndian.Uint16(ipPayload[2:4])>>3 == 0 {
					transportPorts(pkt, ipPayload[8:])
				}
			}
		case layers.LayerTypeTCP:
			haveTransport = true
			pkt.SrcPort, pkt.DstPort = uint16(pr.tcp.SrcPort), uint16(pr.tcp.DstPort)
			if len(pr.tcp.Contents) >= 14 {
				pkt.TCPFlags = pr.tcp.Contents[13]
			}
		case layers.LayerTypeUDP:
			haveTransport = true
			pkt.SrcPort, pkt.DstPort = uint16(pr.udp.SrcPort), uint16(pr.udp.DstPort)
		}
	}
	if haveIP && bad && !haveTransport && !pkt.Fragment {
		// The transport header did not decode (truncated or corrupt): keep
		// the IP-level figures and what the first bytes say.
		transportPorts(pkt, ipPayload)
	}
	if !haveIP {
		return false, bad
	}
	if !haveTransport || pkt.Proto != 6 {
		pr.tcp.Payload = nil
	}
	return true, bad
}

// transportPorts reads ports (and TCP flags) from the start of a TCP or UDP
// header that gopacket did not decode (first fragments, truncated headers).
func transportPorts(pkt *stats.Packet, b []byte) {
	if (pkt.Proto != 6 && pkt.Proto != 17) || len(b) < 4 {
		return
	}
	pkt.SrcPort = binary.BigEndian.Uint16(b[0:2])
	pkt.DstPort = binary.BigEndian.Uint16(b[2:4])
	if pkt.Proto == 6 && len(b) >= 14 {
		pkt.TCPFlags = b[13]
	}
}

// HTTP reports whether the last Next also filled the request.
func (pr *PcapReader) HTTP() bool { return pr.isHTTP }

// Host returns the Host header of the last HTTP request ("" if absent),
// valid until the next call to Next.
func (pr *PcapReader) Host() string { return bstr(pr.host) }

// Err returns nil: a capture's read problems are reported through
// Malformed. It exists for symmetry with LogReader.
func (pr *PcapReader) Err() error { return nil }

// Packets returns the number of capture records read.
func (pr *PcapReader) Packets() uint64 { return pr.packets }

// NonIP returns the number of frames skipped because they carry no IP
// packet (ARP, LLDP, STP, ...).
func (pr *PcapReader) NonIP() uint64 { return pr.nonIP }

// Duplicates returns the number of HTTP request segments ignored because
// the same segment (addresses, ports, sequence number) was seen just before:
// TCP retransmissions and packets captured twice.
func (pr *PcapReader) Duplicates() uint64 { return pr.duplicates }

// Requests returns the number of HTTP requests found.
func (pr *PcapReader) Requests() uint64 { return pr.httpCount }

// Malformed returns the malformed-packet count and the first samples (hex
// of the first 64 bytes). The value shares its sample slice with the reader.
func (pr *PcapReader) Malformed() Malformed { return pr.malformed }
