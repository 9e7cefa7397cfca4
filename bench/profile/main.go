// Command profile runs the Portcullis shield exactly as
// `portcullis serve --listen L --origin O --admin off [--deny CIDR]
// [--trusted-proxy CIDR]` does (same config path: flags → defaults →
// Validate → app.New → Run), with a CPU profile recording from start to
// exit and, optionally, an allocation profile written at exit. Like
// bench/edge.sh it sets mitigation.mode observe, so that the load generator
// is not blocked as a flood. It lives
// under bench/ so that profiling needs no hidden flag in the product
// binary; bench/profile.sh drives it under wrk load.
//
// Usage: profile -listen 127.0.0.1:P -origin http://127.0.0.1:O -data-dir DIR
//
//	[-deny CIDR] [-trusted-proxy CIDR] -cpuprofile FILE [-memprofile FILE]
//
// It stops on SIGINT/SIGTERM and writes the profiles then.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/portcullis/portcullis/internal/app"
	"github.com/portcullis/portcullis/internal/config"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "client listener")
	origin := flag.String("origin", "", "origin URL")
	deny := flag.String("deny", "", "CIDR refused with 403 (optional)")
	trusted := flag.String("trusted-proxy", "", "trusted proxy CIDR (optional)")
	cpu := flag.String("cpuprofile", "", "write a CPU profile here")
	mem := flag.String("memprofile", "", "write an allocation profile here at exit")
	dataDir := flag.String("data-dir", "", "data directory (required: keeps the incident store out of the checkout)")
	flag.Parse()
	if *dataDir == "" || *origin == "" {
		fmt.Fprintln(os.Stderr, "profile: -origin and -data-dir are required")
		os.Exit(2)
	}
	if err := run(*listen, *origin, *deny, *trusted, *dataDir, *cpu, *mem); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(1)
	}
}

func run(listen, origin, deny, trusted, dataDir, cpu, mem string) error {
	load := func() (*config.Config, error) {
		cfg := &config.Config{
			Listeners: []config.Listener{{Address: listen}},
			Sites:     []config.Site{{Name: "default", Origins: []string{origin}}},
			Admin:     config.Admin{Address: "off"},
			DataDir:   dataDir,
			// One wrk source is a flood to the detector; observe keeps
			// detection and accounting running without blocking it (as
			// bench/edge.sh does).
			Mitigation: config.Mitigation{Mode: "observe"},
		}
		for _, x := range []struct {
			s   string
			out *[]config.Prefix
		}{{deny, &cfg.Rules.Deny}, {trusted, &cfg.ClientIP.TrustedProxies}} {
			if x.s == "" {
				continue
			}
			p, err := config.ParsePrefix(x.s)
			if err != nil {
				return nil, err
			}
			*x.out = append(*x.out, config.Prefix(p))
		}
		cfg.ApplyDefaults()
		if err := cfg.Validate("flags", nil); err != nil {
			return nil, err
		}
		return cfg, nil
	}
	if mem != "" {
		runtime.MemProfileRate = 64 << 10
	}
	if cpu != "" {
		f, err := os.Create(cpu)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.New(app.Options{Load: load, Logger: slog.New(slog.NewJSONHandler(os.Stderr, nil))})
	if err != nil {
		return err
	}
	err = a.Run(ctx)
	if mem != "" {
		f, ferr := os.Create(mem)
		if ferr != nil {
			return ferr
		}
		defer f.Close()
		if werr := pprof.Lookup("allocs").WriteTo(f, 0); werr != nil {
			return werr
		}
	}
	return err
}
