package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/geo"
	"github.com/portcullis/portcullis/internal/incident"
)

// document is the human-readable report, independent of its markup:
// Markdown and HTML render the same document, so they never disagree.
type document struct {
	Title    string
	Summary  []string    // plain-language paragraphs for anyone
	Glance   [][2]string // key facts, label → value
	Sections []section
	Credits  bool // attribution data shown: carry the data credits
}

type section struct {
	ID, Title string
	Blocks    []block
}

type blockKind int

const (
	bPara blockKind = iota
	bNote           // a highlighted paragraph (a warning or a caveat)
	bList
	bTable
	bChart
	bFacts // two-column label/value table
)

type block struct {
	Kind  blockKind
	Text  string
	Items []string
	Head  []string
	Rows  [][]string
	Right []bool // right-aligned (numeric) columns
	SVG   string
	Alt   string
}

func para(s string) block               { return block{Kind: bPara, Text: s} }
func note(s string) block               { return block{Kind: bNote, Text: s} }
func list(items ...string) block        { return block{Kind: bList, Items: items} }
func factsTable(rows [][2]string) block { return block{Kind: bFacts, Rows: pairs(rows)} }

func pairs(rows [][2]string) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = []string{r[0], r[1]}
	}
	return out
}

// compose lays out the report.
func compose(fx *facts) *document {
	d := &document{Title: "Denial-of-service incident report: " + fx.Site + ", " + fx.Start.Format("2 January 2006")}
	d.Summary = summary(fx)
	d.Glance = glance(fx)
	d.Sections = []section{
		reporterSection(fx),
		whatHappened(fx),
		affected(fx),
		impact(fx),
		whatWasDone(fx),
		dataAccess(fx),
		analysis(fx),
		indicators(fx),
		{ID: "next-steps", Title: "9. Next steps", Blocks: []block{list(fx.NextSteps...)}},
		about(fx),
	}
	d.Credits = len(fx.Countries) > 0 || len(fx.ASNs) > 0 || fx.OtherASNs > 0
	return d
}

func vectorNames(fx *facts) string {
	var names []string
	for _, v := range fx.Vectors {
		names = append(names, v.Name)
	}
	if len(names) == 0 {
		return "unclassified"
	}
	return strings.Join(names, ", ")
}

func summary(fx *facts) []string {
	var what []string
	for _, v := range fx.Vectors {
		if v.Attack {
			what = append(what, v.Plain)
		}
	}
	kind := "a denial-of-service attack"
	if len(what) > 0 {
		kind += ": " + strings.Join(what, "; ")
	}
	// Whole seconds for people; the tables below keep the milliseconds.
	clock := func(t time.Time) string { return t.UTC().Format("15:04:05") }
	when := fmt.Sprintf("On %s, from %s UTC", fmtDay(fx.Start), clock(fx.Start))
	if fx.Open {
		when += fmt.Sprintf(" and still going on when this report was written (%s so far)", humanDur(fx.Duration))
	} else {
		if fx.End.YearDay() != fx.Start.YearDay() || fx.End.Year() != fx.Start.Year() {
			when += fmt.Sprintf(" to %s", fmtTime(fx.End))
		} else {
			when += fmt.Sprintf(" to %s UTC", clock(fx.End))
		}
		when += fmt.Sprintf(" (%s)", humanDur(fx.Duration))
	}
	p1 := fmt.Sprintf("%s, %s was hit by %s.", when, targetName(fx), kind)
	p2 := fmt.Sprintf("Portcullis detected the attack %s after it began.", humanDur(fx.DetectAfter))
	if d := fx.Decisions; d.Made > 0 {
		p2 = fmt.Sprintf("Portcullis detected the attack %s after it began and took %s", humanDur(fx.DetectAfter), plural(d.Made, "mitigation decision"))
		if d.Staff > 0 {
			p2 += fmt.Sprintf(" (%d by staff)", d.Staff)
		}
		p2 += "."
	}
	var p3 string
	switch im := fx.Impact; {
	case im != nil && im.Members.Requests+im.Cleared.Requests > 0:
		p3 = fmt.Sprintf("Members kept being served: %s of their requests succeeded during the attack", pct(served(im.Members)))
		if im.Cleared.Requests > 0 {
			p3 += fmt.Sprintf(", and %s of verified visitors' requests", pct(served(im.Cleared)))
		}
		p3 += "."
	case fx.PacketLevel:
		p3 = "The attack was aimed at the network connection rather than at web pages; Portcullis recorded the traffic, not its effect on visitors."
	case im == nil:
		p3 = "The effect on legitimate visitors was not recorded for this incident."
		if o := originSummary(fx); o != "" {
			p3 += " " + o
		}
	default:
		p3 = "No signed-in members or verified visitors used the site during the attack, so their experience was not measured."
	}
	return []string{p1, p2 + " " + p3, fx.Access.Summary}
}

func targetName(fx *facts) string {
	if fx.SiteAddr {
		return "the server at " + fx.Site
	}
	return "the site “" + fx.Site + "”"
}

func glance(fx *facts) [][2]string {
	status, duration := "ended", humanDur(fx.Duration)
	if fx.Open {
		status, duration = "ongoing (initial report)", duration+" so far"
	}
	peak := fmtRate(fx.PeakRPS) + " requests/s"
	if fx.Unit == "packets" {
		peak = fmtRate(fx.PeakPPS) + " packets/s, " + fmtBits(fx.PeakBPS)
	}
	var top []string
	for i, c := range fx.Countries {
		if i == 3 {
			break
		}
		top = append(top, c.Label+" "+pct(c.Share))
	}
	g := [][2]string{
		{"Incident", fx.ID},
		{"Status", status},
		{"Impact on users", impactLabel(fx)},
		{"Attack type", vectorNames(fx)},
		{"Start (UTC)", fmtTime(fx.Start)},
		{"Duration", duration},
		{"Peak", peak},
		{"Total", fmtInt(fx.Volume) + " " + fx.Unit},
		{"Distinct sources", "≈" + fmtInt(fx.Sources)},
	}
	if len(top) > 0 {
		g = append(g, [2]string{"Top countries", strings.Join(top, ", ")})
	}
	return g
}

// impactLabel is the severity for people: "not recorded" when the record
// holds no impact figures (never a grade that would read as "no impact").
func impactLabel(fx *facts) string {
	if fx.Impact == nil {
		return "not recorded"
	}
	return fx.Severity
}

func reporterSection(fx *facts) section {
	r := fx.Reporter
	s := section{ID: "reporter", Title: "1. Who is reporting"}
	or := func(v, dflt string) string {
		if v == "" {
			return dflt
		}
		return v
	}
	s.Blocks = append(s.Blocks, factsTable([][2]string{
		{"Organisation", or(r.Org, "not set (portcullis report --org)")},
		{"Contact", or(r.Name, "not set (--contact-name)")},
		{"Role", or(r.Role, "not set (--role)")},
		{"E-mail", or(r.Email, "not set (--contact)")},
		{"Telephone", or(r.Phone, "not set (--phone)")},
		{"Report generated", fmtTime(fx.Generated) + " by Portcullis"},
	}))
	if r.Org == "" || r.Email == "" {
		s.Blocks = append(s.Blocks, note("Contact details are missing: a CSIRT needs an organisation and an e-mail address to reply to. Generate the report again with --org and --contact."))
	}
	if len(r.Notified) > 0 {
		s.Blocks = append(s.Blocks, para("Also informed:"), list(r.Notified...))
	} else {
		s.Blocks = append(s.Blocks, para("Others informed: none recorded (add them with --notified)."))
	}
	return s
}

func whatHappened(fx *facts) section {
	s := section{ID: "what-happened", Title: "2. What happened and when (UTC)"}
	end := fmtTime(fx.End)
	if fx.Open {
		end = "not yet (ongoing at " + fmtTime(fx.Generated) + ")"
	}
	s.Blocks = append(s.Blocks, factsTable([][2]string{
		{"Attack began", fmtTime(fx.Start)},
		{"Detected", fmtTime(fx.Detected) + " (" + engDur(fx.DetectAfter) + " after it began)"},
		{"Ended", end},
		{"Duration", engDur(fx.Duration)},
	}))
	if len(fx.Vectors) > 0 {
		t := block{Kind: bTable, Head: []string{"Vector", "What it means", "CAPEC"}}
		for _, v := range fx.Vectors {
			ref := v.CAPEC.Ref() + " " + v.CAPEC.Name
			if !v.Attack {
				ref = "— (not an attack)"
			}
			t.Rows = append(t.Rows, []string{v.Name, v.Plain, ref})
		}
		s.Blocks = append(s.Blocks, t)
	}
	alt := "Traffic over time; the shaded bands show when the site was under attack and recovering."
	s.Blocks = append(s.Blocks, block{Kind: bChart, SVG: trafficChart(fx), Alt: alt})
	if len(fx.Series) == 0 {
		s.Blocks = append(s.Blocks, para("No per-second series was recorded for this incident; the chart shows the rates the detectors measured at each change of state, and the peak."))
	} else {
		s.Blocks = append(s.Blocks, seriesTable(fx))
	}
	rows, omitted := fx.topEvents(fx.opts.MaxEvents)
	t := block{Kind: bTable, Head: []string{"Time (UTC)", "Event", "By", "Details"}}
	for _, e := range rows {
		if e.Kind == "decision" {
			continue // listed in "What was done"
		}
		t.Rows = append(t.Rows, []string{fmtTime(e.Time), eventLabel(e), e.Actor, e.Message})
	}
	if len(t.Rows) > 0 {
		s.Blocks = append(s.Blocks, para("Timeline:"), t)
	}
	if omitted > 0 {
		what := fmt.Sprintf("%d further timeline entries", omitted)
		verb := "are"
		if omitted == 1 {
			what, verb = "1 further timeline entry", "is"
		}
		s.Blocks = append(s.Blocks, para(fmt.Sprintf("%s (decision refreshes, or beyond the first %d) %s listed only in the JSON, STIX and IODEF exports.", what, maxEvents(fx.opts.MaxEvents), verb)))
	}
	return s
}

func shadowText(n int) string {
	if n == 1 {
		return "1 decision was"
	}
	return fmt.Sprintf("%d decisions were", n)
}

func eventLabel(e event) string {
	switch e.Kind {
	case "state":
		return "state: " + string(e.From) + " → " + string(e.To)
	case "decision":
		if e.Shadow {
			return "decision (shadow)"
		}
		return "decision: " + e.Change
	}
	return e.Kind
}

// seriesTable sums the per-second series by verdict.
func seriesTable(fx *facts) block {
	tot := incident.SumSeries(fx.Series)
	var peak uint64
	for _, p := range fx.Series {
		peak = max(peak, p.Requests)
	}
	t := block{Kind: bTable, Head: []string{"Over the recorded seconds", "Count", "Share"}, Right: []bool{false, true, true}}
	if tot.Requests == 0 {
		t.Rows = append(t.Rows, []string{"packets", fmtInt(tot.Packets), ""})
		return t
	}
	frac := func(n uint64) string { return pct(float64(n) / float64(tot.Requests)) }
	t.Rows = append(t.Rows, []string{"requests received", fmtInt(tot.Requests), "100%"})
	for _, r := range []struct {
		name string
		n    uint64
	}{{"passed to the site", tot.Passed}, {"challenged", tot.Challenged}, {"throttled (rate limit)", tot.Throttled}, {"blocked", tot.Blocked}, {"shed (overload protection)", tot.Shed}, {"origin errors", tot.OriginErrors}} {
		t.Rows = append(t.Rows, []string{r.name, fmtInt(r.n), frac(r.n)})
	}
	return t
}

func affected(fx *facts) section {
	s := section{ID: "affected", Title: "3. What was affected"}
	if fx.SiteAddr {
		s.Blocks = append(s.Blocks, para(fmt.Sprintf("The target was the address %s, protected by Portcullis. The attack worked at the network level (%s): it tried to fill the connection or the server's capacity to accept connections, not to use any page.", fx.Site, vectorNames(fx))))
	} else {
		s.Blocks = append(s.Blocks, para(fmt.Sprintf("The target was the site “%s”, protected by Portcullis.", fx.Site)))
	}
	var rows [][2]string
	if fx.Requests > 0 || fx.PeakRPS > 0 {
		rows = append(rows, [2]string{"Peak request rate (detector, sliding window; the chart counts clock seconds)", fmtRate(fx.PeakRPS) + " requests/s"}, [2]string{"Requests during the incident", fmtInt(fx.Requests)})
	}
	if fx.Packets > 0 || fx.PeakPPS > 0 {
		rows = append(rows, [2]string{"Peak packet rate", fmtRate(fx.PeakPPS) + " packets/s"}, [2]string{"Peak bandwidth", fmtBits(fx.PeakBPS)}, [2]string{"Packets during the incident", fmtInt(fx.Packets)})
	}
	rows = append(rows, [2]string{"Distinct source addresses (estimate)", fmtInt(fx.Sources)})
	s.Blocks = append(s.Blocks, factsTable(rows))
	return s
}

func impact(fx *facts) section {
	s := section{ID: "impact", Title: "4. Impact on services and users"}
	if fx.Severity != "unknown" {
		s.Blocks = append(s.Blocks, para("Impact on legitimate users: "+fx.Severity+" (low: at least 99% of members' and verified visitors' requests were served; medium: at least 90%; high: fewer)."))
	}
	if svc := serviceLines(fx); len(svc) > 0 {
		s.Blocks = append(s.Blocks, para("The service:"), list(svc...))
	}
	im := fx.Impact
	if im == nil {
		msg := "Not recorded: Portcullis did not measure the effect on legitimate users for this incident. This does not mean there was none."
		if !fx.PacketLevel && fx.Integrity != nil {
			msg = "Not recorded: this incident was reconstructed from a recorded access log, which cannot tell signed-in members or verified visitors from anyone else, so how they fared is unknown — not zero. The per-second series above shows every request by the answer it got."
		}
		if fx.PacketLevel {
			msg = "This was a network-level incident: Portcullis saw the flood arriving, not the experience of the people using the service. The service's own monitoring should say whether it stayed reachable."
		}
		return appendBlocks(s, note(msg))
	}
	t := block{Kind: bTable, Head: []string{"Who", "Requests", "Served", "Response time p95", "Normally"}, Right: []bool{false, true, true, true, true}}
	for _, c := range []struct {
		name string
		c    incident.CohortImpact
	}{{"Members (signed in)", im.Members}, {"Verified visitors (passed a challenge)", im.Cleared}} {
		share := "—" // none of their requests: nothing to measure, not 0%
		if c.c.Requests > 0 {
			share = pct(served(c.c))
		}
		t.Rows = append(t.Rows, []string{c.name, fmtInt(c.c.Requests), share, latency(c.c.LatencyP95), latency(c.c.BaselineLatencyP95)})
	}
	s.Blocks = append(s.Blocks, t)
	var items []string
	var challenged uint64
	for _, p := range fx.Series {
		challenged += p.Challenged
	}
	switch {
	case im.ChallengesShown > 0:
		items = append(items, fmt.Sprintf("%s challenges shown, %s solved (%s).", fmtInt(im.ChallengesShown), fmtInt(im.ChallengesSolved), pct(float64(im.ChallengesSolved)/float64(im.ChallengesShown))))
	case challenged > 0:
		// The series counts every challenge verdict; a challenge page is
		// shown only to a request for a page (or a form post).
		items = append(items, fmt.Sprintf("%s requests were refused pending a browser check, but none asked for a page that could show it (scripts, API calls, tools that do not accept HTML): no challenge page was shown or solved.", fmtInt(challenged)))
	}
	if im.Shed > 0 {
		items = append(items, fmt.Sprintf("%s requests refused by overload protection (load shedding) to keep the site up.", fmtInt(im.Shed)))
	}
	items = append(items, fmt.Sprintf("Known legitimate users caught by a mitigation (collateral, estimated): %s.", fmtInt(im.Collateral)))
	return appendBlocks(s, list(items...))
}

func latency(d interface{ Milliseconds() int64 }) string {
	switch ms := d.Milliseconds(); {
	case ms == 0:
		return "—"
	case ms >= 1000:
		return strconv.FormatFloat(float64(ms)/1000, 'f', 1, 64) + " s"
	default:
		return fmt.Sprintf("%d ms", ms)
	}
}

func appendBlocks(s section, b ...block) section {
	s.Blocks = append(s.Blocks, b...)
	return s
}

func whatWasDone(fx *facts) section {
	s := section{ID: "actions", Title: "5. What was done"}
	d := fx.Decisions
	if d.Total == 0 && d.OperatorEvents == 0 {
		s.Blocks = append(s.Blocks, para("No mitigation decisions were recorded for this incident: Portcullis detected and recorded the attack (for a replayed capture, or in observe mode, it does not act)."))
		return s
	}
	line := capital(plural(d.Made, "mitigation decision")) + " put in force"
	if acts := d.actions(); len(acts) > 0 {
		line += " (" + strings.Join(acts, ", ") + ")"
	}
	if d.Staff > 0 {
		line += fmt.Sprintf(", %d of them by staff (%s)", d.Staff, strings.Join(d.StaffNames, ", "))
	} else {
		line += ", all automatically by the policy"
	}
	if d.Lifted > 0 {
		line += "; " + plural(d.Lifted, "decision") + " lifted"
	}
	if d.Refreshes > 0 {
		line += "; " + plural(d.Refreshes, "renewal") + " of decisions already in force"
	}
	s.Blocks = append(s.Blocks, para(line+"."))
	if d.Shadow > 0 {
		s.Blocks = append(s.Blocks, note(shadowText(d.Shadow)+" in shadow mode: recorded to show what would have happened, not enforced."))
	}
	rows, _ := fx.topEvents(fx.opts.MaxEvents)
	t := block{Kind: bTable, Head: []string{"Time (UTC)", "Change", "Action", "By", "Details"}}
	for _, e := range rows {
		switch e.Kind {
		case "decision":
			t.Rows = append(t.Rows, []string{fmtTime(e.Time), e.Change, strings.ReplaceAll(e.Action, "_", " "), e.Actor, e.Message})
		case "operator":
			t.Rows = append(t.Rows, []string{fmtTime(e.Time), "operator", "", e.Actor, e.Message})
		}
	}
	if len(t.Rows) > 0 {
		s.Blocks = append(s.Blocks, t)
	}
	return s
}

func dataAccess(fx *facts) section {
	s := section{ID: "data", Title: "6. Was any data accessed?"}
	if fx.Access.Concern {
		s.Blocks = append(s.Blocks, note(fx.Access.Summary))
	} else {
		s.Blocks = append(s.Blocks, para(fx.Access.Summary))
	}
	if len(fx.Access.Evidence) > 0 {
		s.Blocks = append(s.Blocks, para("Evidence:"), list(fx.Access.Evidence...))
	}
	return s
}

func analysis(fx *facts) section {
	s := section{ID: "analysis", Title: "7. Technical analysis: where the traffic came from"}
	switch {
	case fx.Spoofed:
		s.Blocks = append(s.Blocks, note(fmt.Sprintf("The source addresses look forged (spoofed): about %s distinct sources sent %s packets, almost one address per packet. Countries and networks below describe the forged addresses, not the attacker.", fmtInt(fx.Sources), fmtInt(fx.Packets))))
	case fx.Reflected:
		s.Blocks = append(s.Blocks, note("The sources are reflectors: third-party servers the attacker tricked into sending replies to us by forging our address. Their operators are not the attacker, but can stop the abuse."))
	}
	s.Blocks = append(s.Blocks, para(fmt.Sprintf("Shares are of the %s %s seen during the incident.", fmtInt(fx.Volume), fx.Unit)))
	if len(fx.Countries) > 0 {
		s.Blocks = append(s.Blocks, block{Kind: bChart, SVG: barChart("Top source countries", fx.Countries, 10), Alt: "Top source countries"}, shareTable("Country", fx.Unit, fx.Countries))
	}
	if len(fx.ASNs) > 0 {
		s.Blocks = append(s.Blocks, block{Kind: bChart, SVG: barChart("Top source networks (ASNs)", fx.ASNs, 10), Alt: "Top source networks"})
	}
	if len(fx.ASNs) > 0 || fx.OtherASNs > 0 {
		t := shareTable("Network (ASN)", fx.Unit, fx.ASNs)
		if fx.OtherASNs > 0 {
			t.Rows = append(t.Rows, []string{fx.otherNetworksLabel(), fmtInt(fx.OtherASNCount), pct(fx.OtherASNShare)})
		}
		s.Blocks = append(s.Blocks, para(fmt.Sprintf("Source networks (autonomous systems) are named only when they sent at least %s of the traffic; the others are counted together.", pct(fx.MinShare))), t)
	}
	if len(fx.Paths) > 0 {
		s.Blocks = append(s.Blocks, para("Most requested paths (at or above the evidence threshold):"), shareTable("Path", fx.Unit, fx.Paths))
	}
	if len(fx.Agents) > 0 {
		s.Blocks = append(s.Blocks, para("Most common user agents (at or above the evidence threshold):"), shareTable("User agent", fx.Unit, fx.Agents))
	}
	return s
}

func shareTable(what, unit string, rows []share) block {
	t := block{Kind: bTable, Head: []string{what, capital(unit), "Share"}, Right: []bool{false, true, true}}
	for _, r := range rows {
		t.Rows = append(t.Rows, []string{r.Label, fmtInt(r.Count), pct(r.Share)})
	}
	return t
}

func maxEvents(n int) int {
	if n <= 0 {
		return 200
	}
	return n
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func indicators(fx *facts) section {
	s := section{ID: "indicators", Title: "8. Indicators"}
	s.Blocks = append(s.Blocks, para(fmt.Sprintf("Source networks are named only when they sent at least %s of the incident's traffic (the evidence threshold), so that no legitimate visitor is named.", pct(fx.MinShare))))
	if len(fx.Attackers) == 0 {
		s.Blocks = append(s.Blocks, para("No source network reached the threshold: this attack was spread too thinly for any one network to be evidence."))
	} else {
		t := block{Kind: bTable, Head: []string{"Source network", capital(fx.Unit), "Share", "Routable", "STIX pattern"}, Right: []bool{false, true, true, false, false}}
		for _, a := range fx.Attackers {
			routable := "yes"
			if !a.Public {
				routable = "no (private or reserved)"
			}
			t.Rows = append(t.Rows, []string{a.Display, fmtInt(a.Count), pct(a.Share), routable, stixPattern(fx, a)})
		}
		s.Blocks = append(s.Blocks, t, para(fmt.Sprintf("The %s named here sent %s of the incident's traffic.", plural(len(fx.Attackers), "network"), pct(fx.NamedShare))))
	}
	if fx.Truncated {
		s.Blocks = append(s.Blocks, note(fmt.Sprintf("The record keeps only the %d heaviest source networks, and even the lightest of them is above the threshold: the other %s of the traffic came from networks not recorded one by one, some of which may have reached the threshold too. Networks the shield acted on are in “What was done”; there, one outside this list shows as %s.",
			fx.Recorded, pct(fx.UnlistedShare), withheld)))
	}
	if fx.Withheld > 0 {
		s.Blocks = append(s.Blocks, para(fmt.Sprintf("%d further source networks (%s of the traffic) are below the threshold or the target's own network, and are withheld.", fx.Withheld, pct(fx.WithheldShare))))
	}
	if fx.Pseudonymised {
		s.Blocks = append(s.Blocks, note("Addresses in this report are pseudonyms (keyed hashes): the same address gives the same pseudonym in every report from this installation, but no one without this installation's key can recover the address from it."))
	}
	s.Blocks = append(s.Blocks, para("Machine-readable indicators: portcullis report --format stix (STIX 2.1) or --format iodef (IODEF, RFC 7970)."))
	if len(fx.Related) > 0 {
		t := block{Kind: bTable, Head: []string{"Earlier incident", "Shared sources"}}
		for _, r := range fx.Related {
			t.Rows = append(t.Rows, []string{r.ID, strings.Join(r.Shared, ", ")})
		}
		s.Blocks = append(s.Blocks, para("Related incidents (same attackers):"), t)
	}
	return s
}

func about(fx *facts) section {
	s := section{ID: "about", Title: "About this report"}
	items := []string{
		"Times are in UTC. Counts are requests for web incidents and packets for network incidents, scaled by any sampling rate.",
		fmt.Sprintf("Privacy: visitors' addresses never appear. Source networks appear only at or above %s of the traffic; other addresses in the record are withheld.", pct(fx.MinShare)),
	}
	if fx.Pseudonymised {
		items = append(items, "Pseudonymised for sharing: every address and network is replaced by a keyed hash (HMAC-SHA256).")
	}
	items = append(items, "Attack classes refer to MITRE CAPEC (https://capec.mitre.org).")
	if len(fx.Countries) > 0 || len(fx.ASNs) > 0 || fx.OtherASNs > 0 {
		items = append(items, strings.Split(geo.Credits, "\n")...)
	}
	return appendBlocks(s, list(items...))
}
