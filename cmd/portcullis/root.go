package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	yamlast "github.com/goccy/go-yaml/ast"
	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/internal/app"
	"github.com/portcullis/portcullis/internal/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func exitCode(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "portcullis",
		Short:         "Portcullis — a self-hosted DDoS shield",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(newServeCmd(), newDemoCmd(), newCheckCmd(), newVersionCmd(), newConfigCmd())
	for _, c := range extraCommands {
		root.AddCommand(c())
	}
	return root
}

// extraCommands lets other files add subcommands (replay, report, lab…).
var extraCommands []func() *cobra.Command

// serveFlags are the flags-only configuration (and overrides of a file).
type serveFlags struct {
	configFile     string
	listen         []string
	origin         []string
	admin          string
	adminTokenFile string
	trustedProxies []string
	allow, deny    []string
	dataDir        string
	logLevel       string
}

func (f *serveFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVarP(&f.configFile, "config", "c", "", "YAML configuration file (flags override it)")
	fl.StringArrayVar(&f.listen, "listen", nil, "client listener host:port (repeatable; default :8080)")
	fl.StringArrayVar(&f.origin, "origin", nil, "origin URL of the single site (repeatable: a pool)")
	fl.StringVar(&f.admin, "admin", "", "admin listener host:port, or \"off\" (default 127.0.0.1:9090)")
	fl.StringVar(&f.adminTokenFile, "admin-token-file", "", "file holding the admin API bearer token")
	fl.StringArrayVar(&f.trustedProxies, "trusted-proxy", nil, "CIDR of a proxy whose forwarding headers are trusted (repeatable)")
	fl.StringArrayVar(&f.allow, "allow", nil, "CIDR that bypasses all filters (repeatable)")
	fl.StringArrayVar(&f.deny, "deny", nil, "CIDR refused with 403 (repeatable)")
	fl.StringVar(&f.dataDir, "data-dir", "", "directory for incidents and state")
	fl.StringVar(&f.logLevel, "log-level", "", "debug | info | warn | error")
}

// load builds the validated configuration: file (if any), then flags on
// top, then defaults, then validation with file positions.
func (f *serveFlags) load() (*config.Config, error) {
	cfg := &config.Config{}
	var ast *yamlast.File
	name := "flags"
	if f.configFile != "" {
		data, err := os.ReadFile(f.configFile)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		c, file, err := config.Decode(f.configFile, data)
		if err != nil {
			return nil, err
		}
		cfg, ast, name = c, file, f.configFile
	}
	if err := f.apply(cfg); err != nil {
		return nil, err
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(name, ast); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (f *serveFlags) apply(cfg *config.Config) error {
	for _, l := range f.listen {
		if len(cfg.Listeners) > 0 && len(f.listen) == 1 {
			cfg.Listeners = cfg.Listeners[:1]
			cfg.Listeners[0].Address = l
			continue
		}
		cfg.Listeners = append(cfg.Listeners, config.Listener{Address: l})
	}
	if len(f.origin) > 0 {
		switch len(cfg.Sites) {
		case 0:
			cfg.Sites = []config.Site{{Name: "default", Origins: f.origin}}
		case 1:
			cfg.Sites[0].Origins = f.origin
		default:
			return fmt.Errorf("--origin: the config has %d sites; set origins per site in the file", len(cfg.Sites))
		}
	}
	if f.admin != "" {
		cfg.Admin.Address = f.admin
	}
	if f.adminTokenFile != "" {
		cfg.Admin.TokenFile, cfg.Admin.Token = f.adminTokenFile, ""
	}
	for _, list := range []struct {
		flag string
		in   []string
		out  *[]config.Prefix
	}{{"--trusted-proxy", f.trustedProxies, &cfg.ClientIP.TrustedProxies}, {"--allow", f.allow, &cfg.Rules.Allow}, {"--deny", f.deny, &cfg.Rules.Deny}} {
		for _, s := range list.in {
			p, err := config.ParsePrefix(s)
			if err != nil {
				return fmt.Errorf("%s: %w", list.flag, err)
			}
			*list.out = append(*list.out, config.Prefix(p))
		}
	}
	if f.dataDir != "" {
		cfg.DataDir = f.dataDir
	}
	if f.logLevel != "" {
		cfg.Log.Level = f.logLevel
	}
	return nil
}

func newLogger(level string) *slog.Logger {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the shield",
		Example: `  portcullis serve --listen :8080 --origin http://127.0.0.1:3000 --admin 127.0.0.1:9090
  portcullis serve --config /etc/portcullis/portcullis.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.configFile == "" && len(f.origin) == 0 {
				return errors.New("serve: give --origin URL (single site) or --config FILE")
			}
			cfg, err := f.load()
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log.Level)
			return runApp(cmd.Context(), app.Options{ConfigFile: f.configFile, Load: f.load, Logger: log})
		},
	}
	f.register(c)
	return c
}

func runApp(parent context.Context, opts app.Options) error {
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	app.Version = version
	a, err := app.New(opts)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

func newCheckCmd() *cobra.Command {
	var f serveFlags
	c := &cobra.Command{
		Use:   "check",
		Short: "Validate a configuration without starting",
		Long:  "Validate the configuration (file plus flags). Exit 0 when valid; otherwise print each error with file, line and field, and exit 1.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.configFile == "" && len(f.origin) == 0 {
				return errors.New("check: give --config FILE")
			}
			cfg, err := f.load()
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return exitError{1}
			}
			for _, w := range cfg.Warnings() {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "configuration OK: %d site(s), %d listener(s)\n", len(cfg.Sites), len(cfg.Listeners))
			return nil
		},
	}
	c.SilenceErrors = true
	f.register(c)
	return c
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "portcullis", version)
		},
	}
}

func newConfigCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Configuration helpers"}
	c.AddCommand(&cobra.Command{
		Use:   "reference",
		Short: "Print the configuration reference (Markdown)",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprint(cmd.OutOrStdout(), config.Reference())
		},
	})
	return c
}
