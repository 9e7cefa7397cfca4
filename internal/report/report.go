package report

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// Format names an output format of Render.
type Format string

// The formats Render writes.
const (
	// Markdown is a report for people: a section per question a national
	// CSIRT asks, with tables and inline SVG charts.
	Markdown Format = "md"
	// HTML is the same report as one self-contained page (inline CSS and
	// SVG, no scripts, no external resources).
	HTML Format = "html"
	// JSON is the full incident record after redaction, with the report's
	// metadata and assessment.
	JSON Format = "json"
	// STIX is a STIX 2.1 bundle (OASIS STIX Version 2.1, 2021).
	STIX Format = "stix"
	// IODEF is an IODEF v2 document (RFC 7970).
	IODEF Format = "iodef"
)

// Formats lists every format, in the order the CLI documents them.
var Formats = []Format{Markdown, HTML, JSON, STIX, IODEF}

// ErrFormat: an unknown format name.
var ErrFormat = errors.New("report: unknown format")

// ParseFormat parses a format name ("md", "markdown", "html", "json",
// "stix", "iodef"); errors wrap ErrFormat.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "md", "markdown":
		return Markdown, nil
	case "html":
		return HTML, nil
	case "json":
		return JSON, nil
	case "stix", "stix2", "stix2.1":
		return STIX, nil
	case "iodef", "xml":
		return IODEF, nil
	}
	return "", fmt.Errorf("%w %q (want md, html, json, stix or iodef)", ErrFormat, s)
}

// Ext returns the conventional file name suffix for f (".md", ".html",
// ".json", ".stix.json", ".iodef.xml").
func (f Format) Ext() string {
	switch f {
	case STIX:
		return ".stix.json"
	case IODEF:
		return ".iodef.xml"
	}
	return "." + string(f)
}

// Reporter is who sends the report: the NCSC asks for the organisation, the
// person's role and contact details, and who else has been told.
type Reporter struct {
	// Org is the reporting organisation's name.
	Org string `json:"organisation,omitempty"`
	// Name and Role are the contact person's name and role.
	Name string `json:"name,omitempty"`
	Role string `json:"role,omitempty"`
	// Email and Phone are the contact details.
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
	// Notified lists who else has been told (other CSIRTs, the hosting
	// provider, the police, members).
	Notified []string `json:"notified,omitempty"`
}

// DefaultMinShare is the default evidence threshold: a source prefix is
// named only when it sent at least 1% of the incident's traffic.
const DefaultMinShare = 0.01

// Options tune a report.
type Options struct {
	// Reporter fills the contact section and the STIX identity / IODEF
	// Contact.
	Reporter Reporter
	// MinShare is the evidence threshold (0 < MinShare ≤ 1; 0 means
	// DefaultMinShare): a source prefix, source network (ASN), path or
	// user agent is named only when it accounts for at least this share of
	// the incident's traffic. Below it an entry might be a legitimate
	// visitor (or a visitor's ISP) and is withheld, counted only in
	// aggregate (ASNs: one "other networks" row in every format).
	// Countries are aggregates and are always listed.
	MinShare float64
	// Pseudonymise replaces every address and prefix that appears with a
	// keyed pseudonym (HMAC-SHA256 under Key, RFC 2104), for sharing.
	Pseudonymise bool
	// Key is the pseudonymisation key (LoadKey); required, at least 16
	// bytes, when Pseudonymise is set.
	Key []byte
	// Now is the report's generation time; zero means time.Now().
	Now time.Time
	// MaxEvents caps the timeline rows in Markdown and HTML (the JSON,
	// STIX and IODEF exports carry all); 0 means 200.
	MaxEvents int
}

// Render writes in as format f to w. Legitimate visitors' addresses never
// appear: only source prefixes and ASNs at or above the evidence threshold
// are named (never the protected site's own network), and every other
// address in free text (timeline messages, paths, user agents) is withheld. Errors
// wrap ErrFormat, ErrKey, or the writer's error.
func Render(w io.Writer, in *incident.Incident, f Format, opts Options) error {
	if in == nil {
		return errors.New("report: no incident")
	}
	if opts.Pseudonymise && len(opts.Key) < 16 {
		return ErrKey
	}
	if opts.MinShare < 0 || opts.MinShare > 1 {
		return fmt.Errorf("report: evidence threshold %g outside 0..1", opts.MinShare)
	}
	fx := build(in, opts)
	var err error
	switch f {
	case Markdown:
		err = writeMarkdown(w, fx)
	case HTML:
		err = writeHTML(w, fx)
	case JSON:
		err = writeJSON(w, fx)
	case STIX:
		err = writeSTIX(w, fx)
	case IODEF:
		err = writeIODEF(w, fx)
	default:
		return fmt.Errorf("%w %q", ErrFormat, f)
	}
	if err != nil {
		return fmt.Errorf("report: %s: %w", f, err)
	}
	return nil
}
