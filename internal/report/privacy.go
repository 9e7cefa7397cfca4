package report

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// KeyFile is the name of the pseudonymisation key inside a data directory.
const KeyFile = "report-pseudonym.key"

// keyBytes is the length of a generated key (HMAC-SHA256, RFC 2104: a key
// as long as the hash output).
const keyBytes = 32

// ErrKey: a pseudonymised report was asked for without a usable key.
var ErrKey = errors.New("report: pseudonymisation key missing or shorter than 16 bytes")

// LoadKey returns the data directory's pseudonymisation key, creating it
// (32 random bytes, mode 0600) on first use. One key per data directory
// means the same address always gets the same pseudonym in reports from
// that installation, so recipients can correlate reports without learning
// addresses; deleting the file unlinks all earlier pseudonyms. Errors name
// the file.
func LoadKey(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, KeyFile)
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, keyBytes)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("report: generate key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) { // created concurrently: use that one
			return LoadKey(dataDir)
		}
		if err != nil {
			return nil, fmt.Errorf("report: create %s: %w", path, err)
		}
		if _, err := f.Write(key); err != nil {
			f.Close()
			return nil, fmt.Errorf("report: write %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("report: write %s: %w", path, err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("report: read %s: %w", path, err)
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("report: %s: %w", path, ErrKey)
	}
	return key, nil
}

// withheld replaces an address in free text that may belong to a
// legitimate visitor.
const withheld = "[address withheld]"

// redactor decides how addresses appear in a report. Only addresses inside
// a reportable attacking prefix, and the protected site's own address,
// appear at all; every other address (a visitor an operator allowed, a
// source below the evidence threshold) is withheld. With a key, the ones
// that appear are replaced by keyed pseudonyms.
type redactor struct {
	key     []byte
	allowed []netip.Prefix
}

// allow adds p to the prefixes whose addresses may appear.
func (r *redactor) allow(p netip.Prefix) { r.allowed = append(r.allowed, p.Masked()) }

func (r *redactor) permitted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.allowed {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// prefix returns p as it appears in the report (p itself, or its pseudonym).
func (r *redactor) prefix(p netip.Prefix) string {
	if r.key == nil {
		return p.String()
	}
	if p.IsSingleIP() {
		return r.addr(p.Addr())
	}
	return "net-" + r.mac(p.Masked().String()) + "/" + fmt.Sprint(p.Bits())
}

// addr returns a as it appears in the report.
func (r *redactor) addr(a netip.Addr) string {
	a = a.Unmap()
	if r.key == nil {
		return a.String()
	}
	return "host-" + r.mac(a.String())
}

// mac is the pseudonym body: the first 12 hex digits (48 bits) of
// HMAC-SHA256(key, canonical text).
func (r *redactor) mac(s string) string {
	h := hmac.New(sha256.New, r.key)
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// text rewrites every IPv4/IPv6 address, address:port and prefix in s:
// permitted ones are shown (or pseudonymised), all others withheld.
func (r *redactor) text(s string) string { return r.rewrite(s, false) }

// agent is text for a user agent: a dotted quad right after "/" is a
// product version (RFC 9110 §10.1.5: product "/" product-version, as in
// "Chrome/120.0.0.0"), not an address.
func (r *redactor) agent(s string) string { return r.rewrite(s, true) }

// maxText bounds a free-text field in a report (a path, a user agent, a
// timeline message): longer ones are cut, which also bounds the scan.
const maxText = 2048

func (r *redactor) rewrite(s string, versions bool) string {
	if len(s) > maxText {
		cut := maxText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	spans := findAddrs(s, versions)
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		b.WriteString(s[last:sp.start])
		b.WriteString(r.replacement(sp))
		last = sp.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// replacement is what an address found in text becomes.
func (r *redactor) replacement(sp addrSpan) string {
	if !sp.addr.IsValid() {
		return withheld
	}
	a := sp.addr.Unmap()
	if sp.bits >= 0 {
		p, err := a.Prefix(sp.bits)
		if err != nil || !r.permittedPrefix(p) {
			return withheld
		}
		return r.prefix(netip.PrefixFrom(a, sp.bits))
	}
	if !r.permitted(a) {
		return withheld
	}
	return r.addr(a) + sp.port
}

// addrSpan is an address found in text: s[start:end] (with any prefix
// length, brackets and port) holds addr; bits is the prefix length or -1;
// port is ":N" when one followed.
type addrSpan struct {
	start, end int
	addr       netip.Addr
	bits       int
	port       string
}

// findAddrs returns the IPv4 and IPv6 addresses and prefixes written in s,
// in order. The text is cut into runs of hex digits, colons and dots; in a
// run with two colons or more the leftmost-longest IPv6 addresses are
// taken, and in what remains every dotted quad that is not part of a longer
// number ("id81.2.69.160" yields one; "981.2.69.160" and "1.2.3.4.5" are
// taken whole, as unknown). "[v6]:port", "v4:port" and "/bits" are taken
// with their address. With versions set, a dotted quad right after "/" is
// skipped (a product version in a user agent).
func findAddrs(s string, versions bool) []addrSpan {
	var out []addrSpan
	for i := 0; i < len(s); {
		if !runChar(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && runChar(s[j]) {
			j++
		}
		if strings.Count(s[i:j], ":") >= 2 {
			out = findV6(s, i, j, versions, out)
		} else {
			out = findV4(s, i, j, versions, out)
		}
		// A suffix (":443", "/24", "]") may reach past the run.
		if n := len(out); n > 0 && out[n-1].end > j {
			j = out[n-1].end
		}
		i = j
	}
	return out
}

func runChar(c byte) bool { return isHex(c) || c == ':' || c == '.' }

// findV6 appends the IPv6 addresses in the run s[i:j], leftmost-longest
// (and the IPv4 ones between them).
func findV6(s string, i, j int, versions bool, out []addrSpan) []addrSpan {
	from := i
	for k := i; k < j; k++ {
		for e := min(j, k+45); e >= k+2; e-- { // 45: the longest IPv6 text
			a, err := netip.ParseAddr(s[k:e])
			if err != nil || !a.Is6() || strings.Count(s[k:e], ":") < 2 {
				continue
			}
			out = findV4(s, from, k, versions, out)
			sp := addrSpan{start: k, end: e, addr: a, bits: -1}
			if k > 0 && s[k-1] == '[' && e < len(s) && s[e] == ']' {
				sp.start--
				sp.end++
				suffix(s, &sp, -1) // a port only
			} else {
				suffix(s, &sp, 128)
			}
			out = append(out, sp)
			k, from = sp.end-1, sp.end
			break
		}
	}
	if from < j {
		out = findV4(s, from, j, versions, out)
	}
	return out
}

// findV4 appends the dotted quads in s[i:j].
func findV4(s string, i, j int, versions bool, out []addrSpan) []addrSpan {
	for k := i; k < j; {
		if !isDigit(s[k]) && s[k] != '.' {
			k++
			continue
		}
		e := k
		for e < j && (isDigit(s[e]) || s[e] == '.') {
			e++
		}
		lead := k
		for lead < e && s[lead] == '.' {
			lead++
		}
		tok := strings.TrimRight(s[lead:e], ".")
		skip := versions && lead > 0 && s[lead-1] == '/'
		if a, err := netip.ParseAddr(tok); err == nil && a.Is4() && !skip {
			sp := addrSpan{start: lead, end: lead + len(tok), addr: a, bits: -1}
			suffix(s, &sp, 32)
			out = append(out, sp)
			k = max(sp.end, e)
			continue
		}
		if !skip && quadRe.MatchString(tok) {
			// A dotted quad inside a longer number ("981.2.69.160",
			// "81.2.69.160.1"): withheld whole (addr left invalid).
			out = append(out, addrSpan{start: lead, end: lead + len(tok), bits: -1})
		}
		k = e
	}
	return out
}

// suffix extends sp over a "/bits" prefix length (up to maxBits; -1: none
// allowed) or a ":port" that follows it.
func suffix(s string, sp *addrSpan, maxBits int) {
	e := sp.end
	if e+1 >= len(s) || (s[e] != '/' && s[e] != ':') || !isDigit(s[e+1]) {
		return
	}
	k := e + 1
	for k < len(s) && isDigit(s[k]) {
		k++
	}
	if k < len(s) && (s[k] == '.' || isHex(s[k]) || s[k] == ':') {
		return // not a clean number: "1.2.3.4/24.5", "10:30:21"
	}
	n, err := strconv.Atoi(s[e+1 : k])
	if err != nil {
		return
	}
	switch {
	case s[e] == '/' && maxBits >= 0 && n <= maxBits:
		sp.bits, sp.end = n, k
	case s[e] == ':' && sp.addr.Is4() || s[e] == ':' && maxBits < 0:
		if n <= 65535 {
			sp.port, sp.end = s[e:k], k
		}
	}
}

// quadRe finds a dotted quad anywhere in a run of digits and dots.
var quadRe = regexp.MustCompile(`\d{1,3}(?:\.\d{1,3}){3}`)

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// permittedPrefix reports whether p lies wholly inside a permitted prefix
// (a /16 around a reportable /24 would name more than the evidence).
func (r *redactor) permittedPrefix(p netip.Prefix) bool {
	for _, a := range r.allowed {
		if a.Bits() <= p.Bits() && a.Contains(p.Addr()) {
			return true
		}
	}
	return false
}
