package replay

import "fmt"

// DefaultMalformedSamples is how many malformed records a reader keeps by
// default (all are counted).
const DefaultMalformedSamples = 20

// maxSampleBytes bounds the text kept per malformed sample.
const maxSampleBytes = 160

// MalformedRecord describes one malformed line or packet.
type MalformedRecord struct {
	// Line is the 1-based line number (logs) or packet number (captures).
	Line int64 `json:"line"`
	// Reason says what was wrong, e.g. "bad timestamp".
	Reason string `json:"reason"`
	// Sample is the start of the record (at most 160 bytes; packets as hex
	// of their first bytes), with invalid UTF-8 replaced by Go escapes.
	Sample string `json:"sample"`
}

// String formats the record as "line N: reason: sample".
func (m MalformedRecord) String() string {
	return fmt.Sprintf("line %d: %s: %s", m.Line, m.Reason, m.Sample)
}

// Malformed counts malformed records and keeps the first few.
type Malformed struct {
	// Count is the number of malformed records seen.
	Count uint64 `json:"count"`
	// First holds the first records seen, at most the reader's limit.
	First []MalformedRecord `json:"first,omitempty"`
	limit int
}

// add counts one malformed record and keeps it if there is room. Only kept
// records allocate.
func (m *Malformed) add(line int64, reason string, sample []byte, hexSample bool) {
	m.Count++
	if len(m.First) >= m.limit {
		return
	}
	if len(sample) > maxSampleBytes {
		sample = sample[:maxSampleBytes]
	}
	var s string
	if hexSample {
		s = fmt.Sprintf("% x", sample)
	} else {
		q := fmt.Sprintf("%q", sample)
		s = q[1 : len(q)-1]
	}
	m.First = append(m.First, MalformedRecord{Line: line, Reason: reason, Sample: s})
}
