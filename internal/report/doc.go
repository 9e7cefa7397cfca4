// Package report renders an incident (package incident) as the record an
// organisation sends after a DDoS attack: Markdown and HTML for people — a
// section per question a national CSIRT asks (the UK NCSC's "significant
// cyber incident" guidance: who reports, what happened and when, what was
// affected, impact on services and users, what was done, whether data was
// accessed, technical analysis and indicators, who else was told, next
// steps) with inline SVG charts — and JSON (the redacted record), a STIX 2.1
// bundle (OASIS) and an IODEF v2 document (RFC 7970) for machines.
//
// Privacy (GDPR Art. 9: a visit to a party's site can reveal political
// opinion) is enforced here, once, before any renderer runs: only source
// prefixes at or above an evidence threshold (a share of the incident's
// traffic) are named, never the protected site's own network; every other
// address in free text (timeline messages, paths, user agents) is withheld;
// with Options.Pseudonymise every address that remains is replaced by a
// keyed pseudonym (HMAC-SHA256 under a per-data-directory key, LoadKey).
//
// Render is the entry point; it is deterministic for a given incident and
// Options (Options.Now fixes the generation time), which the golden-file
// tests rely on.
package report
