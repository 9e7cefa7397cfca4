package replay

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// IncidentJSON is the replay's JSON-lines record of one incident: the
// incident's figures and attribution without its timeline. Times are RFC
// 3339 in UTC; End is null for an incident that had not ended; lists are
// never null.
type IncidentJSON struct {
	ID            string           `json:"id"`
	Site          string           `json:"site"`
	Start         time.Time        `json:"start"`
	Detected      time.Time        `json:"detected"`
	End           *time.Time       `json:"end"`
	Vectors       []string         `json:"vectors"`
	PeakRPS       float64          `json:"peak_rps"`
	PeakPPS       float64          `json:"peak_pps"`
	PeakBPS       float64          `json:"peak_bps"`
	Requests      uint64           `json:"requests"`
	Packets       uint64           `json:"packets"`
	Sources       uint64           `json:"sources"`
	TopCountries  []incident.Count `json:"top_countries"`
	TopASNs       []incident.Count `json:"top_asns"`
	TopPrefixes   []incident.Count `json:"top_prefixes"`
	TopPaths      []incident.Count `json:"top_paths"`
	TopUserAgents []incident.Count `json:"top_user_agents"`
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// NewIncidentJSON converts an incident to its JSON-lines record.
func NewIncidentJSON(in *incident.Incident) IncidentJSON {
	j := IncidentJSON{
		ID: in.ID, Site: in.Site, Start: in.Start.UTC(), Detected: in.Detected.UTC(),
		Vectors: nonNil(in.Vectors), PeakRPS: in.PeakRPS, PeakPPS: in.PeakPPS, PeakBPS: in.PeakBPS,
		Requests: in.Requests, Packets: in.Packets, Sources: in.Sources,
		TopCountries: nonNil(in.TopCountries), TopASNs: nonNil(in.TopASNs), TopPrefixes: nonNil(in.TopPrefixes),
		TopPaths: nonNil(in.TopPaths), TopUserAgents: nonNil(in.TopUserAgents),
	}
	if !in.End.IsZero() {
		end := in.End.UTC()
		j.End = &end
	}
	return j
}

// WriteJSON writes one JSON object per incident per line.
func WriteJSON(w io.Writer, incidents []*incident.Incident) error {
	enc := json.NewEncoder(w)
	for _, in := range incidents {
		if err := enc.Encode(NewIncidentJSON(in)); err != nil {
			return fmt.Errorf("replay: write: %w", err)
		}
	}
	return nil
}

// topKeys formats the first n entries of a count list as "RU 60%, BR 30%"
// (shares of total) or "-" when empty.
func topKeys(cs []incident.Count, n int) string {
	if len(cs) == 0 {
		return "-"
	}
	var total uint64
	for _, c := range cs {
		total += c.Count
	}
	var parts []string
	for _, c := range cs[:min(n, len(cs))] {
		if total > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f%%", c.Key, 100*float64(c.Count)/float64(total)))
		} else {
			parts = append(parts, c.Key)
		}
	}
	return strings.Join(parts, ", ")
}

// WriteTable writes a readable summary: one row per incident, then what was
// read from each file, with the malformed records' line numbers.
func (s *Summary) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	if len(s.Incidents) == 0 {
		fmt.Fprintln(tw, "No incidents.")
	} else {
		fmt.Fprintln(tw, "ID\tSITE\tSTART (UTC)\tDETECTED AFTER\tDURATION\tVECTORS\tPEAK RPS\tPEAK PPS\tPEAK MBIT/S\tSOURCES\tTOP COUNTRIES\tTOP ASNS")
		for _, in := range s.Incidents {
			dur := "open"
			if !in.End.IsZero() {
				dur = in.End.Sub(in.Start).Round(time.Millisecond).String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%.0f\t%.1f\t%d\t%s\t%s\n",
				in.ID, in.Site, in.Start.UTC().Format("2006-01-02 15:04:05.000"),
				in.Detected.Sub(in.Start).Round(time.Millisecond), dur, strings.Join(in.Vectors, ","),
				in.PeakRPS, in.PeakPPS, in.PeakBPS/1e6, in.Sources, topKeys(in.TopCountries, 3), topKeys(in.TopASNs, 3))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("replay: write: %w", err)
	}
	return s.WriteFiles(w)
}

// WriteFiles writes what was read from each file and the malformed records
// kept (line or packet numbers), for the table output or for stderr next
// to JSON output.
func (s *Summary) WriteFiles(w io.Writer) error {
	var b strings.Builder
	for _, f := range s.Files {
		fmt.Fprintf(&b, "\n%s (%s): ", f.Name, f.Format)
		if f.Format == "pcap" || f.Format == "pcapng" {
			fmt.Fprintf(&b, "%d packets, %d non-IP, %d HTTP requests", f.Packets, f.NonIP, f.Requests)
			if f.Duplicates > 0 {
				fmt.Fprintf(&b, " (%d retransmitted request segments not counted again)", f.Duplicates)
			}
		} else {
			fmt.Fprintf(&b, "%d lines, %d requests, %d blank or comment", f.Lines, f.Requests, f.Skipped)
		}
		fmt.Fprintf(&b, ", %d malformed", f.Malformed.Count)
		if !f.First.IsZero() {
			fmt.Fprintf(&b, "; %s to %s", f.First.Format(time.RFC3339), f.Last.Format(time.RFC3339))
		}
		b.WriteByte('\n')
		for _, m := range f.Malformed.First {
			unit := "line"
			if f.Format == "pcap" || f.Format == "pcapng" {
				unit = "packet"
			}
			fmt.Fprintf(&b, "  malformed %s %d: %s: %s\n", unit, m.Line, m.Reason, m.Sample)
		}
		if more := f.Malformed.Count - uint64(len(f.Malformed.First)); more > 0 {
			fmt.Fprintf(&b, "  ... and %d more malformed\n", more)
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("replay: write: %w", err)
	}
	return nil
}
