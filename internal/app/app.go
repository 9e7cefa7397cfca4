// Package app wires Portcullis together: it builds the components from a
// configuration, runs listeners, the admin API, origin health checks and the
// detection loop until its context ends, and fans a reload (SIGHUP or a
// change of the config file) out to them — validating first, so that a bad
// file keeps the old configuration running.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/portcullis/portcullis/internal/alert"
	"github.com/portcullis/portcullis/internal/api"
	"github.com/portcullis/portcullis/internal/challenge"
	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/detect"
	"github.com/portcullis/portcullis/internal/edge"
	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/mitigate"
	"github.com/portcullis/portcullis/internal/ratelimit"
	"github.com/portcullis/portcullis/internal/report"
)

// Options configure an App beyond the config file.
type Options struct {
	// ConfigFile is watched and reloaded when set; "" for flags-only.
	ConfigFile string
	// Load produces a validated configuration (file + flag overrides); it
	// is called at start and on every reload.
	Load func() (*config.Config, error)
	// Logger is the root logger.
	Logger *slog.Logger
	// Ready, if set, is called once listeners are bound, with their
	// addresses (tests and `demo` use it to print URLs).
	Ready func(listeners []net.Addr, admin net.Addr)
	// Registry receives the metrics; nil makes a new one.
	Registry *prometheus.Registry
}

// App is a running shield.
type App struct {
	opts    Options
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *metrics
	state   *state
	handler *edge.Handler
	// hasGeo is false when no geo data is loaded: country and ASN scopes
	// then match nothing, so operator decisions on them are refused.
	hasGeo bool

	mu         sync.Mutex
	gen        *generation
	detect     *detection
	mitigation *mitigation
	chal       *challengeShared
	alerts     *alert.Dispatcher
	explain    explainRing
	store      *incident.Store
}

// New builds the app from opts.Load() without starting anything. Errors are
// configuration or build errors.
func New(opts Options) (*App, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	a := &App{opts: opts, log: opts.Logger, reg: reg, state: newState()}
	a.metrics = newMetrics(reg)
	cfg, err := opts.Load()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	store, err := incident.Open(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	a.store = store
	gdb, err := openGeo(cfg)
	if err != nil {
		a.log.Warn("geo data unavailable; countries and ASNs will show as unknown", "err", err)
	}
	if gdb == nil {
		a.log.Info("no geo data configured; countries and ASNs will show as unknown (scripts/fetch-geodata.sh provides the open data)")
	}
	var pkey []byte
	if cfg.Alerts.Pseudonymise {
		if pkey, err = report.LoadKey(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	disp, err := alert.New(incident.Sink{B: store}, alertConfig(cfg), alert.Options{
		Logger: a.log.With("component", "alert"), Registerer: reg, PseudonymKey: pkey})
	if err != nil {
		return nil, err
	}
	a.alerts = disp
	m, err := newMitigation(cfg.Mitigation.Mode, store, a.log.With("component", "mitigate"), disp.Decision, func(err error) { a.log.Error("incident timeline write failed", "err", err) })
	if err != nil {
		return nil, err
	}
	if err := mitigate.RegisterMetrics(reg, m.ctl, m.shadow); err != nil {
		return nil, err
	}
	a.mitigation = m
	if err := a.initChallenge(cfg, reg); err != nil {
		return nil, err
	}
	g, err := a.build(cfg)
	if err != nil {
		return nil, err
	}
	a.gen = g
	a.metrics.setSites(siteNames(cfg))
	var asNames *detect.ASNames
	if gdb != nil {
		asNames = &detect.ASNames{}
	}
	d, err := newDetection(cfg, disp, gdb, asNames, a.log.With("component", "detect"))
	if err != nil {
		return nil, err
	}
	if err := d.eng.RegisterMetrics(reg); err != nil {
		return nil, err
	}
	a.detect = d
	d.mit = m
	m.openIncidents = func(site int) []string {
		var ids []string
		for _, t := range d.eng.Status() {
			if t.Incident != nil && t.Incident.Open() && (site < 0 || t.Site == site) {
				ids = append(ids, t.Incident.ID)
			}
		}
		return ids
	}
	d.onTick = a.adaptDifficulty
	a.handler = edge.NewHandler(g.rt, &observer{m: a.metrics, next: d.acc.ObserveRequest, good: m.good, attack: d.attack}, a.log.With("component", "edge"))
	if gdb != nil {
		a.hasGeo = true
		gc := &geoCache{db: gdb, names: asNames}
		a.handler.SetGeo(gc.lookup)
	}
	a.handler.OnH2Reset(func(int, netip.Addr) { a.metrics.h2Closed.Inc() })
	a.handler.SetEvents(d.acc)
	a.restoreOperatorDecisions(cfg.DataDir)
	return a, nil
}

// currentChallenge returns site i's challenge service of the running
// generation (nil if the site no longer exists).
func (a *App) currentChallenge(i int) *challenge.Service {
	a.mu.Lock()
	g := a.gen
	a.mu.Unlock()
	if g == nil || i >= len(g.challenges) {
		return nil
	}
	return g.challenges[i]
}

// Handler returns the shield's request handler (tests).
func (a *App) Handler() http.Handler { return a.handler }

// Run serves until ctx ends, then shuts down gracefully.
func (a *App) Run(ctx context.Context) error {
	cfg := a.gen.cfg
	for _, w := range cfg.Warnings() {
		a.log.Warn("config warning", "warning", w)
	}
	for _, p := range a.gen.newPools {
		p.Start(ctx)
	}
	a.gen.newPools = nil

	lim := edge.ServerLimits{
		ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout.D(), IdleTimeout: cfg.Limits.IdleTimeout.D(),
		MaxHeaderBytes: int(cfg.Limits.MaxHeaderBytes), MaxConns: cfg.Limits.MaxConns, MaxConnsPerClient: cfg.Limits.MaxConnsPerClient,
		H2MaxConcurrentStreams: cfg.Limits.H2MaxConcurrentStreams,
		Trusted:                func(ip netip.Addr) bool { return a.handler.Runtime().Resolver.Trusted(ip) },
		Events:                 a.detect.acc,
		DefaultSite:            func() int { return a.handler.Runtime().Default.Index },
		OnH2Error: func(errType string) {
			a.handler.NoteH2Error(errType)
			a.metrics.h2Errors.WithLabelValues(errType).Inc()
		},
		OnRefuse: func(_ netip.Addr, global bool) {
			a.detect.acc.ConnRefused(a.handler.Runtime().Default.Index)
			if global {
				a.metrics.refused.WithLabelValues("global").Inc()
			} else {
				a.metrics.refused.WithLabelValues("per_client").Inc()
			}
		},
	}
	var servers []*edge.Server
	var addrs []net.Addr
	for _, lc := range cfg.Listeners {
		elc := edge.ListenerConfig{Address: lc.Address, ProxyProtocol: lc.ProxyProtocol, H2C: lc.H2C != nil && *lc.H2C, DataDir: cfg.DataDir}
		if t := lc.TLS; t != nil {
			elc.CertFile, elc.KeyFile = t.CertFile, t.KeyFile
			if t.ACME != nil {
				elc.ACMEDomains, elc.ACMEEmail, elc.ACMECA, elc.ACMEAgreed = t.ACME.Domains, t.ACME.Email, t.ACME.CA, t.ACME.Agreed
			}
		}
		s, err := edge.Listen(ctx, elc, lim, a.handler, a.log.With("component", "edge", "listener", lc.Address))
		if err != nil {
			for _, s := range servers {
				s.Shutdown(context.Background())
			}
			return err
		}
		servers = append(servers, s)
		addrs = append(addrs, s.Addr)
	}

	var adminSrv *http.Server
	var adminAddr net.Addr
	if cfg.Admin.Address != "off" {
		token, err := adminToken(cfg.Admin)
		if err != nil {
			return err
		}
		if token == "" {
			a.log.Warn("ADMIN API IS UNAUTHENTICATED: no admin.token configured; anyone who can reach " + cfg.Admin.Address + " can read status and metrics. Keep it on loopback or set admin.token_file.")
		}
		ln, err := net.Listen("tcp", cfg.Admin.Address)
		if err != nil {
			return fmt.Errorf("admin: listen %s: %w", cfg.Admin.Address, err)
		}
		adminAddr = ln.Addr()
		adminSrv = &http.Server{Handler: api.New(api.Options{Token: token, Registry: a.reg, Status: a.status, Logger: a.log.With("component", "api"), Routes: a.operatorRoutes()}),
			ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
		go adminSrv.Serve(ln)
	}

	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errc <- s.Serve() }()
	}
	reloadCtx, stopReload := context.WithCancel(ctx)
	defer stopReload()
	// Watch before announcing readiness, so no change is missed.
	fw := a.watchFile()
	go a.watchReload(reloadCtx, fw)

	a.log.Info("portcullis serving", "listeners", fmt.Sprint(addrs), "admin", fmt.Sprint(adminAddr), "sites", len(cfg.Sites))
	if a.opts.Ready != nil {
		a.opts.Ready(addrs, adminAddr)
	}
	go a.sweep(reloadCtx)
	go a.detect.run(reloadCtx)
	go a.chal.keys.Run(reloadCtx)
	go a.alerts.Run(ctx)
	go a.retention(reloadCtx)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	a.log.Info("shutting down")
	shCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		s.Shutdown(shCtx)
	}
	if adminSrv != nil {
		adminSrv.Shutdown(shCtx)
	}
	a.mu.Lock()
	for _, p := range a.state.pools {
		p.Close()
	}
	for _, w := range a.state.watchers {
		w.Close()
	}
	a.mu.Unlock()
	if err := a.store.Close(); err != nil {
		a.log.Error("closing the incident store", "err", err)
	}
	return runErr
}

// Reload loads and validates the configuration again and swaps it in; on
// any error the running configuration is kept and the error returned.
func (a *App) Reload(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	cfg, err := a.opts.Load()
	if err == nil {
		var g *generation
		g, err = a.build(cfg)
		if err == nil {
			old := a.gen
			a.gen = g
			a.metrics.setSites(siteNames(cfg))
			a.handler.Swap(g.rt)
			for _, p := range g.newPools {
				p.Start(ctx)
			}
			g.newPools = nil
			a.retire(old, g)
			a.metrics.reloads.WithLabelValues("success").Inc()
			a.metrics.reloadSuccess.SetToCurrentTime()
			a.log.Info("configuration reloaded", "sites", len(cfg.Sites))
			for _, w := range cfg.Warnings() {
				a.log.Warn("config warning", "warning", w)
			}
			// The request buffer's limits are applied by build; the other
			// limits belong to the listeners.
			nl, ol := cfg.Limits, old.cfg.Limits
			nl.RequestBufferBytes, nl.RequestBufferTotalBytes = ol.RequestBufferBytes, ol.RequestBufferTotalBytes
			nl.RequestBufferPerClientBytes = ol.RequestBufferPerClientBytes
			if len(cfg.Listeners) != len(old.cfg.Listeners) || cfg.Admin.Address != old.cfg.Admin.Address || nl != ol {
				a.log.Warn("listener, admin or connection-limit changes take effect at the next restart")
			}
			return nil
		}
	}
	a.metrics.reloads.WithLabelValues("failure").Inc()
	a.log.Error("configuration reload failed; keeping the running configuration", "err", err)
	return err
}

// retire closes pools, watchers and limiters the new generation no longer
// uses, after in-flight requests had time to finish.
func (a *App) retire(old, cur *generation) {
	var pools []interface{ Close() }
	for k, p := range old.pools {
		if _, ok := cur.pools[k]; !ok {
			delete(a.state.pools, k)
			pools = append(pools, p)
		}
	}
	for k, w := range old.watchers {
		if _, ok := cur.watchers[k]; !ok {
			delete(a.state.watchers, k)
			w.Close()
		}
	}
	for k := range old.limiters {
		if _, ok := cur.limiters[k]; !ok {
			delete(a.state.limiters, k)
		}
	}
	if len(pools) > 0 {
		time.AfterFunc(time.Minute, func() {
			for _, p := range pools {
				p.Close()
			}
		})
	}
}

// watchFile watches the config file's directory (editors replace files by
// rename); nil when there is no file or watching is impossible.
func (a *App) watchFile() *fsnotify.Watcher {
	if a.opts.ConfigFile == "" {
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		a.log.Warn("cannot watch the config file; reload with SIGHUP", "err", err)
		return nil
	}
	if err := w.Add(filepath.Dir(a.opts.ConfigFile)); err != nil {
		w.Close()
		a.log.Warn("cannot watch the config file; reload with SIGHUP", "err", err)
		return nil
	}
	return w
}

func (a *App) watchReload(ctx context.Context, fw *fsnotify.Watcher) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var events chan fsnotify.Event
	if fw != nil {
		defer fw.Close()
		events = fw.Events
	}
	target, _ := filepath.Abs(a.opts.ConfigFile)
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			a.log.Info("SIGHUP: reloading configuration")
			a.Reload(ctx)
		case ev := <-events:
			if p, _ := filepath.Abs(ev.Name); p == target && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
				debounce = time.After(300 * time.Millisecond)
			}
		case <-debounce:
			a.log.Info("config file changed: reloading")
			a.Reload(ctx)
		}
	}
}

// retention deletes closed incidents older than log.retention_days, at
// start and every hour (visits to a party's site can reveal political
// opinion: the record is kept only as long as configured).
func (a *App) retention(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		a.mu.Lock()
		days := a.gen.cfg.Log.RetentionDays
		a.mu.Unlock()
		if days > 0 {
			n, err := a.store.Prune(ctx, time.Now().AddDate(0, 0, -days))
			if err != nil {
				a.log.Error("incident retention", "err", err)
			} else if n > 0 {
				a.log.Info("incident retention: deleted closed incidents", "count", n, "older_than_days", days)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweep trims idle rate-limit keys incrementally (never a stop-the-world
// pass).
func (a *App) sweep(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.mu.Lock()
			lims := make([]*ratelimit.Limiter, 0, len(a.state.limiters))
			for _, l := range a.state.limiters {
				lims = append(lims, l)
			}
			a.mu.Unlock()
			for _, l := range lims {
				l.Sweep(256)
			}
		}
	}
}

func adminToken(c config.Admin) (string, error) {
	if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return "", fmt.Errorf("admin: token file: %w", err)
		}
		t := string(b)
		for len(t) > 0 && (t[len(t)-1] == '\n' || t[len(t)-1] == '\r' || t[len(t)-1] == ' ') {
			t = t[:len(t)-1]
		}
		if t == "" {
			return "", errors.New("admin: token file is empty")
		}
		return t, nil
	}
	return c.Token, nil
}

func siteNames(cfg *config.Config) []string {
	out := make([]string, len(cfg.Sites))
	for i, s := range cfg.Sites {
		out[i] = s.Name
	}
	return out
}
