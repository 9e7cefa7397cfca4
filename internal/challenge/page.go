package challenge

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/filter"
)

//go:embed assets/page.html assets/challenge.js assets/worker.js
var assets embed.FS

// Verdict rule ids of the challenge stage. Service.Write renders each.
const (
	// RuleInterstitial: an HTML document request without clearance gets the
	// interstitial challenge page (503).
	RuleInterstitial = "challenge"
	// RuleForm: a request with a body (POST, PUT, PATCH, DELETE) without
	// clearance is refused whole (503); nothing was forwarded.
	RuleForm = "challenge:form"
	// RuleNonDocument: a feed, API, asset or other non-navigation request
	// without clearance gets a machine-readable 503, never HTML.
	RuleNonDocument = "challenge:non-document"
	// RuleCookies: a client known to refuse cookies has had its challenges
	// for the minute (429, "cookies required").
	RuleCookies = "challenge:cookies-required"
)

// pages holds the parsed template and the static, per-brand pieces.
type pages struct {
	tmpl      *template.Template
	brand     Brand
	css       template.CSS
	csp       string
	scriptURL string
	workerURL string
	script    []byte
	worker    []byte
}

func newPages(b Brand) (*pages, error) {
	tmpl, err := template.ParseFS(assets, "assets/page.html")
	if err != nil {
		return nil, fmt.Errorf("challenge: page template: %w", err)
	}
	script, _ := assets.ReadFile("assets/challenge.js")
	worker, _ := assets.ReadFile("assets/worker.js")
	css := pageCSS(b)
	sum := sha256.Sum256([]byte(css))
	return &pages{
		tmpl:  tmpl,
		brand: b,
		css:   template.CSS(css),
		// The page's only inline content is its style sheet, allowed by
		// hash; scripts come from our own files (CSP Level 3).
		csp: "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'sha256-" +
			base64.StdEncoding.EncodeToString(sum[:]) + "'; img-src 'self' https: data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
		scriptURL: PathPrefix + "challenge.js?v=" + shortHash(script),
		workerURL: PathPrefix + "worker.js?v=" + shortHash(worker),
		script:    script,
		worker:    worker,
	}, nil
}

func shortHash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:6])
}

// pageCSS is the inline style sheet. Colours were validated as hex by
// Brand.fill, so nothing here can break out of the style element.
func pageCSS(b Brand) string {
	return strings.NewReplacer("BG", b.Background, "FG", b.Foreground, "ACCENT", b.Accent).Replace(
		`body{margin:0;background:BG;color:FG;font:1.125rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}` +
			`main{max-width:36rem;margin:8vh auto;padding:0 1.25rem}h1{font-size:1.6rem;line-height:1.25}a{color:ACCENT}` +
			`button{font:inherit;padding:.6em 1.2em;border:2px solid ACCENT;background:ACCENT;color:BG;border-radius:.3em;cursor:pointer}` +
			`a:focus-visible,button:focus-visible{outline:3px solid FG;outline-offset:2px}` +
			`progress{width:100%;height:.75rem;accent-color:ACCENT}.pc-logo{max-height:4rem;max-width:100%}.pc-site{font-weight:bold}` +
			`.pc-small{font-size:.875rem}code{font-size:1em}` +
			`.pc-late{visibility:hidden;animation:pc-reveal 0s 10s forwards}@keyframes pc-reveal{to{visibility:visible}}` +
			`.pc-js .pc-late{display:none}.pc-js .pc-late.pc-show{display:block;visibility:visible;animation:none}` +
			`@media (scripting:none){.pc-late{display:none}}`)
}

// pageData feeds assets/page.html.
type pageData struct {
	Lang       string
	M          Messages
	Brand      Brand
	CSS        template.CSS
	Title      string
	Heading    string
	Paragraphs []string
	RequestID  string
	RetryURL   string

	Challenge  bool
	ScriptURL  string
	WorkerURL  string
	VerifyURL  string
	Token      string
	Seed       string
	Difficulty int
	Target     string
	Auto       bool
	NoJS       bool
	NoJSText   string
	Refresh    string // meta refresh content for the no-JS path, or ""
}

// messages returns the language and messages for r's Accept-Language.
func (s *Service) messages(r *http.Request) (string, Messages) {
	lang := pickLanguage(first(r.Header["Accept-Language"]), s.opts.Catalogue, "en")
	return lang, s.opts.Catalogue[lang]
}

// render writes a page with status.
func (s *Service) render(w http.ResponseWriter, status int, d *pageData) {
	d.Brand, d.CSS = s.pages.brand, s.pages.css
	if d.Title == "" {
		d.Title = d.M.Title
	}
	var buf bytes.Buffer
	if err := s.pages.tmpl.Execute(&buf, d); err != nil {
		s.log.Error("rendering challenge page failed", "err", err)
		http.Error(w, "503 service unavailable", http.StatusServiceUnavailable)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", s.pages.csp)
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// challengePage fills d with a fresh challenge for the client of fr that
// returns to target, and sets the test cookie if r lacks it.
func (s *Service) challengePage(w http.ResponseWriter, r *http.Request, fr *filter.Request, d *pageData, target string, auto bool) {
	tok, seed, bits := s.issueChallenge(fr.Prefix, r.UserAgent(), s.now())
	s.fillChallenge(d, tok, seed, bits, target, auto, s.opts.NoJSWait)
	if !hasCookie(r.Header, s.testName) {
		http.SetCookie(w, s.cookie(r, s.testName, "1", s.opts.ChallengeTTL))
	}
}

// fillChallenge puts a challenge (token, proof-of-work seed and bits) that
// returns to target into d, with the no-JavaScript path: an explanation
// and, when enabled and auto, a meta refresh that redeems the token after
// wait (rounded up, plus a second for clock granularity).
func (s *Service) fillChallenge(d *pageData, tok, seed string, bits int, target string, auto bool, wait time.Duration) {
	d.Challenge, d.Token, d.Seed, d.Difficulty, d.Target, d.Auto = true, tok, seed, bits, target, auto
	d.ScriptURL, d.WorkerURL, d.VerifyURL = s.pages.scriptURL, s.pages.workerURL, PathPrefix+"verify"
	if s.opts.NoJSWait < 0 {
		d.NoJSText = d.M.NeedJS
		return
	}
	secs := int((wait+time.Second-1)/time.Second) + 1
	d.NoJS = true
	d.NoJSText = strings.ReplaceAll(d.M.NoJS, "{n}", strconv.Itoa(secs))
	if auto {
		d.Refresh = strconv.Itoa(secs) + ";url=" + PathPrefix + "verify?" + url.Values{"t": {tok}, "r": {target}}.Encode()
	}
}

// Write writes the challenge-stage response for a verdict of Filter (the
// chain's hook for filter.Challenge): the interstitial (RuleInterstitial),
// the refused-form page (RuleForm), a machine-readable refusal
// (RuleNonDocument) or "cookies required" (RuleCookies). Every response is
// non-2xx with Cache-Control: no-store, Retry-After and X-Request-Id; HTML
// only goes to clients that asked for HTML, and never with noindex (HANDED
// F25). It never sets or clears a clearance or standing cookie.
func (s *Service) Write(w http.ResponseWriter, r *http.Request, fr *filter.Request, v filter.Verdict) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Request-Id", fr.ID)
	ra := v.RetryAfter
	if ra <= 0 {
		ra = s.opts.RetryAfter
	}
	h.Set("Retry-After", strconv.FormatInt(int64((ra+time.Second-1)/time.Second), 10))
	status := v.StatusCode()
	if status < 400 {
		status = http.StatusServiceUnavailable
	}
	html := acceptsHTML(r)
	lang, m := s.messages(r)
	d := &pageData{Lang: lang, M: m, RequestID: fr.ID}
	switch {
	case v.Rule == RuleNonDocument || !html:
		s.metrics.response(v.Rule, false)
		writeMachine(w, r, fr.ID, status, v.Reason, ra)
	case v.Rule == RuleCookies:
		s.metrics.response(RuleCookies, true)
		d.Heading, d.Paragraphs = m.CookiesHeading, []string{m.Cookies}
		d.RetryURL = safeTarget(r.URL.RequestURI())
		s.render(w, status, d)
	case v.Rule == RuleForm:
		s.metrics.response(RuleForm, true)
		d.Heading, d.Paragraphs = m.FormHeading, []string{m.Form}
		s.challengePage(w, r, fr, d, refererTarget(r), false)
		s.render(w, status, d)
	default:
		s.metrics.response(RuleInterstitial, true)
		d.Heading, d.Paragraphs = m.Heading, []string{m.Explain}
		s.challengePage(w, r, fr, d, safeTarget(r.URL.RequestURI()), true)
		s.render(w, status, d)
	}
}

// acceptsHTML reports whether the client asked for HTML.
func acceptsHTML(r *http.Request) bool {
	a := first(r.Header["Accept"])
	return strings.Contains(a, "text/html") || strings.Contains(a, "application/xhtml+xml")
}

// writeMachine writes a small JSON or plain-text refusal.
func writeMachine(w http.ResponseWriter, r *http.Request, id string, status int, reason string, retry time.Duration) {
	if reason == "" {
		reason = http.StatusText(status)
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	secs := int64((retry + time.Second - 1) / time.Second)
	if strings.Contains(first(r.Header["Accept"]), "json") {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"status":%d,"reason":%q,"retry_after_seconds":%d,"request_id":%q}`+"\n", status, reason, secs, id)
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "%d %s\nretry after: %d s\nrequest id: %s\n", status, reason, secs, id)
}

// safeTarget returns s if it is a same-site path reference ("/path?query")
// that cannot be read as another origin, else "/". It is the only way a
// redirect target is built (no open redirect).
func safeTarget(s string) string {
	if s == "" || s[0] != '/' || len(s) > 2048 {
		return "/"
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return "/"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	if strings.HasPrefix(u.Path, PathPrefix) {
		return "/"
	}
	return s
}

// refererTarget is the same-site page a refused form came from (to go back
// to after the check), else "/".
func refererTarget(r *http.Request) string {
	ref := first(r.Header["Referer"])
	u, err := url.Parse(ref)
	if ref == "" || err != nil || !strings.EqualFold(u.Host, r.Host) {
		return "/"
	}
	return safeTarget(u.RequestURI())
}
