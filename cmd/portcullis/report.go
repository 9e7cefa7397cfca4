package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/report"
)

func init() { extraCommands = append(extraCommands, newReportCmd) }

// relatedScan caps how many earlier incidents are compared when linking
// repeat attacks.
const relatedScan = 500

func newReportCmd() *cobra.Command {
	var (
		dataDir   string
		format    string
		out       string
		latest    bool
		site      string
		pseudo    bool
		threshold string
		r         report.Reporter
	)
	c := &cobra.Command{
		Use:   "report [ID]",
		Short: "Render an incident as a report for people (md, html) or a CSIRT (json, stix, iodef)",
		Long: `Renders one stored incident. Markdown and HTML answer, section by section,
what a national CSIRT asks after a significant incident (UK NCSC guidance):
who reports, what happened and when (UTC), what was affected, the impact on
services and users, what was done, whether data was accessed and on what
evidence, the technical analysis and indicators, who else was told, next
steps. JSON is the full (redacted) record; stix a STIX 2.1 bundle; iodef an
IODEF v2 (RFC 7970) document.

Privacy: legitimate visitors' addresses never appear. A source network is
named only when it sent at least --evidence-threshold of the incident's
traffic; every other address in the record is withheld. --pseudonymise
replaces each remaining address with a keyed hash (HMAC-SHA256 under a key
kept in the data directory), for sharing beyond the CSIRT.

The report can be generated while the incident is still open (an initial
report) and again when it has ended: the STIX ids stay the same, only
"modified" changes.`,
		Example: `  portcullis report --latest --data-dir ./data
  portcullis report --latest --data-dir ./data --format html --out report.html \
      --org "Example Party" --contact security@example.org
  portcullis report 20261129T210636Z-members-1a2b --data-dir ./data --format stix --pseudonymise`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == latest {
				return errors.New("report: give an incident ID or --latest (not both)")
			}
			f, err := report.ParseFormat(format)
			if err != nil {
				return err
			}
			minShare, err := parseShare(threshold)
			if err != nil {
				return err
			}
			store, err := openExistingStore("report", dataDir)
			if err != nil {
				return err
			}
			defer store.Close()
			ctx := cmd.Context()
			var in *incident.Incident
			if latest {
				in, err = store.Latest(ctx, site)
			} else {
				in, err = store.Get(ctx, args[0])
			}
			if errors.Is(err, incident.ErrNotFound) {
				return fmt.Errorf("report: no such incident in %s (portcullis replay/serve --data-dir writes them): %w", dataDir, err)
			}
			if err != nil {
				return err
			}
			if len(in.Related) == 0 {
				earlier, err := store.List(ctx, incident.Filter{Until: in.Start, Limit: relatedScan})
				if err != nil {
					return err
				}
				in.Related = report.Related(in, earlier)
			}
			opts := report.Options{Reporter: r, MinShare: minShare, Pseudonymise: pseudo, Now: time.Now()}
			if pseudo {
				if opts.Key, err = report.LoadKey(dataDir); err != nil {
					return err
				}
			}
			return writeReport(cmd.OutOrStdout(), out, in, f, opts)
		},
	}
	fl := c.Flags()
	fl.StringVar(&dataDir, "data-dir", defaultDataDir, "data directory holding the incident store (serve's data_dir; replay's --data-dir)")
	fl.StringVarP(&format, "format", "f", "md", "md | html | json | stix | iodef")
	fl.StringVarP(&out, "out", "o", "", "write to this file (created mode 0600) instead of stdout")
	fl.BoolVar(&latest, "latest", false, "report the most recent incident")
	fl.StringVar(&site, "site", "", "with --latest: the most recent incident of this site")
	fl.BoolVar(&pseudo, "pseudonymise", false, "replace every address and prefix with a keyed pseudonym (for sharing)")
	fl.StringVar(&threshold, "evidence-threshold", "1%", "name a source network only at or above this share of the traffic (\"1%\" or 0.01)")
	fl.StringVar(&r.Org, "org", "", "reporting organisation")
	fl.StringVar(&r.Email, "contact", "", "contact e-mail address")
	fl.StringVar(&r.Name, "contact-name", "", "contact person")
	fl.StringVar(&r.Role, "role", "", "contact person's role")
	fl.StringVar(&r.Phone, "phone", "", "contact telephone number")
	fl.StringArrayVar(&r.Notified, "notified", nil, "who else has been told (repeatable)")
	return c
}

// openExistingStore opens the incident store in dataDir for the read-only
// verbs (report, incidents) without creating one where none is (a mistyped
// --data-dir is an error, not a new empty store); errors carry verb as prefix.
func openExistingStore(verb, dataDir string) (*incident.Store, error) {
	if _, err := os.Stat(filepath.Join(dataDir, incident.DBFile)); err != nil {
		return nil, fmt.Errorf("%s: no incident store in %s (run serve or replay with --data-dir): %w", verb, dataDir, err)
	}
	return incident.Open(dataDir)
}

// parseShare parses "1%", "0.5%" or "0.01" as a share in (0, 1].
func parseShare(s string) (float64, error) {
	v, pctSign := strings.CutSuffix(strings.TrimSpace(s), "%")
	f, err := strconv.ParseFloat(v, 64)
	if err == nil && pctSign {
		f /= 100
	}
	if err != nil || f <= 0 || f > 1 {
		return 0, fmt.Errorf("report: --evidence-threshold %q: want a share such as 1%% or 0.01", s)
	}
	return f, nil
}

// writeReport renders to path (0600: a report names attacking networks and
// the organisation's contacts) or, with no path, to stdout.
func writeReport(stdout io.Writer, path string, in *incident.Incident, f report.Format, opts report.Options) error {
	if path == "" {
		return report.Render(stdout, in, f, opts)
	}
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := report.Render(file, in, f, opts); err != nil {
		file.Close()
		return err
	}
	if err := file.Close(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
