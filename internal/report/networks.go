package report

import (
	"fmt"
	"strings"

	"github.com/portcullis/portcullis/internal/incident"
)

// otherNetworksKey is the key of the row that stands, in the JSON export's
// top_asns, for the source networks below the evidence threshold.
const otherNetworksKey = "other"

// asns splits the incident's ASN list at the evidence threshold: networks
// at or above it are named (fx.ASNs, with their registered names), the
// rest are folded into one "other networks" figure (OtherASNs networks,
// OtherASNCount requests or packets) and never named — a member's or a
// visitor's ISP with a few dozen requests is not evidence, and naming it
// would say where a visitor lives.
func (fx *facts) asns(top []incident.Count) {
	fx.ASNs = fx.shares(top, fx.MinShare, func(k string) string { return k }, asnLabel)
	for _, c := range top {
		if c.Count > 0 && fx.frac(c.Count) < fx.MinShare {
			fx.OtherASNs++
			fx.OtherASNCount += c.Count
		}
	}
	fx.OtherASNShare = fx.frac(fx.OtherASNCount)
}

// otherNetworksLabel names the folded row: "3 other networks (each below
// 1.0%)", "1 other network (below 1.0%)".
func (fx *facts) otherNetworksLabel() string {
	if fx.OtherASNs == 1 {
		return "1 other network (below " + pct(fx.MinShare) + ")"
	}
	return fmt.Sprintf("%d other networks (each below %s)", fx.OtherASNs, pct(fx.MinShare))
}

// asnRecord is the JSON export's top_asns: the named networks with their
// names, then one row (key "other") for the networks below the threshold.
func (fx *facts) asnRecord() []incident.Count {
	out := make([]incident.Count, 0, len(fx.ASNs)+1)
	for _, s := range fx.ASNs {
		out = append(out, incident.Count{Key: s.Key, Count: s.Count, Name: s.Name})
	}
	if fx.OtherASNs > 0 {
		out = append(out, incident.Count{Key: otherNetworksKey, Count: fx.OtherASNCount,
			Name: fmt.Sprintf("%s below the evidence threshold", plural(fx.OtherASNs, "network"))})
	}
	return out
}

// namedShared drops from a related incident's shared sources the ASNs the
// report does not name (below the threshold here): the rest, prefixes
// included, are redacted as text like everything else.
func (fx *facts) namedShared(shared []string) []string {
	var out []string
	for _, s := range shared {
		if _, ok := incident.ParseASNKey(s); ok && !fx.namesASN(s) {
			continue
		}
		out = append(out, fx.red.text(s))
	}
	return out
}

// namesASN reports whether the report names the ASN key.
func (fx *facts) namesASN(key string) bool {
	for _, s := range fx.ASNs {
		if s.Key == key {
			return true
		}
	}
	return false
}

// networksLine is the one-sentence account of the source networks for the
// machine-readable formats' descriptions (STIX report, IODEF EventData):
// the named ones with their shares, and the folded rest.
func (fx *facts) networksLine() string {
	if len(fx.ASNs) == 0 && fx.OtherASNs == 0 {
		return ""
	}
	var parts []string
	for _, s := range fx.ASNs {
		parts = append(parts, s.Label+" "+pct(s.Share))
	}
	line := fmt.Sprintf("Source networks (autonomous systems) that sent at least %s of the traffic: ", pct(fx.MinShare))
	if len(parts) == 0 {
		line += "none"
	} else {
		line += strings.Join(parts, "; ")
	}
	line += "."
	switch {
	case fx.OtherASNs == 1:
		line += fmt.Sprintf(" One other network, below that threshold, sent %s and is not named.", pct(fx.OtherASNShare))
	case fx.OtherASNs > 1:
		line += fmt.Sprintf(" %d other networks, each below that threshold, sent %s together and are not named.", fx.OtherASNs, pct(fx.OtherASNShare))
	}
	return line
}
