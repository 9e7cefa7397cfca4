package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/internal/app"
	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/demo"
)

func newDemoCmd() *cobra.Command {
	var listen, admin, dataDir string
	var trusted []string
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run the shield in front of an embedded demo campaign site (no config, no network)",
		Long: `Starts an embedded demo campaign website on a loopback port and the shield in
front of it with a sensible default policy, plus the admin listener, and prints
the URLs. Stop with Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			log := newLogger("info")
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return fmt.Errorf("demo: origin listener: %w", err)
			}
			site := demo.NewSite(demo.Options{Logger: log.With("component", "demo-origin")})
			origin := &http.Server{Handler: site.Handler(), ReadHeaderTimeout: 5 * time.Second}
			go origin.Serve(ln)
			defer origin.Close()
			originURL := "http://" + ln.Addr().String()
			if dataDir == "" {
				dataDir = filepath.Join(os.TempDir(), "portcullis-demo")
			}
			load := func() (*config.Config, error) {
				cfg, err := demoConfig(listen, admin, originURL, dataDir, trusted)
				return cfg, err
			}
			out := cmd.OutOrStdout()
			return runApp(ctx, app.Options{Load: load, Logger: log, Ready: func(ls []net.Addr, adm net.Addr) {
				fmt.Fprintf(out, "\nPortcullis demo is running.\n\n")
				fmt.Fprintf(out, "  Campaign site (through the shield): http://%s/\n", hostPort(ls[0]))
				fmt.Fprintf(out, "  Origin (direct, for comparison):    %s/\n", originURL)
				if adm != nil {
					fmt.Fprintf(out, "  Admin: health http://%s/healthz  metrics http://%s/metrics  status http://%s/api/v1/status\n", hostPort(adm), hostPort(adm), hostPort(adm))
				}
				fmt.Fprintf(out, "\nTry: curl -i http://%s/   ·   Stop with Ctrl-C.\n\n", hostPort(ls[0]))
			}})
		},
	}
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "shield listener")
	c.Flags().StringVar(&admin, "admin", "127.0.0.1:9090", "admin listener")
	c.Flags().StringVar(&dataDir, "data-dir", "", "data directory (default: portcullis-demo in the system temp dir)")
	c.Flags().StringArrayVar(&trusted, "trusted-proxy", nil, "CIDR whose X-Forwarded-For is trusted (repeatable; for load tests that simulate many sources over loopback)")
	return c
}

func hostPort(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		return fmt.Sprintf("127.0.0.1:%d", ta.Port)
	}
	return a.String()
}

// demoConfig is the embedded default policy of `portcullis demo`.
func demoConfig(listen, admin, origin, dataDir string, trusted []string) (*config.Config, error) {
	if listen == "" || origin == "" {
		return nil, errors.New("demo: listener and origin required")
	}
	cfg := &config.Config{
		Listeners: []config.Listener{{Address: listen}},
		Admin:     config.Admin{Address: admin},
		DataDir:   dataDir,
		Sites: []config.Site{{
			Name: "campaign", Origins: []string{origin},
			Routes: []config.Route{{Path: "/upload", MaxBodyBytes: 256 << 20}},
			// Logins, donations and volunteer tools keep origin capacity
			// when it is scarce; search is shed first.
			Priorities: []config.Priority{
				{Path: "/login", Priority: "critical"}, {Path: "/donate", Priority: "critical"},
				{Path: "/volunteer", Priority: "critical"}, {Path: "/account", Priority: "critical"},
				{Path: "/search", Priority: "low"},
			},
			// A one-second micro-cache for anonymous pages the origin does
			// not mark; stale copies answer when the origin is overloaded.
			Cache: config.Cache{DefaultTTL: config.Duration(time.Second)},
			Rules: config.Rules{RateLimits: []config.RateLimit{
				{Name: "per-address", Key: "address", Rate: config.RateSpec{Count: 600, Period: time.Minute}, Burst: 60},
				{Name: "per-prefix", Key: "prefix", Rate: config.RateSpec{Count: 3000, Period: time.Minute}, Burst: 300},
				{Name: "login", Key: "address", Rate: config.RateSpec{Count: 10, Period: time.Minute}, Burst: 10, Paths: []string{"/login"}},
			}},
		}},
	}
	for _, t := range trusted {
		p, err := config.ParsePrefix(t)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxy: %w", err)
		}
		cfg.ClientIP.TrustedProxies = append(cfg.ClientIP.TrustedProxies, config.Prefix(p))
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate("demo", nil); err != nil {
		return nil, err
	}
	return cfg, nil
}
