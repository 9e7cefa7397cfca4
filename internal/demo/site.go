package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// Header and cookie names the site shares with the shield and with tests.
const (
	// MemberHeader is the response header naming the logged-in member
	// (value: member id such as "M-0001"). The site sets it on the successful
	// POST /login response and on every response to a request that carries a
	// valid session, so the shield can grant member standing.
	MemberHeader = "X-Portcullis-Member"
	// SessionCookie is the name of the HMAC-signed session cookie.
	SessionCookie = "demo_session"
	// BodySHA256Header carries the lowercase hex SHA-256 of the request body a
	// form handler received (POST /donate, POST /volunteer), so end-to-end tests
	// can check body integrity without parsing HTML.
	BodySHA256Header = "X-Demo-Body-Sha256"
)

// Limits, in bytes or events.
const (
	// MaxDonateBytes is the largest accepted POST /donate body (1 MiB); larger
	// bodies get 413.
	MaxDonateBytes = 1 << 20
	// maxFormBytes bounds the login and volunteer form bodies.
	maxFormBytes = 64 << 10
	// MaxLiveEvents is the most events one /live or /live.ndjson stream sends.
	MaxLiveEvents = 600
	// DefaultLiveEvents is the event count of /live without ?n=.
	DefaultLiveEvents = 30
	// DefaultMaxUploadBytes is the default Options.MaxUploadBytes (1 GiB).
	DefaultMaxUploadBytes = 1 << 30
)

// DefaultName is the fictional campaign's name when Options.Name is empty.
const DefaultName = "Harbour Party"

//go:embed assets
var assets embed.FS

// Options configures a Site. The zero value is usable: every field has a
// default.
type Options struct {
	// Name is the campaign name shown on every page; default DefaultName.
	Name string
	// Logger receives the site's few log lines (errors, logins). Default:
	// slog.Default(). Visitor addresses and usernames are never logged.
	Logger *slog.Logger
	// Latency is an optional artificial delay added before every response
	// except /healthz, to simulate a slow origin. Zero means none. The wait
	// ends early if the client leaves.
	Latency time.Duration
	// SessionKey is the HMAC-SHA-256 key for session cookies; at least 32
	// bytes. Default: 32 random bytes per Site, so sessions do not survive a
	// restart.
	SessionKey []byte
	// SessionTTL is how long a login lasts; default 12h.
	SessionTTL time.Duration
	// LiveInterval is the gap between /live events; default 1s.
	LiveInterval time.Duration
	// WSLifetime bounds one /ws connection; default 15m.
	WSLifetime time.Duration
	// MaxUploadBytes caps POST /upload and /api/v1/echo bodies; default
	// DefaultMaxUploadBytes. Larger bodies get 413.
	MaxUploadBytes int64
	// Now is the clock used for session expiry; default time.Now.
	Now func() time.Time
}

// Site is the demo campaign website. Build it with NewSite; it is safe for
// concurrent use and holds no goroutines of its own.
type Site struct {
	opts    Options
	log     *slog.Logger
	content *content
	pages   map[string]*template.Template
	static  map[string]staticFile
	handler http.Handler
}

// NewSite builds a Site from opts, filling defaults. It panics only if the
// embedded assets are malformed, which the package tests rule out.
func NewSite(opts Options) *Site {
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if len(opts.SessionKey) < 32 {
		opts.SessionKey = make([]byte, 32)
		_, _ = rand.Read(opts.SessionKey) // never fails (crypto/rand, Go ≥ 1.24)
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.LiveInterval <= 0 {
		opts.LiveInterval = time.Second
	}
	if opts.WSLifetime <= 0 {
		opts.WSLifetime = 15 * time.Minute
	}
	if opts.MaxUploadBytes <= 0 {
		opts.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Site{
		opts:    opts,
		log:     opts.Logger.With("component", "demo"),
		content: newContent(opts.Name),
		pages:   mustParsePages(),
		static:  mustLoadStatic(),
	}
	s.handler = s.routes()
	return s
}

// Handler returns the site's root handler. The same handler is returned on
// every call.
func (s *Site) Handler() http.Handler { return s.handler }

func (s *Site) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("GET /about", s.about)
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("GET /news/{id}", s.news)
	mux.HandleFunc("GET /login", s.loginForm)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("GET /account", s.account)
	mux.HandleFunc("GET /donate", s.donateForm)
	mux.HandleFunc("POST /donate", s.donate)
	mux.HandleFunc("GET /volunteer", s.volunteerForm)
	mux.HandleFunc("POST /volunteer", s.volunteer)
	mux.HandleFunc("GET /upload", s.uploadForm)
	mux.HandleFunc("POST /upload", s.upload)
	mux.HandleFunc("GET /feed.xml", s.rss)
	mux.HandleFunc("GET /feed/{$}", s.rss)
	mux.HandleFunc("GET /index.atom", s.atom)
	mux.HandleFunc("GET /api/v1/events", s.apiEvents)
	mux.HandleFunc("GET /api/v1/news", s.apiNews)
	mux.HandleFunc("GET /api/v1/news/{id}", s.apiNewsItem)
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		mux.HandleFunc(m+" /api/v1/echo", s.echo) // HEAD rides on GET
	}
	mux.HandleFunc("GET /search", s.search)
	mux.HandleFunc("GET /live", s.live)
	mux.HandleFunc("GET /live.ndjson", s.live)
	mux.HandleFunc("GET /slow", s.slow)
	mux.HandleFunc("GET /ws", s.ws)
	mux.HandleFunc("GET /static/{file}", s.staticAsset)
	mux.HandleFunc("GET /robots.txt", s.robots)
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /", s.notFound)
	return s.withLatency(s.withCommon(mux))
}

// memberKey is the context key under which withCommon stores the member id
// of a valid session.
type memberKey struct{}

// withCommon sets headers every response shares and, for a request with a
// valid session, the MemberHeader and the member id in the context.
func (s *Site) withCommon(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		if id, ok := s.sessionMember(r); ok {
			h.Set(MemberHeader, id)
			r = r.WithContext(context.WithValue(r.Context(), memberKey{}, id))
		}
		next.ServeHTTP(w, r)
	})
}

// withLatency delays every request but /healthz by Options.Latency.
func (s *Site) withLatency(next http.Handler) http.Handler {
	if s.opts.Latency <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && !wait(r.Context(), s.opts.Latency) {
			return // client left; nothing to answer
		}
		next.ServeHTTP(w, r)
	})
}

// wait blocks for d or until ctx ends; it reports whether d elapsed.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func memberOf(r *http.Request) string {
	id, _ := r.Context().Value(memberKey{}).(string)
	return id
}

// pageData is what every page template receives.
type pageData struct {
	Site   string
	Title  string
	Nav    string // section for aria-current: home, about, events, donate, volunteer, account
	Member string // logged-in member id or ""
	Data   any
}

func mustParsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"date":     func(t time.Time) string { return t.Format("2 January 2006") },
		"datetime": func(t time.Time) string { return t.Format("Mon 2 Jan 2006, 15:04") },
		"iso":      func(t time.Time) string { return t.Format(time.RFC3339) },
	}
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(assets, "assets/templates/layout.html"))
	names, err := fs.Glob(assets, "assets/templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := make(map[string]*template.Template, len(names))
	for _, n := range names {
		name := n[len("assets/templates/") : len(n)-len(".html")]
		if name == "layout" {
			continue
		}
		t := template.Must(base.Clone())
		pages[name] = template.Must(t.ParseFS(assets, n))
	}
	return pages
}

// render executes page into a buffer and writes it with status, so a
// template error becomes a clean 500 rather than half a page.
func (s *Site) render(w http.ResponseWriter, r *http.Request, status int, page, nav, title string, data any) {
	t, ok := s.pages[page]
	if !ok {
		s.log.Error("demo: unknown page template", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	pd := pageData{Site: s.opts.Name, Title: title, Nav: nav, Member: memberOf(r), Data: data}
	if err := t.ExecuteTemplate(&buf, "layout.html", pd); err != nil {
		s.log.Error("demo: render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; "+
		"base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	if memberOf(r) != "" || status >= 400 {
		h.Set("Cache-Control", "private, no-store")
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// errorData is the payload of the "error" page.
type errorData struct {
	Status  int
	Message string
}

func (s *Site) errorPage(w http.ResponseWriter, r *http.Request, status int, message string) {
	s.render(w, r, status, "error", "", http.StatusText(status), errorData{Status: status, Message: message})
}

func (s *Site) notFound(w http.ResponseWriter, r *http.Request) {
	s.errorPage(w, r, http.StatusNotFound, "There is no page at this address.")
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok"))
}
