package replay

import (
	"bytes"
	"net/netip"
	"unsafe"

	"github.com/portcullis/portcullis/internal/stats"
)

// Reasons a line is malformed. They are constants so that rejecting a line
// does not allocate.
const (
	reasonAddr      = "client address is not an IP address"
	reasonTimestamp = "missing or bad [timestamp]"
	reasonRequest   = `missing "request" field`
	reasonStatus    = "bad status"
	reasonBytes     = "bad byte count"
	reasonJSON      = "not a JSON object"
	reasonJSONTime  = "JSON record without a usable time"
	reasonJSONAddr  = "JSON record without a client address"
	reasonTooLong   = "line too long"
)

// bstr returns a string aliasing b (no copy). The string is valid as long as
// b's backing array is not overwritten: for reader buffers, until the next
// read.
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// lineParser holds per-reader parsing state reused across lines.
type lineParser struct {
	bits4, bits6 int
	// Timestamp cache: logs are in time order and many lines share a
	// second, so the last parsed "[...]" text and its value are kept.
	lastTS   [32]byte
	lastTSN  int
	lastTime int64
	// scratch holds unescaped JSON strings of the current line.
	scratch []byte
}

// setAddr normalises a (unmapped, no zone) into req.Addr and req.Prefix.
func (p *lineParser) setAddr(req *stats.Request, a netip.Addr) {
	a = a.Unmap().WithZone("")
	req.Addr = a
	bits := p.bits4
	if a.Is6() {
		bits = p.bits6
	}
	req.Prefix, _ = a.Prefix(bits)
}

// parseAddr parses an IP address field, accepting a trailing ":port" on IPv4
// and "[v6]:port" forms.
func parseAddr(b []byte) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(bstr(b)); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(bstr(b)); err == nil {
		return ap.Addr(), true
	}
	return netip.Addr{}, false
}

// parseCLF parses one Common or Combined Log Format line:
//
//	host ident authuser [day/Mon/year:HH:MM:SS ±zone] "request" status bytes ["referer" "user-agent" ...]
//
// Apache's vhost_combined (a leading "vhost:port" field) is accepted too. On
// success it returns "" and whether the Combined fields were present; on
// failure the reason. Quoted fields may contain \" escapes (Apache and nginx
// both escape quotes that way).
func (p *lineParser) parseCLF(line []byte, req *stats.Request) (combined bool, reason string) {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return false, reasonAddr
	}
	a, ok := parseAddr(line[:sp])
	if !ok {
		// vhost_combined: "www.example.org:443 203.0.113.5 - - [...".
		rest := line[sp+1:]
		sp2 := bytes.IndexByte(rest, ' ')
		if sp2 <= 0 {
			return false, reasonAddr
		}
		if a, ok = parseAddr(rest[:sp2]); !ok {
			return false, reasonAddr
		}
		sp += 1 + sp2
	}
	p.setAddr(req, a)
	rest := line[sp+1:]

	lb := bytes.IndexByte(rest, '[')
	if lb < 0 {
		return false, reasonTimestamp
	}
	rest = rest[lb+1:]
	rb := bytes.IndexByte(rest, ']')
	if rb < 0 {
		return false, reasonTimestamp
	}
	t, ok := p.clfTime(rest[:rb])
	if !ok {
		return false, reasonTimestamp
	}
	req.Time = t
	rest = rest[rb+1:]

	// "request"
	if len(rest) < 3 || rest[0] != ' ' || rest[1] != '"' {
		return false, reasonRequest
	}
	reqLine, n, ok := quoted(rest[1:])
	if !ok {
		return false, reasonRequest
	}
	splitRequestLine(reqLine, req)
	rest = rest[1+n:]

	// status
	rest = skipSpaces(rest)
	field, rest := nextField(rest)
	status, ok := atoiField(field)
	if !ok || status > 999 {
		return false, reasonStatus
	}
	req.Status = int(status)

	// bytes
	rest = skipSpaces(rest)
	field, rest = nextField(rest)
	nb, ok := atoiField(field)
	if !ok {
		return false, reasonBytes
	}
	req.Bytes = nb

	// Combined: "referer" "user-agent"; anything after is ignored (nginx
	// configurations often append "$http_x_forwarded_for" and timings).
	req.Referer, req.UserAgent = false, ""
	rest = skipSpaces(rest)
	if len(rest) == 0 || rest[0] != '"' {
		return false, ""
	}
	ref, n, ok := quoted(rest)
	if !ok {
		return false, ""
	}
	req.Referer = len(ref) > 0 && !(len(ref) == 1 && ref[0] == '-')
	rest = skipSpaces(rest[n:])
	if len(rest) == 0 || rest[0] != '"' {
		return true, ""
	}
	ua, _, ok := quoted(rest)
	if ok && !(len(ua) == 1 && ua[0] == '-') {
		req.UserAgent = bstr(ua)
	}
	return true, ""
}

// quoted parses a double-quoted field at the start of b (b[0] == '"') and
// returns its raw content (escapes left in place), the number of bytes
// consumed including both quotes, and whether a closing quote was found. A
// quote preceded by an odd number of backslashes is escaped.
func quoted(b []byte) (content []byte, n int, ok bool) {
	i := 1
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return nil, 0, false
		}
		j += i
		bs := 0
		for k := j - 1; k >= 1 && b[k] == '\\'; k-- {
			bs++
		}
		if bs%2 == 0 {
			return b[1:j], j + 1, true
		}
		i = j + 1
	}
}

func skipSpaces(b []byte) []byte {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	return b
}

// nextField splits b at the first space.
func nextField(b []byte) (field, rest []byte) {
	if i := bytes.IndexByte(b, ' '); i >= 0 {
		return b[:i], b[i:]
	}
	return b, nil
}

// atoiField parses a non-negative decimal, with "-" meaning 0.
func atoiField(b []byte) (int64, bool) {
	if len(b) == 1 && b[0] == '-' {
		return 0, true
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// splitRequestLine fills Method, Path and Query from an HTTP request line
// ("GET /a?b HTTP/1.1", or "GET /a" for HTTP/0.9). A line that is not a
// request (empty, "-", binary garbage a scanner sent) leaves Method and Path
// empty: the line is still a request the server answered, so it is counted.
// An absolute-form target ("http://host/path") is reduced to its path.
func splitRequestLine(b []byte, req *stats.Request) {
	req.Method, req.Path, req.Query = "", "", ""
	sp := bytes.IndexByte(b, ' ')
	if sp <= 0 || !isToken(b[:sp]) {
		return
	}
	target := b[sp+1:]
	if last := bytes.LastIndexByte(target, ' '); last >= 0 && bytes.HasPrefix(target[last+1:], []byte("HTTP/")) {
		target = target[:last]
	}
	setTarget(req, bstr(b[:sp]), target)
}

// setTarget splits an HTTP request-target into Path and Query.
func setTarget(req *stats.Request, method string, target []byte) {
	if len(target) == 0 {
		return
	}
	if target[0] != '/' {
		// absolute-form (RFC 9112 §3.2.2) or authority/asterisk form.
		if i := bytes.Index(target, []byte("://")); i > 0 {
			rest := target[i+3:]
			j := bytes.IndexAny(rest, "/?")
			if j < 0 {
				req.Method, req.Path = method, "/"
				return
			}
			target = rest[j:]
		}
	}
	req.Method = method
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		req.Path, req.Query = bstr(target[:q]), bstr(target[q+1:])
	} else {
		req.Path = bstr(target)
	}
}

// isToken reports whether b is an HTTP token (RFC 9110 §5.6.2) of letters,
// as methods are in practice; at most 16 bytes.
func isToken(b []byte) bool {
	if len(b) == 0 || len(b) > 16 {
		return false
	}
	for _, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
