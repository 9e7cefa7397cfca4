package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/internal/incident"
)

func init() { extraCommands = append(extraCommands, newIncidentsCmd) }

// defaultDataDir is config's data_dir default (serve writes there unless
// configured otherwise).
const defaultDataDir = "./portcullis-data"

func newIncidentsCmd() *cobra.Command {
	var (
		dataDir string
		site    string
		jsonOut bool
	)
	c := &cobra.Command{
		Use:   "incidents",
		Short: "List the stored incidents, newest first",
		Long: `Lists the incidents in a data directory's store (written by serve and by
replay --data-dir), newest first: id, site, start and end (UTC), state
(open or closed), attack vectors, peak request rate and requests. --json
prints a JSON array with the same fields (end is null while an incident is
open) plus the packet-level figures. Give an id to "portcullis report".`,
		Example: `  portcullis incidents --data-dir ./portcullis-data
  portcullis incidents --site members --json | jq '.[0].id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := openExistingStore("incidents", dataDir)
			if err != nil {
				return err
			}
			defer store.Close()
			list, err := store.List(cmd.Context(), incident.Filter{Site: site})
			if err != nil {
				return fmt.Errorf("incidents: %w", err)
			}
			if jsonOut {
				return writeIncidentsJSON(cmd.OutOrStdout(), list)
			}
			return writeIncidentsTable(cmd.OutOrStdout(), list)
		},
	}
	fl := c.Flags()
	fl.StringVar(&dataDir, "data-dir", defaultDataDir, "data directory holding the incident store")
	fl.StringVar(&site, "site", "", "only this site's incidents (a site name, or a target address for packet-level incidents)")
	fl.BoolVar(&jsonOut, "json", false, "print a JSON array instead of a table")
	return c
}

// incidentRow is one incident of the listing (JSON field names as the
// incident record's).
type incidentRow struct {
	ID       string     `json:"id"`
	Site     string     `json:"site"`
	Start    time.Time  `json:"start"`
	End      *time.Time `json:"end"`
	State    string     `json:"state"`
	Vectors  []string   `json:"vectors"`
	PeakRPS  float64    `json:"peak_rps"`
	Requests uint64     `json:"requests"`
	PeakPPS  float64    `json:"peak_pps"`
	Packets  uint64     `json:"packets"`
}

func rowOf(in *incident.Incident) incidentRow {
	r := incidentRow{ID: in.ID, Site: in.Site, Start: in.Start.UTC(), State: "closed", Vectors: in.Vectors,
		PeakRPS: in.PeakRPS, Requests: in.Requests, PeakPPS: in.PeakPPS, Packets: in.Packets}
	if r.Vectors == nil {
		r.Vectors = []string{}
	}
	if in.Open() {
		r.State = "open"
	} else {
		end := in.End.UTC()
		r.End = &end
	}
	return r
}

func writeIncidentsJSON(w io.Writer, list []*incident.Incident) error {
	rows := make([]incidentRow, len(list))
	for i, in := range list {
		rows[i] = rowOf(in)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rows); err != nil {
		return fmt.Errorf("incidents: %w", err)
	}
	return nil
}

func writeIncidentsTable(w io.Writer, list []*incident.Incident) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no incidents")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSITE\tSTART (UTC)\tEND (UTC)\tSTATE\tVECTORS\tPEAK RPS\tREQUESTS")
	const layout = "2006-01-02 15:04:05"
	for _, in := range list {
		r := rowOf(in)
		end := "-"
		if r.End != nil {
			end = r.End.Format(layout)
		}
		vec := strings.Join(r.Vectors, ",")
		if vec == "" {
			vec = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.ID, r.Site, r.Start.Format(layout), end, r.State, vec,
			strconv.FormatFloat(r.PeakRPS, 'f', 0, 64), r.Requests)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("incidents: %w", err)
	}
	return nil
}
