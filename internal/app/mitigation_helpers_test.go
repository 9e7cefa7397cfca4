package app

// Helpers for the mitigation tests (mitigation_*_test.go): the shield with
// its admin API in front of the embedded demo site, browser-like clients
// that carry a simulated public address in X-Forwarded-For from the
// trusted peer and keep their cookies, and a Go solver for the challenge
// page (the reference the browser test checks the real Web Worker against).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/challenge"
	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/demo"
)

// browserUA and browserAccept are what a desktop browser sends for a page.
const (
	browserUA     = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
)

// demoShield is a running shield with its admin API, in front of the
// embedded demo campaign site.
type demoShield struct {
	*testShield
	// Admin is the admin listener's host:port.
	Admin string
}

// freeLoopbackPort returns a 127.0.0.1 port that was free a moment ago
// (the admin listener needs a fixed address in the config).
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startDemoOrigin serves the embedded demo site on loopback until the test
// ends and returns its URL.
func startDemoOrigin(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(demo.NewSite(demo.Options{}).Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// startDemoShield runs the shield (mitigation mode enforce, admin API on)
// in front of originURL (the demo site when ""), trusting 127.0.0.10 and
// 127.0.0.1 (wrk cannot choose its source address).
func startDemoShield(t *testing.T, originURL string, mutate func(*config.Config)) *demoShield {
	t.Helper()
	if originURL == "" {
		originURL = startDemoOrigin(t)
	}
	admin := freeLoopbackPort(t)
	s := startShield(t, &recOrigin{URL: originURL}, func(c *config.Config) {
		c.Admin.Address = admin
		c.Mitigation.Mode = "enforce"
		c.ClientIP.TrustedProxies = append(c.ClientIP.TrustedProxies, mustPrefix(t, "127.0.0.1/32"))
		if mutate != nil {
			mutate(c)
		}
	})
	// The admin listener is bound before Ready, so it accepts at once.
	return &demoShield{testShield: s, Admin: admin}
}

// adminJSON sends method path (body as JSON when non-nil) to the admin API,
// decodes the answer into out (when non-nil) and returns the status; any
// error fails the test (call it from the test's goroutine only).
func (s *demoShield) adminJSON(t *testing.T, method, path string, body, out any) int {
	t.Helper()
	code, err := s.adminTry(method, path, body, out)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// adminTry is adminJSON for any goroutine: errors are returned.
func (s *demoShield) adminTry(method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+s.Admin+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("admin %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("admin %s %s: %d %s: %w", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, nil
}

// underAttack switches under-attack mode for the site named "test" through
// the admin API (as `portcullis under-attack on|off` does).
func (s *demoShield) underAttack(t *testing.T, on bool) {
	t.Helper()
	if code := s.adminJSON(t, http.MethodPost, "/api/v1/sites/test/under-attack", UnderAttackRequest{On: on, Who: t.Name()}, nil); code != http.StatusOK {
		t.Fatalf("under-attack %v: status %d", on, code)
	}
}

// xffTransport sends every request from the trusted peer with the
// simulated client address Addr in X-Forwarded-For; Addr may change
// between requests (a phone moving between networks).
type xffTransport struct {
	base http.RoundTripper
	addr atomic.Pointer[string]
}

func (x *xffTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", *x.addr.Load())
	return x.base.RoundTrip(r)
}

// browser is a cookie-keeping client with a browser's User-Agent and
// Accept, behind a simulated public address.
type browser struct {
	c    *http.Client
	xff  *xffTransport
	base string
}

// newBrowser returns a browser for the shield at base (http://host:port)
// whose requests carry addr in X-Forwarded-For from the trusted peer.
// Redirects are not followed.
func newBrowser(t *testing.T, base, addr string) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DialContext: dialerFrom(trustedPeer).DialContext, MaxIdleConnsPerHost: 8, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	x := &xffTransport{base: tr}
	x.addr.Store(&addr)
	return &browser{xff: x, base: base, c: &http.Client{Transport: x, Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// moveTo changes the browser's simulated address (keeping its cookies).
func (b *browser) moveTo(addr string) { b.xff.addr.Store(&addr) }

// get fetches path as a page navigation.
func (b *browser) get(path string, kv ...string) hResult {
	h := http.Header{"User-Agent": {browserUA}, "Accept": {browserAccept}}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return hDo(b.c, http.MethodGet, b.base+path, h, nil)
}

// post submits form to path as a browser submits a form.
func (b *browser) post(path string, form url.Values) hResult {
	h := http.Header{"User-Agent": {browserUA}, "Accept": {browserAccept},
		"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {b.base}}
	return hDo(b.c, http.MethodPost, b.base+path, h, strings.NewReader(form.Encode()))
}

// challengePage is what a test reads from an interstitial.
type challengePage = challenge.Interstitial

// parseChallenge reads the interstitial; ok is false when body is not one.
func parseChallenge(body string) (challengePage, bool) {
	return challenge.ParseInterstitial([]byte(body))
}

// solvePoW solves the interstitial's proof of work as a browser does.
func solvePoW(t *testing.T, seed string, d int) string {
	t.Helper()
	n, ok := challenge.Solve(context.Background(), seed, d)
	if !ok {
		t.Fatalf("no nonce for difficulty %d", d)
	}
	return n
}

// redeem posts a solution (nonce "" = the no-JavaScript path) of p.
func (b *browser) redeem(p challengePage, nonce string) hResult {
	return b.post(p.Action, p.Answer(nonce))
}

// passChallenge fetches path, solves the interstitial it gets and follows
// the redirect; it fails the test unless the page then loads with 200.
func (b *browser) passChallenge(t *testing.T, path string) {
	t.Helper()
	r := b.get(path)
	p, ok := parseChallenge(r.Body)
	if r.Status != http.StatusServiceUnavailable || !ok {
		t.Fatalf("GET %s: want the 503 interstitial, got %d %.200q", path, r.Status, r.Body)
	}
	v := b.redeem(p, solvePoW(t, p.Seed, p.Bits))
	if v.Status != http.StatusSeeOther {
		t.Fatalf("redeem: want 303, got %d %.300q", v.Status, v.Body)
	}
	if r := b.get(v.Header.Get("Location")); r.Status != http.StatusOK {
		t.Fatalf("after redeeming: GET %s = %d %.200q", v.Header.Get("Location"), r.Status, r.Body)
	}
}

// statusOf returns the shield's /api/v1/status document.
func (s *demoShield) statusOf(t *testing.T) Status {
	t.Helper()
	var st Status
	if code := s.adminJSON(t, http.MethodGet, "/api/v1/status", nil, &st); code != http.StatusOK {
		t.Fatalf("status: %d", code)
	}
	return st
}

// decisionView is the part of a decision the tests read from
// /api/v1/decisions.
type decisionView struct {
	ID     string `json:"id"`
	Site   int    `json:"site"`
	Action string `json:"action"`
	Rule   string `json:"rule"`
	Scope  string `json:"scope"`
	Prefix string `json:"prefix"`
	Reason string `json:"reason"`
	Shadow bool   `json:"shadow"`
}

// decisions returns the decisions in force (GET /api/v1/decisions).
func (s *demoShield) decisions(t *testing.T) []decisionView {
	t.Helper()
	var ds []decisionView
	if code := s.adminJSON(t, http.MethodGet, "/api/v1/decisions", nil, &ds); code != http.StatusOK {
		t.Fatalf("decisions: %d", code)
	}
	return ds
}

// explain returns what the shield recorded for request id, if anything
// (safe from any goroutine).
func (s *demoShield) explain(id string) (Explanation, bool) {
	var e Explanation
	code, err := s.adminTry(http.MethodGet, "/api/v1/explain/"+url.PathEscape(id), nil, &e)
	return e, err == nil && code == http.StatusOK
}
