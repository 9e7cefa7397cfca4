package app

// Integration harness for the HANDED edge cases (handed_*_test.go): a
// recording origin and the real shield (app.New + Run) on loopback, with
// clients that bind source addresses in 127.0.0.0/8 to act as different
// peers. Simulated public addresses travel only in X-Forwarded-For from a
// configured trusted peer (trustedPeer).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	rtmetrics "runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/portcullis/portcullis/internal/config"
)

// trustedPeer is the loopback address tests configure as a trusted proxy.
const trustedPeer = "127.0.0.10"

// healthUA is the User-Agent of the pool's active health checks; the
// recording origin answers them without recording.
const healthUA = "portcullis-health-check"

// recordedRequest is what the origin saw of one request.
type recordedRequest struct {
	Method, RequestURI, Proto, Host string
	// RemoteAddr is the shield's upstream connection (ip:port), so tests
	// can tell whether the keep-alive pool reused a connection.
	RemoteAddr string
	Header     http.Header
	// Trailer holds request trailers (after the body was read; nil for
	// custom handlers).
	Trailer http.Header
	// BodyLen is the body length read (-1: a custom handler owns the body).
	BodyLen    int64
	BodySHA256 string
	// Inflight is the origin's in-flight count when the request arrived,
	// including itself.
	Inflight int64
	At       time.Time
}

// origin is a recording echo backend on 127.0.0.1:0. The default handler
// reads the whole body (recording its length, SHA-256 and trailers) and
// answers 200 "ok <path>"; routes registered with handle replace it for an
// exact path (the request is still recorded, at arrival).
type recOrigin struct {
	URL string

	srv      *httptest.Server
	inflight atomic.Int64
	peak     atomic.Int64
	// recording is true unless a test turns it off to keep the harness's
	// memory flat (F11).
	recording atomic.Bool

	mu      sync.Mutex
	reqs    []recordedRequest
	changed chan struct{}
	routes  map[string]http.HandlerFunc
}

func newOrigin(t *testing.T) *recOrigin {
	t.Helper()
	o := &recOrigin{changed: make(chan struct{}), routes: map[string]http.HandlerFunc{}}
	o.recording.Store(true)
	o.srv = httptest.NewServer(http.HandlerFunc(o.serve))
	o.URL = o.srv.URL
	t.Cleanup(o.srv.Close)
	return o
}

// handle installs h for the exact path p.
func (o *recOrigin) handle(p string, h http.HandlerFunc) {
	o.mu.Lock()
	o.routes[p] = h
	o.mu.Unlock()
}

func (o *recOrigin) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("User-Agent") == healthUA {
		w.WriteHeader(http.StatusOK)
		return
	}
	n := o.inflight.Add(1)
	defer o.inflight.Add(-1)
	for p := o.peak.Load(); n > p && !o.peak.CompareAndSwap(p, n); p = o.peak.Load() {
	}
	rec := recordedRequest{Method: r.Method, RequestURI: r.RequestURI, Proto: r.Proto, Host: r.Host,
		RemoteAddr: r.RemoteAddr, Header: r.Header.Clone(), BodyLen: -1, Inflight: n, At: time.Now()}
	o.mu.Lock()
	h := o.routes[r.URL.Path]
	o.mu.Unlock()
	if h != nil {
		o.record(rec)
		h(w, r)
		return
	}
	sum := sha256.New()
	nb, _ := io.Copy(sum, r.Body)
	rec.BodyLen, rec.BodySHA256 = nb, hex.EncodeToString(sum.Sum(nil))
	if len(r.Trailer) > 0 {
		rec.Trailer = r.Trailer.Clone()
	}
	o.record(rec)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "ok %s\n", r.URL.Path)
}

func (o *recOrigin) record(rec recordedRequest) {
	if !o.recording.Load() {
		return
	}
	o.mu.Lock()
	o.reqs = append(o.reqs, rec)
	close(o.changed)
	o.changed = make(chan struct{})
	o.mu.Unlock()
}

// requests returns a copy of everything recorded so far.
func (o *recOrigin) requests() []recordedRequest {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.reqs)
}

// count returns how many recorded requests satisfy pred (nil: all).
func (o *recOrigin) count(pred func(recordedRequest) bool) int {
	n := 0
	for _, r := range o.requests() {
		if pred == nil || pred(r) {
			n++
		}
	}
	return n
}

// waitFor blocks until pred holds for the recorded requests or d passes,
// and reports whether it held.
func (o *recOrigin) waitFor(d time.Duration, pred func([]recordedRequest) bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		ok := pred(o.reqs)
		ch := o.changed
		o.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// logBuffer collects the shield's JSON log lines, up to max bytes (8 MiB
// unless setMax changes it).
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func newLogBuffer() *logBuffer { return &logBuffer{max: 8 << 20} }

// setMax changes the bound; 0 stops collecting.
func (l *logBuffer) setMax(n int) {
	l.mu.Lock()
	l.max = n
	l.mu.Unlock()
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len()+len(p) <= l.max {
		l.buf.Write(p)
	}
	return len(p), nil
}

// entries returns the decoded log lines whose "msg" is msg ("" = all).
func (l *logBuffer) entries(msg string) []map[string]any {
	l.mu.Lock()
	data := slices.Clone(l.buf.Bytes())
	l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if msg == "" || m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// shield is a running Portcullis in front of an origin.
type testShield struct {
	app  *App
	cfg  *config.Config
	reg  *prometheus.Registry
	logs *logBuffer
	// Addr is the first listener's host:port; URL is "http://" + Addr.
	Addr, URL string
}

// baseConfig is the configuration every test starts from: one loopback
// listener, no admin listener, one site in front of originURL whose health
// check runs once at start, 127.0.0.10 trusted.
func baseConfig(t *testing.T, originURL string) *config.Config {
	return &config.Config{
		Listeners: []config.Listener{{Address: "127.0.0.1:0"}},
		Admin:     config.Admin{Address: "off"},
		DataDir:   t.TempDir(),
		// The handed edge cases test the static filters; automatic
		// mitigation would add its own decisions during their floods.
		Mitigation: config.Mitigation{Mode: "observe"},
		ClientIP:   config.ClientIP{TrustedProxies: []config.Prefix{mustPrefix(t, trustedPeer+"/32")}},
		Sites: []config.Site{{
			Name: "test", Origins: []string{originURL},
			HealthCheck: config.HealthCheck{Interval: config.Duration(time.Hour)},
		}},
	}
}

func mustPrefix(t *testing.T, s string) config.Prefix {
	t.Helper()
	p, err := config.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return config.Prefix(p)
}

func dur(d time.Duration) config.Duration { return config.Duration(d) }

// startShield builds baseConfig, lets mutate adjust it, applies defaults,
// validates, and runs the shield until the test ends.
func startShield(t *testing.T, o *recOrigin, mutate func(*config.Config)) *testShield {
	t.Helper()
	cfg := baseConfig(t, o.URL)
	if mutate != nil {
		mutate(cfg)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate("test", nil); err != nil {
		t.Fatalf("config: %v", err)
	}
	return runShield(t, cfg)
}

// runShield runs an already defaulted and validated configuration.
func runShield(t *testing.T, cfg *config.Config) *testShield {
	t.Helper()
	logs := newLogBuffer()
	reg := prometheus.NewRegistry()
	ready := make(chan []net.Addr, 1)
	a, err := New(Options{
		Load:     func() (*config.Config, error) { return cfg, nil },
		Logger:   slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registry: reg,
		Ready:    func(ls []net.Addr, _ net.Addr) { ready <- ls },
	})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var addrs []net.Addr
	select {
	case addrs = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("app.Run returned before ready: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("shield not ready within 10s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("app.Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("shield did not stop within 15s")
		}
	})
	s := &testShield{app: a, cfg: cfg, reg: reg, logs: logs, Addr: addrs[0].String()}
	s.URL = "http://" + s.Addr
	return s
}

// counter returns the value of a counter metric with the given labels.
func (s *testShield) counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matchLabels(m, labels) && m.Counter != nil {
				sum += m.Counter.GetValue()
			}
		}
	}
	return sum
}

func matchLabels(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// dialerFrom returns a dialer whose connections come from the loopback
// address src ("127.0.0.2").
func dialerFrom(src string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
}

// dialFrom opens a raw TCP connection from src to addr, closed at cleanup.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	c, err := dialerFrom(src).Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// clientFrom returns an HTTP/1.1 client whose connections come from src.
// Redirects are not followed; idle connections are closed at cleanup.
func clientFrom(t *testing.T, src string) *http.Client {
	t.Helper()
	tr := &http.Transport{DialContext: dialerFrom(src).DialContext, MaxIdleConnsPerHost: 64, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// h2cClientFrom returns an HTTP/2 (prior knowledge, cleartext) client from
// src, using net/http's own h2c support.
func h2cClientFrom(t *testing.T, src string) *http.Client {
	t.Helper()
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{DialContext: dialerFrom(src).DialContext, Protocols: &p, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// hResult is the outcome of one request as tests tally it.
type hResult struct {
	Status     int
	RetryAfter string
	Header     http.Header
	Trailer    http.Header
	Body       string
	Err        error
	Latency    time.Duration
}

// do sends one request and reads the whole response.
func hDo(c *http.Client, method, url string, hdr http.Header, body io.Reader) hResult {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return hResult{Err: err}
	}
	for k, vs := range hdr {
		if strings.EqualFold(k, "Host") {
			req.Host = vs[0]
			continue
		}
		req.Header[k] = vs
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return hResult{Err: err, Latency: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return hResult{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After"), Header: resp.Header,
		Trailer: resp.Trailer, Body: string(b), Err: err, Latency: time.Since(start)}
}

// get is hDo(GET) with optional header pairs ("K", "v", ...).
func hGet(c *http.Client, url string, kv ...string) hResult {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return hDo(c, http.MethodGet, url, h, nil)
}

// tally counts results by status ("err" for transport errors).
func hTally(rs []hResult) map[int]int {
	m := map[int]int{}
	for _, r := range rs {
		if r.Err != nil {
			m[-1]++
			continue
		}
		m[r.Status]++
	}
	return m
}

// percentile returns the p-th percentile (0..100) of ds.
func hPercentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

// latencyFloor is the smallest baseline a "p99 below 2× baseline" check
// uses: on a shared 2-core machine scheduler noise alone is a few
// milliseconds, far above a loopback round trip, so a sub-millisecond
// baseline would make the check measure the neighbours, not the shield.
const latencyFloor = 5 * time.Millisecond

// probe sends n GETs to url from c, one every interval (paced by a ticker
// so that a slow answer does not slow the schedule), and returns their
// results in order.
func hProbe(c *http.Client, url string, n int, interval time.Duration, kv ...string) []hResult {
	out := make([]hResult, n)
	var wg sync.WaitGroup
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for i := range n {
		if i > 0 {
			<-tk.C
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = hGet(c, url, kv...)
		}()
	}
	wg.Wait()
	return out
}

func hLatencies(rs []hResult) []time.Duration {
	out := make([]time.Duration, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Latency)
	}
	return out
}

// checkLatencyRounds asserts that a client probed in rounds, base[i] just
// before and base[i+1] just after during[i] (under attack, or whatever
// during measures against base), had every request during answered 200;
// that its p99 during stayed below 2× the baseline, the larger p99 of the
// base probes on either side (at least latencyFloor), in the median round;
// and that its p99 over all rounds during stayed below worst.
//
// Why the median round: on a shared 2-core machine one window's p99 (of
// 60 requests, the second-worst) is little more than that second's worst
// scheduler stall, tens to hundreds of milliseconds as the neighbours'
// load comes and goes: one attack window against one baseline failed in
// half the runs on a loaded machine, against a healthy shield. The attack
// is the same in every round, so a shield it slows fails the median as
// surely as one window, while a neighbour's burst lands in one round and
// is outvoted. worst bounds what the median ignores, a slowdown in a few
// rounds only: far below what an unprotected shield costs (a request
// queued behind the attack waits for one of its timeouts, seconds), far
// above the stalls of a loaded machine.
func checkLatencyRounds(t *testing.T, who string, base, during [][]hResult, worst time.Duration) {
	t.Helper()
	if len(base) != len(during)+1 {
		t.Fatalf("%d baseline probes around %d rounds", len(base), len(during))
	}
	p99 := func(rs []hResult) time.Duration { return hPercentile(hLatencies(rs), 99) }
	ratios := make([]float64, len(during))
	var all []time.Duration
	for i, d := range during {
		if tl := hTally(d); tl[http.StatusOK] != len(d) || len(d) == 0 {
			t.Fatalf("%s in round %d: %v, want all 200", who, i, tl)
		}
		pb, pd, pa := p99(base[i]), p99(d), p99(base[i+1])
		ratios[i] = float64(pd) / float64(max(pb, pa, latencyFloor))
		t.Logf("%s round %d p99: %s before, %s during, %s after (%.2f × baseline)", who, i, pb, pd, pa, ratios[i])
		all = append(all, hLatencies(d)...)
	}
	sorted := slices.Clone(ratios)
	slices.Sort(sorted)
	if med := sorted[len(sorted)/2]; med >= 2 {
		t.Errorf("%s p99 %.2f × its baseline in the median round, want < 2 (by round: %.2f)", who, med, ratios)
	}
	if p := hPercentile(all, 99); p >= worst {
		t.Errorf("%s p99 over all %d rounds %s, want < %s", who, len(during), p, worst)
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count fds: %v", err)
	}
	return len(ents)
}

// readUntilClosed reads c until EOF or an error and returns what it read,
// the time it took and whether the end was a close (EOF/reset) rather than
// the deadline d.
func readUntilClosed(c net.Conn, d time.Duration) (data []byte, took time.Duration, closed bool) {
	start := time.Now()
	c.SetReadDeadline(start.Add(d))
	data, err := io.ReadAll(c)
	took = time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return data, took, false
	}
	return data, took, true
}

// paced calls f(i) for i in [0, n) at rate per second (ticker-paced, each
// call in its own goroutine so that a slow call does not delay the
// schedule) and waits for all calls; it stops early when stop is closed.
func paced(n int, perSecond float64, stop <-chan struct{}, f func(i int)) {
	var wg sync.WaitGroup
	tk := time.NewTicker(time.Duration(float64(time.Second) / perSecond))
	defer tk.Stop()
loop:
	for i := range n {
		if i > 0 {
			select {
			case <-tk.C:
			case <-stop:
				break loop
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i)
		}()
	}
	wg.Wait()
}

// waitIdle waits until this process has, at one look, no goroutine waiting
// to run and none running but the caller (runtime/metrics
// /sched/goroutines/*), or d passes, and reports whether it did: a burst of
// work started by the test (hundreds of connections set up at once) has
// drained.
func waitIdle(d time.Duration) bool {
	s := []rtmetrics.Sample{{Name: "/sched/goroutines/runnable:goroutines"}, {Name: "/sched/goroutines/running:goroutines"}}
	return waitUntil(d, func() bool {
		rtmetrics.Read(s)
		return s[0].Value.Uint64() == 0 && s[1].Value.Uint64() <= 1
	})
}
