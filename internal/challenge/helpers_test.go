package challenge

import (
	"context"
	"crypto/sha256"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/demo"
	"github.com/portcullis/portcullis/internal/filter"
)

// testClock is a settable wall clock shared by the shield and the origin.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock {
	return &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// aggregate is the client's aggregate prefix as clientip computes it:
// IPv4 /24, IPv6 /64.
func aggregate(a netip.Addr) netip.Prefix {
	if a.Is4() {
		p, _ := a.Prefix(24)
		return p
	}
	p, _ := a.Prefix(64)
	return p
}

// shield is a miniature of the edge request path around the package: the
// challenge filter, Service.Write for its verdicts, ServeEndpoint under
// PathPrefix, the demo site as origin, and IssueStanding on the origin's
// member header — exactly the wiring the package doc asks of the caller.
type shield struct {
	t       *testing.T
	clk     *testClock
	svc     *Service
	f       *Filter
	srv     *httptest.Server
	attack  atomic.Bool
	origin  atomic.Int64 // requests that reached the origin
	bodies  atomic.Int64 // requests with a body that reached the origin
	seq     atomic.Int64
	pageLog sync.Map // request id -> verdict rule (challenge responses)
}

type shieldConfig struct {
	opts  Options
	fopts FilterOptions
}

func newShield(t *testing.T, cfg shieldConfig) *shield {
	t.Helper()
	sh := &shield{t: t, clk: newClock()}
	o := cfg.opts
	o.Now = sh.clk.Now
	o.Logger = discardLogger()
	if o.Keys == nil {
		o.Keys = NewKeyring(KeyringOptions{Logger: o.Logger}, sh.clk.Now())
	}
	if o.Difficulty == 0 {
		o.Difficulty = MinDifficulty
	}
	if o.Site == "" {
		o.Site = "default"
	}
	svc, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	sh.svc = svc
	fo := cfg.fopts
	fo.ShouldChallenge = func(*filter.Request) bool { return sh.attack.Load() }
	sh.f = NewFilter(svc, fo)
	sh.attack.Store(true)
	site := demo.NewSite(demo.Options{Logger: discardLogger(), Now: sh.clk.Now})
	origin := site.Handler()
	sh.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		addr := ap.Addr().Unmap()
		fr := &filter.Request{ID: "req-" + strconv.FormatInt(sh.seq.Add(1), 10), Addr: addr, Prefix: aggregate(addr),
			Peer: addr, Method: r.Method, Path: r.URL.Path, HTTP: r}
		if v := sh.f.Check(fr); v.Terminal() {
			sh.svc.Write(w, r, fr, v)
			return
		}
		if Handles(r.URL.Path) {
			sh.svc.ServeEndpoint(w, r, fr)
			return
		}
		sh.origin.Add(1)
		if r.ContentLength > 0 {
			sh.bodies.Add(1)
		}
		origin.ServeHTTP(&memberWriter{ResponseWriter: w, svc: sh.svc, r: r}, r)
	}))
	t.Cleanup(sh.srv.Close)
	return sh
}

// memberWriter turns the origin's member header into a standing cookie and
// strips it, as the caller's proxy is asked to.
type memberWriter struct {
	http.ResponseWriter
	svc  *Service
	r    *http.Request
	done bool
}

func (m *memberWriter) WriteHeader(code int) {
	if !m.done {
		m.done = true
		h := m.Header()
		if id := h.Get(DefaultMemberHeader); id != "" {
			h.Del(DefaultMemberHeader)
			if err := m.svc.IssueStanding(m, id, m.r); err != nil {
				panic(err)
			}
		}
	}
	m.ResponseWriter.WriteHeader(code)
}

func (m *memberWriter) Write(b []byte) (int, error) {
	if !m.done {
		m.WriteHeader(http.StatusOK)
	}
	return m.ResponseWriter.Write(b)
}

// client is a real net/http client bound to a loopback source address,
// with a cookie jar unless noJar.
type client struct {
	*http.Client
	base string
}

func (sh *shield) client(local string, noJar bool) *client {
	sh.t.Helper()
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}).DialContext}
	sh.t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	if !noJar {
		jar, _ := cookiejar.New(nil)
		c.Jar = jar
	}
	return &client{Client: c, base: sh.srv.URL}
}

// noFollow stops at the first response instead of following redirects.
func noFollow(c *client) *client {
	cp := *c.Client
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &client{Client: &cp, base: c.base}
}

const (
	browserUA     = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
)

type resp struct {
	status int
	header http.Header
	body   string
	url    string
}

// do sends method path with headers (k, v pairs) and body.
func (c *client) do(t *testing.T, method, path, body string, kv ...string) resp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, c.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", browserUA)
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	if body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: string(b), url: res.Request.URL.String()}
}

// page is what a client reads off a challenge page.
type page struct {
	token, target, seed, action, refresh string
	bits                                 int
}

var (
	reInput   = regexp.MustCompile(`<input type="hidden" name="(\w)" value="([^"]*)">`)
	reSeed    = regexp.MustCompile(`data-seed="([0-9a-f]{32})"`)
	reBits    = regexp.MustCompile(`data-difficulty="(\d+)"`)
	reAction  = regexp.MustCompile(`<form id="pc-form" method="post" action="([^"]+)"`)
	reRefresh = regexp.MustCompile(`<meta http-equiv="refresh" content="([^"]+)">`)
)

func parsePage(t *testing.T, body string) page {
	t.Helper()
	var p page
	for _, m := range reInput.FindAllStringSubmatch(body, -1) {
		switch m[1] {
		case "t":
			p.token = html.UnescapeString(m[2])
		case "r":
			p.target = html.UnescapeString(m[2])
		}
	}
	if m := reSeed.FindStringSubmatch(body); m != nil {
		p.seed = m[1]
	}
	if m := reBits.FindStringSubmatch(body); m != nil {
		p.bits, _ = strconv.Atoi(m[1])
	}
	if m := reAction.FindStringSubmatch(body); m != nil {
		p.action = html.UnescapeString(m[1])
	}
	if m := reRefresh.FindStringSubmatch(body); m != nil {
		p.refresh = html.UnescapeString(m[1])
	}
	if p.token == "" || p.seed == "" || p.action == "" {
		t.Fatalf("not a challenge page:\n%s", body)
	}
	return p
}

// solve is the reference proof-of-work solver: the smallest nonce n with
// SHA-256(seed ‖ decimal(n)) starting with bits zero bits.
func solve(seed string, bits int) string {
	for n := 0; ; n++ {
		s := strconv.Itoa(n)
		sum := sha256.Sum256([]byte(seed + s))
		if leadingZeroBits(&sum) >= bits {
			return s
		}
	}
}

// submit posts a solution (nonce "" = no-JavaScript path) for p.
func (c *client) submit(t *testing.T, p page, nonce string) resp {
	t.Helper()
	form := url.Values{"t": {p.token}, "r": {p.target}, "n": {nonce}}
	return c.do(t, http.MethodPost, p.action, form.Encode(), "Accept", browserAccept)
}

// setCookies returns the names of the cookies a response sets.
func setCookies(h http.Header) []string {
	var names []string
	for _, c := range (&http.Response{Header: h}).Cookies() {
		names = append(names, c.Name)
	}
	return names
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
