package clientip

import (
	"net/netip"
	"strings"
)

// hop is what one forwarding entry says about the node before it.
type hop uint8

const (
	hopAddr      hop = iota // a parseable address
	hopUnknown              // "unknown", obfuscated, or no for= at all
	hopMalformed            // unparseable
)

// walk is the state of one right-to-left walk over a forwarding chain.
type walk struct {
	r       *Resolver
	res     *Result
	src     Source
	seen    bool // at least one non-empty entry
	stopped bool
}

// step feeds the next entry (right to left) and reports whether the walk is
// over. res.Addr holds the nearest trusted hop so far (initially the peer).
func (w *walk) step(k hop, a netip.Addr) bool {
	w.seen = true
	switch k {
	case hopAddr:
		w.res.Addr, w.res.Source = a, w.src
		if w.r.trusted.Contains(a) {
			return false // a further proxy: keep walking
		}
	case hopMalformed:
		w.res.Malformed = true
	}
	w.stopped = true
	return true
}

// walkChain walks the entries of a list header (all lines, each split by
// split) from the right, classifying each non-empty entry with node. It
// reports whether the header decided the result (had a non-empty entry).
func (r *Resolver) walkChain(res *Result, src Source, lines []string,
	split func(string) (elem string, comma int, ok bool),
	node func(string) (hop, netip.Addr),
) bool {
	w := walk{r: r, res: res, src: src}
	for i := len(lines) - 1; i >= 0 && !w.stopped; i-- {
		v := lines[i]
		for !w.stopped {
			elem, j, ok := split(v)
			if !ok {
				w.step(hopMalformed, netip.Addr{})
				break
			}
			if elem = trimOWS(elem); elem != "" {
				w.step(node(elem))
			}
			if j < 0 {
				break
			}
			v = v[:j]
		}
	}
	return w.seen
}

// lastXFFEntry splits off the rightmost comma-separated X-Forwarded-For entry.
func lastXFFEntry(v string) (string, int, bool) {
	j := strings.LastIndexByte(v, ',')
	return v[j+1:], j, true
}

// xffNode classifies one X-Forwarded-For entry.
func xffNode(e string) (hop, netip.Addr) {
	if strings.EqualFold(e, "unknown") {
		return hopUnknown, netip.Addr{}
	}
	if a, ok := ParseAddr(e); ok {
		return hopAddr, a
	}
	return hopMalformed, netip.Addr{}
}

// forwardedNode classifies one RFC 7239 forwarded-element by its "for".
func forwardedNode(elem string) (hop, netip.Addr) {
	node, found, ok := forParam(elem)
	switch {
	case !ok:
		return hopMalformed, netip.Addr{}
	case !found:
		return hopUnknown, netip.Addr{}
	}
	return parseNode(node)
}

// realIP applies X-Real-IP (its last line, one address). It reports whether
// the header decided the result.
func realIP(res *Result, lines []string) bool {
	if len(lines) == 0 {
		return false
	}
	v := trimOWS(lines[len(lines)-1])
	switch {
	case v == "":
		return false
	case strings.EqualFold(v, "unknown"):
	default:
		if a, ok := ParseAddr(v); ok {
			res.Addr, res.Source = a, XRealIP
		} else {
			res.Malformed = true
		}
	}
	return true
}

// lastElement splits off the rightmost comma-separated element of a
// Forwarded line, honouring quoted-strings (RFC 9110 §5.6.4). It returns the
// element, the index of the comma before it (-1 if none) and false when a
// quote is unbalanced. Scanning from the right means a malformed element
// written by the client, to the left of those written by trusted proxies,
// cannot hide the proxies' elements.
func lastElement(v string) (elem string, comma int, ok bool) {
	for i := len(v) - 1; i >= 0; i-- {
		switch v[i] {
		case ',':
			return v[i+1:], i, true
		case '"':
			j := i - 1
			for ; j >= 0; j-- {
				if v[j] == '"' && !escaped(v, j) {
					break
				}
			}
			if j < 0 {
				return "", -1, false
			}
			i = j
		}
	}
	return v, -1, true
}

// escaped reports whether v[j] is preceded by an odd number of backslashes.
func escaped(v string, j int) bool {
	n := 0
	for k := j - 1; k >= 0 && v[k] == '\\'; k-- {
		n++
	}
	return n%2 == 1
}

// forParam returns the value of the "for" parameter of one forwarded-element
// ("for=192.0.2.60;proto=http;by=203.0.113.43", RFC 7239 §4), unquoted.
// found is false when there is none; ok is false on a syntax error. Unquoted
// values are accepted with any characters but ";,\" and whitespace, since
// several proxies do not quote IPv6 nodes as the RFC asks.
func forParam(elem string) (value string, found, ok bool) {
	i := 0
	for i < len(elem) {
		for i < len(elem) && (elem[i] == ' ' || elem[i] == '\t') {
			i++
		}
		if i < len(elem) && elem[i] == ';' { // empty pair
			i++
			continue
		}
		if i == len(elem) {
			break
		}
		start := i
		for i < len(elem) && isTokenChar(elem[i]) {
			i++
		}
		name := elem[start:i]
		if name == "" || i == len(elem) || elem[i] != '=' {
			return "", false, false
		}
		i++
		var val string
		if i < len(elem) && elem[i] == '"' {
			end, hasEsc := quotedEnd(elem, i)
			if end < 0 {
				return "", false, false
			}
			val = elem[i+1 : end]
			if hasEsc {
				val = unescape(val)
			}
			i = end + 1
		} else {
			start := i
			for i < len(elem) && !isValueDelim(elem[i]) {
				i++
			}
			val = elem[start:i]
		}
		for i < len(elem) && (elem[i] == ' ' || elem[i] == '\t') {
			i++
		}
		if i < len(elem) {
			if elem[i] != ';' {
				return "", false, false
			}
			i++
		}
		if !found && strings.EqualFold(name, "for") {
			value, found = val, true
		}
	}
	return value, found, true
}

// quotedEnd returns the index of the quote closing the quoted-string that
// opens at s[open], or -1, and whether it contains quoted-pairs.
func quotedEnd(s string, open int) (end int, hasEsc bool) {
	for i := open + 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			hasEsc = true
			i++
		case '"':
			return i, hasEsc
		}
	}
	return -1, hasEsc
}

// unescape removes quoted-pair backslashes.
func unescape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isValueDelim reports whether c ends an unquoted parameter value.
func isValueDelim(c byte) bool {
	return c == ';' || c == ',' || c == '"' || c == ' ' || c == '\t'
}

// isTokenChar reports whether c is an RFC 9110 tchar.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// parseNode parses an RFC 7239 §6 node: IPv4 or "[IPv6]", each with an
// optional ":port" (digits or obfuscated "_x"), or "unknown", or an
// obfuscated identifier "_x". A bare unbracketed IPv6 address is accepted.
func parseNode(v string) (hop, netip.Addr) {
	if v == "" {
		return hopMalformed, netip.Addr{}
	}
	host, port := v, ""
	switch {
	case v[0] == '[':
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return hopMalformed, netip.Addr{}
		}
		host = v[1:end]
		if rest := v[end+1:]; rest != "" {
			if rest[0] != ':' {
				return hopMalformed, netip.Addr{}
			}
			port = rest[1:]
			if port == "" {
				return hopMalformed, netip.Addr{}
			}
		}
	case strings.Count(v, ":") == 1:
		i := strings.IndexByte(v, ':')
		host, port = v[:i], v[i+1:]
		if port == "" {
			return hopMalformed, netip.Addr{}
		}
	}
	if port != "" && !validPort(port) && !obfuscated(port) {
		return hopMalformed, netip.Addr{}
	}
	if strings.EqualFold(host, "unknown") || obfuscated(host) {
		return hopUnknown, netip.Addr{}
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return hopMalformed, netip.Addr{}
	}
	return hopAddr, Normalize(a)
}

// obfuscated reports whether s is an RFC 7239 §6.3 obfnode / obfport:
// "_" followed by one or more ALPHA / DIGIT / "." / "_" / "-".
func obfuscated(s string) bool {
	if len(s) < 2 || s[0] != '_' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
