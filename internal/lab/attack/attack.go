// Package attack drives attack traffic for the Portcullis lab (issue 6):
// HTTP floods, slow-connection attacks and HTTP/2 abuse, against a front
// (Portcullis, nginx or HAProxy) listening on loopback. Each driver either
// runs in-process (tool "go", and the HTTP/2 rapid-reset frame writer) or
// wraps an external load tool (wrk, h2load, slowhttptest), and reports what it
// saw from the client side as a Result.
//
// Every attack request carries the header "X-Lab-Class: bot" (slowhttptest
// cannot set arbitrary headers and sends the cookie "lab_class=bot"
// instead), so the lab's instrumented origin can count what leaked through.
package attack

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"time"
)

// Target is the front under test (Portcullis, nginx or HAProxy) on loopback.
type Target struct {
	// URL is http://127.0.0.1:PORT (loopback only; Run refuses anything
	// else with an error).
	URL *url.URL
	// ProxyProtocol, when true, makes Go drivers prefix each connection with
	// a PROXY v1 header carrying the simulated source instead of setting
	// X-Forwarded-For.
	ProxyProtocol bool
}

// Spec is one attack vector of a scenario (YAML tags are what scenario files
// use).
type Spec struct {
	// Kind is one of get_flood, distributed_flood, cache_busting,
	// login_flood, slowloris, slow_post, slow_read, rapid_reset, h2_flood,
	// flash_crowd (flash_crowd is legit-like traffic, counted as "crowd",
	// not bot).
	Kind string `yaml:"kind"`
	// Tool is go, wrk, h2load or slowhttptest; empty picks the kind's
	// default (floods wrk, slow_* slowhttptest, rapid_reset go, h2_flood
	// h2load).
	Tool string `yaml:"tool"`
	// Start is the offset from the start of the attack phase.
	Start time.Duration `yaml:"start"`
	// Duration is how long the vector runs after Start.
	Duration time.Duration `yaml:"duration"`
	// Rate is total requests/s where the tool can pace (go, rapid_reset);
	// wrk runs unpaced with Connections. 0 = as fast as possible.
	Rate float64 `yaml:"rate"`
	// Connections is the number of concurrent connections.
	Connections int `yaml:"connections"`
	// Paths are the request paths; default ["/"]. cache_busting appends a
	// random query.
	Paths []string `yaml:"paths"`
	// Method is the HTTP method; default GET (login_flood defaults to POST
	// form bodies to Paths).
	Method string `yaml:"method"`
	// Pulse makes the vector run in on/off bursts (pulse waves); nil is
	// continuous.
	Pulse *Pulse `yaml:"pulse"`
	// Sources is the number of simulated source addresses.
	Sources int `yaml:"sources"`
	// Countries weights the countries sources are drawn from, e.g.
	// {RU: 0.6, BR: 0.3, CN: 0.1}; the caller draws the addresses.
	Countries map[string]float64 `yaml:"countries"`
}

// Pulse is an on/off burst pattern: traffic for On, silence for Off,
// repeated.
type Pulse struct {
	On  time.Duration `yaml:"on"`
	Off time.Duration `yaml:"off"`
}

// Result is what a driver saw from the client side.
type Result struct {
	// Sent counts requests (or connections for slow_* kinds) attempted.
	Sent uint64
	// Statuses counts responses by HTTP status code.
	Statuses map[int]uint64
	// Errors counts transport errors, resets and timeouts.
	Errors uint64
	// Connections counts connections opened.
	Connections uint64
}

// Run drives spec against t until spec.Duration passes (Run first waits
// spec.Start) or ctx ends. sources are the simulated public addresses to use.
// Every loop is bounded by Duration and a hard request cap.
func Run(ctx context.Context, t Target, spec Spec, sources []netip.Addr) (Result, error) {
	return Result{}, errors.New("attack: not implemented yet")
}

// Validate checks a Spec (kind/tool known, durations > 0; whether the tool is
// installed is not checked) and returns an error naming the field.
func (s Spec) Validate() error {
	return errors.New("attack: not implemented yet")
}
