package proxy

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Priority ranks requests for origin capacity. When the origins are at
// their concurrency limit, waiting requests are admitted highest priority
// first (FIFO within a priority), a full queue sheds the newest of the
// lowest priority, and only Critical requests may use the reserved share
// of each origin's limit.
type Priority uint8

// Priorities, lowest first. The zero value means "not set" and is treated
// as Normal.
const (
	// Low is for expensive, deferrable routes (search).
	Low Priority = iota + 1
	// Normal is every other request.
	Normal
	// Critical is for login, donation and volunteer routes, and for
	// members (the app raises their requests with WithPriority).
	Critical
)

var priorityNames = [...]string{"", "low", "normal", "critical"}

// String returns "low", "normal" or "critical" ("normal" for the zero value).
func (p Priority) String() string {
	if p == 0 || int(p) >= len(priorityNames) {
		return "normal"
	}
	return priorityNames[p]
}

// ParsePriority parses "critical", "normal" or "low" (case-insensitive;
// "" is Normal). Errors name the bad value.
func ParsePriority(s string) (Priority, error) {
	switch strings.ToLower(s) {
	case "critical":
		return Critical, nil
	case "normal", "":
		return Normal, nil
	case "low":
		return Low, nil
	}
	return 0, fmt.Errorf("proxy: unknown priority %q (critical, normal or low)", s)
}

type priorityKey struct{}

// WithPriority returns ctx marked with p. The pool serves a request at the
// higher of its route's priority and the context's, so the app can raise a
// member's requests to Critical (they then use the reserved capacity) but
// never lower a critical route:
//
//	r = r.WithContext(proxy.WithPriority(r.Context(), proxy.Critical))
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

// PriorityFrom returns the priority WithPriority set on ctx, if any.
func PriorityFrom(ctx context.Context) (Priority, bool) {
	p, ok := ctx.Value(priorityKey{}).(Priority)
	return p, ok && p != 0
}

// RoutePriority assigns a priority to the requests whose path starts with
// Prefix; the longest matching prefix wins.
type RoutePriority struct {
	Prefix   string
	Priority Priority
}

// routeTable is RoutePriority sorted longest prefix first.
type routeTable []RoutePriority

func newRouteTable(rs []RoutePriority) routeTable {
	t := append(routeTable(nil), rs...)
	for i := range t {
		if t[i].Priority == 0 {
			t[i].Priority = Normal
		}
	}
	sort.SliceStable(t, func(i, j int) bool { return len(t[i].Prefix) > len(t[j].Prefix) })
	return t
}

func (t routeTable) lookup(path string) Priority {
	for _, r := range t {
		if strings.HasPrefix(path, r.Prefix) {
			return r.Priority
		}
	}
	return Normal
}

// priorityOf is the priority the pool serves r at.
func (p *Pool) priorityOf(r *http.Request) Priority {
	prio := p.routes.lookup(r.URL.Path)
	if c, ok := PriorityFrom(r.Context()); ok && c > prio {
		prio = c
	}
	return prio
}

// waiter is one request in the deadline queue; pooled with its channel
// and timer.
type waiter struct {
	prio       Priority
	prev, next *waiter
	queued     bool
	ready      chan *Origin // one grant (an origin) or nil (shed)
	timer      *time.Timer
}

var waiters = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &waiter{ready: make(chan *Origin, 1), timer: t}
}}

// waitList is a FIFO of waiters of one priority.
type waitList struct{ head, tail *waiter }

func (l *waitList) push(w *waiter) {
	w.prev, w.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	w.queued = true
}

func (l *waitList) remove(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.prev, w.next, w.queued = nil, nil, false
}

// capFor is how many requests of priority prio an origin with limit may
// hold: all of it for Critical, the unreserved part for the others.
func (p *Pool) capFor(prio Priority, limit int) int {
	if prio >= Critical || p.cfg.ReservedShare <= 0 || limit < 2 {
		return limit
	}
	reserved := int(math.Ceil(float64(limit) * p.cfg.ReservedShare))
	return limit - min(reserved, limit-1)
}

// pickLocked returns the healthy origin with the most headroom for prio,
// or nil (p.mu held).
func (p *Pool) pickLocked(prio Priority) *Origin {
	var best *Origin
	bestFree := 0.0
	n := len(p.origins)
	start := 0
	if n > 1 {
		start = int(p.next.Add(1) % uint64(n)) // spread ties
	}
	for i := range n {
		o := p.origins[(start+i)%n]
		if !o.healthy.Load() {
			continue
		}
		limit := o.lim.Limit()
		in := int(o.inflight.Load())
		c := p.capFor(prio, limit)
		if in >= c {
			continue
		}
		free := float64(c-in) / float64(limit)
		if best == nil || free > bestFree {
			best, bestFree = o, free
		}
	}
	return best
}

// Shed reasons (metric label values).
const (
	shedTimeout   = "queue_timeout"
	shedQueueFull = "queue_full"
	shedNoOrigin  = "no_origin"
)

// acquire takes a slot on an origin for a request of priority prio,
// waiting up to QueueTimeout in the priority queue. Errors: ErrNoOrigin,
// ErrSaturated (queue timeout, or shed from a full queue), ctx's error.
func (p *Pool) acquire(ctx context.Context, prio Priority) (*Origin, error) {
	p.mu.Lock()
	if o := p.pickLocked(prio); o != nil {
		p.enter(o)
		p.mu.Unlock()
		return o, nil
	}
	if !p.anyHealthy() {
		p.mu.Unlock()
		p.metrics.shed(p.cfg.Site, prio, shedNoOrigin)
		return nil, ErrNoOrigin
	}
	if p.cfg.QueueTimeout <= 0 || !p.makeRoomLocked(prio) {
		p.mu.Unlock()
		p.metrics.shed(p.cfg.Site, prio, shedQueueFull)
		return nil, ErrSaturated
	}
	w := waiters.Get().(*waiter)
	w.prio = prio
	p.queue[prio].push(w)
	p.queued++
	p.mu.Unlock()

	// Critical requests (critical routes, members, peace-time visitors)
	// wait up to criticalQueueFactor × QueueTimeout: half a second's wait
	// beats a 503 for someone donating or logging in, and they are served
	// first anyway.
	timeout := p.cfg.QueueTimeout
	if prio >= Critical {
		timeout *= criticalQueueFactor
	}
	w.timer.Reset(timeout)
	var err error
	select {
	case o := <-w.ready:
		w.timer.Stop()
		waiters.Put(w)
		if o == nil {
			p.metrics.shed(p.cfg.Site, prio, shedQueueFull)
			return nil, ErrSaturated
		}
		return o, nil
	case <-w.timer.C:
		err = ErrSaturated
	case <-ctx.Done():
		w.timer.Stop()
		err = ctx.Err()
	}
	p.mu.Lock()
	if w.queued {
		p.queue[prio].remove(w)
		p.queued--
		p.mu.Unlock()
		waiters.Put(w)
		if err == ErrSaturated {
			p.metrics.shed(p.cfg.Site, prio, shedTimeout)
		}
		return nil, err
	}
	p.mu.Unlock()
	// Granted or shed while the timer fired: the answer is in the channel.
	o := <-w.ready
	waiters.Put(w)
	switch {
	case o == nil:
		p.metrics.shed(p.cfg.Site, prio, shedQueueFull)
		return nil, ErrSaturated
	case ctx.Err() != nil:
		p.Release(o)
		return nil, ctx.Err()
	}
	return o, nil
}

// makeRoomLocked reports whether a waiter of priority prio may queue,
// shedding the newest waiter of the lowest priority below prio when the
// queue is full (p.mu held).
func (p *Pool) makeRoomLocked(prio Priority) bool {
	if p.queued < p.cfg.MaxQueue {
		return true
	}
	for lp := Low; lp < prio; lp++ {
		if w := p.queue[lp].tail; w != nil {
			p.queue[lp].remove(w)
			p.queued--
			w.ready <- nil
			return true
		}
	}
	return false
}

// dispatchLocked hands free slots to waiters, highest priority first
// (p.mu held). It stops at the first waiter no origin has room for: lower
// priorities have no more room than it.
func (p *Pool) dispatchLocked() {
	for p.queued > 0 {
		var w *waiter
		for prio := Critical; prio >= Low; prio-- {
			if w = p.queue[prio].head; w != nil {
				break
			}
		}
		o := p.pickLocked(w.prio)
		if o == nil {
			return
		}
		p.queue[w.prio].remove(w)
		p.queued--
		p.enter(o)
		w.ready <- o
	}
}

// dispatch admits waiters after capacity grew (a higher limit, a
// readmitted origin).
func (p *Pool) dispatch() {
	p.mu.Lock()
	p.dispatchLocked()
	p.mu.Unlock()
}

// criticalQueueFactor stretches the queue timeout of critical requests.
const criticalQueueFactor = 5
