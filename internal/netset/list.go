package netset

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// Limits applied by [ParseList].
const (
	// MaxLineBytes is the longest line ParseList reads, in bytes including
	// the line ending. Longer lines are reported as bad lines (wrapping
	// [ErrLineTooLong]) and skipped; they are never fatal.
	MaxLineBytes = 4096
	// MaxBadLines is how many bad lines ParseList reports individually. Any
	// further bad lines are summed up in one final LineError (Line 0)
	// wrapping [ErrTooManyBadLines].
	MaxBadLines = 100
	// maxTextBytes bounds LineError.Text, in bytes.
	maxTextBytes = 120
)

// Sentinel errors carried by [LineError].Err.
var (
	// ErrLineTooLong marks a line longer than MaxLineBytes.
	ErrLineTooLong = errors.New("line too long")
	// ErrBadJSON marks a JSON line that is not a Spamhaus DROP record.
	ErrBadJSON = errors.New("bad JSON list record")
	// ErrTooManyBadLines marks the summary of bad lines beyond MaxBadLines.
	ErrTooManyBadLines = errors.New("too many bad lines")
)

// LineError is one line of a list file that could not be used. It is a report,
// not a failure: [ParseList] keeps going after it.
type LineError struct {
	// File is the name passed to ParseList (usually the path).
	File string
	// Line is the 1-based line number; 0 for the ErrTooManyBadLines summary.
	Line int
	// Text is the offending line, cut to 120 bytes.
	Text string
	// Err says what is wrong; it wraps ErrInvalidPrefix, ErrLineTooLong,
	// ErrBadJSON or ErrTooManyBadLines.
	Err error
}

// Error implements error as "file:line: cause (text "...")".
func (e LineError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v (text %q)", e.File, e.Line, e.Err, e.Text)
}

// Unwrap returns e.Err.
func (e LineError) Unwrap() error { return e.Err }

// listStats counts the lines of one list file.
type listStats struct {
	// Lines is the number of lines read.
	Lines int
	// Entries is the number of lines that held an entry (good or bad); blank,
	// comment and metadata lines are not entries.
	Entries int
	// Bad is the number of entries that could not be parsed (all of them,
	// including those beyond MaxBadLines).
	Bad int
}

// ParseList reads a list of prefixes from r; name labels errors (usually the
// file path). The format is recognised line by line, so files need no header:
//
//   - FireHOL netset and plain lists: one address or CIDR per line, "#"
//     starts a comment, blank lines are skipped;
//   - Spamhaus DROP/EDROP text: "1.10.16.0/20 ; SBL256894", ";" starts a
//     comment;
//   - Spamhaus DROP JSON lines: {"cidr":"1.10.16.0/20","sblid":"SBL256894",
//     "rir":"apnic"}; the trailing {"type":"metadata",...} line is skipped.
//
// Entries are parsed with [ParsePrefix]. Lines that cannot be used are
// returned in bad (at most MaxBadLines of them plus one summary) and do not
// stop the read. Lines longer than MaxLineBytes are bad lines. A UTF-8 byte
// order mark and CRLF line endings are accepted. err is non-nil only when r
// fails; it wraps the reader's error.
func ParseList(r io.Reader, name string) (prefixes []netip.Prefix, bad []LineError, err error) {
	prefixes, bad, _, err = parseList(r, name)
	return prefixes, bad, err
}

func parseList(r io.Reader, name string) (prefixes []netip.Prefix, bad []LineError, st listStats, err error) {
	br := bufio.NewReaderSize(r, MaxLineBytes)
	report := func(line int, text []byte, cause error) {
		st.Bad++
		if len(bad) < MaxBadLines {
			if len(text) > maxTextBytes {
				text = text[:maxTextBytes]
			}
			bad = append(bad, LineError{File: name, Line: line, Text: string(text), Err: cause})
		}
	}
	for {
		line, rerr := br.ReadSlice('\n')
		if errors.Is(rerr, bufio.ErrBufferFull) {
			st.Lines++
			st.Entries++
			report(st.Lines, line, fmt.Errorf("%w (over %d bytes)", ErrLineTooLong, MaxLineBytes))
			if rerr = discardLine(br); rerr == io.EOF {
				break
			}
			if rerr != nil {
				return prefixes, bad, st, fmt.Errorf("netset: read %s: %w", name, rerr)
			}
			continue
		}
		if rerr != nil && rerr != io.EOF {
			return prefixes, bad, st, fmt.Errorf("netset: read %s: %w", name, rerr)
		}
		if len(line) > 0 {
			st.Lines++
			if st.Lines == 1 {
				line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
			}
			p, isEntry, perr := parseLine(line)
			switch {
			case perr != nil:
				st.Entries++
				report(st.Lines, bytes.TrimRight(line, "\r\n"), perr)
			case isEntry:
				st.Entries++
				prefixes = append(prefixes, p)
			}
		}
		if rerr == io.EOF {
			break
		}
	}
	if st.Bad > len(bad) {
		bad = append(bad, LineError{File: name, Err: fmt.Errorf("%w: %d more not shown", ErrTooManyBadLines, st.Bad-len(bad))})
	}
	return prefixes, bad, st, nil
}

// discardLine skips the rest of an over-long line, up to and including '\n'.
func discardLine(br *bufio.Reader) error {
	for {
		_, err := br.ReadSlice('\n')
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
}

// dropRecord is one line of Spamhaus' DROP JSON format.
type dropRecord struct {
	CIDR string `json:"cidr"`
	Type string `json:"type"`
}

// parseLine parses one raw line. isEntry is false for blank, comment and
// metadata lines.
func parseLine(line []byte) (p netip.Prefix, isEntry bool, err error) {
	s := strings.Trim(string(line), " \t\r\n")
	if strings.HasPrefix(s, "{") {
		var rec dropRecord
		if err := json.Unmarshal([]byte(s), &rec); err != nil {
			return netip.Prefix{}, true, fmt.Errorf("%w: %w", ErrBadJSON, err)
		}
		if rec.CIDR == "" {
			if rec.Type == "metadata" {
				return netip.Prefix{}, false, nil
			}
			return netip.Prefix{}, true, fmt.Errorf("%w: no \"cidr\" field", ErrBadJSON)
		}
		p, err := ParsePrefix(rec.CIDR)
		return p, true, err
	}
	if i := strings.IndexAny(s, "#;"); i >= 0 {
		s = strings.Trim(s[:i], " \t")
	}
	if s == "" {
		return netip.Prefix{}, false, nil
	}
	p, err = ParsePrefix(s)
	return p, true, err
}
