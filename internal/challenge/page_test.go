package challenge

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestF27PageAccessibility: the interstitial names its language, has a
// title and a heading, says in words what is happening, announces progress
// as text in a live region, needs no pointer (buttons and links only),
// loads its script from a file (CSP without inline script), and has a
// no-JS path and a late fallback with a retry link.
func TestF27PageAccessibility(t *testing.T) {
	sh := newShield(t, shieldConfig{opts: Options{Brand: Brand{SiteName: "Harbour Party", LogoURL: "/static/logo.svg", Accent: "#8a1538"}}})
	tests := []struct {
		name, acceptLanguage, wantLang, wantText string
	}{
		{name: "english", acceptLanguage: "en-GB,en;q=0.9", wantLang: "en", wantText: "This site is under heavy attack. We are checking that you are a person, which may take a few seconds."},
		{name: "german", acceptLanguage: "de-CH, en;q=0.5", wantLang: "de", wantText: "Diese Website wird gerade massiv angegriffen."},
		{name: "unsupported falls back", acceptLanguage: "fi", wantLang: "en", wantText: "This site is under heavy attack."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sh.client("127.0.0.2", false).do(t, http.MethodGet, "/", "", "Accept", browserAccept, "Accept-Language", tt.acceptLanguage)
			b := r.body
			checks := []struct {
				what string
				ok   bool
			}{
				{"status 503", r.status == http.StatusServiceUnavailable},
				{"lang", strings.Contains(b, `<html lang="`+tt.wantLang+`">`)},
				{"title with site name", regexp.MustCompile(`<title>[^<]+ · Harbour Party</title>`).MatchString(b)},
				{"h1", strings.Contains(b, "<h1>")},
				{"explanation", strings.Contains(b, tt.wantText)},
				{"live region", strings.Contains(b, `role="status" aria-live="polite"`)},
				{"progress text", strings.Contains(b, `data-progress="`) && strings.Contains(b, "{p}")},
				{"noscript path", strings.Contains(b, "<noscript>") && strings.Contains(b, `<button type="submit">`)},
				{"late fallback with retry link", regexp.MustCompile(`(?s)id="pc-late".*<a href="/">`).MatchString(b)},
				{"no inline script", !regexp.MustCompile(`<script>|<script [^>]*>[^<]`).MatchString(b) && strings.Contains(b, `<script src="/.portcullis/challenge.js?v=`)},
				{"no event-handler attributes", !regexp.MustCompile(`\son[a-z]+=`).MatchString(b)},
				{"logo with alt text", strings.Contains(b, `<img class="pc-logo" src="/static/logo.svg" alt="Harbour Party">`)},
				{"brand colour", strings.Contains(b, "#8a1538")},
				{"no noindex", !strings.Contains(strings.ToLower(b), "noindex")},
				{"no-store", r.header.Get("Cache-Control") == "no-store"},
				{"content language matches", strings.HasPrefix(r.header.Get("Content-Type"), "text/html")},
			}
			for _, c := range checks {
				if !c.ok {
					t.Errorf("%s: failed", c.what)
				}
			}
			// The CSP allows the inline style sheet by its hash, and nothing
			// inline else.
			m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(b)
			if m == nil {
				t.Fatal("no style element")
			}
			sum := sha256.Sum256([]byte(m[1]))
			csp := r.header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") || !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("CSP %q does not match the style sheet", csp)
			}
			if !strings.Contains(m[1], "animation:pc-reveal 0s 10s") {
				t.Error("the late fallback is not revealed after 10 s")
			}
		})
	}
}

func TestScriptsServed(t *testing.T) {
	sh := newShield(t, shieldConfig{})
	c := sh.client("127.0.0.2", false)
	page := c.do(t, http.MethodGet, "/", "", "Accept", browserAccept).body
	script := regexp.MustCompile(`<script src="([^"]+)"`).FindStringSubmatch(page)[1]
	worker := regexp.MustCompile(`data-worker="([^"]+)"`).FindStringSubmatch(page)[1]
	tests := []struct {
		name, method, path string
		want               int
		wantBody           string
	}{
		{name: "page script", method: http.MethodGet, path: script, want: 200, wantBody: "pc-status"},
		{name: "worker", method: http.MethodGet, path: worker, want: 200, wantBody: "function solve"},
		{name: "POST to a script", method: http.MethodPost, path: script, want: 405},
		{name: "unknown endpoint", method: http.MethodGet, path: PathPrefix + "nope", want: 404},
		{name: "PUT verify", method: http.MethodPut, path: PathPrefix + "verify", want: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do(t, tt.method, tt.path, "", "Accept", "*/*")
			if r.status != tt.want {
				t.Fatalf("status %d, want %d", r.status, tt.want)
			}
			if tt.want == 200 && (!strings.HasPrefix(r.header.Get("Content-Type"), "text/javascript") || !strings.Contains(r.body, tt.wantBody)) {
				t.Errorf("Content-Type %q, body lacks %q", r.header.Get("Content-Type"), tt.wantBody)
			}
		})
	}
}

func TestNewRejectsBadBranding(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want error
	}{
		{name: "css injection in a colour", opts: Options{Brand: Brand{Background: "red;}body{display:none"}}, want: ErrBrand},
		{name: "named colour", opts: Options{Brand: Brand{Accent: "red"}}, want: ErrBrand},
		{name: "javascript logo", opts: Options{Brand: Brand{LogoURL: "javascript:alert(1)"}}, want: ErrBrand},
		{name: "scheme-relative logo", opts: Options{Brand: Brand{LogoURL: "//evil.example/x.png"}}, want: ErrBrand},
		{name: "plain-http logo", opts: Options{Brand: Brand{LogoURL: "http://example.org/x.png"}}, want: ErrBrand},
		{name: "cookie prefix with separator", opts: Options{CookiePrefix: "a;b"}, want: ErrBrand},
		{name: "catalogue without en", opts: Options{Catalogue: map[string]Messages{"de": DefaultCatalogue()["de"]}}, want: ErrCatalogue},
		{name: "good", opts: Options{Brand: Brand{Background: "#fff", Foreground: "#000000", LogoURL: "https://example.org/logo.png"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Logger = discardLogger()
			_, err := New(tt.opts)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
		})
	}
}

func TestPickLanguage(t *testing.T) {
	cat := DefaultCatalogue()
	tests := []struct{ name, header, want string }{
		{name: "empty", header: "", want: "en"},
		{name: "german", header: "de", want: "de"},
		{name: "region subtag", header: "de-AT", want: "de"},
		{name: "q-values", header: "fr;q=0.9, de;q=0.8, en;q=0.7", want: "de"},
		{name: "q-values prefer en", header: "de;q=0.5, en", want: "en"},
		{name: "q=0 excludes", header: "de;q=0, fr", want: "en"},
		{name: "wildcard", header: "*", want: "en"},
		{name: "upper case", header: "DE-de", want: "de"},
		{name: "garbage", header: ";;,,;q=x", want: "en"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pickLanguage(tt.header, cat, "en"); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCataloguesComplete: every language fills every message, and the
// placeholders the script and the page rely on are present.
func TestCataloguesComplete(t *testing.T) {
	for lang, m := range DefaultCatalogue() {
		t.Run(lang, func(t *testing.T) {
			for name, v := range map[string]string{"Title": m.Title, "Heading": m.Heading, "Explain": m.Explain, "Working": m.Working,
				"Progress": m.Progress, "Done": m.Done, "DoneManual": m.DoneManual, "NoJS": m.NoJS, "NeedJS": m.NeedJS, "Continue": m.Continue,
				"ContinueNoJS": m.ContinueNoJS, "Late": m.Late, "ScriptError": m.ScriptError, "Retry": m.Retry, "CookiesHeading": m.CookiesHeading,
				"Cookies": m.Cookies, "FormHeading": m.FormHeading, "Form": m.Form, "FailedHeading": m.FailedHeading, "Failed": m.Failed,
				"Used": m.Used, "WaitHeading": m.WaitHeading, "Wait": m.Wait, "RequestID": m.RequestID, "Footer": m.Footer} {
				if v == "" {
					t.Errorf("%s is empty", name)
				}
			}
			if !strings.Contains(m.Progress, "{p}") || !strings.Contains(m.NoJS, "{n}") {
				t.Error("placeholder missing")
			}
		})
	}
}
