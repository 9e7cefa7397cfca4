package geo

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"
)

// This file builds tiny MaxMind DB files for tests, following the MaxMind DB
// File Format Specification 2.0 (https://maxmind.github.io/MaxMind-DB/): a
// binary search tree of 24-bit records over 128-bit addresses (IPv4 at
// ::a.b.c.d), 16 zero bytes, the data section, then the metadata marker and
// metadata map.

type mmdbNet struct {
	prefix string
	rec    map[string]any
}

// trieNode is one search-tree node: per branch, kind 0 (empty), 1 (val is
// a node index) or 2 (val is a data-section offset).
type trieNode struct {
	kind [2]uint8
	val  [2]int
}

func buildMMDB(t testing.TB, dbType string, nets []mmdbNet) []byte {
	t.Helper()
	nodes := []trieNode{{}}
	var data []byte
	for _, n := range nets {
		p := netip.MustParsePrefix(n.prefix)
		a16 := p.Addr().As16()
		bits := p.Bits()
		if p.Addr().Is4() {
			a16 = netip.AddrFrom16([16]byte{}).As16()
			b4 := p.Addr().As4()
			copy(a16[12:], b4[:])
			bits += 96
		}
		off := len(data)
		data = append(data, mmdbEncode(n.rec)...)
		cur := 0
		for i := 0; i < bits; i++ {
			bit := (a16[i/8] >> (7 - uint(i%8))) & 1
			if i == bits-1 {
				nodes[cur].kind[bit] = 2
				nodes[cur].val[bit] = off
				break
			}
			if nodes[cur].kind[bit] != 1 {
				nodes = append(nodes, trieNode{})
				nodes[cur].kind[bit] = 1
				nodes[cur].val[bit] = len(nodes) - 1
			}
			cur = nodes[cur].val[bit]
		}
	}
	count := len(nodes)
	var out []byte
	for _, n := range nodes {
		for b := range 2 {
			var v int
			switch n.kind[b] {
			case 0:
				v = count
			case 1:
				v = n.val[b]
			case 2:
				v = count + 16 + n.val[b]
			}
			out = append(out, byte(v>>16), byte(v>>8), byte(v))
		}
	}
	out = append(out, make([]byte, 16)...)
	out = append(out, data...)
	out = append(out, mmdbMarker...)
	out = append(out, mmdbEncode(map[string]any{
		"node_count":                  uint32(count),
		"record_size":                 uint16(24),
		"ip_version":                  uint16(6),
		"database_type":               dbType,
		"languages":                   []any{"en"},
		"binary_format_major_version": uint16(2),
		"binary_format_minor_version": uint16(0),
		"build_epoch":                 uint64(1781725900),
		"description":                 map[string]any{"en": "portcullis test database"},
	})...)
	return out
}

func mmdbCtrl(typ byte, size int) []byte {
	var b []byte
	if typ <= 7 {
		b = []byte{typ << 5}
	} else {
		b = []byte{0, typ - 7}
	}
	switch {
	case size < 29:
		b[0] |= byte(size)
	case size < 29+256:
		b[0] |= 29
		b = append(b, byte(size-29))
	default:
		b[0] |= 30
		b = binary.BigEndian.AppendUint16(b, uint16(size-285))
	}
	return b
}

func mmdbUint(typ byte, v uint64) []byte {
	var buf []byte
	for v > 0 {
		buf = append([]byte{byte(v)}, buf...)
		v >>= 8
	}
	return append(mmdbCtrl(typ, len(buf)), buf...)
}

func mmdbEncode(v any) []byte {
	switch v := v.(type) {
	case string:
		return append(mmdbCtrl(2, len(v)), v...)
	case uint16:
		return mmdbUint(5, uint64(v))
	case uint32:
		return mmdbUint(6, uint64(v))
	case uint64:
		return mmdbUint(9, v)
	case []any:
		out := mmdbCtrl(11, len(v))
		for _, e := range v {
			out = append(out, mmdbEncode(e)...)
		}
		return out
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		out := mmdbCtrl(7, len(v))
		for _, k := range keys {
			out = append(out, mmdbEncode(k)...)
			out = append(out, mmdbEncode(v[k])...)
		}
		return out
	}
	panic("mmdbEncode: unsupported type")
}
