package alert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// Title is a's one-line headline (e-mail subject, Slack header, generic
// "title"), e.g. "Attack on www: incident opened (http_flood)".
func Title(a *Alert) string {
	s := &a.Incident
	var what string
	switch a.Kind {
	case KindOpened:
		what = "incident opened"
	case KindEscalation:
		what = "attack escalated"
	case KindClosed:
		what = "incident closed after " + s.Duration.String()
	default:
		what = string(a.Kind)
	}
	t := "Attack on " + s.Site + ": " + what
	if len(s.Vectors) > 0 {
		t += " (" + strings.Join(s.Vectors, ", ") + ")"
	}
	return t
}

// facts are the summary's lines as label/value pairs, in display order.
func facts(a *Alert) [][2]string {
	s := &a.Incident
	f := [][2]string{
		{"Incident", s.ID},
		{"Site", s.Site},
		{"Started", utc(s.Start)},
		{"Detected", utc(s.Detected)},
	}
	if !s.End.IsZero() {
		f = append(f, [2]string{"Ended", utc(s.End)})
	}
	f = append(f, [2]string{"Duration", s.Duration.String()})
	f = append(f, [2]string{"Vectors", orNone(strings.Join(s.Vectors, ", "))})
	var peaks []string
	if s.PeakRPS > 0 {
		peaks = append(peaks, num(s.PeakRPS)+" req/s")
	}
	if s.PeakPPS > 0 {
		peaks = append(peaks, num(s.PeakPPS)+" pkt/s")
	}
	if s.PeakBPS > 0 {
		peaks = append(peaks, bits(s.PeakBPS))
	}
	f = append(f, [2]string{"Peak", orNone(strings.Join(peaks, ", "))})
	var totals []string
	if s.Requests > 0 {
		totals = append(totals, strconv.FormatUint(s.Requests, 10)+" requests")
	}
	if s.Packets > 0 {
		totals = append(totals, strconv.FormatUint(s.Packets, 10)+" packets")
	}
	totals = append(totals, "~"+strconv.FormatUint(s.Sources, 10)+" distinct sources")
	f = append(f, [2]string{"Totals", strings.Join(totals, ", ")})
	f = append(f, [2]string{"Top countries", counts(s.TopCountries)})
	f = append(f, [2]string{"Top networks", counts(s.TopASNs)})
	f = append(f, [2]string{"Attacking prefixes", counts(s.AttackingPrefixes)})
	return f
}

func utc(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }

func bits(bps float64) string {
	units := []string{"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"}
	i := 0
	for bps >= 1000 && i < len(units)-1 {
		bps /= 1000
		i++
	}
	return strconv.FormatFloat(bps, 'f', 1, 64) + " " + units[i]
}

// counts renders the first five entries as "NL 1200, DE 300", an ASN with
// its name ("AS64500 EXAMPLE-NET 900000") and the folded row of networks
// below the evidence threshold by its name ("2 other networks 54").
func counts(cs []incident.Count) string {
	var parts []string
	for i, c := range cs {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("… %d more", len(cs)-5))
			break
		}
		label := c.Key
		switch {
		case c.Key == otherNetworks && c.Name != "":
			label = c.Name
		case c.Name != "":
			label += " " + c.Name
		}
		parts = append(parts, label+" "+strconv.FormatUint(c.Count, 10))
	}
	return orNone(strings.Join(parts, ", "))
}

// Text renders the alert as plain text: title, changes, facts.
func Text(a *Alert) string {
	var b strings.Builder
	b.WriteString(Title(a) + "\n\n")
	if len(a.Changes) > 0 {
		b.WriteString("What changed:\n")
		for _, c := range a.Changes {
			b.WriteString("  - " + c + "\n")
		}
		b.WriteString("\n")
	}
	for _, f := range facts(a) {
		fmt.Fprintf(&b, "%-19s %s\n", f[0]+":", f[1])
	}
	b.WriteString("\nRaised " + utc(a.At) + " by Portcullis. Visitors' addresses are never included.\n")
	return b.String()
}

var htmlTmpl = template.Must(template.New("alert").Parse(`<!DOCTYPE html>
<html><body style="font-family:sans-serif">
<h2>{{.Title}}</h2>
{{if .Changes}}<p><b>What changed:</b></p><ul>{{range .Changes}}<li>{{.}}</li>{{end}}</ul>{{end}}
<table cellpadding="4" style="border-collapse:collapse">
{{range .Facts}}<tr><th align="left">{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{end}}</table>
<p style="color:#666">Raised {{.At}} by Portcullis. Visitors' addresses are never included.</p>
</body></html>
`))

// HTML renders the alert as an HTML document (values escaped).
func HTML(a *Alert) (string, error) {
	var b bytes.Buffer
	err := htmlTmpl.Execute(&b, map[string]any{
		"Title": Title(a), "Changes": a.Changes, "Facts": facts(a), "At": utc(a.At),
	})
	if err != nil {
		return "", fmt.Errorf("alert: render html: %w", err)
	}
	return b.String(), nil
}

// genericPayload is the generic webhook body.
type genericPayload struct {
	// Version of this payload shape (1).
	Version int    `json:"version"`
	Title   string `json:"title"`
	Text    string `json:"text"`
	*Alert
}

// GenericJSON renders the generic webhook body: {"version": 1, "title",
// "text", "kind", "at", "changes", "incident": Summary}.
func GenericJSON(a *Alert) ([]byte, error) {
	b, err := json.Marshal(genericPayload{Version: 1, Title: Title(a), Text: Text(a), Alert: a})
	if err != nil {
		return nil, fmt.Errorf("alert: render json: %w", err)
	}
	return b, nil
}

// SlackJSON renders a Slack incoming-webhook message: "text" (the
// notification fallback) and Block Kit "blocks" (header, changes, fields,
// context). Slack limits are respected: header ≤ 150 characters, ≤ 10
// fields per section.
func SlackJSON(a *Alert) ([]byte, error) {
	type text struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	type block struct {
		Type     string `json:"type"`
		Text     *text  `json:"text,omitempty"`
		Fields   []text `json:"fields,omitempty"`
		Elements []text `json:"elements,omitempty"`
	}
	title := Title(a)
	blocks := []block{{Type: "header", Text: &text{"plain_text", truncate(title, 150)}}}
	if len(a.Changes) > 0 {
		var b strings.Builder
		b.WriteString("*What changed*")
		for _, c := range a.Changes {
			b.WriteString("\n• " + slackEscape(c))
		}
		blocks = append(blocks, block{Type: "section", Text: &text{"mrkdwn", truncate(b.String(), 3000)}})
	}
	fs := facts(a)
	for len(fs) > 0 {
		n := min(len(fs), 10)
		var fields []text
		for _, f := range fs[:n] {
			fields = append(fields, text{"mrkdwn", truncate("*"+f[0]+"*\n"+slackEscape(f[1]), 2000)})
		}
		blocks = append(blocks, block{Type: "section", Fields: fields})
		fs = fs[n:]
	}
	blocks = append(blocks, block{Type: "context", Elements: []text{{"mrkdwn", "Raised " + utc(a.At) + " by Portcullis"}}})
	b, err := json.Marshal(map[string]any{"text": slackEscape(title), "blocks": blocks})
	if err != nil {
		return nil, fmt.Errorf("alert: render slack: %w", err)
	}
	return b, nil
}

// slackEscape escapes the three characters Slack's mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// truncate cuts s to at most n runes, marking the cut with "…".
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
