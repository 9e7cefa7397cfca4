package demo

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

func TestRoutes(t *testing.T) {
	srv, c := testSite(t, Options{Name: "Quayside Alliance"})
	tests := []struct {
		name, method, path string
		status             int
		ctype              string
		contains           []string
	}{
		{name: "home", method: "GET", path: "/", status: 200, ctype: "text/html", contains: []string{"Quayside Alliance", "Latest news", "/news/6"}},
		{name: "home HEAD", method: "HEAD", path: "/", status: 200, ctype: "text/html"},
		{name: "about", method: "GET", path: "/about", status: 200, ctype: "text/html", contains: []string{"About Quayside Alliance"}},
		{name: "events", method: "GET", path: "/events", status: 200, ctype: "text/html", contains: []string{"Spring canvass launch", `id="event-2"`}},
		{name: "news item", method: "GET", path: "/news/4", status: 200, ctype: "text/html", contains: []string{"Our plan for the old fish market", "Quayside Alliance proposes"}},
		{name: "news unknown id", method: "GET", path: "/news/99", status: 404, ctype: "text/html"},
		{name: "news non-numeric id", method: "GET", path: "/news/abc", status: 404, ctype: "text/html"},
		{name: "news non-canonical id", method: "GET", path: "/news/04", status: 404, ctype: "text/html"},
		{name: "login form", method: "GET", path: "/login", status: 200, ctype: "text/html", contains: []string{`name="username"`, `name="password"`}},
		{name: "account without session", method: "GET", path: "/account", status: 303},
		{name: "donate form", method: "GET", path: "/donate", status: 200, ctype: "text/html", contains: []string{`name="amount"`, `name="email"`, `name="message"`}},
		{name: "volunteer form", method: "GET", path: "/volunteer", status: 200, ctype: "text/html", contains: []string{`name="area"`, "Phone banking"}},
		{name: "upload form", method: "GET", path: "/upload", status: 200, ctype: "text/html", contains: []string{`enctype="multipart/form-data"`}},
		{name: "rss", method: "GET", path: "/feed.xml", status: 200, ctype: "application/rss+xml", contains: []string{`<rss version="2.0">`}},
		{name: "rss alias", method: "GET", path: "/feed/", status: 200, ctype: "application/rss+xml"},
		{name: "atom", method: "GET", path: "/index.atom", status: 200, ctype: "application/atom+xml", contains: []string{`xmlns="http://www.w3.org/2005/Atom"`}},
		{name: "atom via format", method: "GET", path: "/?format=atom", status: 200, ctype: "application/atom+xml"},
		{name: "api events", method: "GET", path: "/api/v1/events", status: 200, ctype: "application/json", contains: []string{`"events":[`, `"Beach clean and picnic"`}},
		{name: "api news", method: "GET", path: "/api/v1/news", status: 200, ctype: "application/json", contains: []string{`"news":[`}},
		{name: "api news item", method: "GET", path: "/api/v1/news/1", status: 200, ctype: "application/json", contains: []string{`"id":1`}},
		{name: "api news unknown", method: "GET", path: "/api/v1/news/0", status: 404, ctype: "application/json", contains: []string{`"error"`}},
		{name: "echo", method: "GET", path: "/api/v1/echo?x=1", status: 200, ctype: "application/json", contains: []string{`"raw_query":"x=1"`}},
		{name: "search empty", method: "GET", path: "/search", status: 200, ctype: "text/html"},
		{name: "search hit", method: "GET", path: "/search?q=FERRY", status: 200, ctype: "text/html", contains: []string{"2 results", "/news/6", "/events#event-1"}},
		{name: "search miss", method: "GET", path: "/search?q=zeppelin", status: 200, ctype: "text/html", contains: []string{"0 results"}},
		{name: "search escapes query", method: "GET", path: "/search?q=%3Cscript%3E", status: 200, ctype: "text/html", contains: []string{"&lt;script&gt;"}},
		{name: "search query too long", method: "GET", path: "/search?q=" + strings.Repeat("a", 201), status: 400, ctype: "text/html"},
		{name: "slow zero", method: "GET", path: "/slow?ms=0", status: 200, ctype: "text/plain", contains: []string{"slept 0 ms"}},
		{name: "slow bad", method: "GET", path: "/slow?ms=10001", status: 400},
		{name: "live bad n", method: "GET", path: "/live?n=0", status: 400},
		{name: "css", method: "GET", path: "/static/site.css", status: 200, ctype: "text/css"},
		{name: "js", method: "GET", path: "/static/site.js", status: 200, ctype: "text/javascript"},
		{name: "logo", method: "GET", path: "/static/logo.svg", status: 200, ctype: "image/svg+xml", contains: []string{"<svg"}},
		{name: "static unknown", method: "GET", path: "/static/nope.css", status: 404},
		{name: "robots", method: "GET", path: "/robots.txt", status: 200, ctype: "text/plain", contains: []string{"User-agent: *"}},
		{name: "healthz", method: "GET", path: "/healthz", status: 200, ctype: "text/plain", contains: []string{"ok"}},
		{name: "unknown path", method: "GET", path: "/wp-login.php", status: 404, ctype: "text/html"},
		{name: "wrong method", method: "DELETE", path: "/donate", status: 405},
		{name: "post to a page", method: "POST", path: "/about", status: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, c, tt.method, srv.URL+tt.path, nil, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %.200q", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.ctype) {
				t.Errorf("Content-Type %q, want prefix %q", ct, tt.ctype)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if tt.method == "HEAD" && body != "" {
				t.Errorf("HEAD body %d bytes", len(body))
			}
			mustContain(t, tt.path, body, tt.contains...)
		})
	}
	t.Run("healthz is exact", func(t *testing.T) {
		if _, body := do(t, c, "GET", srv.URL+"/healthz", nil, nil); body != "ok" {
			t.Errorf("body %q, want \"ok\"", body)
		}
	})
}

// TestHTMLAccessible parses every HTML page and checks the structure that
// screen readers and text browsers rely on (HANDED F27: works without JS,
// lang and title present, every field labelled).
func TestHTMLAccessible(t *testing.T) {
	srv, c := testSite(t, Options{})
	tests := []struct {
		name, path string
		status     int
	}{
		{name: "home", path: "/", status: 200},
		{name: "about", path: "/about", status: 200},
		{name: "events", path: "/events", status: 200},
		{name: "news", path: "/news/1", status: 200},
		{name: "login", path: "/login", status: 200},
		{name: "donate", path: "/donate", status: 200},
		{name: "volunteer", path: "/volunteer", status: 200},
		{name: "upload", path: "/upload", status: 200},
		{name: "search", path: "/search?q=harbour", status: 200},
		{name: "not found", path: "/missing", status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, c, "GET", srv.URL+tt.path, nil, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			checkAccessible(t, body)
		})
	}
}

func checkAccessible(t *testing.T, page string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var (
		lang, title   string
		h1s           int
		labels        = map[string]bool{}
		fields        []string
		imgsNoAlt     int
		ids           = map[string]int{}
		scriptsInline int
	)
	attr := func(n *html.Node, k string) (string, bool) {
		for _, a := range n.Attr {
			if a.Key == k {
				return a.Val, true
			}
		}
		return "", false
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if id, ok := attr(n, "id"); ok {
			ids[id]++
		}
		switch n.Data {
		case "html":
			lang, _ = attr(n, "lang")
		case "title":
			if n.FirstChild != nil {
				title = n.FirstChild.Data
			}
		case "h1":
			h1s++
		case "label":
			if f, ok := attr(n, "for"); ok {
				labels[f] = true
			}
		case "input", "textarea", "select":
			if typ, _ := attr(n, "type"); typ == "hidden" || typ == "submit" {
				continue
			}
			id, _ := attr(n, "id")
			fields = append(fields, id)
		case "img":
			if _, ok := attr(n, "alt"); !ok {
				imgsNoAlt++
			}
		case "script":
			if _, ok := attr(n, "src"); !ok {
				scriptsInline++
			}
		}
	}
	if lang == "" {
		t.Error("<html> has no lang")
	}
	if strings.TrimSpace(title) == "" {
		t.Error("no <title>")
	}
	if h1s != 1 {
		t.Errorf("%d <h1> elements, want 1", h1s)
	}
	for _, f := range fields {
		if f == "" || !labels[f] {
			t.Errorf("form field id=%q has no <label for>", f)
		}
	}
	if imgsNoAlt > 0 {
		t.Errorf("%d <img> without alt", imgsNoAlt)
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("id %q used %d times", id, n)
		}
	}
	if scriptsInline > 0 {
		t.Errorf("%d inline scripts (CSP forbids them)", scriptsInline)
	}
}

// TestLatency checks Options.Latency delays pages but not /healthz, and
// gives up when the client does.
func TestLatency(t *testing.T) {
	srv, c := testSite(t, Options{Latency: time.Hour})
	tests := []struct {
		name     string
		path     string
		wantWait bool
	}{
		{name: "health check is not delayed", path: "/healthz", wantWait: false},
		{name: "page is delayed", path: "/", wantWait: true},
		{name: "api is delayed", path: "/api/v1/news", wantWait: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+tt.path, nil)
			resp, err := c.Do(req)
			if tt.wantWait {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err %v, want the request to be held past its deadline", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		})
	}
}

func TestNewSiteDefaults(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{name: "default name", opts: Options{}, want: DefaultName},
		{name: "custom name", opts: Options{Name: "Tidewater"}, want: "Tidewater"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSite(tt.opts)
			if s.opts.Name != tt.want {
				t.Errorf("name %q, want %q", s.opts.Name, tt.want)
			}
			if len(s.opts.SessionKey) < 32 || s.opts.LiveInterval != time.Second || s.opts.MaxUploadBytes != DefaultMaxUploadBytes {
				t.Errorf("defaults not filled: %+v", s.opts)
			}
			if len(s.pages) == 0 || len(s.static) != 3 {
				t.Errorf("pages %d, static %d", len(s.pages), len(s.static))
			}
		})
	}
}
