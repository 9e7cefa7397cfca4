package replay

import (
	"bytes"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/portcullis/portcullis/internal/stats"
)

// jsonField is a stats.Request field a JSON key maps to.
type jsonField uint8

const (
	jfNone jsonField = iota
	jfTime
	jfAddr
	jfMethod
	jfPath
	jfRequestLine
	jfStatus
	jfBytes
	jfUserAgent
	jfReferer
	jfLatencySeconds
	numJSONFields
)

// jsonKey is the field a key fills and its priority: among keys for the same
// field, the highest priority present wins (Caddy's client_ip, resolved
// through trusted proxies, beats remote_ip).
type jsonKey struct {
	field jsonField
	prio  uint8
}

// jsonKeys maps the access-log keys of nginx (log_format escape=json with
// variable names), Caddy (nested "request" object, "headers" arrays), Traefik
// (ClientHost, RequestMethod, ...) and common ad-hoc formats to fields.
var jsonKeys = map[string]jsonKey{
	"time": {jfTime, 2}, "ts": {jfTime, 2}, "@timestamp": {jfTime, 3}, "timestamp": {jfTime, 2},
	"time_local": {jfTime, 1}, "time_iso8601": {jfTime, 2}, "StartUTC": {jfTime, 3},
	"StartLocal": {jfTime, 2}, "msec": {jfTime, 1}, "start_time": {jfTime, 1},

	"client_ip": {jfAddr, 4}, "remote_addr": {jfAddr, 3}, "ClientHost": {jfAddr, 3},
	"remote_ip": {jfAddr, 2}, "clientip": {jfAddr, 2}, "client_addr": {jfAddr, 2},
	"ip": {jfAddr, 1}, "client": {jfAddr, 1}, "ClientAddr": {jfAddr, 1},

	"method": {jfMethod, 2}, "request_method": {jfMethod, 2}, "RequestMethod": {jfMethod, 2}, "verb": {jfMethod, 1},

	"request_uri": {jfPath, 3}, "uri": {jfPath, 2}, "RequestPath": {jfPath, 2},
	"path": {jfPath, 1}, "url": {jfPath, 1},
	"request": {jfRequestLine, 1},

	"status": {jfStatus, 2}, "DownstreamStatus": {jfStatus, 2}, "status_code": {jfStatus, 2},
	"response_status": {jfStatus, 1}, "response": {jfStatus, 1},

	"body_bytes_sent": {jfBytes, 3}, "bytes": {jfBytes, 2}, "size": {jfBytes, 2},
	"DownstreamContentSize": {jfBytes, 2}, "bytes_sent": {jfBytes, 1}, "response_size": {jfBytes, 1},
	"bytes_out": {jfBytes, 1},

	"http_user_agent": {jfUserAgent, 2}, "user_agent": {jfUserAgent, 2}, "User-Agent": {jfUserAgent, 2},
	"user-agent": {jfUserAgent, 2}, "request_User-Agent": {jfUserAgent, 2}, "userAgent": {jfUserAgent, 1},
	"useragent": {jfUserAgent, 1}, "agent": {jfUserAgent, 1},

	"http_referer": {jfReferer, 2}, "referer": {jfReferer, 2}, "Referer": {jfReferer, 2},
	"request_Referer": {jfReferer, 2}, "referrer": {jfReferer, 1},

	"upstream_response_time": {jfLatencySeconds, 2}, "duration": {jfLatencySeconds, 1},
}

// jsonValue is one leaf value seen for a field.
type jsonValue struct {
	raw   []byte // string content (unescaped) or number text
	isStr bool
	prio  uint8
	seen  bool
}

// jsonRecord collects the leaf values of one line.
type jsonRecord [numJSONFields]jsonValue

const maxJSONDepth = 8

// parseJSON parses one JSON-lines access log record into req. Values are
// found at any depth (Caddy nests them under "request" and "headers");
// header arrays (["Mozilla/5.0 ..."]) yield their first string.
func (p *lineParser) parseJSON(line []byte, req *stats.Request) string {
	var rec jsonRecord
	p.scratch = p.scratch[:0]
	s := jsonScanner{b: line, p: p, rec: &rec}
	s.ws()
	if !s.object(0) {
		return reasonJSON
	}
	s.ws()
	if s.i != len(s.b) {
		return reasonJSON
	}

	// Time.
	tv := &rec[jfTime]
	if !tv.seen {
		return reasonJSONTime
	}
	t, ok := p.jsonTime(tv.raw, tv.isStr)
	if !ok {
		return reasonJSONTime
	}
	req.Time = t

	// Client address.
	av := &rec[jfAddr]
	if !av.seen {
		return reasonJSONAddr
	}
	a, ok := parseAddr(av.raw)
	if !ok {
		return reasonAddr
	}
	p.setAddr(req, a)

	req.Method, req.Path, req.Query = "", "", ""
	if rl := &rec[jfRequestLine]; rl.seen && rl.isStr {
		splitRequestLine(rl.raw, req)
	}
	if mv := &rec[jfMethod]; mv.seen && isToken(mv.raw) {
		req.Method = bstr(mv.raw)
	}
	if pv := &rec[jfPath]; pv.seen && len(pv.raw) > 0 {
		setTarget(req, req.Method, pv.raw)
	}

	req.Status = 0
	if sv := &rec[jfStatus]; sv.seen {
		n, ok := atoiField(sv.raw)
		if !ok || n > 999 {
			return reasonStatus
		}
		req.Status = int(n)
	}
	req.Bytes = 0
	if bv := &rec[jfBytes]; bv.seen {
		n, ok := atoiField(bv.raw)
		if !ok {
			return reasonBytes
		}
		req.Bytes = n
	}
	req.UserAgent = ""
	if uv := &rec[jfUserAgent]; uv.seen && !(len(uv.raw) == 1 && uv.raw[0] == '-') {
		req.UserAgent = bstr(uv.raw)
	}
	rv := &rec[jfReferer]
	req.Referer = rv.seen && len(rv.raw) > 0 && !(len(rv.raw) == 1 && rv.raw[0] == '-')
	req.OriginLatency = 0
	if lv := &rec[jfLatencySeconds]; lv.seen {
		// nginx may list several upstreams ("0.010, 0.020"): take the first.
		raw := lv.raw
		if i := bytes.IndexByte(raw, ','); i >= 0 {
			raw = raw[:i]
		}
		if f, err := strconv.ParseFloat(bstr(raw), 64); err == nil && f >= 0 && f < 1e6 {
			req.OriginLatency = time.Duration(f * float64(time.Second))
		}
	}
	return ""
}

// jsonTime interprets a time value: a number or numeric string of Unix
// seconds (fractional allowed; values that only make sense as milli-, micro-
// or nanoseconds are scaled), RFC 3339, or the CLF layout of $time_local.
func (p *lineParser) jsonTime(raw []byte, isStr bool) (int64, bool) {
	if t, ok := epochTime(raw); ok {
		return t, true
	}
	if !isStr {
		return 0, false
	}
	if t, err := time.Parse(time.RFC3339Nano, bstr(raw)); err == nil {
		return t.UnixNano(), true
	}
	if t, err := time.Parse("2006-01-02 15:04:05", bstr(raw)); err == nil {
		return t.UnixNano(), true
	}
	return p.clfTime(raw)
}

// epochTime parses a positive Unix timestamp "secs[.frac]" exactly (no
// float rounding), scaling integers that only make sense as milli-, micro-
// or nanoseconds; exponent forms go through float64.
func epochTime(raw []byte) (int64, bool) {
	intPart, frac, hasDot := bytes.Cut(raw, []byte("."))
	n, ok := atoiField(intPart)
	if !ok || len(intPart) == 0 || intPart[0] == '-' || n == 0 || !isDigits(frac) {
		if f, err := strconv.ParseFloat(bstr(raw), 64); err == nil && f > 0 && f < 1e10 && !math.IsNaN(f) {
			return int64(f * 1e9), true
		}
		return 0, false
	}
	if !hasDot {
		switch {
		case n > 1e17: // nanoseconds
			return n, true
		case n > 1e14: // microseconds
			return n * 1e3, true
		case n > 1e11: // milliseconds
			return n * 1e6, true
		}
		return n * 1e9, true
	}
	if n > 1e11 {
		return 0, false
	}
	var ns int64
	scale := int64(1e8)
	for _, c := range frac {
		ns += int64(c-'0') * scale
		scale /= 10
	}
	return n*1e9 + ns, true
}

// jsonScanner is a minimal JSON (RFC 8259) scanner that visits leaf values
// and records those whose key maps to a field. It validates structure but
// not every detail of numbers.
type jsonScanner struct {
	b   []byte
	i   int
	p   *lineParser
	rec *jsonRecord
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// object scans {...} at s.i.
func (s *jsonScanner) object(depth int) bool {
	if depth > maxJSONDepth || s.peek() != '{' {
		return false
	}
	s.i++
	s.ws()
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		s.ws()
		key, ok := s.str()
		if !ok {
			return false
		}
		s.ws()
		if s.peek() != ':' {
			return false
		}
		s.i++
		s.ws()
		k := jsonKeys[string(key)]
		if !s.value(depth, k) {
			return false
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// value scans one value and records it under k if it is a usable leaf.
func (s *jsonScanner) value(depth int, k jsonKey) bool {
	switch c := s.peek(); {
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth+1, k)
	case c == '"':
		v, ok := s.str()
		if ok {
			s.record(k, v, true)
		}
		return ok
	case c == '-' || c >= '0' && c <= '9':
		start := s.i
		for s.i < len(s.b) {
			c := s.b[s.i]
			if !(c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
				break
			}
			s.i++
		}
		s.record(k, s.b[start:s.i], false)
		return true
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	}
	return false
}

func (s *jsonScanner) lit(w string) bool {
	if len(s.b)-s.i >= len(w) && string(s.b[s.i:s.i+len(w)]) == w {
		s.i += len(w)
		return true
	}
	return false
}

// array scans [...]; its first string element is recorded under k (header
// values in Caddy logs are arrays of strings).
func (s *jsonScanner) array(depth int, k jsonKey) bool {
	if depth > maxJSONDepth {
		return false
	}
	s.i++
	s.ws()
	if s.peek() == ']' {
		s.i++
		return true
	}
	for first := true; ; first = false {
		s.ws()
		ek := jsonKey{}
		if first && s.peek() == '"' {
			ek = k
		}
		if !s.value(depth, ek) {
			return false
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

func (s *jsonScanner) record(k jsonKey, v []byte, isStr bool) {
	if k.field == jfNone {
		return
	}
	cur := &s.rec[k.field]
	if cur.seen && cur.prio > k.prio {
		return
	}
	*cur = jsonValue{raw: v, isStr: isStr, prio: k.prio, seen: true}
}

// str scans a string at s.i and returns its content: a sub-slice of the
// line when it has no escapes, else unescaped into the parser's scratch
// buffer (which only grows during a line, so earlier results stay valid).
func (s *jsonScanner) str() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '"' {
			v := s.b[start:s.i]
			s.i++
			return v, true
		}
		if c == '\\' {
			return s.strEscaped(start)
		}
		if c < 0x20 {
			return nil, false
		}
		s.i++
	}
	return nil, false
}

func (s *jsonScanner) strEscaped(start int) ([]byte, bool) {
	p := s.p
	// Reserve room so that appends below do not move earlier results: a
	// string's unescaped form is never longer than its escaped form.
	if cap(p.scratch)-len(p.scratch) < len(s.b)-start {
		ns := make([]byte, len(p.scratch), len(p.scratch)+2*(len(s.b)-start)+64)
		copy(ns, p.scratch)
		p.scratch = ns
	}
	out := len(p.scratch)
	p.scratch = append(p.scratch, s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return p.scratch[out:], true
		case c < 0x20:
			return nil, false
		case c != '\\':
			p.scratch = append(p.scratch, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return nil, false
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			p.scratch = append(p.scratch, e)
		case 'b':
			p.scratch = append(p.scratch, '\b')
		case 'f':
			p.scratch = append(p.scratch, '\f')
		case 'n':
			p.scratch = append(p.scratch, '\n')
		case 'r':
			p.scratch = append(p.scratch, '\r')
		case 't':
			p.scratch = append(p.scratch, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, false
			}
			if r >= 0xD800 && r < 0xDC00 && s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
				s.i += 2
				r2, ok := s.hex4()
				if !ok {
					return nil, false
				}
				r = (r-0xD800)<<10 | (r2 - 0xDC00) + 0x10000
			}
			p.scratch = utf8.AppendRune(p.scratch, r)
		default:
			return nil, false
		}
	}
	return nil, false
}

func (s *jsonScanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	s.i += 4
	return r, true
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
