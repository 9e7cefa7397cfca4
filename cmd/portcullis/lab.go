package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/internal/lab"
)

func init() { extraCommands = append(extraCommands, newLabCmd) }

func newLabCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "lab",
		Short: "Attack scenarios against a shield on loopback, scored by goodput",
		Long: `The attack lab drives a scenario — legitimate visitors, members, feed readers and
API clients, plus attack vectors (floods, slow attacks, HTTP/2 rapid reset, pulse
waves, a flash crowd) — through a front on loopback to an instrumented origin,
and scores it: legitimate success and latency, bot leak, time to detect and to
mitigate, origin concurrency, form integrity, the front's CPU and memory.

Self-contained (default): the lab starts its origin and ` + "`portcullis serve`" + ` as a
child process in front of it. With --target it uses a running front (Portcullis,
nginx, HAProxy) whose upstream is the origin it starts on --origin-listen.`,
	}
	c.AddCommand(newLabListCmd(), newLabRunCmd(), newLabValidateCmd())
	return c
}

func newLabListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the shipped scenarios",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			names, err := lab.Shipped()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tLENGTH\tDESCRIPTION")
			for _, n := range names {
				sc, err := lab.Load(n)
				if err != nil {
					return err
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", sc.Name, sc.Phases.Total(), sc.Description)
			}
			return tw.Flush()
		},
	}
}

func newLabValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate SCENARIO|FILE.yaml...",
		Short: "Check scenario files (and the shield configuration they imply)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []error
			for _, a := range args {
				if _, err := lab.Load(a); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: OK\n", a)
			}
			return errors.Join(errs...)
		},
	}
}

type labRunFlags struct {
	jsonOut        bool
	target         string
	targetH2       string
	originListen   string
	targetPIDs     string
	admin          string
	adminTokenFile string
	proxyProtocol  bool
	geoDir         string
	seed           uint64
	shieldLog      string
	recordFile     string
}

func newLabRunCmd() *cobra.Command {
	var f labRunFlags
	c := &cobra.Command{
		Use:   "run SCENARIO|FILE.yaml",
		Short: "Run a scenario and print its score",
		Long: `Runs a scenario and prints its score: a summary, or with --json one JSON object as
the last line of stdout. A status line per second goes to stderr.`,
		Example: `  portcullis lab run smoke --json
  portcullis lab run get-flood --target http://127.0.0.1:8081 --origin-listen 127.0.0.1:3000 --target-pid $(pgrep -o nginx)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := lab.Load(args[0])
			if err != nil {
				return err
			}
			opts, err := f.options(sc)
			if err != nil {
				return err
			}
			opts.Progress = cmd.ErrOrStderr()
			if f.shieldLog != "" {
				lf, err := os.Create(f.shieldLog)
				if err != nil {
					return fmt.Errorf("lab: --shield-log: %w", err)
				}
				defer lf.Close()
				opts.ShieldLog = lf
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rec, err := lab.Run(ctx, opts)
			if rec == nil {
				return err
			}
			if f.recordFile != "" {
				if werr := writeJSONFile(f.recordFile, rec); werr != nil {
					return werr
				}
			}
			score := lab.Compute(rec)
			if f.jsonOut {
				b, jerr := json.Marshal(score)
				if jerr != nil {
					return fmt.Errorf("lab: %w", jerr)
				}
				fmt.Fprintln(cmd.OutOrStdout(), string(b))
			} else {
				printScore(cmd.OutOrStdout(), score)
			}
			return err
		},
	}
	fl := c.Flags()
	fl.BoolVar(&f.jsonOut, "json", false, "print the score as one JSON object, the last line of stdout")
	fl.StringVar(&f.target, "target", "", "use a running front at this loopback URL (http://127.0.0.1:PORT) instead of starting Portcullis")
	fl.StringVar(&f.targetH2, "target-h2", "", "with --target: a separate h2c (HTTP/2 prior knowledge) URL of the front for the HTTP/2 attacks (default: --target)")
	fl.StringVar(&f.originListen, "origin-listen", "", "loopback host:port of the lab's origin (the --target's upstream)")
	fl.StringVar(&f.targetPIDs, "target-pid", "", "PID[,PID] of the front's processes (children included) to measure CPU and memory")
	fl.StringVar(&f.admin, "admin", "", "Portcullis admin API URL of the --target, polled for incidents (time to detect)")
	fl.StringVar(&f.adminTokenFile, "admin-token-file", "", "file holding the --admin bearer token")
	fl.BoolVar(&f.proxyProtocol, "proxy-protocol", false, "announce simulated sources in PROXY v1 headers instead of X-Forwarded-For (--target only)")
	fl.StringVar(&f.geoDir, "geo-dir", "", "directory with the open geo data (scripts/fetch-geodata.sh); default $PORTCULLIS_GEODATA or ./testdata/geodata")
	fl.StringVar(&f.shieldLog, "shield-log", "", "write the self-contained shield's log to this file")
	fl.StringVar(&f.recordFile, "record", "", "write the recorded events (the input of the score) to this JSON file")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the simulated populations and the visitors' choices")
	return c
}

// options turns the flags into lab.Options.
func (f *labRunFlags) options(sc *lab.Scenario) (lab.Options, error) {
	o := lab.Options{Scenario: sc, OriginListen: f.originListen, ProxyProtocol: f.proxyProtocol, Seed: f.seed,
		GeoDirs: []string{f.geoDir, os.Getenv("PORTCULLIS_GEODATA"), "testdata/geodata"}}
	if f.target == "" {
		if f.admin != "" || f.targetPIDs != "" || f.proxyProtocol || f.targetH2 != "" {
			return o, errors.New("lab: --admin, --target-pid, --target-h2 and --proxy-protocol need --target")
		}
		exe, err := os.Executable()
		if err != nil {
			return o, fmt.Errorf("lab: cannot find the portcullis binary: %w", err)
		}
		o.ShieldBinary = exe
		return o, nil
	}
	u, err := url.Parse(f.target)
	if err != nil || u.Host == "" {
		return o, fmt.Errorf("lab: --target %q: want http://127.0.0.1:PORT", f.target)
	}
	o.Target = u
	if f.targetH2 != "" {
		if o.TargetH2, err = url.Parse(f.targetH2); err != nil || o.TargetH2.Host == "" {
			return o, fmt.Errorf("lab: --target-h2 %q: want http://127.0.0.1:PORT", f.targetH2)
		}
	}
	if f.targetPIDs != "" {
		for _, s := range strings.Split(f.targetPIDs, ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || pid <= 0 {
				return o, fmt.Errorf("lab: --target-pid %q: want PID[,PID]", f.targetPIDs)
			}
			o.TargetPIDs = append(o.TargetPIDs, pid)
		}
	}
	if f.admin != "" {
		if o.Admin, err = url.Parse(f.admin); err != nil || o.Admin.Host == "" {
			return o, fmt.Errorf("lab: --admin %q: want http://127.0.0.1:PORT", f.admin)
		}
	}
	if f.adminTokenFile != "" {
		b, err := os.ReadFile(f.adminTokenFile)
		if err != nil {
			return o, fmt.Errorf("lab: --admin-token-file: %w", err)
		}
		o.AdminToken = strings.TrimSpace(string(b))
	}
	return o, nil
}

func writeJSONFile(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

// printScore writes the human-readable score.
func printScore(w io.Writer, s lab.Score) {
	f := func(p *float64, unit string) string {
		if p == nil {
			return "n/a"
		}
		return strconv.FormatFloat(*p, 'f', -1, 64) + unit
	}
	pct := func(p *float64) string {
		if p == nil {
			return "n/a"
		}
		return strconv.FormatFloat(*p*100, 'f', 2, 64) + "%"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario\t%s\n", s.Scenario)
	fmt.Fprintf(tw, "legit success\t%s\t(members %s)\n", pct(s.LegitSuccessRate), pct(s.MemberSuccessRate))
	fmt.Fprintf(tw, "legit p50 before/during/after\t%s / %s / %s\n", f(s.LegitP50MS.Before, " ms"), f(s.LegitP50MS.During, " ms"), f(s.LegitP50MS.After, " ms"))
	fmt.Fprintf(tw, "legit p99 before/during/after\t%s / %s / %s\n", f(s.LegitP99MS.Before, " ms"), f(s.LegitP99MS.During, " ms"), f(s.LegitP99MS.After, " ms"))
	fmt.Fprintf(tw, "bot leak\t%s\n", pct(s.BotLeakRate))
	if s.CrowdServedRate != nil {
		fmt.Fprintf(tw, "flash crowd served\t%s\n", pct(s.CrowdServedRate))
	}
	fmt.Fprintf(tw, "time to detect\t%s\t(false alarms before the attack: %d)\n", f(s.TimeToDetectMS, " ms"), s.FalseAlarms)
	fmt.Fprintf(tw, "time to mitigate\t%s\n", f(s.TimeToMitigateMS, " ms"))
	fmt.Fprintf(tw, "origin peak concurrency\t%d\n", s.OriginPeakConcurrency)
	fmt.Fprintf(tw, "POST integrity failures\t%d\n", s.PostIntegrityFailures)
	fmt.Fprintf(tw, "shield CPU\t%s\n", f(s.ShieldCPUSeconds, " s"))
	if s.ShieldPeakRSSBytes != nil {
		fmt.Fprintf(tw, "shield peak RSS\t%.1f MiB\n", float64(*s.ShieldPeakRSSBytes)/(1<<20))
	} else {
		fmt.Fprintf(tw, "shield peak RSS\tn/a\n")
	}
	for _, a := range s.Attacks {
		fmt.Fprintf(tw, "attack %s\tsent %d, connections %d, errors %d, statuses %v", a.Kind, a.Sent, a.Connections, a.Errors, a.Statuses)
		if a.Error != "" {
			fmt.Fprintf(tw, ", error: %s", a.Error)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}
