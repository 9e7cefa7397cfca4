// Package attack drives attack traffic for the Portcullis lab (issue 6):
// HTTP floods, slow-connection attacks and HTTP/2 abuse, against a front
// (Portcullis, nginx or HAProxy) listening on loopback. Each driver either
// runs in-process (tool "go": a paced net/http generator, raw slow
// connections, and the HTTP/2 rapid-reset frame writer) or wraps an external
// load tool (wrk with a generated Lua script, h2load, slowhttptest), and
// reports what it saw from the client side as a Result.
//
// Simulated public sources travel in X-Forwarded-For (the lab's front trusts
// its loopback peer) or, with Target.ProxyProtocol, in a PROXY v1 header per
// connection. Tools that cannot set either (slowhttptest always; wrk and
// h2load under ProxyProtocol) are pointed at an in-process loopback relay
// that adds the PROXY header, or inserts the X-Forwarded-For line after the
// request line, per connection.
//
// Every attack request carries the header "X-Lab-Class: bot" (flash_crowd
// carries "crowd"); slowhttptest cannot set arbitrary headers and sends the
// cookie "lab_class=bot" instead. The lab's instrumented origin counts either,
// so it can tell what leaked through the shield.
//
// Every loop is bounded by the spec's Duration (plus a short grace for
// in-flight requests) and by a hard request cap (MaxRequests).
package attack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Header and cookie that mark lab traffic for the instrumented origin.
const (
	// ClassHeader is the request header naming the traffic class.
	ClassHeader = "X-Lab-Class"
	// ClassCookie is the cookie name carrying the class where a tool cannot
	// set headers (slowhttptest: "lab_class=bot").
	ClassCookie = "lab_class"
	// ClassBot marks attack traffic.
	ClassBot = "bot"
	// ClassCrowd marks flash_crowd traffic (legitimate-like surge).
	ClassCrowd = "crowd"
)

// Limits every Run honours.
const (
	// MaxRequests caps the requests (or streams, or connections) one Run
	// attempts, whatever the rate and duration.
	MaxRequests = 5_000_000
	// MaxConnections caps Spec.Connections.
	MaxConnections = 10_000
	// MaxDuration caps Spec.Duration and Spec.Start.
	MaxDuration = time.Hour
	// MaxRate caps Spec.Rate, in requests per second.
	MaxRate = 1_000_000
	// requestTimeout bounds one request of the Go drivers; in-flight
	// requests may outlive Duration by at most this much.
	requestTimeout = 5 * time.Second
)

// Sentinel errors; Run and Validate wrap them with details.
var (
	// ErrInvalidSpec is wrapped by every Validate error.
	ErrInvalidSpec = errors.New("invalid attack spec")
	// ErrNotLoopback is returned by Run for a target that is not
	// http://<loopback address>:port.
	ErrNotLoopback = errors.New("target is not on loopback")
	// ErrToolMissing is returned by Run when the external tool is not
	// installed; the message names the Debian package.
	ErrToolMissing = errors.New("attack tool not installed")
)

// Target is the front under test (Portcullis, nginx or HAProxy) on loopback.
type Target struct {
	// URL is http://127.0.0.1:PORT (loopback only; Run refuses anything
	// else with an error).
	URL *url.URL
	// ProxyProtocol, when true, makes drivers prefix each connection with a
	// PROXY v1 header carrying the simulated source instead of setting
	// X-Forwarded-For (external tools go through a loopback relay that adds
	// it, so they get one source per connection).
	ProxyProtocol bool
}

// Spec is one attack vector of a scenario (YAML tags are what scenario files
// use).
type Spec struct {
	// Kind is one of get_flood, distributed_flood, cache_busting,
	// login_flood, slowloris, slow_post, slow_read, rapid_reset, h2_flood,
	// flash_crowd (flash_crowd is legit-like traffic, marked "crowd", not
	// "bot").
	Kind string `yaml:"kind"`
	// Tool is go, wrk, h2load or slowhttptest; empty picks the kind's
	// default: floods wrk, slow_* slowhttptest, rapid_reset go, h2_flood
	// h2load, flash_crowd go (paced, like people arriving); a flood with
	// Rate > 0 defaults to go, since wrk and h2load cannot pace.
	Tool string `yaml:"tool"`
	// Start is the offset from the start of the attack phase; Run waits it
	// first.
	Start time.Duration `yaml:"start"`
	// Duration is how long the vector runs after Start.
	Duration time.Duration `yaml:"duration"`
	// Rate is total requests/s where the tool can pace (go, rapid_reset);
	// for slow_* kinds it is new connections/s. wrk and h2load run unpaced
	// with Connections. 0 = as fast as possible.
	Rate float64 `yaml:"rate"`
	// Connections is the number of concurrent connections (go: concurrent
	// workers); 0 picks a per-kind default.
	Connections int `yaml:"connections"`
	// Paths are the request paths, used in rotation; default ["/"].
	// cache_busting appends a random query.
	Paths []string `yaml:"paths"`
	// Method is the HTTP method; default GET, login_flood POST (with a
	// form body of made-up credentials), slow_post POST.
	Method string `yaml:"method"`
	// Pulse makes the vector run in on/off bursts (pulse waves); nil is
	// continuous.
	Pulse *Pulse `yaml:"pulse"`
	// Sources is the number of simulated source addresses the caller draws
	// (Run uses the addresses it is given).
	Sources int `yaml:"sources"`
	// Countries weights the countries sources are drawn from, e.g.
	// {RU: 0.6, BR: 0.3, CN: 0.1} (ISO 3166-1 alpha-2); the caller draws
	// the addresses.
	Countries map[string]float64 `yaml:"countries"`
}

// Pulse is an on/off burst pattern: traffic for On, silence for Off,
// repeated until Spec.Duration ends.
type Pulse struct {
	// On is the length of one burst.
	On time.Duration `yaml:"on"`
	// Off is the pause after each burst.
	Off time.Duration `yaml:"off"`
}

// Bursts returns the [from, to) intervals in which a vector of duration d
// sends, as offsets from its start (after Spec.Start): one interval [0, d)
// for a nil p (or one whose On or Off is not positive, which Validate
// refuses), else a burst of On every On+Off, the last cut at d.
func (p *Pulse) Bursts(d time.Duration) [][2]time.Duration {
	if p == nil || p.On <= 0 || p.Off <= 0 {
		return [][2]time.Duration{{0, d}}
	}
	var out [][2]time.Duration
	for at := time.Duration(0); at < d; at += p.On + p.Off {
		out = append(out, [2]time.Duration{at, min(at+p.On, d)})
	}
	return out
}

// Result is what a driver saw from the client side.
type Result struct {
	// Sent counts requests (or connections for slow_* kinds) attempted.
	Sent uint64
	// Statuses counts responses by HTTP status code. h2load reports only
	// classes, recorded as 200, 300, 400 and 500; slowhttptest connections
	// are counted by the first status line the relay saw on each.
	Statuses map[int]uint64
	// Errors counts transport errors, resets and timeouts (for slow_*
	// kinds: attack connections the target closed or refused).
	Errors uint64
	// Connections counts connections opened (wrk: its connections plus the
	// reconnects it makes after "Connection: close" and socket errors).
	Connections uint64
}

// add merges o into r.
func (r *Result) add(o Result) {
	r.Sent += o.Sent
	r.Errors += o.Errors
	r.Connections += o.Connections
	if len(o.Statuses) > 0 && r.Statuses == nil {
		r.Statuses = make(map[int]uint64, len(o.Statuses))
	}
	for code, n := range o.Statuses {
		r.Statuses[code] += n
	}
}

// job is one validated spec with defaults applied, ready for a driver.
type job struct {
	spec    Spec
	target  Target
	addr    string // host:port of the target
	sources []netip.Addr
	xff     []string // sources rendered for X-Forwarded-For, same order
	marker  string   // ClassBot or ClassCrowd
}

// driver runs one burst of a job for d and reports what it saw.
type driver func(ctx context.Context, j *job, d time.Duration) (Result, error)

// Run drives spec against t until spec.Duration passes (Run first waits
// spec.Start) or ctx ends. sources are the simulated public addresses to use
// (already drawn by the caller); with none, requests carry no forwarding
// header and the target sees the loopback peer. Every loop is bounded by
// Duration and MaxRequests. Errors: ErrInvalidSpec (see Validate),
// ErrNotLoopback, ErrToolMissing naming the Debian package, or the tool's
// failure; when ctx ends early Run returns what it saw and no error.
func Run(ctx context.Context, t Target, spec Spec, sources []netip.Addr) (Result, error) {
	if err := spec.Validate(); err != nil {
		return Result{}, err
	}
	addr, err := loopbackAddr(t.URL)
	if err != nil {
		return Result{}, err
	}
	s := spec.withDefaults()
	run, err := driverFor(s)
	if err != nil {
		return Result{}, err
	}
	sources = validSources(sources)
	j := &job{spec: s, target: t, addr: addr, sources: sources, xff: sourceStrings(sources), marker: markerFor(s.Kind)}
	if !sleepCtx(ctx, s.Start) {
		return Result{}, nil
	}
	var total Result
	begin := time.Now()
	for _, w := range s.Pulse.Bursts(s.Duration) {
		if !sleepCtx(ctx, time.Until(begin.Add(w[0]))) {
			break
		}
		// A burst that starts late (the previous one's in-flight grace)
		// still ends on schedule.
		d := time.Until(begin.Add(w[1]))
		if d <= 0 {
			continue
		}
		r, err := run(ctx, j, d)
		total.add(r)
		if err != nil {
			return total, err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return total, nil
}

// driverFor picks the driver for a spec with defaults applied, checking that
// an external tool is installed.
func driverFor(s Spec) (driver, error) {
	switch s.Tool {
	case ToolWrk:
		if err := lookTool("wrk", "wrk"); err != nil {
			return nil, err
		}
		return runWrk, nil
	case ToolH2load:
		if err := lookTool("h2load", "nghttp2-client"); err != nil {
			return nil, err
		}
		return runH2load, nil
	case ToolSlowhttptest:
		if err := lookTool("slowhttptest", "slowhttptest"); err != nil {
			return nil, err
		}
		return runSlowhttptest, nil
	}
	switch {
	case s.Kind == KindRapidReset:
		return runRapidReset, nil
	case isSlow(s.Kind):
		return runGoSlow, nil
	default:
		return runGoHTTP, nil
	}
}

// loopbackAddr returns host:port of an http URL on a loopback address
// ("localhost" counts as 127.0.0.1), or an error wrapping ErrNotLoopback.
func loopbackAddr(u *url.URL) (string, error) {
	if u == nil {
		return "", fmt.Errorf("attack: target URL missing: %w", ErrNotLoopback)
	}
	if u.Scheme != "http" {
		return "", fmt.Errorf("attack: target %q: scheme must be http: %w", u.Redacted(), ErrNotLoopback)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
	}
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Unmap().IsLoopback() || a.Zone() != "" {
		return "", fmt.Errorf("attack: target %q: host must be a loopback address: %w", u.Redacted(), ErrNotLoopback)
	}
	return net.JoinHostPort(a.Unmap().String(), port), nil
}

// markerFor is the X-Lab-Class value for a kind.
func markerFor(kind string) string {
	if kind == KindFlashCrowd {
		return ClassCrowd
	}
	return ClassBot
}

// sleepCtx waits d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
