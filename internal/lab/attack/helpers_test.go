package attack

import (
	"bytes"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/portcullis/portcullis/internal/clientip"
)

// origin is a loopback test server that records what arrives: every request
// (marker, X-Forwarded-For, path, method, body, protocol, peer), and per
// connection what was read and how long writes blocked. Every tenth request
// is answered 404 so status accounting can be checked.
type origin struct {
	srv  *httptest.Server
	quit chan struct{}
	big  []byte // the /big response body, 8 MiB

	want   string       // expected class
	resets atomic.Int64 // /slow handlers whose request context ended early

	mu    sync.Mutex
	seen  seen
	conns []*connRecord
}

// seen is what requests the origin received.
type seen struct {
	requests  int
	statuses  map[int]int
	marked    int // X-Lab-Class or lab_class cookie matched want
	xff       map[string]int
	peers     map[netip.Addr]int
	paths     map[string]int
	methods   map[string]int
	forms     int // bodies that parsed as username/password forms
	protos    map[int]int
	hosts     map[string]int
	bodyBytes int64
}

// originOpts configures newOrigin.
type originOpts struct {
	h2c           bool          // serve HTTP/2 prior knowledge (x/net/http2 h2c)
	proxyProtocol bool          // accept PROXY headers from loopback (internal/clientip)
	headerTimeout time.Duration // http.Server.ReadHeaderTimeout (0: none)
	marker        string        // expected class; default ClassBot
}

// newOrigin starts the server; it is closed at the end of the test.
func newOrigin(t testing.TB, o originOpts) *origin {
	t.Helper()
	if o.marker == "" {
		o.marker = ClassBot
	}
	g := &origin{
		quit: make(chan struct{}), want: o.marker, big: bytes.Repeat([]byte("x"), 8<<20),
		seen: seen{statuses: map[int]int{}, xff: map[string]int{}, peers: map[netip.Addr]int{},
			paths: map[string]int{}, methods: map[string]int{}, protos: map[int]int{}, hosts: map[string]int{}},
	}
	var h http.Handler = http.HandlerFunc(g.serve)
	if o.h2c {
		h = h2c.NewHandler(h, &http2.Server{MaxConcurrentStreams: 100})
	}
	g.srv = httptest.NewUnstartedServer(h)
	g.srv.Config.ReadHeaderTimeout = o.headerTimeout
	g.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // rapid reset makes the h2 server complain
	ln := g.srv.Listener
	if o.proxyProtocol {
		ln = clientip.ProxyListener(ln, func(a netip.Addr) bool { return a.IsLoopback() }, time.Second)
	}
	g.srv.Listener = &recordingListener{Listener: ln, g: g}
	g.srv.Start()
	t.Cleanup(func() {
		close(g.quit)
		g.srv.CloseClientConnections()
		g.srv.Close()
	})
	return g
}

// host is the origin's host:port, the Host every request should carry.
func (g *origin) host() string { return strings.TrimPrefix(g.srv.URL, "http://") }

// target is the origin as an attack Target.
func (g *origin) target(proxy bool) Target {
	u, _ := url.Parse(g.srv.URL)
	return Target{URL: u, ProxyProtocol: proxy}
}

func (g *origin) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	g.mu.Lock()
	v := &g.seen
	v.requests++
	c, _ := r.Cookie(ClassCookie)
	if r.Header.Get(ClassHeader) == g.want || (c != nil && c.Value == g.want) {
		v.marked++
	}
	v.xff[r.Header.Get("X-Forwarded-For")]++
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		v.peers[ap.Addr().Unmap()]++
	}
	v.paths[r.URL.RequestURI()]++
	v.methods[r.Method]++
	v.protos[r.ProtoMajor]++
	v.hosts[r.Host]++
	v.bodyBytes += int64(len(body))
	if q, err := url.ParseQuery(string(body)); err == nil && q.Get("username") != "" && q.Get("password") != "" {
		v.forms++
	}
	code := http.StatusOK
	if v.requests%10 == 0 {
		code = http.StatusNotFound
	}
	v.statuses[code]++
	g.mu.Unlock()
	switch r.URL.Path {
	case "/slow":
		select {
		case <-r.Context().Done():
			g.resets.Add(1)
		case <-g.quit:
		}
		return
	case "/big":
		w.Header().Set("Content-Length", strconv.Itoa(len(g.big)))
		w.WriteHeader(code)
		_, _ = w.Write(g.big)
		return
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, "<html><body>hello</body></html>")
}

// snapshot copies the counters under the lock.
func (g *origin) snapshot() seen {
	g.mu.Lock()
	defer g.mu.Unlock()
	v := g.seen
	v.statuses, v.xff, v.peers = clone(v.statuses), clone(v.xff), clone(v.peers)
	v.paths, v.methods, v.protos, v.hosts = clone(v.paths), clone(v.methods), clone(v.protos), clone(v.hosts)
	return v
}

func clone[K comparable](m map[K]int) map[K]int {
	out := make(map[K]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// connRecords copies the per-connection records.
func (g *origin) connRecords() []connSnapshot {
	g.mu.Lock()
	cs := append([]*connRecord(nil), g.conns...)
	g.mu.Unlock()
	out := make([]connSnapshot, len(cs))
	for i, c := range cs {
		out[i] = c.snapshot()
	}
	return out
}

// recordingListener wraps accepted connections in connRecords.
type recordingListener struct {
	net.Listener
	g *origin
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rec := &connRecord{Conn: c, opened: time.Now()}
	l.g.mu.Lock()
	l.g.conns = append(l.g.conns, rec)
	l.g.mu.Unlock()
	return rec, nil
}

// connRecord records what one server-side connection read and how long its
// writes blocked.
type connRecord struct {
	net.Conn
	opened time.Time

	mu         sync.Mutex
	data       []byte // first 64 KiB read
	reads      int
	readBytes  int64
	firstRead  time.Time
	lastRead   time.Time
	wrote      int64
	maxBlocked time.Duration
	writing    time.Time // start of a write still blocked, or zero
}

func (c *connRecord) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		now := time.Now()
		c.mu.Lock()
		if c.reads == 0 {
			c.firstRead = now
		}
		c.reads++
		c.lastRead = now
		c.readBytes += int64(n)
		if room := 64<<10 - len(c.data); room > 0 {
			c.data = append(c.data, p[:min(n, room)]...)
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *connRecord) Write(p []byte) (int, error) {
	start := time.Now()
	c.mu.Lock()
	c.writing = start
	c.mu.Unlock()
	n, err := c.Conn.Write(p)
	blocked := time.Since(start)
	c.mu.Lock()
	c.writing = time.Time{}
	c.wrote += int64(n)
	c.maxBlocked = max(c.maxBlocked, blocked)
	c.mu.Unlock()
	return n, err
}

// connSnapshot is a copy of a connRecord's fields.
type connSnapshot struct {
	data       string
	reads      int
	readBytes  int64
	span       time.Duration // first to last read
	wrote      int64
	maxBlocked time.Duration
}

func (c *connRecord) snapshot() connSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	blocked := c.maxBlocked
	if !c.writing.IsZero() {
		blocked = max(blocked, time.Since(c.writing))
	}
	return connSnapshot{data: string(c.data), reads: c.reads, readBytes: c.readBytes,
		span: c.lastRead.Sub(c.firstRead), wrote: c.wrote, maxBlocked: blocked}
}

// testSources returns n distinct documentation-range addresses
// (198.18.0.0/15, RFC 2544 benchmarking).
func testSources(n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = netip.AddrFrom4([4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i)})
	}
	return out
}

// needTool skips the test when an external tool is missing, naming the
// Debian package.
func needTool(t testing.TB, binary, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(binary); err != nil {
		t.Skipf("%s not installed (apt-get install %s; scripts/test.sh installs it)", binary, pkg)
	}
}

// runSpec runs spec against g with a generous outer deadline.
func runSpec(t *testing.T, g *origin, proxy bool, spec Spec, sources []netip.Addr) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), spec.Start+spec.Duration+20*time.Second)
	defer cancel()
	res, err := Run(ctx, g.target(proxy), spec, sources)
	if err != nil {
		t.Fatalf("Run(%+v): %v", spec, err)
	}
	return res
}

// sum adds up a status map.
func sum[K comparable](m map[K]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// within reports whether got is within tol (absolute) or frac (relative) of
// want.
func within(got, want, tol uint64, frac float64) bool {
	d := max(got, want) - min(got, want)
	return d <= tol || float64(d) <= frac*float64(max(got, want))
}
