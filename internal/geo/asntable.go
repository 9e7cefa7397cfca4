package geo

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
)

// asnInfo is the payload of one range: its ASN and the index of its
// organisation name in asnTable.orgs.
type asnInfo struct {
	asn uint32
	org uint32
}

// u128 is an IPv6 address as two big-endian halves, ordered by (hi, lo).
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

func (a u128) minusOne() u128 {
	if a.lo == 0 {
		return u128{a.hi - 1, ^uint64(0)}
	}
	return u128{a.hi, a.lo - 1}
}

func v6key(a netip.Addr) u128 {
	b := a.As16()
	return u128{
		hi: uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
			uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7]),
		lo: uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 |
			uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15]),
	}
}

func v4key(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// asnTable maps address ranges to ASNs. Ranges are sorted by start and do
// not overlap; starts and ends are kept in separate slices so the binary
// search touches only the starts. Organisation names are interned: each
// distinct name is stored once.
//
// Memory: 12 bytes per IPv4 range (start, end, info) plus 8 for info, 40 per
// IPv6 range; the 2026 DB-IP tables (412k IPv4, 103k IPv6 ranges, 75k names)
// take about 13 MiB.
type asnTable struct {
	// v4index[h] is the first IPv4 row whose start's top 16 bits are >= h,
	// so a search only looks at the rows of one /16 (256 KiB, saves most of
	// the cache misses of a 19-step binary search).
	v4index        []uint32
	v4start, v4end []uint32
	v4info         []asnInfo
	v6start, v6end []u128
	v6info         []asnInfo
	orgs           []string
	orgIndex       map[string]uint32 // only while loading
}

type row4 struct {
	start, end uint32
	info       asnInfo
}

type row6 struct {
	start, end u128
	info       asnInfo
}

// lookup returns the range entry covering a (already unmapped), if any.
func (t *asnTable) lookup(a netip.Addr) (asnInfo, bool) {
	if a.Is4() {
		k := v4key(a)
		s := t.v4start
		if len(s) == 0 {
			return asnInfo{}, false
		}
		// Find the last start <= k (sort.Search without the closure): only
		// rows starting in k's /16 can be after it.
		h := k >> 16
		lo, hi := int(t.v4index[h]), int(t.v4index[h+1])
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if s[m] <= k {
				lo = m + 1
			} else {
				hi = m
			}
		}
		if lo == 0 || t.v4end[lo-1] < k {
			return asnInfo{}, false
		}
		return t.v4info[lo-1], true
	}
	k := v6key(a)
	s := t.v6start
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if !k.less(s[m]) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 || t.v6end[lo-1].less(k) {
		return asnInfo{}, false
	}
	return t.v6info[lo-1], true
}

// intern returns the index of org in t.orgs, adding it if new.
func (t *asnTable) intern(org []byte) uint32 {
	if i, ok := t.orgIndex[string(org)]; ok {
		return i
	}
	s := string(org)
	i := uint32(len(t.orgs))
	t.orgs = append(t.orgs, s)
	t.orgIndex[s] = i
	return i
}

// loadCSV reads one range CSV (plain or gzip, sniffed from the magic bytes)
// into the pending rows. Every malformed line is an error naming the file and
// line: a half-read table would silently misattribute.
func (t *asnTable) loadCSV(name string, r io.Reader, v4 *[]row4, v6 *[]row6) error {
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("geo: %s: %w", name, err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 64<<10)
	}
	var orgBuf []byte
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("geo: %s line %d: line too long", name, lineNo)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("geo: %s line %d: %w", name, lineNo, err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) > 0 && !(lineNo == 1 && bytes.HasPrefix(line, []byte("range_start"))) {
			var perr error
			orgBuf, perr = t.parseLine(line, orgBuf[:0], v4, v6)
			if perr != nil {
				return fmt.Errorf("geo: %s line %d: %w", name, lineNo, perr)
			}
		}
		if err != nil { // io.EOF
			return nil
		}
	}
}

var errCSVFields = errors.New("want range_start,range_end,asn,org")

func (t *asnTable) parseLine(line, orgBuf []byte, v4 *[]row4, v6 *[]row6) ([]byte, error) {
	i := bytes.IndexByte(line, ',')
	if i < 0 {
		return orgBuf, errCSVFields
	}
	start, err := netip.ParseAddr(string(line[:i]))
	if err != nil {
		return orgBuf, fmt.Errorf("range_start: %w", err)
	}
	line = line[i+1:]
	if i = bytes.IndexByte(line, ','); i < 0 {
		return orgBuf, errCSVFields
	}
	end, err := netip.ParseAddr(string(line[:i]))
	if err != nil {
		return orgBuf, fmt.Errorf("range_end: %w", err)
	}
	line = line[i+1:]
	i = bytes.IndexByte(line, ',')
	if i < 0 {
		return orgBuf, errCSVFields
	}
	asn, err := strconv.ParseUint(string(line[:i]), 10, 32)
	if err != nil {
		return orgBuf, fmt.Errorf("asn: %w", err)
	}
	org := line[i+1:]
	if len(org) > 0 && org[0] == '"' {
		// RFC 4180 quoted field: "" stands for one quote.
		if len(org) < 2 || org[len(org)-1] != '"' {
			return orgBuf, errors.New("org: unterminated quoted field")
		}
		body := org[1 : len(org)-1]
		for j := 0; j < len(body); j++ {
			orgBuf = append(orgBuf, body[j])
			if body[j] == '"' {
				if j+1 >= len(body) || body[j+1] != '"' {
					return orgBuf, errors.New("org: bare quote in quoted field")
				}
				j++
			}
		}
		org = orgBuf
	}
	start, end = start.Unmap(), end.Unmap()
	if start.Is4() != end.Is4() {
		return orgBuf, errors.New("range mixes IPv4 and IPv6")
	}
	if end.Less(start) {
		return orgBuf, errors.New("range_end before range_start")
	}
	info := asnInfo{asn: uint32(asn), org: t.intern(org)}
	if start.Is4() {
		*v4 = append(*v4, row4{v4key(start), v4key(end), info})
	} else {
		*v6 = append(*v6, row6{v6key(start), v6key(end), info})
	}
	return orgBuf, nil
}

// build sorts the pending rows, clips overlaps and freezes the table. Where
// two ranges overlap, the later-starting one wins the overlap; when one range
// wholly contains another, the outer range's tail after the inner one is not
// reconstructed and resolves as unknown. (The 2026 DB-IP IPv4 table has one
// overlap, 214.95.0.0-215.0.255.255 vs 215.0.0.0-215.1.3.255.)
func (t *asnTable) build(v4 []row4, v6 []row6) {
	slices.SortFunc(v4, func(a, b row4) int { return cmp.Compare(a.start, b.start) })
	slices.SortFunc(v6, func(a, b row6) int {
		if a.start.less(b.start) {
			return -1
		}
		if b.start.less(a.start) {
			return 1
		}
		return 0
	})
	t.v4start = make([]uint32, 0, len(v4))
	t.v4end = make([]uint32, 0, len(v4))
	t.v4info = make([]asnInfo, 0, len(v4))
	for _, r := range v4 {
		if n := len(t.v4start); n > 0 && r.start <= t.v4end[n-1] {
			if r.start == t.v4start[n-1] { // same start: the later row replaces it
				t.v4start, t.v4end, t.v4info = t.v4start[:n-1], t.v4end[:n-1], t.v4info[:n-1]
			} else {
				t.v4end[n-1] = r.start - 1
			}
		}
		t.v4start = append(t.v4start, r.start)
		t.v4end = append(t.v4end, r.end)
		t.v4info = append(t.v4info, r.info)
	}
	t.v4index = make([]uint32, 1<<16+1)
	row := 0
	for h := range t.v4index {
		for row < len(t.v4start) && t.v4start[row]>>16 < uint32(h) {
			row++
		}
		t.v4index[h] = uint32(row)
	}
	t.v6start = make([]u128, 0, len(v6))
	t.v6end = make([]u128, 0, len(v6))
	t.v6info = make([]asnInfo, 0, len(v6))
	for _, r := range v6 {
		if n := len(t.v6start); n > 0 && !t.v6end[n-1].less(r.start) {
			if r.start == t.v6start[n-1] {
				t.v6start, t.v6end, t.v6info = t.v6start[:n-1], t.v6end[:n-1], t.v6info[:n-1]
			} else {
				t.v6end[n-1] = r.start.minusOne()
			}
		}
		t.v6start = append(t.v6start, r.start)
		t.v6end = append(t.v6end, r.end)
		t.v6info = append(t.v6info, r.info)
	}
	t.orgIndex = nil
}
