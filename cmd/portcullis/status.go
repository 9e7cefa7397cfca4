package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portcullis/portcullis/internal/app"
)

// writeStatus renders the admin API's /api/v1/status document (raw JSON in
// b) for a person at a terminal: one block per site with its attack state,
// open incident, decisions, origins and request counts by verdict.
func writeStatus(w io.Writer, b []byte) error {
	var st app.Status
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("status: the admin API answered something that is not a status document: %w", err)
	}
	fmt.Fprintf(w, "portcullis %s — %s\n", st.Version, st.Time.UTC().Format(time.RFC3339))
	for _, s := range st.Sites {
		state := strings.ToUpper(s.State)
		var flags []string
		if s.UnderAttack {
			flags = append(flags, "under-attack mode")
		}
		if s.FlashCrowd {
			flags = append(flags, "flash crowd")
		}
		if len(flags) > 0 {
			state += " (" + strings.Join(flags, ", ") + ")"
		}
		fmt.Fprintf(w, "\nsite %s: %s\n", s.Name, state)
		if in := s.OpenIncident; in != nil {
			fmt.Fprintf(w, "  incident %s since %s: %s; peak %.0f req/s, %d requests, ~%d sources\n",
				in.ID, in.Start.UTC().Format("15:04:05Z"), orNone(strings.Join(in.Vectors, ", ")), in.PeakRPS, in.Requests, in.Sources)
		} else if s.Incident != "" {
			fmt.Fprintf(w, "  incident %s\n", s.Incident)
		}
		if len(s.Decisions) > 0 {
			fmt.Fprintf(w, "  decisions: %s\n", pairsLine(s.Decisions, "%s %d"))
		}
		if len(s.Requests) > 0 {
			fmt.Fprintf(w, "  requests since start: %s\n", pairsLine(s.Requests, "%s %d"))
		}
		if len(s.Scores) > 0 {
			fmt.Fprintf(w, "  detector scores (≥1 fires): %s\n", pairsLine(s.Scores, "%s %.2f"))
		}
		if len(s.Origins) > 0 {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  origin\thealth\tin flight\tconcurrency limit")
			for _, o := range s.Origins {
				h := "healthy"
				if !o.Healthy {
					h = "DOWN"
				}
				fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\n", o.URL, h, o.Inflight, o.Limit)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "no vector named yet"
	}
	return s
}

// pairsLine renders a name → value map as "a 3, b 2" in name order, each
// pair formatted by format (a %s for the name, a verb for the value).
func pairsLine[V any](m map[string]V, format string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf(format, k, m[k]))
	}
	return strings.Join(parts, ", ")
}
