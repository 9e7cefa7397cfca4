package alert

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// Kind is what an alert announces.
type Kind string

// Alert kinds (the "kind" label of portcullis_alert_sent_total).
const (
	KindOpened     Kind = "opened"
	KindEscalation Kind = "escalation"
	KindClosed     Kind = "closed"
)

var kinds = []Kind{KindOpened, KindEscalation, KindClosed}

// Alert is one message about one incident, already stripped to what staff
// may read (see Privacy).
type Alert struct {
	// Kind is opened, escalation or closed.
	Kind Kind `json:"kind"`
	// At is when the alert was raised (the dispatcher's clock, UTC).
	At time.Time `json:"at"`
	// Changes lists what is new since the incident's previous alert: new
	// vectors, decisions, "attack resumed" (escalations and the closed
	// alert; addresses redacted).
	Changes []string `json:"changes,omitempty"`
	// Incident is the incident's summary when the alert was raised.
	Incident Summary `json:"incident"`
}

// Summary is the privacy-safe view of an incident: vectors, figures, top
// countries and ASNs, and the attacking prefixes that pass the evidence
// threshold (optionally pseudonymised). It never carries paths, user agents
// or single visitors' addresses.
type Summary struct {
	// ID and Site are the incident's (Site: the site name, or the protected
	// destination address of a packet-level incident).
	ID   string `json:"id"`
	Site string `json:"site"`
	// Start, Detected and End as in incident.Incident (End zero while open).
	Start    time.Time `json:"start"`
	Detected time.Time `json:"detected"`
	End      time.Time `json:"end,omitzero"`
	// Duration is End − Start for a closed incident, At − Start otherwise,
	// in whole seconds (JSON: "duration_seconds").
	Duration time.Duration `json:"-"`
	// Vectors are the attack classes seen ("http_flood", "syn_flood").
	Vectors []string `json:"vectors"`
	// Peaks per second and totals over the incident.
	PeakRPS  float64 `json:"peak_rps"`
	PeakPPS  float64 `json:"peak_pps"`
	PeakBPS  float64 `json:"peak_bps"`
	Requests uint64  `json:"requests"`
	Packets  uint64  `json:"packets"`
	// Sources is the estimated number of distinct sources.
	Sources uint64 `json:"sources"`
	// TopCountries ("NL"), heaviest first: aggregates, always listed.
	TopCountries []incident.Count `json:"top_countries"`
	// TopASNs are the source networks ("AS64500", with their registered
	// Name) that pass the same evidence threshold as AttackingPrefixes
	// (Privacy.MinPrefixCount and MinPrefixShare), heaviest first, then
	// one row with key "other" (Name "N other networks") counting the
	// listed networks below it together: a member's or a visitor's ISP
	// is never named.
	TopASNs []incident.Count `json:"top_asns"`
	// AttackingPrefixes are the incident's top prefixes above the evidence
	// threshold, as prefixes or pseudonyms ("net-1a2b3c4d5e6f/24").
	AttackingPrefixes []incident.Count `json:"attacking_prefixes"`
}

// MarshalJSON writes the summary with Duration as "duration_seconds".
func (s Summary) MarshalJSON() ([]byte, error) {
	type plain Summary
	return json.Marshal(struct {
		plain
		DurationSeconds float64 `json:"duration_seconds"`
	}{plain(s), s.Duration.Seconds()})
}

// privacy applies Config.Privacy: it picks the attacking prefixes an alert
// may name and redacts every other address in free text.
type privacy struct {
	cfg Privacy
	key []byte // HMAC key for pseudonyms
}

// summarise builds the privacy-safe summary of in at time at, and returns
// the prefixes it lets through (as parsed, before pseudonymising).
func (p *privacy) summarise(in *incident.Incident, at time.Time) (Summary, []netip.Prefix) {
	s := Summary{
		ID: in.ID, Site: in.Site, Start: in.Start.UTC(), Detected: in.Detected.UTC(), End: in.End.UTC(),
		Vectors: append([]string(nil), in.Vectors...),
		PeakRPS: in.PeakRPS, PeakPPS: in.PeakPPS, PeakBPS: in.PeakBPS,
		Requests: in.Requests, Packets: in.Packets, Sources: in.Sources,
		TopCountries: append([]incident.Count(nil), in.TopCountries...),
	}
	if in.End.IsZero() {
		s.End = time.Time{}
		s.Duration = at.Sub(in.Start)
	} else {
		s.Duration = in.End.Sub(in.Start)
	}
	s.Duration = max(s.Duration, 0).Round(time.Second)
	total := in.Requests + in.Packets
	s.TopASNs = p.networks(in.TopASNs, total)
	var allowed []netip.Prefix
	for _, c := range in.TopPrefixes {
		pfx, err := netip.ParsePrefix(c.Key)
		if err != nil {
			continue // not a prefix: never guess what it is
		}
		if !p.evidence(c.Count, total) {
			continue
		}
		pfx = pfx.Masked()
		allowed = append(allowed, pfx)
		s.AttackingPrefixes = append(s.AttackingPrefixes, incident.Count{Key: p.name(pfx), Count: c.Count})
	}
	return s, allowed
}

// evidence reports whether a source that sent count of the incident's
// total requests and packets passes the evidence threshold.
func (p *privacy) evidence(count, total uint64) bool {
	return count >= p.cfg.MinPrefixCount && float64(count) >= p.cfg.MinPrefixShare*float64(total)
}

// otherNetworks is the key of the TopASNs row that counts the networks
// below the evidence threshold.
const otherNetworks = "other"

// networks returns the ASN rows an alert may show: those passing the
// evidence threshold (names kept), then one "other" row for the rest.
func (p *privacy) networks(top []incident.Count, total uint64) []incident.Count {
	var out []incident.Count
	var others int
	var rest uint64
	for _, c := range top {
		if p.evidence(c.Count, total) {
			out = append(out, c)
			continue
		}
		if c.Count > 0 {
			others++
			rest += c.Count
		}
	}
	if others > 0 {
		name := strconv.Itoa(others) + " other networks"
		if others == 1 {
			name = "1 other network"
		}
		out = append(out, incident.Count{Key: otherNetworks, Count: rest, Name: name})
	}
	return out
}

// name renders an attacking prefix or address: as is, or as a keyed
// pseudonym in report's format ("net-<mac>/<bits>", "host-<mac>"; mac = the
// first 48 bits of HMAC-SHA-256(key, canonical text) in hex), so that with
// the same key an alert and a report name a source alike.
func (p *privacy) name(pfx netip.Prefix) string {
	pfx = pfx.Masked()
	if !p.cfg.Pseudonymise {
		if pfx.IsSingleIP() {
			return pfx.Addr().String()
		}
		return pfx.String()
	}
	if pfx.IsSingleIP() {
		return "host-" + p.mac(pfx.Addr().Unmap().String())
	}
	return "net-" + p.mac(pfx.String()) + "/" + strconv.Itoa(pfx.Bits())
}

func (p *privacy) mac(s string) string {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil)[:6])
}

// scrub redacts addresses and prefixes in free text (timeline messages,
// decision reasons). Scanning left to right, at each position the longest
// run of address bytes (addrByte), at most maxAddrLen long, that parses as
// an IP address or prefix is one match: kept if it lies inside an allowed
// attacking prefix (pseudonymised if configured) or is site itself (a
// packet incident's protected server), replaced by "[address]" otherwise.
// No run of address bytes in the result parses as a disallowed address
// (FuzzScrub).
func (p *privacy) scrub(text string, allowed []netip.Prefix, site string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(text); {
		j, pfx, ok := matchAddr(text, i)
		if !ok {
			i++
			continue
		}
		b.WriteString(text[last:i])
		b.WriteString(p.rewrite(text[i:j], pfx, allowed, site))
		i, last = j, j
	}
	b.WriteString(text[last:])
	return b.String()
}

// maxAddrLen bounds one address match: the longest IPv6 prefix text is 43
// bytes (IPv4-embedded: 49); longer zones are cut (the rest is plain text
// after the match).
const maxAddrLen = 64

// matchAddr returns the end of the longest address or prefix starting at
// text[i], as a prefix (an address is a full-length prefix).
func matchAddr(text string, i int) (int, netip.Prefix, bool) {
	c := text[i]
	if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':') {
		return 0, netip.Prefix{}, false
	}
	end := i
	for end < len(text) && end < i+maxAddrLen && addrByte(text[end]) {
		end++
	}
	for j := end; j > i+1; j-- {
		s := text[i:j]
		if !strings.ContainsAny(s, ".:") {
			break // shorter ones have no separator either
		}
		if a, err := netip.ParseAddr(s); err == nil {
			a = a.WithZone("")
			return j, netip.PrefixFrom(a, a.BitLen()), true
		}
		if pf, err := netip.ParsePrefix(s); err == nil {
			return j, pf, true
		}
	}
	return 0, netip.Prefix{}, false
}

// addrByte reports whether c may be part of an address or prefix text:
// hex digits, '.', ':', '/', and a zone's '%' and [A-Za-z0-9_.-] (a zone
// with other bytes, which ParseAddr would accept, ends at them).
func addrByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
		c == '.' || c == ':' || c == '/' || c == '%' || c == '_' || c == '-'
}

// rewrite decides one matched address or prefix (text tok, parsed pfx).
func (p *privacy) rewrite(tok string, pfx netip.Prefix, allowed []netip.Prefix, site string) string {
	a, bits := pfx.Addr(), pfx.Bits()
	if a.Is4In6() {
		a, bits = a.Unmap(), max(bits-96, 0)
	}
	tp := netip.PrefixFrom(a, bits).Masked()
	if site != "" && bits == a.BitLen() {
		if sa, err := netip.ParseAddr(site); err == nil && sa.WithZone("").Unmap() == a {
			return tok
		}
	}
	for _, ap := range allowed {
		if ap.Bits() <= tp.Bits() && ap.Contains(a) {
			if p.cfg.Pseudonymise {
				return p.name(tp)
			}
			return tok
		}
	}
	return "[address]"
}
