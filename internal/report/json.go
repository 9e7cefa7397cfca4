package report

import (
	"io"
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
		},
		Incident: fx.rec,
		Assessment: assessment{
			Severity: fx.Severity, Spoofed: fx.Spoofed, Reflected: fx.Reflected,
			AttackPatterns: patterns, DataAccess: fx.Access, NextSteps: next,
		},
	})
}
