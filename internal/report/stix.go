package report

import (
	"crypto/sha1"
	"encoding/hex"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// STIX 2.1 (OASIS Standard, 10 June 2021). Object ids are UUIDv5 (RFC 4122
// §4.3) derived from the incident, so a refined report of the same incident
// keeps its ids and only "modified" moves on: recipients see a new version
// of the same objects, as §3.6 (versioning) intends. Cyber-observable
// objects use the STIX namespace for their deterministic ids (§2.9).

// stixTimeLayout is the STIX timestamp form (§3.2): UTC, "Z", milliseconds.
const stixTimeLayout = "2006-01-02T15:04:05.000Z"

// indicatorValidity is how long after the attack an indicator stays valid:
// DDoS sources (botnet members, reflectors) change within days.
const indicatorValidity = 7 * 24 * time.Hour

var (
	// portcullisNS is the UUIDv5 namespace of Portcullis' STIX objects.
	portcullisNS = mustUUID("5f0c5a3e-8d0b-4f5e-9a57-3c2b1e7d9a41")
	// stixSCONS is the namespace STIX 2.1 §2.9 fixes for SCO ids.
	stixSCONS = mustUUID("00abedb4-aa42-466c-9c01-fed23315a9b7")
)

func mustUUID(s string) [16]byte {
	var u [16]byte
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		panic("report: bad uuid " + s)
	}
	copy(u[:], b)
	return u
}

// uuid5 returns the name-based (SHA-1) UUID of name in namespace ns
// (RFC 4122 §4.3).
func uuid5(ns [16]byte, name string) string {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	s := h.Sum(nil)[:16]
	s[6] = s[6]&0x0f | 0x50
	s[8] = s[8]&0x3f | 0x80
	x := hex.EncodeToString(s)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

type stixBase struct {
	Type         string `json:"type"`
	SpecVersion  string `json:"spec_version"`
	ID           string `json:"id"`
	Created      string `json:"created,omitempty"`
	Modified     string `json:"modified,omitempty"`
	CreatedByRef string `json:"created_by_ref,omitempty"`
}

type stixExtRef struct {
	SourceName  string `json:"source_name"`
	ExternalID  string `json:"external_id,omitempty"`
	URL         string `json:"url,omitempty"`
	Description string `json:"description,omitempty"`
}

type stixIdentity struct {
	stixBase
	Name               string   `json:"name"`
	Description        string   `json:"description,omitempty"`
	Roles              []string `json:"roles,omitempty"`
	IdentityClass      string   `json:"identity_class"`
	Sectors            []string `json:"sectors,omitempty"`
	ContactInformation string   `json:"contact_information,omitempty"`
}

type stixReport struct {
	stixBase
	Name               string       `json:"name"`
	Description        string       `json:"description"`
	ReportTypes        []string     `json:"report_types"`
	Published          string       `json:"published"`
	ObjectRefs         []string     `json:"object_refs"`
	ExternalReferences []stixExtRef `json:"external_references,omitempty"`
}

type stixAttackPattern struct {
	stixBase
	Name               string       `json:"name"`
	Description        string       `json:"description,omitempty"`
	ExternalReferences []stixExtRef `json:"external_references"`
}

type stixIndicator struct {
	stixBase
	Name           string   `json:"name"`
	Description    string   `json:"description"`
	IndicatorTypes []string `json:"indicator_types"`
	Pattern        string   `json:"pattern"`
	PatternType    string   `json:"pattern_type"`
	ValidFrom      string   `json:"valid_from"`
	ValidUntil     string   `json:"valid_until,omitempty"`
}

type stixObservedData struct {
	stixBase
	FirstObserved  string   `json:"first_observed"`
	LastObserved   string   `json:"last_observed"`
	NumberObserved uint64   `json:"number_observed"`
	ObjectRefs     []string `json:"object_refs"`
}

type stixSCO struct {
	Type        string `json:"type"`
	SpecVersion string `json:"spec_version"`
	ID          string `json:"id"`
	Value       string `json:"value"`
}

// stixAS is an autonomous-system SCO (STIX 2.1 §6.2); its deterministic
// id is derived from "number".
type stixAS struct {
	Type        string `json:"type"`
	SpecVersion string `json:"spec_version"`
	ID          string `json:"id"`
	Number      uint32 `json:"number"`
	Name        string `json:"name,omitempty"`
}

type stixRelationship struct {
	stixBase
	RelationshipType string `json:"relationship_type"`
	Description      string `json:"description,omitempty"`
	SourceRef        string `json:"source_ref"`
	TargetRef        string `json:"target_ref"`
}

type stixBundle struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Objects []any  `json:"objects"`
}

// scoType returns the SCO type for an attacking prefix: ipv4-addr or
// ipv6-addr, or the custom x-portcullis-pseudonym when pseudonymised (a
// pseudonym is not an address and must not be matched as one).
func scoType(fx *facts, a source) string {
	switch {
	case fx.Pseudonymised:
		return "x-portcullis-pseudonym"
	case a.Prefix.Addr().Is4():
		return "ipv4-addr"
	}
	return "ipv6-addr"
}

// stixPattern returns the STIX pattern (§9) matching an attacking prefix.
func stixPattern(fx *facts, a source) string {
	if fx.Pseudonymised {
		return "none (pseudonymised)"
	}
	return "[" + scoType(fx, a) + ":value = '" + a.Display + "']"
}

func stixTime(t time.Time) string { return t.UTC().Format(stixTimeLayout) }

// writeSTIX writes the bundle: the reporting organisation (identity), the
// report referencing every other object, one attack-pattern per CAPEC
// entry, and per attacking prefix an address object, an observed-data and
// (unless pseudonymised) an indicator, with relationships indicator
// "indicates" attack-pattern, indicator "based-on" observed-data and
// attack-pattern "targets" the organisation.
func writeSTIX(w io.Writer, fx *facts) error {
	created := fx.Detected
	if created.IsZero() {
		created = fx.Start
	}
	modified := fx.Generated
	if modified.Before(created) {
		modified = created
	}
	cr, mo := stixTime(created), stixTime(modified)
	org := fx.Reporter.Org
	if org == "" {
		org = "Unnamed organisation (report generated without --org)"
	}
	base := func(typ, name string) stixBase {
		return stixBase{Type: typ, SpecVersion: "2.1", ID: typ + "--" + uuid5(portcullisNS, typ+"|"+org+"|"+fx.ID+"|"+name), Created: cr, Modified: mo}
	}
	ident := stixIdentity{stixBase: stixBase{Type: "identity", SpecVersion: "2.1", ID: "identity--" + uuid5(portcullisNS, "identity|"+org), Created: cr, Modified: mo},
		Name: org, IdentityClass: "organization", Roles: []string{"victim", "reporter"}, ContactInformation: contactLine(fx.Reporter)}
	by := ident.ID
	var objs []any
	var refs []string
	add := func(o any, id string) {
		objs = append(objs, o)
		refs = append(refs, id)
	}
	var patterns []string
	seen := map[string]string{}
	for _, v := range fx.Vectors {
		if !v.Attack {
			continue
		}
		if id, ok := seen[v.CAPEC.Ref()]; ok {
			for i := range objs {
				if ap, ok := objs[i].(stixAttackPattern); ok && ap.ID == id {
					ap.Description += "; " + v.Name + ": " + v.Plain
					objs[i] = ap
				}
			}
			continue
		}
		ap := stixAttackPattern{stixBase: base("attack-pattern", v.CAPEC.Ref()), Name: v.CAPEC.Name,
			Description:        "Observed as " + v.Name + ": " + v.Plain,
			ExternalReferences: []stixExtRef{{SourceName: "capec", ExternalID: v.CAPEC.Ref(), URL: v.CAPEC.URL()}}}
		ap.CreatedByRef = by
		seen[v.CAPEC.Ref()] = ap.ID
		patterns = append(patterns, ap.ID)
		add(ap, ap.ID)
	}
	first, last := stixTime(fx.Start), stixTime(fx.Until)
	validUntil := stixTime(fx.Until.Add(indicatorValidity))
	indType := "malicious-activity"
	if fx.Reflected || fx.Spoofed {
		indType = "anomalous-activity"
	}
	for _, a := range fx.Attackers {
		typ := scoType(fx, a)
		sco := stixSCO{Type: typ, SpecVersion: "2.1", ID: typ + "--" + uuid5(stixSCONS, `{"value":"`+a.Display+`"}`), Value: a.Display}
		add(sco, sco.ID)
		od := stixObservedData{stixBase: base("observed-data", a.Display), FirstObserved: first, LastObserved: last,
			NumberObserved: min(max(a.Count, 1), 999_999_999), ObjectRefs: []string{sco.ID}}
		od.CreatedByRef = by
		add(od, od.ID)
		if fx.Pseudonymised {
			continue
		}
		role := "Attacking source network"
		if fx.Reflected {
			role = "Reflector network (abused by the attacker, not the attacker itself)"
		}
		ind := stixIndicator{stixBase: base("indicator", a.Display), Name: role + " " + a.Display,
			Description: role + " " + a.Display + ": " + fmtInt(a.Count) + " " + fx.Unit + " (" + pct(a.Share) + " of the incident's traffic) from " +
				fmtTime(fx.Start) + " to " + fmtTime(fx.Until) + ". Valid for 7 days after the attack.",
			IndicatorTypes: []string{indType}, Pattern: stixPattern(fx, a), PatternType: "stix", ValidFrom: first, ValidUntil: validUntil}
		ind.CreatedByRef = by
		add(ind, ind.ID)
		for _, ap := range patterns {
			r := stixRelationship{stixBase: base("relationship", "indicates|"+a.Display+"|"+ap), RelationshipType: "indicates", SourceRef: ind.ID, TargetRef: ap}
			r.CreatedByRef = by
			add(r, r.ID)
		}
		r := stixRelationship{stixBase: base("relationship", "based-on|"+a.Display), RelationshipType: "based-on", SourceRef: ind.ID, TargetRef: od.ID}
		r.CreatedByRef = by
		add(r, r.ID)
	}
	// Source networks at or above the threshold: an autonomous-system
	// object and what was observed from it. No indicator: a pattern on a
	// whole network would match its innocent customers too.
	for _, a := range fx.ASNs {
		n, ok := incident.ParseASNKey(a.Key)
		if !ok {
			continue
		}
		as := stixAS{Type: "autonomous-system", SpecVersion: "2.1", ID: "autonomous-system--" + uuid5(stixSCONS, `{"number":`+strconv.FormatUint(uint64(n), 10)+`}`), Number: n, Name: a.Name}
		add(as, as.ID)
		od := stixObservedData{stixBase: base("observed-data", a.Key), FirstObserved: first, LastObserved: last,
			NumberObserved: min(max(a.Count, 1), 999_999_999), ObjectRefs: []string{as.ID}}
		od.CreatedByRef = by
		add(od, od.ID)
	}
	for _, ap := range patterns {
		r := stixRelationship{stixBase: base("relationship", "targets|"+ap), RelationshipType: "targets", SourceRef: ap, TargetRef: ident.ID}
		r.CreatedByRef = by
		add(r, r.ID)
	}
	rep := stixReport{stixBase: base("report", ""), Name: "DDoS incident " + fx.ID + " on " + fx.Site,
		Description: strings.Join(append(summary(fx), fx.networksLine()), "\n\n"), ReportTypes: []string{"threat-report"}, Published: mo,
		ObjectRefs:         append([]string{ident.ID}, refs...),
		ExternalReferences: []stixExtRef{{SourceName: "portcullis", ExternalID: fx.ID, Description: "Portcullis incident id"}}}
	rep.CreatedByRef = by
	bundle := stixBundle{Type: "bundle", ID: "bundle--" + uuid5(portcullisNS, "bundle|"+org+"|"+fx.ID+"|"+mo),
		Objects: append([]any{ident, rep}, objs...)}
	return writeJSONValue(w, bundle)
}

func contactLine(r Reporter) string {
	var parts []string
	for _, p := range []string{r.Name, r.Role, r.Email, r.Phone} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ", ")
}
