package replay

import (
	"bytes"
	"encoding/binary"

	"github.com/portcullis/portcullis/internal/stats"
)

const (
	// maxRequestLine bounds the request line looked at (RFC 9112 §3
	// recommends supporting at least 8000 octets).
	maxRequestLine = 8192
	// maxHeaderLines bounds the header lines scanned for Host, User-Agent
	// and Referer.
	maxHeaderLines = 64
)

// httpRequest fills req from pr.tcp.Payload when it starts an HTTP/1.x
// request: "METHOD SP request-target SP HTTP/1.x CRLF" (RFC 9112 §3) followed
// by header lines, of which Host, User-Agent and Referer are read. Headers
// may be cut off by the segment end. This is not an HTTP parser: it reads
// one segment, with bounds, and ignores bodies and pipelined requests.
func (pr *PcapReader) httpRequest(pkt *stats.Packet, req *stats.Request) bool {
	b := pr.tcp.Payload
	if len(b) < 14 || b[0] < 'A' || b[0] > 'Z' {
		return false
	}
	eol := bytes.IndexByte(b[:min(len(b), maxRequestLine)], '\n')
	if eol < 0 {
		return false
	}
	line := bytes.TrimSuffix(b[:eol], []byte("\r"))
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !isMethod(line[:sp]) {
		return false
	}
	rest := line[sp+1:]
	sp2 := bytes.LastIndexByte(rest, ' ')
	if sp2 <= 0 || !bytes.HasPrefix(rest[sp2+1:], []byte("HTTP/1.")) {
		return false
	}
	target := rest[:sp2]
	if pr.duplicateSegment(pkt) {
		return false
	}

	*req = stats.Request{Time: pkt.Time, Site: pr.opts.Site, SampleRate: 1}
	a := pkt.Src
	req.Addr = a
	bits := pr.opts.PrefixBits4
	if a.Is6() {
		bits = pr.opts.PrefixBits6
	}
	req.Prefix, _ = a.Prefix(bits)
	setTarget(req, bstr(line[:sp]), target)
	if req.Method == "" { // target was not usable
		req.Method = bstr(line[:sp])
	}

	pr.host = nil
	hdr := b[eol+1:]
	for n := 0; n < maxHeaderLines && len(hdr) > 0; n++ {
		i := bytes.IndexByte(hdr, '\n')
		var h []byte
		if i < 0 {
			h, hdr = hdr, nil // cut off by the segment end
		} else {
			h, hdr = hdr[:i], hdr[i+1:]
		}
		h = bytes.TrimSuffix(h, []byte("\r"))
		if len(h) == 0 {
			break // end of headers
		}
		colon := bytes.IndexByte(h, ':')
		if colon <= 0 {
			continue
		}
		name, value := h[:colon], bytes.TrimSpace(h[colon+1:])
		switch {
		case asciiEqualFold(name, "host"):
			pr.host = value
		case asciiEqualFold(name, "user-agent"):
			req.UserAgent = bstr(value)
		case asciiEqualFold(name, "referer"):
			req.Referer = len(value) > 0
		}
	}
	pr.httpCount++
	return true
}

// isMethod reports whether b is an upper-case HTTP method token
// (RFC 9110 §9: GET, POST, ... and extension methods such as PROPFIND).
func isMethod(b []byte) bool {
	if len(b) < 3 || len(b) > 16 {
		return false
	}
	for _, c := range b {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

// asciiEqualFold compares an ASCII header name with a lower-case constant.
func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// duplicateSegment reports whether this TCP segment (addresses, ports,
// sequence number) was among the recent request segments, and remembers it.
// The table is direct-mapped: a collision only forgets an older segment.
func (pr *PcapReader) duplicateSegment(pkt *stats.Packet) bool {
	s16, d16 := pkt.Src.As16(), pkt.Dst.As16()
	h := uint64(pr.tcp.Seq)<<32 | uint64(pkt.SrcPort)<<16 | uint64(pkt.DstPort)
	for i := 0; i < 16; i += 8 {
		h ^= binary.LittleEndian.Uint64(s16[i:]) * 0x9E3779B97F4A7C15
		h = h<<27 | h>>37
		h ^= binary.LittleEndian.Uint64(d16[i:]) * 0xC2B2AE3D27D4EB4F
		h = h<<31 | h>>33
	}
	h |= 1 // 0 marks an empty slot
	slot := &pr.seenSegs[(h*0x9E3779B97F4A7C15)>>52]
	if *slot == h {
		pr.duplicates++
		return true
	}
	*slot = h
	return false
}
