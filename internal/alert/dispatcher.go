package alert

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/internal/detect"
	"github.com/portcullis/portcullis/internal/incident"
)

// Options are the Dispatcher's optional collaborators.
type Options struct {
	// Now is the clock for dedupe and rate limits (default time.Now).
	Now func() time.Time
	// Logger receives delivery failures (component-scoped; default: discard).
	// Secrets never reach it.
	Logger *slog.Logger
	// Registerer receives the metrics (nil: not registered).
	Registerer prometheus.Registerer
	// TLSConfig is used for HTTPS webhooks and SMTP STARTTLS (nil: system
	// roots; for SMTP the server name is the configured host).
	TLSConfig *tls.Config
	// Channels are delivered to in addition to those of the Config.
	Channels []Channel
	// PseudonymKey keys the pseudonyms (≥ 16 bytes; pass report.LoadKey's
	// key so alerts and reports name a prefix alike); nil draws a random
	// key, so pseudonyms change on restart.
	PseudonymKey []byte
}

// Dispatcher is a detect.Sink decorator that alerts staff about incidents.
// Every Sink call is forwarded to the wrapped sink first (its error is
// returned); then Open raises an "opened" alert, Update an "escalation"
// when the incident gained a vector, an escalating decision or resumed
// (rate-limited, see Config), and Close a "closed" alert with the summary.
// Alerts go into a bounded queue per channel and are delivered by Run, so
// no Sink call waits for the network: an alert is handed to its channels
// as soon as it is raised. Safe for concurrent use.
type Dispatcher struct {
	next detect.Sink
	cfg  Config
	now  func() time.Time
	log  *slog.Logger
	m    *metrics
	outs []*outlet

	mu  sync.Mutex
	pol *policy
}

// outlet is one channel with its queue.
type outlet struct {
	ch Channel
	q  chan *Alert
}

var _ detect.Sink = (*Dispatcher)(nil)

// New returns a dispatcher forwarding to next (nil: alerting only) and
// delivering to the channels of cfg (defaulted, then validated: errors wrap
// ErrConfig) and opts.Channels. It reads the SMTP password file; errors
// name the file, never its contents.
func New(next detect.Sink, cfg Config, opts Options) (*Dispatcher, error) {
	cfg = cfg.Default()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	priv := &privacy{cfg: cfg.Privacy, key: opts.PseudonymKey}
	if priv.key == nil {
		priv.key = make([]byte, 32)
		rand.Read(priv.key)
	} else if len(priv.key) < 16 {
		return nil, fmt.Errorf("%w: pseudonym key shorter than 16 bytes", ErrConfig)
	}
	d := &Dispatcher{next: next, cfg: cfg, now: opts.Now, log: opts.Logger,
		pol: newPolicy(cfg.EscalationInterval, cfg.EscalationsPerHour, priv)}
	var chans []Channel
	if len(cfg.Webhooks) > 0 {
		client := newHTTPClient(opts.TLSConfig)
		for _, w := range cfg.Webhooks {
			chans = append(chans, &webhook{name: w.Name, url: w.URL, kind: w.Kind, client: client})
		}
	}
	if cfg.SMTP != nil {
		e, err := newEmail(*cfg.SMTP, opts.TLSConfig, cfg.SendTimeout)
		if err != nil {
			return nil, err
		}
		chans = append(chans, e)
	}
	chans = append(chans, opts.Channels...)
	names := map[string]bool{}
	for _, c := range chans {
		if names[c.Name()] {
			return nil, fmt.Errorf("%w: channel name %q used twice", ErrConfig, c.Name())
		}
		names[c.Name()] = true
		d.outs = append(d.outs, &outlet{ch: c, q: make(chan *Alert, cfg.QueueSize)})
	}
	m, err := newMetrics(opts.Registerer, d.outs)
	if err != nil {
		return nil, err
	}
	d.m = m
	return d, nil
}

// Open implements detect.Sink: forwards, then raises an "opened" alert
// (one per incident).
func (d *Dispatcher) Open(ctx context.Context, in *incident.Incident) error {
	var err error
	if d.next != nil {
		err = d.next.Open(ctx, in)
	}
	d.raise(func(now time.Time) (*Alert, []string) { return d.pol.open(in, now) })
	return err
}

// Update implements detect.Sink: forwards, then raises an "escalation" when
// the incident changed and the rate limits allow (an "opened" alert for an
// incident not seen before).
func (d *Dispatcher) Update(ctx context.Context, in *incident.Incident) error {
	var err error
	if d.next != nil {
		err = d.next.Update(ctx, in)
	}
	d.raise(func(now time.Time) (*Alert, []string) { return d.pol.update(in, now) })
	return err
}

// Close implements detect.Sink: forwards, then raises a "closed" alert
// (one per incident) with the final summary and the changes not alerted
// yet.
func (d *Dispatcher) Close(ctx context.Context, in *incident.Incident) error {
	var err error
	if d.next != nil {
		err = d.next.Close(ctx, in)
	}
	d.raise(func(now time.Time) (*Alert, []string) { return d.pol.close(in, now) })
	return err
}

// Decision takes a mitigation timeline event (mitigate.ControllerOptions.
// OnEvent) of incident id: an added or escalated decision of an open
// incident is an escalation (rate-limited like the others). It never
// blocks, so it may be called under the controller's lock.
func (d *Dispatcher) Decision(id string, ev incident.Event) {
	if id == "" {
		return
	}
	d.raise(func(now time.Time) (*Alert, []string) { return d.pol.decision(id, ev, now) })
}

// raise runs one policy step and queues its alert on every channel, under
// the lock so that alerts are queued in the order they were decided.
func (d *Dispatcher) raise(step func(time.Time) (*Alert, []string)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a, drops := step(d.now())
	for _, r := range drops {
		d.m.dropped.WithLabelValues(r).Inc()
	}
	if a == nil {
		return
	}
	for _, o := range d.outs {
		select {
		case o.q <- a:
		default:
			d.m.dropped.WithLabelValues(DropQueueFull).Inc()
			d.log.Warn("alert queue full, alert dropped", "channel", o.ch.Name(), "kind", a.Kind, "incident", a.Incident.ID)
		}
	}
}

// Run delivers queued alerts, one worker per channel, until ctx ends; then
// it counts what is still queued as dropped (shutdown) and returns nil.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, o := range d.outs {
		wg.Go(func() { d.work(ctx, o) })
	}
	wg.Wait()
	return nil
}

func (d *Dispatcher) work(ctx context.Context, o *outlet) {
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case <-o.q:
					d.m.dropped.WithLabelValues(DropShutdown).Inc()
				default:
					return
				}
			}
		case a := <-o.q:
			d.deliver(ctx, o, a)
		}
	}
}

// deliver sends a on o, retrying with exponential backoff (RetryBase
// doubling up to RetryMax) up to MaxAttempts attempts of at most
// SendTimeout each.
func (d *Dispatcher) deliver(ctx context.Context, o *outlet, a *Alert) {
	name := o.ch.Name()
	wait := d.cfg.RetryBase
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
		err := o.ch.Send(actx, a)
		cancel()
		if err == nil {
			d.m.sent.WithLabelValues(name, string(a.Kind)).Inc()
			return
		}
		d.m.failures.WithLabelValues(name).Inc()
		attrs := []any{"channel", name, "kind", a.Kind, "incident", a.Incident.ID, "attempt", attempt, "err", err}
		switch {
		case ctx.Err() != nil:
			d.m.dropped.WithLabelValues(DropShutdown).Inc()
			return
		case errors.Is(err, ErrPermanent):
			d.m.dropped.WithLabelValues(DropRejected).Inc()
			d.log.Error("alert rejected, not retried", attrs...)
			return
		case attempt >= d.cfg.MaxAttempts:
			d.m.dropped.WithLabelValues(DropRetriesExhausted).Inc()
			d.log.Error("alert undeliverable, giving up", attrs...)
			return
		}
		d.log.Warn("alert delivery failed, retrying", append(attrs, "retry_in", wait)...)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			d.m.dropped.WithLabelValues(DropShutdown).Inc()
			return
		case <-t.C:
		}
		wait = min(2*wait, d.cfg.RetryMax)
	}
}
