package report

import (
	"slices"

	"github.com/portcullis/portcullis/internal/incident"
)

// relatedTopASNs is how many of each incident's heaviest ASNs are compared.
const relatedTopASNs = 3

// Related links in to the incidents in others that share attackers with
// it: at least one source prefix in both top-prefix lists (a shared ASN
// alone is not enough — large hosting networks appear in unrelated
// attacks — but ASNs among both incidents' three heaviest are listed with a
// shared prefix). Others are examined in the order given; in itself is
// skipped. The result is what incident.Incident.Related holds; Render
// redacts it like everything else.
func Related(in *incident.Incident, others []*incident.Incident) []incident.Related {
	prefixes := map[string]bool{}
	for _, c := range in.TopPrefixes {
		prefixes[c.Key] = true
	}
	asns := topASNs(in)
	var out []incident.Related
	for _, o := range others {
		if o == nil || o.ID == in.ID {
			continue
		}
		var shared []string
		for _, c := range o.TopPrefixes {
			if prefixes[c.Key] && !slices.Contains(shared, c.Key) {
				shared = append(shared, c.Key)
			}
		}
		if len(shared) == 0 {
			continue
		}
		for _, a := range topASNs(o) {
			if slices.Contains(asns, a) {
				shared = append(shared, a)
			}
		}
		out = append(out, incident.Related{ID: o.ID, Shared: shared})
	}
	return out
}

func topASNs(in *incident.Incident) []string {
	var out []string
	for _, c := range in.TopASNs {
		if len(out) == relatedTopASNs {
			break
		}
		if _, ok := incident.ParseASNKey(c.Key); ok {
			out = append(out, c.Key)
		}
	}
	return out
}
