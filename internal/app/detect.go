package app

import (
	"context"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/detect"
	"github.com/portcullis/portcullis/internal/geo"
	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/record"
	"github.com/portcullis/portcullis/internal/stats"
)

// detection is the live control path: the accountant fed by the request
// path, drained in the background, snapshotted every tick and stepped
// through the detection engine (on the wall clock).
type detection struct {
	acc *stats.Accountant
	eng *detect.Engine
	// rsink fills the incidents' series, impact and integrity from the
	// mitigation's recorder (bound when run starts).
	rsink *record.Sink
	tick  time.Duration
	// mit receives every tick's results (nil: detection only).
	mit *mitigation
	// onTick, when set, sees every tick's target states (challenge
	// difficulty follows the attack state).
	onTick func([]detect.TargetStatus)
	// attack[i] is true while site i is not in the normal state (peace-time
	// visitors are only learned in peace time).
	attack []atomic.Bool
}

// detectConfigs maps the configuration's sites onto detection and
// accounting configs (auth and expensive routes are counted exactly; route
// names are the paths, so vectors read "credential_stuffing:/login").
func detectConfigs(cfg *config.Config) (stats.Config, detect.Config) {
	dc := detect.Config{Tick: cfg.Detect.Tick.D()}
	dc.HTTP.FloorRPS = cfg.Detect.MinAttackRPS
	for _, s := range cfg.Sites {
		ds := detect.SiteConfig{Name: s.Name, StaticRPS: cfg.Detect.StaticRPS}
		for _, p := range s.AuthRoutes {
			ds.AuthRoutes = append(ds.AuthRoutes, detect.Route{Name: p, Path: p, Method: "POST"})
		}
		for _, p := range s.ExpensiveRoutes {
			ds.ExpensiveRoutes = append(ds.ExpensiveRoutes, detect.Route{Name: p, Path: p})
		}
		dc.Sites = append(dc.Sites, ds)
	}
	return stats.Config{Sites: dc.StatsSites(), TopN: dc.StatsTopN()}, dc
}

// newDetection builds the control path; names (nil without geo data) is
// the ASN → name table the request path's geo cache fills, read when an
// incident's networks are listed.
func newDetection(cfg *config.Config, sink detect.Sink, gdb *geo.DB, names *detect.ASNames, log *slog.Logger) (*detection, error) {
	sc, dc := detectConfigs(cfg)
	acc, err := stats.New(sc)
	if err != nil {
		return nil, err
	}
	var opts detect.Options
	opts.OnEvent = func(target string, e incident.Event) {
		// Called under the engine's lock: log only (state changes are rare).
		log.Warn("attack state", "target", target, "kind", e.Kind, "from", string(e.From), "to", string(e.To), "message", e.Message)
	}
	if gdb != nil {
		// ASN names come from the lookups (geo.DB has no ASN → name index):
		// the request path's cache misses and the packet path here.
		opts.Geo = func(a netip.Addr) (string, uint32) {
			i := gdb.Lookup(a)
			names.Learn(i.ASN, i.ASOrg)
			return i.Country, i.ASN
		}
		opts.ASName = names.Name
	}
	rsink := &record.Sink{Next: sink, Impact: true}
	eng, err := detect.NewEngine(dc, len(sc.Sites), rsink, opts)
	if err != nil {
		return nil, err
	}
	return &detection{acc: acc, eng: eng, rsink: rsink, tick: dc.Tick, attack: make([]atomic.Bool, len(sc.Sites))}, nil
}

// run drains and ticks until ctx ends. Open incidents stay open in the
// store; the engine closes them when traffic returns to normal.
func (d *detection) run(ctx context.Context) {
	go d.acc.Run(ctx, d.tick/4)
	t := time.NewTicker(d.tick)
	defer t.Stop()
	d.acc.Begin(time.Now().UnixNano())
	var rec *record.Recorder
	if d.mit != nil {
		rec = d.mit.rec.rec
		d.rsink.Rec = rec // Step, the only reader, runs on this goroutine
	}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			snap := d.acc.Snapshot(now.UnixNano())
			d.eng.Step(ctx, snap, now)
			targets := d.eng.Status()
			for _, t := range targets {
				if rec != nil && t.Site >= 0 {
					if s := rec.Lookup(t.Name); s != nil {
						s.Mark(now, t.State == incident.StateNormal) // peace time for the baselines
					}
				}
				if t.Site >= 0 && t.Site < len(d.attack) {
					alert := t.State != incident.StateNormal
					if !d.attack[t.Site].Swap(alert) && alert && d.mit != nil {
						d.mit.good.alert(t.Site, now)
					}
				}
			}
			if d.mit != nil {
				d.mit.step(now, snap, d.tick, targets)
			}
			if d.onTick != nil {
				d.onTick(targets)
			}
		}
	}
}
