package report

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// IODEF v2, RFC 7970. Element order follows the schema (Section 8); the
// tests validate every golden document against it with xmllint.

const iodefNS = "urn:ietf:params:xml:ns:iodef-2.0"

type iodefDoc struct {
	XMLName  xml.Name      `xml:"urn:ietf:params:xml:ns:iodef-2.0 IODEF-Document"`
	Version  string        `xml:"version,attr"`
	Lang     string        `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	Incident iodefIncident `xml:"Incident"`
}

type iodefIncidentID struct {
	Name  string `xml:"name,attr"`
	Value string `xml:",chardata"`
}

type iodefIncident struct {
	Purpose         string              `xml:"purpose,attr"`
	Status          string              `xml:"status,attr,omitempty"`
	IncidentID      iodefIncidentID     `xml:"IncidentID"`
	RelatedActivity []iodefRelated      `xml:"RelatedActivity"`
	DetectTime      string              `xml:"DetectTime,omitempty"`
	StartTime       string              `xml:"StartTime,omitempty"`
	EndTime         string              `xml:"EndTime,omitempty"`
	GenerationTime  string              `xml:"GenerationTime"`
	Description     []string            `xml:"Description"`
	Discovery       *iodefDiscovery     `xml:"Discovery"`
	Assessment      iodefAssessment     `xml:"Assessment"`
	Method          []iodefMethod       `xml:"Method"`
	Contact         []iodefContact      `xml:"Contact"`
	EventData       []iodefEventData    `xml:"EventData"`
	IndicatorData   *iodefIndicatorData `xml:"IndicatorData"`
	History         *iodefHistory       `xml:"History"`
	AdditionalData  []iodefExtension    `xml:"AdditionalData"`
}

type iodefRelated struct {
	IncidentID  []iodefIncidentID `xml:"IncidentID"`
	Description []string          `xml:"Description"`
}

type iodefDiscovery struct {
	Source      string   `xml:"source,attr"`
	Description []string `xml:"Description"`
}

type iodefAssessment struct {
	Occurrence       string              `xml:"occurrence,attr"`
	IncidentCategory []string            `xml:"IncidentCategory"`
	SystemImpact     []iodefSystemImpact `xml:"SystemImpact"`
	BusinessImpact   []iodefSystemImpact `xml:"BusinessImpact"`
	TimeImpact       []iodefTimeImpact   `xml:"TimeImpact"`
	Counter          []iodefCounter      `xml:"Counter"`
	MitigatingFactor []string            `xml:"MitigatingFactor"`
}

// iodefSystemImpact serves SystemImpact and BusinessImpact (same shape for
// what Portcullis fills: severity, completion or type, description).
type iodefSystemImpact struct {
	Severity    string   `xml:"severity,attr,omitempty"`
	Completion  string   `xml:"completion,attr,omitempty"`
	Type        string   `xml:"type,attr"`
	Description []string `xml:"Description"`
}

type iodefTimeImpact struct {
	Metric   string `xml:"metric,attr"`
	Duration string `xml:"duration,attr"`
	Value    string `xml:",chardata"`
}

type iodefCounter struct {
	Type     string `xml:"type,attr"`
	Unit     string `xml:"unit,attr"`
	ExtUnit  string `xml:"ext-unit,attr,omitempty"`
	Meaning  string `xml:"meaning,attr,omitempty"`
	Duration string `xml:"duration,attr,omitempty"`
	Value    string `xml:",chardata"`
}

type iodefMethod struct {
	Reference   []iodefReference `xml:"Reference"`
	Description []string         `xml:"Description"`
}

type iodefReference struct {
	URL         []string `xml:"URL"`
	Description []string `xml:"Description"`
}

type iodefContact struct {
	Role         string         `xml:"role,attr"`
	Type         string         `xml:"type,attr"`
	ContactName  []string       `xml:"ContactName"`
	ContactTitle []string       `xml:"ContactTitle"`
	Description  []string       `xml:"Description"`
	Email        []iodefEmail   `xml:"Email"`
	Telephone    []iodefPhone   `xml:"Telephone"`
	Contact      []iodefContact `xml:"Contact"`
}

type iodefEmail struct {
	EmailTo string `xml:"EmailTo"`
}

type iodefPhone struct {
	TelephoneNumber string `xml:"TelephoneNumber"`
}

type iodefEventData struct {
	Description []string    `xml:"Description"`
	DetectTime  string      `xml:"DetectTime,omitempty"`
	StartTime   string      `xml:"StartTime,omitempty"`
	EndTime     string      `xml:"EndTime,omitempty"`
	Flow        []iodefFlow `xml:"Flow"`
}

type iodefFlow struct {
	System []iodefSystem `xml:"System"`
}

type iodefSystem struct {
	Category    string          `xml:"category,attr"`
	Spoofed     string          `xml:"spoofed,attr,omitempty"`
	Ownership   string          `xml:"ownership,attr,omitempty"`
	Node        iodefNode       `xml:"Node"`
	NodeRole    []iodefNodeRole `xml:"NodeRole"`
	Counter     []iodefCounter  `xml:"Counter"`
	Description []string        `xml:"Description"`
}

type iodefNode struct {
	DomainData []iodefDomainData `xml:"DomainData"`
	Address    []iodefAddress    `xml:"Address"`
}

type iodefDomainData struct {
	Name string `xml:"Name"`
}

type iodefAddress struct {
	Category    string `xml:"category,attr"`
	ExtCategory string `xml:"ext-category,attr,omitempty"`
	Value       string `xml:",chardata"`
}

type iodefNodeRole struct {
	Category string `xml:"category,attr"`
}

type iodefIndicatorData struct {
	Indicator []iodefIndicator `xml:"Indicator"`
}

type iodefIndicator struct {
	IndicatorID iodefIndicatorID `xml:"IndicatorID"`
	Description []string         `xml:"Description"`
	StartTime   string           `xml:"StartTime,omitempty"`
	EndTime     string           `xml:"EndTime,omitempty"`
	Observable  iodefObservable  `xml:"Observable"`
	NodeRole    []iodefNodeRole  `xml:"NodeRole"`
}

type iodefIndicatorID struct {
	Name    string `xml:"name,attr"`
	Version string `xml:"version,attr"`
	Value   string `xml:",chardata"`
}

type iodefObservable struct {
	Address iodefAddress `xml:"Address"`
}

type iodefHistory struct {
	Item []iodefHistoryItem `xml:"HistoryItem"`
}

type iodefHistoryItem struct {
	Action      string   `xml:"action,attr"`
	ExtAction   string   `xml:"ext-action,attr,omitempty"`
	DateTime    string   `xml:"DateTime"`
	Description []string `xml:"Description"`
}

type iodefExtension struct {
	DType   string `xml:"dtype,attr"`
	Meaning string `xml:"meaning,attr,omitempty"`
	Value   string `xml:",chardata"`
}

func iodefTime(t time.Time) string { return t.UTC().Format(stixTimeLayout) }

func iodefFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// iodefName is the namespace for incident and indicator ids: the domain of
// the contact address (RFC 7970 asks for the CSIRT's FQDN), else the
// organisation, else "portcullis".
func iodefName(r Reporter) string {
	if _, dom, ok := strings.Cut(r.Email, "@"); ok && dom != "" {
		return dom
	}
	if r.Org != "" {
		return r.Org
	}
	return "portcullis"
}

// iodefAddr returns the Address element for an address or prefix as it
// appears in the report (a pseudonym becomes an ext-value).
func iodefAddr(fx *facts, display string, v4, prefix bool) iodefAddress {
	if fx.Pseudonymised {
		return iodefAddress{Category: "ext-value", ExtCategory: "pseudonym", Value: display}
	}
	cat := "ipv6-"
	if v4 {
		cat = "ipv4-"
	}
	if prefix {
		cat += "net"
	} else {
		cat += "addr"
	}
	return iodefAddress{Category: cat, Value: display}
}

func writeIODEF(w io.Writer, fx *facts) error {
	name := iodefName(fx.Reporter)
	inc := iodefIncident{
		Purpose:        "reporting",
		Status:         "resolved",
		IncidentID:     iodefIncidentID{Name: name, Value: fx.ID},
		StartTime:      iodefTime(fx.Start),
		GenerationTime: iodefTime(fx.Generated),
		Description:    summary(fx),
		Discovery:      &iodefDiscovery{Source: "nidps", Description: []string{"Detected by Portcullis, the DDoS shield in front of the service, " + engDur(fx.DetectAfter) + " after the attack began."}},
	}
	if fx.Open {
		inc.Status = "in-progress"
	} else {
		inc.EndTime = iodefTime(fx.End)
	}
	if !fx.Detected.IsZero() {
		inc.DetectTime = iodefTime(fx.Detected)
	}
	for _, r := range fx.Related {
		inc.RelatedActivity = append(inc.RelatedActivity, iodefRelated{
			IncidentID:  []iodefIncidentID{{Name: name, Value: r.ID}},
			Description: []string{"Shares sources with this incident: " + strings.Join(r.Shared, ", ")},
		})
	}
	inc.Assessment = iodefAssess(fx)
	seen := map[string]bool{}
	for _, v := range fx.Vectors {
		if !v.Attack || seen[v.CAPEC.Ref()] {
			continue
		}
		seen[v.CAPEC.Ref()] = true
		m := iodefMethod{Reference: []iodefReference{{URL: []string{v.CAPEC.URL()}, Description: []string{v.CAPEC.Ref() + " " + v.CAPEC.Name}}}}
		for _, o := range fx.Vectors {
			if o.Attack && o.CAPEC == v.CAPEC {
				m.Description = append(m.Description, o.Name+": "+o.Plain)
			}
		}
		inc.Method = append(inc.Method, m)
	}
	inc.Contact = iodefContacts(fx.Reporter)
	inc.EventData = []iodefEventData{iodefEvents(fx)}
	if ed, ok := iodefNetworks(fx); ok {
		inc.EventData = append(inc.EventData, ed)
	}
	if len(fx.Attackers) > 0 {
		ind := &iodefIndicatorData{}
		for _, a := range fx.Attackers {
			sum := sha1.Sum([]byte(a.Display))
			in := iodefIndicator{
				IndicatorID: iodefIndicatorID{Name: name, Version: "1", Value: "ind-" + hex.EncodeToString(sum[:6])},
				Description: []string{sourceRole(fx) + ": " + fmtInt(a.Count) + " " + fx.Unit + " (" + pct(a.Share) + " of the incident's traffic)."},
				StartTime:   iodefTime(fx.Start), EndTime: iodefTime(fx.Until),
				Observable: iodefObservable{Address: iodefAddr(fx, a.Display, a.Prefix.Addr().Is4(), !a.Prefix.IsSingleIP())},
			}
			if fx.Reflected {
				in.NodeRole = []iodefNodeRole{{Category: "reflector"}}
			}
			ind.Indicator = append(ind.Indicator, in)
		}
		inc.IndicatorData = ind
	}
	if h := iodefHistoryOf(fx); len(h.Item) > 0 {
		inc.History = h
	}
	inc.AdditionalData = []iodefExtension{{DType: "string", Meaning: "data-access-assessment", Value: strings.Join(append([]string{fx.Access.Summary}, fx.Access.Evidence...), " ")}}
	if len(fx.NextSteps) > 0 {
		inc.AdditionalData = append(inc.AdditionalData, iodefExtension{DType: "string", Meaning: "next-steps", Value: strings.Join(fx.NextSteps, " ")})
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", " ")
	if err := enc.Encode(iodefDoc{Version: "2.00", Lang: "en", Incident: inc}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func sourceRole(fx *facts) string {
	switch {
	case fx.Reflected:
		return "Reflector network abused in the attack"
	case fx.Spoofed:
		return "Source network (addresses likely spoofed)"
	}
	return "Attacking source network"
}

func iodefAssess(fx *facts) iodefAssessment {
	a := iodefAssessment{Occurrence: "actual", IncidentCategory: []string{"denial-of-service"}}
	si := iodefSystemImpact{Type: "availability-service", Description: append([]string{"Impact on legitimate users: " + impactLabel(fx) + "."}, serviceLines(fx)...)}
	bi := iodefSystemImpact{Type: "loss-of-service", Severity: "unknown"}
	switch fx.Severity {
	case "low":
		si.Severity, si.Completion, bi.Severity = "low", "failed", "low"
	case "medium":
		si.Severity, si.Completion, bi.Severity = "medium", "succeeded", "medium"
	case "high":
		si.Severity, si.Completion, bi.Severity = "high", "succeeded", "high"
	}
	a.SystemImpact = []iodefSystemImpact{si}
	a.BusinessImpact = []iodefSystemImpact{bi}
	if s := fx.Duration.Seconds(); s > 0 {
		a.TimeImpact = []iodefTimeImpact{{Metric: "elapsed", Duration: "second", Value: iodefFloat(s)}}
	}
	if fx.Requests > 0 {
		a.Counter = append(a.Counter, iodefCounter{Type: "count", Unit: "ext-value", ExtUnit: "request", Meaning: "HTTP requests during the incident", Value: strconv.FormatUint(fx.Requests, 10)},
			iodefCounter{Type: "peak", Unit: "ext-value", ExtUnit: "request", Duration: "second", Meaning: "peak request rate", Value: iodefFloat(fx.PeakRPS)})
	}
	if fx.Packets > 0 {
		a.Counter = append(a.Counter, iodefCounter{Type: "count", Unit: "packet", Meaning: "packets during the incident", Value: strconv.FormatUint(fx.Packets, 10)},
			iodefCounter{Type: "peak", Unit: "packet", Duration: "second", Meaning: "peak packet rate", Value: iodefFloat(fx.PeakPPS)},
			iodefCounter{Type: "peak", Unit: "mbit", Duration: "second", Meaning: "peak bandwidth", Value: iodefFloat(fx.PeakBPS / 1e6)})
	}
	if fx.Sources > 0 {
		a.Counter = append(a.Counter, iodefCounter{Type: "count", Unit: "host", Meaning: "distinct source addresses (HyperLogLog estimate)", Value: strconv.FormatUint(fx.Sources, 10)})
	}
	if fx.Decisions.Made > 0 {
		d := fx.Decisions
		by := "all by its policy"
		if d.Staff > 0 {
			by = fmt.Sprintf("%d by staff", d.Staff)
		}
		a.MitigatingFactor = []string{fmt.Sprintf("Portcullis mitigated the attack with %s (%s; %s).", plural(d.Made, "decision"), strings.Join(d.actions(), ", "), by)}
	}
	return a
}

func iodefContacts(r Reporter) []iodefContact {
	org := r.Org
	if org == "" {
		org = "Unnamed organisation (report generated without --org)"
	}
	c := iodefContact{Role: "creator", Type: "organization", ContactName: []string{org}}
	if r.Email != "" {
		c.Email = []iodefEmail{{EmailTo: r.Email}}
	}
	if r.Phone != "" {
		c.Telephone = []iodefPhone{{TelephoneNumber: r.Phone}}
	}
	if r.Name != "" {
		p := iodefContact{Role: "creator", Type: "person", ContactName: []string{r.Name}}
		if r.Role != "" {
			p.ContactTitle = []string{r.Role}
		}
		c.Contact = []iodefContact{p}
	}
	out := []iodefContact{c}
	for _, n := range r.Notified {
		out = append(out, iodefContact{Role: "cc", Type: "organization", ContactName: []string{n}, Description: []string{"Also informed of this incident."}})
	}
	return out
}

func iodefEvents(fx *facts) iodefEventData {
	ed := iodefEventData{Description: []string{"Attack traffic towards the protected service: " + vectorNames(fx) + "."}, StartTime: iodefTime(fx.Start)}
	if !fx.Detected.IsZero() {
		ed.DetectTime = iodefTime(fx.Detected)
	}
	if !fx.Open {
		ed.EndTime = iodefTime(fx.End)
	}
	var flow iodefFlow
	spoofed := "unknown"
	if fx.Spoofed {
		spoofed = "yes"
	}
	unit, ext := "packet", ""
	if fx.Unit == "requests" {
		unit, ext = "ext-value", "request"
	}
	for _, a := range fx.Attackers {
		s := iodefSystem{Category: "source", Spoofed: spoofed,
			Node:        iodefNode{Address: []iodefAddress{iodefAddr(fx, a.Display, a.Prefix.Addr().Is4(), !a.Prefix.IsSingleIP())}},
			Counter:     []iodefCounter{{Type: "count", Unit: unit, ExtUnit: ext, Value: strconv.FormatUint(a.Count, 10)}},
			Description: []string{pct(a.Share) + " of the incident's traffic."}}
		if fx.Reflected {
			s.NodeRole = []iodefNodeRole{{Category: "reflector"}}
		}
		flow.System = append(flow.System, s)
	}
	target := iodefSystem{Category: "target", Ownership: "organization", Description: []string{"The service protected by Portcullis."}}
	switch {
	case fx.SiteAddr:
		target.Node.Address = []iodefAddress{iodefAddr(fx, fx.Site, !strings.Contains(fx.Site, ":"), false)}
	case strings.Contains(fx.Site, "."):
		target.Node.DomainData = []iodefDomainData{{Name: fx.Site}}
	default:
		target.Node.Address = []iodefAddress{{Category: "ext-value", ExtCategory: "portcullis-site", Value: fx.Site}}
	}
	flow.System = append(flow.System, target)
	ed.Flow = []iodefFlow{flow}
	return ed
}

// iodefNetworks is the EventData of the source networks: one source System
// per ASN at or above the evidence threshold (Address category "asn",
// RFC 7970 §3.18.1, its name and share in the Description), and the
// networks below the threshold as one sentence of the EventData's
// Description (never named). False when the record lists no ASNs.
func iodefNetworks(fx *facts) (iodefEventData, bool) {
	line := fx.networksLine()
	if line == "" {
		return iodefEventData{}, false
	}
	ed := iodefEventData{Description: []string{line}, StartTime: iodefTime(fx.Start)}
	if !fx.Open {
		ed.EndTime = iodefTime(fx.End)
	}
	unit, ext := "packet", ""
	if fx.Unit == "requests" {
		unit, ext = "ext-value", "request"
	}
	var flow iodefFlow
	for _, a := range fx.ASNs {
		n, ok := incident.ParseASNKey(a.Key)
		if !ok {
			continue // "unknown": no number to give
		}
		desc := a.Label + ": " + pct(a.Share) + " of the incident's traffic."
		flow.System = append(flow.System, iodefSystem{Category: "source",
			Node:        iodefNode{Address: []iodefAddress{{Category: "asn", Value: strconv.FormatUint(uint64(n), 10)}}},
			Counter:     []iodefCounter{{Type: "count", Unit: unit, ExtUnit: ext, Value: strconv.FormatUint(a.Count, 10)}},
			Description: []string{desc}})
	}
	if len(flow.System) > 0 {
		ed.Flow = []iodefFlow{flow}
	}
	return ed, true
}

// iodefHistoryOf lists the timeline: decisions and operator actions with
// their RFC 7970 action (block-network, rate-limit-host, …), state changes
// as status-new-info.
func iodefHistoryOf(fx *facts) *iodefHistory {
	h := &iodefHistory{}
	for _, e := range fx.Events {
		it := iodefHistoryItem{DateTime: iodefTime(e.Time), Action: "status-new-info"}
		desc := e.Message
		switch e.Kind {
		case "decision":
			it.Action, it.ExtAction = iodefAction(e)
			if e.Actor != "" {
				desc += " [by " + e.Actor + "]"
			}
		case "operator":
			it.Action = "other"
			if e.Actor != "" {
				desc = "Operator action: " + desc
			}
		}
		it.Description = []string{desc}
		h.Item = append(h.Item, it)
	}
	return h
}

// iodefAction maps a decision to an RFC 7970 action-type: blocks and drops
// to block-host / block-network, rate limits to rate-limit-*, a challenge
// to ext-value "challenge", observation to watch-and-report; lifting a
// decision (remove, expire, relax) is "other".
func iodefAction(e event) (action, ext string) {
	switch e.Change {
	case "remove", "expire", "relax":
		return "other", ""
	}
	host := strings.Contains(e.Message, " address ")
	switch e.Action {
	case "block", "drop":
		if host {
			return "block-host", ""
		}
		return "block-network", ""
	case "rate_limit":
		if host {
			return "rate-limit-host", ""
		}
		return "rate-limit-network", ""
	case "challenge":
		return "ext-value", "challenge"
	case "observe":
		return "watch-and-report", ""
	}
	return "other", ""
}
