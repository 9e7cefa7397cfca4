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
	"strings"
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
func (r *redactor) text(s string) string {
	if !strings.ContainsAny(s, ".:") {
		return s
	}
	var b strings.Builder
	i, last := 0, 0
	for i < len(s) {
		if !addrChar(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && addrChar(s[j]) {
			j++
		}
		tok := strings.TrimRight(s[i:j], ".:")
		if rep, ok := r.token(tok); ok {
			b.WriteString(s[last:i])
			b.WriteString(rep)
			last = i + len(tok)
		}
		i = j
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// token returns the replacement for tok if it is an address, an
// address:port or a prefix.
func (r *redactor) token(tok string) (string, bool) {
	if len(tok) < 2 || !strings.ContainsAny(tok, ".:") {
		return "", false
	}
	if p, err := netip.ParsePrefix(tok); err == nil {
		if r.permitted(p.Addr()) && r.permittedPrefix(p) {
			return r.prefix(p), true
		}
		return withheld, true
	}
	if a, err := netip.ParseAddr(tok); err == nil {
		if r.permitted(a) {
			return r.addr(a), true
		}
		return withheld, true
	}
	if ap, err := netip.ParseAddrPort(tok); err == nil {
		if r.permitted(ap.Addr()) {
			return r.addr(ap.Addr()) + ":" + fmt.Sprint(ap.Port()), true
		}
		return withheld, true
	}
	return "", false
}

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

func addrChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.' || c == ':' || c == '/' || c == '[' || c == ']'
}
