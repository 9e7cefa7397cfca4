package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/internal/geo"
	"github.com/portcullis/portcullis/internal/replay"
)

func init() { extraCommands = append(extraCommands, newReplayCmd) }

func newReplayCmd() *cobra.Command {
	var (
		speed   string
		jsonOut bool
		dataDir string
		geoDir  string
		geoFile []string
		routes  []string
		site    string
	)
	c := &cobra.Command{
		Use:   "replay FILE...",
		Short: "Run the detection engine on recorded traffic (access logs, pcap/pcapng)",
		Long: `Replays access logs (Apache/nginx combined or common, JSON lines; plain or
gzip; auto-detected) and packet captures (pcap, pcapng) through the same
accounting and detection engine as serve, on the records' own timestamps:
as fast as the machine allows (--speed max, the default) or paced (--speed N
for N times real time). Prints one line per incident (--json: one JSON object
per incident per line) and a summary of what was read, including malformed
records (counted, never fatal). --data-dir also stores the incidents, each
with its per-second series and the integrity evidence: origin errors (5xx)
and, for every --sensitive-route, the successful responses and bytes
against the log's rate before the incident. --site names the site the
requests were made to, as incidents and reports show it (default "replay").`,
		Example: `  portcullis replay /var/log/nginx/access.log
  portcullis replay --json capture.pcap
  portcullis replay --speed 10 --data-dir ./data access.log.1.gz access.log
  portcullis replay --data-dir ./data --sensitive-route /members/export access.log
  portcullis replay --site www.example.org --data-dir ./data access.log`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := replay.Options{Files: args, JSON: jsonOut, DataDir: dataDir, Progress: os.Stderr, Diagnostics: os.Stderr, SensitiveRoutes: routes, Site: site}
			switch speed {
			case "", "max":
			default:
				v, err := strconv.ParseFloat(speed, 64)
				if err != nil || v <= 0 {
					return fmt.Errorf("replay: --speed must be \"max\" or a positive number, got %q", speed)
				}
				opts.Speed = v
			}
			db, err := openGeo(geoDir, geoFile)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", err, "— countries and ASNs will show as unknown")
			}
			if db != nil {
				defer db.Close()
				opts.Geo = db
			}
			_, err = replay.Run(cmd.Context(), opts, cmd.OutOrStdout())
			return err
		},
	}
	fl := c.Flags()
	fl.StringVar(&speed, "speed", "max", "\"max\" or N (times real time)")
	fl.BoolVar(&jsonOut, "json", false, "one JSON object per incident per line on stdout")
	fl.StringVar(&dataDir, "data-dir", "", "store incidents in this data directory")
	fl.StringVar(&geoDir, "geo-dir", "", "directory with the open geo data (scripts/fetch-geodata.sh); default $PORTCULLIS_GEODATA or ./testdata/geodata when present")
	fl.StringArrayVar(&geoFile, "geo", nil, "a geo data file (mmdb or ASN CSV); repeatable; overrides --geo-dir")
	fl.StringVar(&site, "site", replay.DefaultSite, "the site's name in incidents and reports (e.g. www.example.org)")
	fl.StringArrayVar(&routes, "sensitive-route", nil, "a path (and everything below it) or a prefix ending in * whose responses are integrity evidence, e.g. /members/export; repeatable")
	return c
}

// openGeo opens explicit files, or the open data (scripts/fetch-geodata.sh
// layout) from dir, $PORTCULLIS_GEODATA or ./testdata/geodata; nil, nil
// when no data is available.
func openGeo(dir string, files []string) (*geo.DB, error) {
	if len(files) > 0 {
		return geo.Open(files...)
	}
	db, _, err := geo.OpenFirstDir(dir, os.Getenv("PORTCULLIS_GEODATA"), "testdata/geodata")
	return db, err
}
