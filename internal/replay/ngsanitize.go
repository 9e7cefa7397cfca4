package replay

import (
	"encoding/binary"
	"fmt"
	"io"
)

// pcapng block types (draft-ietf-opsawg-pcapng) the sanitizer looks into.
const (
	ngSectionHeader = 0x0a0d0d0a
	ngInterfaceDesc = 0x00000001
	ngObsPacket     = 0x00000002
	ngEnhancedPkt   = 0x00000006
	ngByteOrder     = 0x1a2b3c4d
	// maxNgBlock bounds one block (a maximal packet plus generous options).
	maxNgBlock = maxSnaplen + 64<<10
)

// checkTSResol rejects an if_tsresol option (code 9) that NgReader cannot
// turn into a non-zero divisor: a power of ten above 10^18 or a power of two
// above 2^62.
func checkTSResol(o binary.ByteOrder, opts []byte) error {
	for len(opts) >= 4 {
		code, n := o.Uint16(opts[0:2]), int(o.Uint16(opts[2:4]))
		if code == 0 {
			return nil
		}
		if 4+n > len(opts) {
			return nil // NgReader reports the short option itself
		}
		if code == 9 && n >= 1 {
			v := opts[4]
			if exp := v & 0x7f; (v&0x80 != 0 && exp > 62) || (v&0x80 == 0 && exp > 18) {
				return fmt.Errorf("pcapng interface timestamp resolution %#x is not supported", v)
			}
		}
		opts = opts[min(len(opts), 4+(n+3)&^3):]
	}
	return nil
}

// ngSanitizer sits between a capture file and pcapgo.NgReader and bounds
// what the file can make the reader allocate: NgReader sizes its packet
// buffer from the interface's snaplen or the packet's capture length, both
// untrusted 32-bit fields, and divides by the interface's timestamp
// resolution. Interfaces with an unusable if_tsresol, blocks longer than maxNgBlock, or packets claiming
// more than maxSnaplen captured bytes, end the read with an error; interface
// snaplens of 0 (unlimited) or above maxSnaplen are rewritten to maxSnaplen.
// Everything else passes through unchanged, block by block.
type ngSanitizer struct {
	r         io.Reader
	bigEndian bool
	block     []byte
	pending   []byte
	err       error
}

func (s *ngSanitizer) order() binary.ByteOrder {
	if s.bigEndian {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

func (s *ngSanitizer) Read(p []byte) (int, error) {
	for len(s.pending) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		s.err = s.nextBlock()
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

// nextBlock reads one whole block into s.block, checks and patches it, and
// makes it pending. On a short read the bytes read so far are passed on, so
// NgReader reports the truncation itself.
func (s *ngSanitizer) nextBlock() error {
	if cap(s.block) < 12 {
		s.block = make([]byte, 0, 4096)
	}
	hdr := s.block[:12]
	n, err := io.ReadFull(s.r, hdr[:8])
	if err != nil {
		s.pending = hdr[:n]
		return err
	}
	typ := binary.LittleEndian.Uint32(hdr[0:4])
	if typ == ngSectionHeader {
		if n, err := io.ReadFull(s.r, hdr[8:12]); err != nil {
			s.pending = hdr[:8+n]
			return err
		}
		switch {
		case binary.LittleEndian.Uint32(hdr[8:12]) == ngByteOrder:
			s.bigEndian = false
		case binary.BigEndian.Uint32(hdr[8:12]) == ngByteOrder:
			s.bigEndian = true
		default:
			s.pending = hdr // NgReader rejects the byte order itself
			return io.EOF
		}
	} else {
		hdr = hdr[:8]
		typ = s.order().Uint32(hdr[0:4])
	}
	length := s.order().Uint32(hdr[4:8])
	if length < uint32(len(hdr)) || length > maxNgBlock {
		return fmt.Errorf("pcapng block of %d bytes (type %#x): outside 12..%d", length, typ, maxNgBlock)
	}
	if cap(s.block) < int(length) {
		nb := make([]byte, length)
		copy(nb, hdr)
		s.block = nb[:0]
		hdr = nb[:len(hdr)]
	}
	blk := s.block[:length]
	m, err := io.ReadFull(s.r, blk[len(hdr):])
	if err != nil {
		s.pending = blk[:len(hdr)+m]
		return err
	}
	o := s.order()
	switch typ {
	case ngInterfaceDesc:
		// LinkType(2) Reserved(2) SnapLen(4) after the 8-byte header.
		if length >= 16 {
			if sl := o.Uint32(blk[12:16]); sl == 0 || sl > maxSnaplen {
				o.PutUint32(blk[12:16], maxSnaplen)
			}
			if err := checkTSResol(o, blk[16:length-4]); err != nil {
				return err
			}
		}
	case ngEnhancedPkt, ngObsPacket:
		// Interface(4) or Interface(2)+Drops(2), Timestamp(8), CapLen(4).
		if length >= 24 {
			if cl := o.Uint32(blk[20:24]); cl > maxSnaplen || cl > length-24 {
				return fmt.Errorf("pcapng packet claims %d captured bytes in a %d-byte block", cl, length)
			}
		}
	}
	s.pending = blk
	return nil
}
