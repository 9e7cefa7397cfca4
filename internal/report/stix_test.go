package report

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
)

// STIX 2.1 required properties (OASIS STIX Version 2.1, §3 common
// properties, §4 SDOs, §5 SROs, §6 SCOs), checked on every object of a
// bundle.

var stixIDRe = regexp.MustCompile(`^([a-z0-9][a-z0-9-]+[a-z0-9])--[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// stixTimeRe is the §3.2 timestamp form: RFC 3339, UTC, "Z".
var stixTimeRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$`)

// sdoRequired lists, per SDO/SRO type, the properties §4/§5 require beyond
// the common ones (type, spec_version, id, created, modified).
var sdoRequired = map[string][]string{
	"identity":       {"name"},
	"report":         {"name", "published", "object_refs"},
	"attack-pattern": {"name"},
	"indicator":      {"pattern", "pattern_type", "valid_from"},
	"observed-data":  {"first_observed", "last_observed", "number_observed", "object_refs"},
	"relationship":   {"relationship_type", "source_ref", "target_ref"},
}

// scoTypes are the cyber-observable types the bundle may hold, with their
// required property (§6).
var scoTypes = map[string]string{"ipv4-addr": "value", "ipv6-addr": "value", "x-portcullis-pseudonym": "value"}

// checkSTIX returns every violation of the STIX 2.1 required properties
// in a serialised bundle.
func checkSTIX(data []byte) []string {
	var bundle map[string]any
	if err := json.Unmarshal(data, &bundle); err != nil {
		return []string{"not JSON: " + err.Error()}
	}
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	if bundle["type"] != "bundle" {
		bad("bundle type %v", bundle["type"])
	}
	if id, _ := bundle["id"].(string); !strings.HasPrefix(id, "bundle--") || !stixIDRe.MatchString(id) {
		bad("bundle id %q", id)
	}
	objs, _ := bundle["objects"].([]any)
	if len(objs) == 0 {
		bad("bundle without objects")
	}
	ids := map[string]map[string]any{}
	for _, o := range objs {
		m, _ := o.(map[string]any)
		id, _ := m["id"].(string)
		if ids[id] != nil {
			bad("duplicate id %s", id)
		}
		ids[id] = m
	}
	ref := func(owner, prop string, v any) {
		s, _ := v.(string)
		if ids[s] == nil {
			bad("%s: %s %q resolves to no object in the bundle", owner, prop, s)
		}
	}
	ts := func(owner, prop string, v any) time.Time {
		s, _ := v.(string)
		if !stixTimeRe.MatchString(s) {
			bad("%s: %s %q is not a STIX timestamp", owner, prop, s)
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			bad("%s: %s %q: %v", owner, prop, s, err)
		}
		return t
	}
	for id, m := range ids {
		typ, _ := m["type"].(string)
		if mt := stixIDRe.FindStringSubmatch(id); mt == nil || mt[1] != typ {
			bad("id %q does not match type %q", id, typ)
		}
		if m["spec_version"] != "2.1" {
			bad("%s: spec_version %v, want 2.1", id, m["spec_version"])
		}
		if typ == "autonomous-system" {
			// §6.2: number (integer) is required, and the deterministic
			// id is derived from it (§2.9).
			n, ok := m["number"].(float64)
			if !ok || n < 1 || n != float64(uint32(n)) {
				bad("%s: number %v is not an AS number", id, m["number"])
			}
			if want := "autonomous-system--" + uuid5(stixSCONS, fmt.Sprintf(`{"number":%d}`, uint32(n))); id != want {
				bad("%s: id not derived from the number (want %s)", id, want)
			}
			continue
		}
		if prop, ok := scoTypes[typ]; ok {
			v, _ := m[prop].(string)
			if v == "" {
				bad("%s: missing %s", id, prop)
			}
			if typ != "x-portcullis-pseudonym" {
				if _, err := netip.ParsePrefix(v); err != nil {
					if _, err := netip.ParseAddr(v); err != nil {
						bad("%s: value %q is neither an address nor a CIDR", id, v)
					}
				}
			}
			continue
		}
		req, ok := sdoRequired[typ]
		if !ok {
			bad("%s: unexpected type %q", id, typ)
			continue
		}
		created, modified := ts(id, "created", m["created"]), ts(id, "modified", m["modified"])
		if modified.Before(created) {
			bad("%s: modified %v before created %v", id, modified, created)
		}
		for _, p := range req {
			if v, ok := m[p]; !ok || v == "" || v == nil {
				bad("%s: missing required %s", id, p)
			}
		}
		if by, ok := m["created_by_ref"]; ok {
			ref(id, "created_by_ref", by)
		}
		switch typ {
		case "identity":
			if c, _ := m["identity_class"].(string); c == "" {
				bad("%s: identity_class missing", id) // SHOULD in 2.1; we always set it
			}
		case "report":
			ts(id, "published", m["published"])
			refs, _ := m["object_refs"].([]any)
			if len(refs) == 0 {
				bad("%s: object_refs empty", id)
			}
			for _, r := range refs {
				ref(id, "object_refs", r)
			}
		case "attack-pattern":
			if !hasCAPEC(m) {
				bad("%s: no CAPEC external reference", id)
			}
		case "indicator":
			from := ts(id, "valid_from", m["valid_from"])
			if u, ok := m["valid_until"]; ok && !ts(id, "valid_until", u).After(from) {
				bad("%s: valid_until not after valid_from", id)
			}
			if m["pattern_type"] != "stix" {
				bad("%s: pattern_type %v", id, m["pattern_type"])
			}
			if p, _ := m["pattern"].(string); !stixPatternRe.MatchString(p) {
				bad("%s: pattern %q", id, p)
			}
		case "observed-data":
			first, last := ts(id, "first_observed", m["first_observed"]), ts(id, "last_observed", m["last_observed"])
			if last.Before(first) {
				bad("%s: last_observed before first_observed", id)
			}
			n, _ := m["number_observed"].(float64)
			if n < 1 || n > 999_999_999 {
				bad("%s: number_observed %v outside 1..999,999,999", id, n)
			}
			refs, _ := m["object_refs"].([]any)
			for _, r := range refs {
				ref(id, "object_refs", r)
			}
		case "relationship":
			ref(id, "source_ref", m["source_ref"])
			ref(id, "target_ref", m["target_ref"])
		}
	}
	return errs
}

var stixPatternRe = regexp.MustCompile(`^\[(ipv4-addr|ipv6-addr):value = '[0-9a-fA-F.:/]+'\]$`)

func hasCAPEC(m map[string]any) bool {
	refs, _ := m["external_references"].([]any)
	for _, r := range refs {
		rm, _ := r.(map[string]any)
		if id, _ := rm["external_id"].(string); rm["source_name"] == "capec" && strings.HasPrefix(id, "CAPEC-") {
			return true
		}
	}
	return false
}

// TestSTIXRequiredProperties checks every golden case's bundle against the
// STIX 2.1 required properties, and that the checker catches each kind of
// violation it looks for.
func TestSTIXRequiredProperties(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			data := render(t, tc.load(t), STIX, tc.opts)
			for _, e := range checkSTIX(data) {
				t.Error(e)
			}
		})
	}
	good := render(t, loadFixture(t, "http-flood"), STIX, goldenCases[0].opts)
	mutations := []struct {
		name   string
		mutate func(objs []map[string]any)
	}{
		{name: "indicator without pattern", mutate: func(o []map[string]any) { delete(first(o, "indicator"), "pattern") }},
		{name: "wrong spec_version", mutate: func(o []map[string]any) { first(o, "report")["spec_version"] = "2.0" }},
		{name: "id of another type", mutate: func(o []map[string]any) {
			first(o, "identity")["id"] = strings.Replace(first(o, "identity")["id"].(string), "identity--", "report--", 1)
		}},
		{name: "modified before created", mutate: func(o []map[string]any) { first(o, "attack-pattern")["modified"] = "2000-01-01T00:00:00.000Z" }},
		{name: "dangling object_ref", mutate: func(o []map[string]any) {
			r := first(o, "report")
			r["object_refs"] = append(r["object_refs"].([]any), "indicator--00000000-0000-4000-8000-000000000000")
		}},
		{name: "number_observed zero", mutate: func(o []map[string]any) { first(o, "observed-data")["number_observed"] = 0 }},
		{name: "timestamp without Z", mutate: func(o []map[string]any) { first(o, "indicator")["valid_from"] = "2026-11-29T21:06:36+01:00" }},
		{name: "address SCO with a name", mutate: func(o []map[string]any) { first(o, "ipv4-addr")["value"] = "example.org" }},
	}
	for _, m := range mutations {
		t.Run("checker catches "+m.name, func(t *testing.T) {
			var b struct {
				Type    string           `json:"type"`
				ID      string           `json:"id"`
				Objects []map[string]any `json:"objects"`
			}
			if err := json.Unmarshal(good, &b); err != nil {
				t.Fatal(err)
			}
			m.mutate(b.Objects)
			data, _ := json.Marshal(b)
			if errs := checkSTIX(data); len(errs) == 0 {
				t.Fatal("mutated bundle passed the check")
			}
		})
	}
}

func first(objs []map[string]any, typ string) map[string]any {
	for _, o := range objs {
		if o["type"] == typ {
			return o
		}
	}
	panic("no " + typ)
}

// TestSTIXIndicators checks what the bundle says about the attack: one
// indicator per attacking prefix above the threshold, CAPEC attack
// patterns per vector, and stable ids across regenerations.
func TestSTIXIndicators(t *testing.T) {
	in := loadFixture(t, "http-flood")
	tests := []struct {
		name         string
		opts         Options
		wantPatterns []string
		wantCAPEC    []string
	}{
		{
			name: "default threshold",
			opts: Options{Reporter: testReporter, Now: testNow},
			wantPatterns: []string{"[ipv4-addr:value = '203.0.113.0/24']", "[ipv4-addr:value = '198.51.100.0/24']",
				"[ipv6-addr:value = '2001:db8:66::/48']", "[ipv4-addr:value = '192.0.2.0/24']"},
			wantCAPEC: []string{"CAPEC-469"},
		},
		{
			name:         "threshold 20%",
			opts:         Options{Reporter: testReporter, Now: testNow, MinShare: 0.2},
			wantPatterns: []string{"[ipv4-addr:value = '203.0.113.0/24']"},
			wantCAPEC:    []string{"CAPEC-469"},
		},
		{
			name:      "pseudonymised: no address patterns",
			opts:      Options{Reporter: testReporter, Now: testNow, Pseudonymise: true, Key: testKey},
			wantCAPEC: []string{"CAPEC-469"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b struct {
				Objects []map[string]any `json:"objects"`
			}
			if err := json.Unmarshal(render(t, in, STIX, tc.opts), &b); err != nil {
				t.Fatal(err)
			}
			var patterns, capecs []string
			for _, o := range b.Objects {
				switch o["type"] {
				case "indicator":
					patterns = append(patterns, o["pattern"].(string))
				case "attack-pattern":
					refs := o["external_references"].([]any)
					capecs = append(capecs, refs[0].(map[string]any)["external_id"].(string))
				}
			}
			if fmt.Sprint(patterns) != fmt.Sprint(tc.wantPatterns) {
				t.Errorf("patterns = %q, want %q", patterns, tc.wantPatterns)
			}
			if fmt.Sprint(capecs) != fmt.Sprint(tc.wantCAPEC) {
				t.Errorf("CAPEC = %v, want %v", capecs, tc.wantCAPEC)
			}
		})
	}
}

func TestCAPECMapping(t *testing.T) {
	tests := []struct {
		name, vector string
		want         int
		attack       bool
	}{
		{name: "http flood", vector: "http_flood", want: 469, attack: true},
		{name: "rapid reset", vector: "http2_rapid_reset", want: 469, attack: true},
		{name: "syn flood", vector: "syn_flood", want: 482, attack: true},
		{name: "udp flood", vector: "udp_flood", want: 486, attack: true},
		{name: "amplification", vector: "udp_amplification:ntp", want: 490, attack: true},
		{name: "synack reflection", vector: "tcp_reflection:synack", want: 490, attack: true},
		{name: "unknown flood", vector: "gre_flood", want: 125, attack: true},
		{name: "flash crowd", vector: "flash_crowd", want: 125, attack: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := describe(tc.vector)
			if v.CAPEC.ID != tc.want || v.Attack != tc.attack {
				t.Errorf("describe(%q) = CAPEC-%d attack=%v, want CAPEC-%d attack=%v", tc.vector, v.CAPEC.ID, v.Attack, tc.want, tc.attack)
			}
		})
	}
}
