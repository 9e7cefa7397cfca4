package replay

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/portcullis/portcullis/internal/stats"
)

// Format is an access log format.
type Format uint8

// Access log formats. FormatAuto asks NewLogReader to detect it.
const (
	FormatAuto Format = iota
	// FormatCommon is the Common Log Format: host ident user [time] "request" status bytes.
	FormatCommon
	// FormatCombined is Common plus "referer" "user-agent" (Apache/nginx
	// default "combined"); extra trailing fields are ignored.
	FormatCombined
	// FormatJSON is one JSON object per line (nginx escape=json, Caddy,
	// Traefik).
	FormatJSON
)

// String returns "auto", "common", "combined" or "json".
func (f Format) String() string {
	switch f {
	case FormatCommon:
		return "common"
	case FormatCombined:
		return "combined"
	case FormatJSON:
		return "json"
	}
	return "auto"
}

// ErrUnknownFormat is returned by NewLogReader when none of the first lines
// parses in a supported format.
var ErrUnknownFormat = errors.New("replay: not an access log in a supported format (common, combined, JSON lines)")

// LogOptions configures a LogReader. The zero value detects the format and
// aggregates addresses to /24 and /64.
type LogOptions struct {
	// Format forces a format; FormatAuto (zero) detects it from the first
	// lines.
	Format Format
	// PrefixBits4 and PrefixBits6 are the aggregate prefix lengths written
	// to stats.Request.Prefix (default 24 and 64).
	PrefixBits4, PrefixBits6 int
	// MaxMalformed is how many malformed lines are kept as samples (default
	// DefaultMalformedSamples; all are counted).
	MaxMalformed int
	// Site is written to stats.Request.Site.
	Site int
}

const (
	logBufferBytes = 64 << 10
	// maxLineBytes bounds one line; longer lines are malformed.
	maxLineBytes = 1 << 20
	// sniffLines is how many lines format detection looks at.
	sniffLines = 16
)

// LogReader reads an access log line by line into stats.Request values.
// Blank lines and lines starting with '#' (comments, W3C-style headers) are
// skipped and counted in Skipped; every other line either fills a request or
// is counted as malformed. Gzip input is recognised and decompressed.
//
// A LogReader is not safe for concurrent use.
type LogReader struct {
	br        *bufio.Reader
	closer    io.Closer
	format    Format
	parser    lineParser
	line      int64
	long      []byte
	malformed Malformed
	skipped   uint64
	records   uint64
	site      int
	err       error
}

// NewLogReader returns a reader over r. With FormatAuto it reads ahead (up
// to 64 KiB, without consuming) and picks the format that parses most of the
// first 16 non-blank lines; ErrUnknownFormat if none does. Errors are
// prefixed "replay:".
func NewLogReader(r io.Reader, opts LogOptions) (*LogReader, error) {
	lr := &LogReader{
		format: opts.Format,
		site:   opts.Site,
		parser: lineParser{bits4: opts.PrefixBits4, bits6: opts.PrefixBits6},
	}
	if lr.parser.bits4 <= 0 || lr.parser.bits4 > 32 {
		lr.parser.bits4 = 24
	}
	if lr.parser.bits6 <= 0 || lr.parser.bits6 > 128 {
		lr.parser.bits6 = 64
	}
	lr.malformed.limit = opts.MaxMalformed
	if lr.malformed.limit <= 0 {
		lr.malformed.limit = DefaultMalformedSamples
	}
	br := bufio.NewReaderSize(r, logBufferBytes)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("replay: gzip: %w", err)
		}
		lr.closer = zr
		br = bufio.NewReaderSize(zr, logBufferBytes)
	}
	lr.br = br
	if lr.format == FormatAuto {
		head, err := br.Peek(logBufferBytes)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("replay: %w", err)
		}
		lr.format = detectFormat(head)
		if lr.format == FormatAuto {
			return nil, ErrUnknownFormat
		}
	}
	return lr, nil
}

// detectFormat picks the format that parses most of the first lines of head
// (Combined when at least one CLF line has the Combined fields).
func detectFormat(head []byte) Format {
	p := lineParser{bits4: 24, bits6: 64}
	var req stats.Request
	var clf, combined, js, n int
	for len(head) > 0 && n < sniffLines {
		i := bytes.IndexByte(head, '\n')
		if i < 0 {
			i = len(head)
		}
		line := bytes.TrimRight(head[:i], "\r")
		head = head[min(i+1, len(head)):]
		if t := bytes.TrimSpace(line); len(t) == 0 || t[0] == '#' {
			continue
		}
		n++
		if c, reason := p.parseCLF(line, &req); reason == "" {
			clf++
			if c {
				combined++
			}
		}
		if p.parseJSON(line, &req) == "" {
			js++
		}
	}
	switch {
	case js == 0 && clf == 0:
		return FormatAuto
	case js > clf:
		return FormatJSON
	case combined > 0:
		return FormatCombined
	}
	return FormatCommon
}

// Format returns the format being read.
func (lr *LogReader) Format() Format { return lr.format }

// Next fills req from the next well-formed line and reports whether it did;
// at the end of input or on a read error it returns false (see Err).
// req.Site is set from the options; fields the format does not carry are
// zeroed. Strings in req alias the reader's buffer and are valid until the
// next call to Next.
func (lr *LogReader) Next(req *stats.Request) bool {
	for lr.err == nil {
		line, ok := lr.readLine()
		if !ok {
			return false
		}
		if t := bytes.TrimSpace(line); len(t) == 0 || t[0] == '#' {
			lr.skipped++
			continue
		}
		req.Site = lr.site
		req.ASN, req.Country = 0, ""
		req.OriginLatency, req.OriginError, req.Verdict, req.SampleRate = 0, false, 0, 1
		var reason string
		if lr.format == FormatJSON {
			reason = lr.parser.parseJSON(line, req)
		} else {
			_, reason = lr.parser.parseCLF(line, req)
		}
		if reason != "" {
			lr.malformed.add(lr.line, reason, line, false)
			continue
		}
		lr.records++
		return true
	}
	return false
}

// readLine returns the next line without its line ending. Lines longer than
// the buffer are assembled in lr.long; lines over maxLineBytes are counted
// malformed and skipped.
func (lr *LogReader) readLine() ([]byte, bool) {
	for {
		line, err := lr.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			lr.long = append(lr.long[:0], line...)
			tooLong := false
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = lr.br.ReadSlice('\n')
				if len(lr.long)+len(line) > maxLineBytes {
					tooLong = true
				}
				if !tooLong {
					lr.long = append(lr.long, line...)
				}
			}
			if tooLong {
				lr.line++
				lr.malformed.add(lr.line, reasonTooLong, lr.long, false)
				if err != nil {
					lr.setErr(err)
					return nil, false
				}
				continue
			}
			line = lr.long
		}
		if err != nil {
			lr.setErr(err)
			if len(line) == 0 {
				return nil, false
			}
		}
		lr.line++
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		return line, true
	}
}

func (lr *LogReader) setErr(err error) {
	if errors.Is(err, io.EOF) {
		lr.err = io.EOF
		return
	}
	lr.err = fmt.Errorf("replay: line %d: %w", lr.line+1, err)
}

// Err returns the read error that ended Next, or nil at a clean end of
// input.
func (lr *LogReader) Err() error {
	if errors.Is(lr.err, io.EOF) {
		return nil
	}
	return lr.err
}

// Lines returns the number of lines read so far.
func (lr *LogReader) Lines() int64 { return lr.line }

// Records returns the number of requests returned by Next so far.
func (lr *LogReader) Records() uint64 { return lr.records }

// Skipped returns the number of blank and comment lines.
func (lr *LogReader) Skipped() uint64 { return lr.skipped }

// Malformed returns the malformed-line count and the first samples. The
// returned value shares its sample slice with the reader.
func (lr *LogReader) Malformed() Malformed { return lr.malformed }

// Close releases the gzip decompressor, if any. It does not close the
// underlying reader.
func (lr *LogReader) Close() error {
	if lr.closer != nil {
		return lr.closer.Close()
	}
	return nil
}
