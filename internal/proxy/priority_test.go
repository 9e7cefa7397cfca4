package proxy

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// gatedOrigin holds every request until the test releases its path, so
// the pool can be saturated on purpose.
type gatedOrigin struct {
	*origin
	arrived chan string // the path of each request as it arrives
	mu      sync.Mutex
	gates   map[string]chan struct{}
}

func newGatedOrigin(t *testing.T) *gatedOrigin {
	g := &gatedOrigin{arrived: make(chan string, 64), gates: map[string]chan struct{}{}}
	g.origin = newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		gate := make(chan struct{})
		g.mu.Lock()
		g.gates[r.URL.Path] = gate
		g.mu.Unlock()
		g.arrived <- r.URL.Path
		select {
		case <-gate:
		case <-r.Context().Done():
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Write([]byte("ok " + r.URL.Path))
	})
	return g
}

// release lets the request for path (which has arrived) finish.
func (g *gatedOrigin) release(path string) {
	g.mu.Lock()
	gate := g.gates[path]
	delete(g.gates, path)
	g.mu.Unlock()
	close(gate)
}

// async sends a request in the background; the result arrives on the
// returned channel.
func (s *shield) async(t *testing.T, path string, hdr map[string]string) <-chan resp {
	ch := make(chan resp, 1)
	go func() {
		r, err := s.try(http.MethodGet, path, hdr)
		if err != nil {
			r.body = err.Error()
		}
		ch <- r
	}()
	return ch
}

func TestPriorityRoutes(t *testing.T) {
	tests := []struct {
		name  string
		path  string
		ctx   Priority
		want  Priority
		table []RoutePriority
	}{
		{name: "unmatched is normal", path: "/about", want: Normal, table: []RoutePriority{{"/login", Critical}}},
		{name: "prefix match", path: "/login/reset", want: Critical, table: []RoutePriority{{"/login", Critical}}},
		{name: "longest prefix wins", path: "/donate/search", want: Low, table: []RoutePriority{{"/donate", Critical}, {"/donate/search", Low}}},
		{name: "member raises a low route", path: "/search", ctx: Critical, want: Critical, table: []RoutePriority{{"/search", Low}}},
		{name: "context never lowers a critical route", path: "/login", ctx: Low, want: Critical, table: []RoutePriority{{"/login", Critical}}},
		{name: "no table", path: "/x", want: Normal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Pool{routes: newRouteTable(tt.table)}
			r, _ := http.NewRequest(http.MethodGet, "http://example.org"+tt.path, nil)
			if tt.ctx != 0 {
				r = r.WithContext(WithPriority(r.Context(), tt.ctx))
			}
			if got := p.priorityOf(r); got != tt.want {
				t.Errorf("priority %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParsePriority(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Priority
		err  bool
	}{
		{name: "critical", in: "critical", want: Critical},
		{name: "case-insensitive", in: "LOW", want: Low},
		{name: "empty is normal", in: "", want: Normal},
		{name: "unknown", in: "urgent", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePriority(tt.in)
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("ParsePriority(%q) = %v, %v", tt.in, got, err)
			}
		})
	}
}

// TestPrioritySaturated saturates a 4-slot origin (1 slot reserved) and
// checks who is served: critical requests and members use the reserved
// slot at once, normal ones wait, low ones are shed first with 503 and
// Retry-After.
func TestPrioritySaturated(t *testing.T) {
	g := newGatedOrigin(t)
	s := newShield(t, PoolConfig{MaxConcurrency: 4, ReservedShare: 0.25, QueueTimeout: 150 * time.Millisecond,
		Priorities: []RoutePriority{{"/login", Critical}, {"/search", Low}}}, g.origin)

	// Three normal requests take the unreserved slots.
	var held []<-chan resp
	var heldPaths []string
	for i := range 3 {
		held = append(held, s.async(t, "/page"+string(rune('a'+i)), nil))
		heldPaths = append(heldPaths, <-g.arrived)
	}
	tests := []struct {
		name     string
		path     string
		hdr      map[string]string
		wantCode int
	}{
		{name: "low is shed with 503 and Retry-After", path: "/search?q=x", wantCode: http.StatusServiceUnavailable},
		{name: "normal waits out the queue and is shed", path: "/about", wantCode: http.StatusServiceUnavailable},
		{name: "critical route uses the reserved slot", path: "/login", wantCode: http.StatusOK},
		{name: "member on a low route uses the reserved slot", path: "/search?q=member", hdr: map[string]string{"X-Test-Priority": "critical"}, wantCode: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := s.async(t, tt.path, tt.hdr)
			if tt.wantCode == http.StatusOK {
				g.release(<-g.arrived)
			}
			got := <-ch
			if got.status != tt.wantCode {
				t.Fatalf("status %d (%q), want %d", got.status, got.body, tt.wantCode)
			}
			if tt.wantCode == http.StatusServiceUnavailable {
				if got.header.Get("Retry-After") == "" || got.header.Get("Cache-Control") != "no-store" {
					t.Errorf("shed answer lacks Retry-After/no-store: %v", got.header)
				}
				if !strings.Contains(got.body, "very busy") {
					t.Errorf("shed body %q does not give the reason", got.body)
				}
			}
		})
	}
	for _, path := range heldPaths {
		g.release(path)
	}
	for _, ch := range held {
		if r := <-ch; r.status != http.StatusOK {
			t.Errorf("held request: %d", r.status)
		}
	}
	for _, c := range []struct{ prio, reason string }{{"low", shedTimeout}, {"normal", shedTimeout}} {
		if v := metricValue(t, s.reg, "portcullis_proxy_shed_total", "site=www", "priority="+c.prio, "reason="+c.reason); v != 1 {
			t.Errorf("shed_total{priority=%s,reason=%s} = %v, want 1", c.prio, c.reason, v)
		}
	}
}

// TestPriorityQueueOrder queues a low, a normal and a critical request
// behind a full origin: freed slots go critical first, then normal, and
// the low request is the one left to time out.
func TestPriorityQueueOrder(t *testing.T) {
	g := newGatedOrigin(t)
	s := newShield(t, PoolConfig{MaxConcurrency: 2, MaxQueue: 8, QueueTimeout: 3 * time.Second,
		Priorities: []RoutePriority{{"/login", Critical}, {"/search", Low}}}, g.origin)
	held := []<-chan resp{s.async(t, "/a", nil), s.async(t, "/b", nil)}
	<-g.arrived
	<-g.arrived
	var queued []<-chan resp
	for i, path := range []string{"/search", "/page", "/login"} {
		queued = append(queued, s.async(t, path, nil))
		waitUntil(t, "request queued", func() bool { return s.pool.queuedLen() == i+1 })
	}
	for i, c := range []struct{ free, want string }{{"/a", "/login"}, {"/b", "/page"}, {"/login", "/search"}} {
		g.release(c.free)
		if got := <-g.arrived; got != c.want {
			t.Fatalf("freed slot %d went to %s, want %s", i+1, got, c.want)
		}
	}
	g.release("/page")
	g.release("/search")
	for _, ch := range append(held, queued...) {
		if r := <-ch; r.status != http.StatusOK {
			t.Errorf("status %d", r.status)
		}
	}
}

// TestPriorityQueueFull: with room for one waiter, a normal arrival sheds
// the queued low request at once; a second normal arrival is refused.
func TestPriorityQueueFull(t *testing.T) {
	g := newGatedOrigin(t)
	s := newShield(t, PoolConfig{MaxConcurrency: 1, MaxQueue: 1, QueueTimeout: 3 * time.Second,
		Priorities: []RoutePriority{{"/search", Low}}}, g.origin)
	held := s.async(t, "/a", nil)
	<-g.arrived
	low := s.async(t, "/search", nil)
	waitUntil(t, "low queued", func() bool { return s.pool.queuedLen() == 1 })
	normal := s.async(t, "/page", nil)
	if r := <-low; r.status != http.StatusServiceUnavailable {
		t.Fatalf("queued low request: %d, want 503 (shed for a normal one)", r.status)
	}
	if r := s.do(t, http.MethodGet, "/other", nil); r.status != http.StatusServiceUnavailable {
		t.Fatalf("arrival at a full queue of equal priority: %d, want 503", r.status)
	}
	g.release("/a")
	g.release(<-g.arrived)
	if r := <-held; r.status != http.StatusOK {
		t.Errorf("held: %d", r.status)
	}
	if r := <-normal; r.status != http.StatusOK || r.body != "ok /page" {
		t.Errorf("normal: %d %q", r.status, r.body)
	}
	if v := metricValue(t, s.reg, "portcullis_proxy_shed_total", "site=www", "priority=low", "reason="+shedQueueFull); v != 1 {
		t.Errorf("low queue_full sheds = %v", v)
	}
}

// TestAcquireContext: a waiter whose client leaves gives up its place.
func TestAcquireContext(t *testing.T) {
	g := newGatedOrigin(t)
	s := newShield(t, PoolConfig{MaxConcurrency: 1, QueueTimeout: time.Minute}, g.origin)
	held := s.async(t, "/a", nil)
	<-g.arrived
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var err error
	wg.Go(func() { _, err = s.pool.Acquire(ctx) })
	waitUntil(t, "queued", func() bool { return s.pool.queuedLen() == 1 })
	cancel()
	wg.Wait()
	if err != context.Canceled || s.pool.queuedLen() != 0 {
		t.Fatalf("err %v, queue %d", err, s.pool.queuedLen())
	}
	g.release("/a")
	<-held
	o, err := s.pool.Acquire(context.Background())
	if err != nil {
		t.Fatalf("slot not freed: %v", err)
	}
	s.pool.Release(o)
}
