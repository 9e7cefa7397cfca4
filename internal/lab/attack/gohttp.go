package attack

import (
	"context"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxPaceLag is how far a pacer may fall behind and still catch up with a
// short burst (timer overshoot at sub-millisecond intervals).
const maxPaceLag = 20 * time.Millisecond

// pacer spaces one worker's requests interval apart (zero: unpaced). A
// worker that falls behind by up to maxPaceLag (or one interval, if longer)
// catches up; further behind (slow responses) it resumes from now rather
// than bursting.
type pacer struct {
	next     time.Time
	interval time.Duration
}

// wait blocks until the next slot or ctx's end; it reports whether the slot
// came.
func (p *pacer) wait(ctx context.Context) bool {
	if p.interval <= 0 {
		return ctx.Err() == nil
	}
	now := time.Now()
	if p.next.Before(now.Add(-max(p.interval, maxPaceLag))) {
		p.next = now
	}
	d := p.next.Sub(now)
	p.next = p.next.Add(p.interval)
	return sleepCtx(ctx, d)
}

// budget is a run's shared request cap and counters.
type budget struct {
	limit  uint64
	issued atomic.Uint64
	conns  atomic.Uint64
	errs   atomic.Uint64
}

// take claims one request; false once the cap is reached.
func (b *budget) take() bool { return b.issued.Add(1) <= b.limit }

// requestBudget is MaxRequests, or Rate×d (rounded up, plus one per worker)
// when paced.
func requestBudget(rate float64, d time.Duration, workers int) uint64 {
	if rate <= 0 {
		return MaxRequests
	}
	return min(MaxRequests, uint64(math.Ceil(rate*d.Seconds()))+uint64(workers))
}

// paceInterval is the per-worker gap for a total rate over workers (0:
// unpaced).
func paceInterval(rate float64, workers int) time.Duration {
	if rate <= 0 {
		return 0
	}
	return time.Duration(float64(workers) / rate * float64(time.Second))
}

// conduit is one HTTP client with its own connection pool; in PROXY mode
// its connections claim src.
type conduit struct {
	j      *job
	b      *budget
	client *http.Client
	tr     *http.Transport
	src    atomic.Pointer[netip.Addr]
}

// newConduit builds a client for j: HTTP/1.1 with one connection, or h2c
// (prior knowledge, RFC 9113 §3.3) when h2 is set.
func newConduit(j *job, b *budget, h2 bool) *conduit {
	c := &conduit{j: j, b: b}
	c.tr = &http.Transport{
		DialContext:           c.dial,
		MaxIdleConnsPerHost:   1,
		MaxConnsPerHost:       1,
		DisableCompression:    true,
		ResponseHeaderTimeout: requestTimeout,
		IdleConnTimeout:       30 * time.Second,
	}
	p := new(http.Protocols)
	if h2 {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	c.tr.Protocols = p
	c.client = &http.Client{
		Transport: c.tr,
		Timeout:   requestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // bots do not follow the shield's redirects
		},
	}
	return c
}

// dial connects to the target, counting the connection and, in PROXY mode,
// writing the header for the conduit's current source.
func (c *conduit) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.j.addr)
	if err != nil {
		return nil, err
	}
	c.b.conns.Add(1)
	if src := c.src.Load(); c.j.target.ProxyProtocol && src != nil {
		if err := writeProxyHeader(conn, conn, *src, 1024+rand.IntN(64511)); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return conn, nil
}

// runGoHTTP is the in-process paced generator: Connections workers, each
// with its own connection (h2_flood: Connections h2c connections shared by
// 8 workers each), X-Forwarded-For rotating per request over the sources
// (PROXY mode: per connection).
func runGoHTTP(ctx context.Context, j *job, d time.Duration) (Result, error) {
	s := j.spec
	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	h2 := s.Kind == KindH2Flood
	workers := s.Connections
	if h2 {
		workers *= 8
	}
	b := &budget{limit: requestBudget(s.Rate, d, workers)}
	conduits := make([]*conduit, s.Connections)
	for i := range conduits {
		conduits[i] = newConduit(j, b, h2)
		if len(j.sources) > 0 {
			conduits[i].src.Store(&j.sources[i%len(j.sources)])
		}
	}
	interval := paceInterval(s.Rate, workers)
	statuses := make([]map[int]uint64, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			p := &pacer{interval: interval}
			if interval > 0 {
				p.next = start.Add(time.Duration(w) * interval / time.Duration(workers))
			}
			statuses[w] = goWorker(ctx, runCtx, j, b, conduits[w%len(conduits)], p, w, workers, !h2)
		})
	}
	wg.Wait()
	res := Result{Sent: min(b.issued.Load(), b.limit), Errors: b.errs.Load(), Connections: b.conns.Load()}
	for _, st := range statuses {
		res.add(Result{Statuses: st})
	}
	for _, c := range conduits {
		c.tr.CloseIdleConnections()
	}
	return res, nil
}

// goWorker sends requests until runCtx ends or the budget is spent; each
// request may outlive runCtx by up to requestTimeout (bounded by ctx). When
// rotate is set in PROXY mode and there are more sources than workers, each
// request comes from a fresh connection claiming the next source.
func goWorker(ctx, runCtx context.Context, j *job, b *budget, c *conduit, p *pacer, w, workers int, rotate bool) map[int]uint64 {
	s := j.spec
	rng := rand.New(rand.NewPCG(rand.Uint64(), uint64(w)))
	statuses := make(map[int]uint64)
	base := "http://" + j.target.URL.Host
	for i := 0; p.wait(runCtx) && b.take(); i++ {
		var src string
		if n := len(j.sources); n > 0 {
			k := (w + i*workers) % n
			if j.target.ProxyProtocol {
				if rotate && n > workers && *c.src.Load() != j.sources[k] {
					c.src.Store(&j.sources[k])
					c.tr.CloseIdleConnections()
				}
			} else {
				src = j.xff[k]
			}
		}
		path := s.Paths[i%len(s.Paths)]
		if s.Kind == KindCacheBusting {
			path = bustQuery(path, rng)
		}
		var body io.Reader
		if s.Kind == KindLoginFlood && s.Method != "GET" && s.Method != "HEAD" {
			body = strings.NewReader(loginBody(rng))
		}
		reqCtx, cancel := context.WithTimeout(ctx, requestTimeout)
		req, err := http.NewRequestWithContext(reqCtx, s.Method, base+path, body)
		if err != nil {
			cancel()
			b.errs.Add(1)
			continue
		}
		req.Header.Set(ClassHeader, j.marker)
		req.Header.Set("User-Agent", userAgents[(w+i)%len(userAgents)])
		req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
		if body != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if src != "" {
			req.Header.Set("X-Forwarded-For", src)
		}
		if s.Kind == KindFlashCrowd {
			// People arriving from a shared link: pages referred by the
			// social network, their assets by the page.
			req.Header.Set("Referer", crowdReferer(base, path))
		}
		resp, err := c.client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				b.errs.Add(1)
			}
			cancel()
			continue
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		cancel()
		statuses[resp.StatusCode]++
	}
	return statuses
}

// crowdReferer is the Referer a flash crowd's browser sends: the social
// network's link for a page, the site's home page for an asset (a path
// with a file extension).
func crowdReferer(base, p string) string {
	if path.Ext(p) != "" {
		return base + "/"
	}
	return "https://t.co/campaign-video"
}
