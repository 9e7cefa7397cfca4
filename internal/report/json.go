package report

import (
	"encoding/json"
	"io"
	"time"
)

// jsonReport is the JSON export: the report's metadata, the redacted
// incident record (every field of incident.Incident, with attribution below
// the evidence threshold removed and addresses in free text withheld or
// pseudonymised) and the report's assessment.
type jsonReport struct {
	Report     meta       `json:"report"`
	Incident   any        `json:"incident"`
	Assessment assessment `json:"assessment"`
}

func writeJSON(w io.Writer, fx *facts) error {
	var patterns []string
	seen := map[string]bool{}
	for _, v := range fx.Vectors {
		if v.Attack && !seen[v.CAPEC.Ref()] {
			seen[v.CAPEC.Ref()] = true
			patterns = append(patterns, v.CAPEC.Ref()+" "+v.CAPEC.Name)
		}
	}
	next := fx.NextSteps
	if next == nil {
		next = []string{}
	}
	return writeJSONValue(w, jsonReport{
		Report: meta{
			Generated: fx.Generated, Generator: "portcullis", Reporter: fx.Reporter,
			EvidenceShare: fx.MinShare, Pseudonymised: fx.Pseudonymised,
			WithheldPrefixes: fx.Withheld, WithheldShare: fx.WithheldShare,
			WithheldASNs: fx.OtherASNs, WithheldASNShare: fx.OtherASNShare,
			NamedShare: fx.NamedShare, UnlistedShare: fx.UnlistedShare, PrefixListTruncated: fx.Truncated,
		},
		Incident: fx.rec,
		Assessment: assessment{
			Severity: fx.Severity, Spoofed: fx.Spoofed, Reflected: fx.Reflected,
			AttackPatterns: patterns, DataAccess: fx.Access, NextSteps: next,
		},
	})
}

// meta is the report's own metadata in the JSON export.
type meta struct {
	Generated        time.Time `json:"generated"`
	Generator        string    `json:"generator"`
	Reporter         Reporter  `json:"reporter"`
	EvidenceShare    float64   `json:"evidence_threshold_share"`
	Pseudonymised    bool      `json:"pseudonymised"`
	WithheldPrefixes int       `json:"withheld_prefixes"`
	WithheldShare    float64   `json:"withheld_share"`
	// WithheldASNs networks (ASNs) below the threshold sent
	// WithheldASNShare of the traffic; the record's top_asns folds them
	// into one row with key "other".
	WithheldASNs     int     `json:"withheld_asns"`
	WithheldASNShare float64 `json:"withheld_asn_share"`
	// NamedShare is the share of the traffic the named prefixes sent;
	// UnlistedShare the share the record attributes to no listed prefix;
	// PrefixListTruncated that unlisted prefixes may have reached the
	// threshold (the record keeps only the heaviest few).
	NamedShare          float64 `json:"named_share"`
	UnlistedShare       float64 `json:"unlisted_share"`
	PrefixListTruncated bool    `json:"prefix_list_truncated"`
}

// assessment is the report's reading of the record in the JSON export.
type assessment struct {
	Severity       string   `json:"severity"`
	Spoofed        bool     `json:"sources_spoofed"`
	Reflected      bool     `json:"sources_reflectors"`
	AttackPatterns []string `json:"attack_patterns"`
	DataAccess     finding  `json:"data_access"`
	NextSteps      []string `json:"next_steps"`
}

func writeJSONValue(w interface{ Write([]byte) (int, error) }, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
