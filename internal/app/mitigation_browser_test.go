package app

// Browser test (issue 4, "Tests"): real headless Chromium — Debian's
// chromium driven by playwright-core from test/browser (scripts/test.sh
// installs both) — meets the shield in under-attack mode in front of the
// demo site, gets through the challenge with JavaScript (the Web Worker's
// proof of work) and without it (the no-JavaScript path, HANDED F27), lands
// on the home page and sends the donation form with its body intact.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/challenge"
)

// browserResult is what test/browser/challenge.mjs reports.
type browserResult struct {
	Mode                string `json:"mode"`
	Chromium            string `json:"chromium"`
	InterstitialStatus  int    `json:"interstitialStatus"`
	InterstitialHeaders map[string]string
	InterstitialTitle   string `json:"interstitialTitle"`
	InterstitialLang    string `json:"interstitialLang"`
	InterstitialHasForm bool   `json:"interstitialHasForm"`
	WaitedMs            int64  `json:"waitedMs"`
	LandedMs            int64  `json:"landedMs"`
	LandedTitle         string `json:"landedTitle"`
	LandedURL           string `json:"landedURL"`
	Cookies             []string
	DonateFormStatus    int `json:"donateFormStatus"`
	Requests            []struct {
		Method string `json:"method"`
		Path   string `json:"path"`
		Status int    `json:"status"`
		Nonce  string `json:"nonce"`
	} `json:"requests"`
	Donation struct {
		Status        int    `json:"status"`
		ContentType   string `json:"contentType"`
		SentBody      string `json:"sentBody"`
		SentSha256    string `json:"sentSha256"`
		ReceiptSha256 string `json:"receiptSha256"`
		HeaderSha256  string `json:"headerSha256"`
	} `json:"donation"`
}

// browserEnv returns the test/browser directory and node, or skips with
// what is missing — only when scripts/test.sh could not install it
// (PORTCULLIS_BROWSER_TESTS=1 says it did: then anything missing fails).
func browserEnv(t *testing.T) (dir, node string) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "test", "browser"))
	if err != nil {
		t.Fatal(err)
	}
	chromium := os.Getenv("PORTCULLIS_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	var missing []string
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, "Debian's chromium ("+chromium+")")
	}
	node, err = exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core", "package.json")); err != nil {
		missing = append(missing, "playwright-core in test/browser (npm ci --prefix test/browser)")
	}
	if len(missing) > 0 {
		msg := "browser test needs " + strings.Join(missing, ", ") + "; scripts/test.sh installs them"
		if os.Getenv("PORTCULLIS_BROWSER_TESTS") == "1" {
			t.Fatal(msg + ", and says it did")
		}
		t.Skip(msg)
	}
	return dir, node
}

// runBrowser runs challenge.mjs in mode against base and decodes its report.
func runBrowser(t *testing.T, dir, node, base, mode string) browserResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "challenge.mjs"), "--base", base, "--mode", mode)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("challenge.mjs --mode %s: %v\nstderr:\n%s\nstdout:\n%s", mode, err, stderr.String(), stdout.String())
	}
	var r browserResult
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &r); err != nil {
		t.Fatalf("challenge.mjs output: %v\n%s", err, stdout.String())
	}
	return r
}

// browserFormBody is the donation of challenge.mjs encoded as a browser
// encodes a form (application/x-www-form-urlencoded, WHATWG URL §5.2): the
// fields in document order, spaces as '+', the textarea's newline as CRLF.
func browserFormBody() string {
	fields := [][2]string{{"amount", "25.50"}, {"name", "Ada Lovelace-Byron"}, {"email", "ada@example.org"},
		{"message", "Keep going! ünïcode & symbols = fine; 100% + more\r\nsecond line"}}
	var b strings.Builder
	for i, f := range fields {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(f[0]) + "=" + url.QueryEscape(f[1]))
	}
	return b.String()
}

func TestMitigationBrowserChallenge(t *testing.T) {
	dir, node := browserEnv(t)
	s := startDemoShield(t, "", nil)
	s.underAttack(t, true)

	tests := []struct {
		name, mode string
		// verify is the method the challenge is redeemed with; nonce whether
		// the redemption carries a proof of work.
		verify string
		nonce  bool
		// minLanded is the shortest time from the interstitial to the page.
		minLanded time.Duration
	}{
		{name: "JavaScript: Web Worker proof of work", mode: "js", verify: http.MethodPost, nonce: true},
		{name: "no JavaScript: waits and submits the form", mode: "nojs-form", verify: http.MethodPost, minLanded: challenge.DefaultNoJSWait},
		{name: "no JavaScript: meta refresh", mode: "nojs-wait", verify: http.MethodGet, minLanded: challenge.DefaultNoJSWait},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runBrowser(t, dir, node, s.URL, tc.mode)
			t.Logf("chromium %s: landed after %d ms; requests %+v", r.Chromium, r.LandedMs, r.Requests)

			if r.InterstitialStatus != http.StatusServiceUnavailable || !r.InterstitialHasForm {
				t.Errorf("first response: want the 503 interstitial, got %d (form %v)", r.InterstitialStatus, r.InterstitialHasForm)
			}
			if r.InterstitialLang == "" || r.InterstitialTitle == "" || !strings.Contains(r.InterstitialHeaders["cache-control"], "no-store") || r.InterstitialHeaders["retry-after"] == "" {
				t.Errorf("interstitial: lang %q title %q headers %v", r.InterstitialLang, r.InterstitialTitle, r.InterstitialHeaders)
			}
			var redeemed, verified int
			for _, q := range r.Requests {
				if q.Path != challenge.PathPrefix+"verify" {
					continue
				}
				if q.Status == http.StatusSeeOther {
					redeemed++
					if q.Method != tc.verify || (q.Nonce != "") != tc.nonce {
						t.Errorf("redeemed with %s nonce %q; want %s with nonce %v", q.Method, q.Nonce, tc.verify, tc.nonce)
					}
				}
				if q.Status == 0 {
					// The browser aborted it for another navigation (the
					// no-JS page's meta refresh racing the pressed form):
					// it never reached an answer, nothing was redeemed.
					continue
				}
				verified++
			}
			if redeemed != 1 || verified != 1 {
				t.Errorf("want exactly one verify request, redeemed (303); got %d, %d redeemed", verified, redeemed)
			}
			if !strings.HasSuffix(r.LandedURL, "/") || !strings.Contains(r.LandedTitle, "Harbour") {
				t.Errorf("landed on %q (%q), want the home page", r.LandedURL, r.LandedTitle)
			}
			if time.Duration(r.LandedMs)*time.Millisecond < tc.minLanded {
				t.Errorf("landed after %d ms, before the no-JavaScript wait of %v", r.LandedMs, tc.minLanded)
			}
			if !slices.Contains(r.Cookies, challenge.DefaultCookiePrefix+"clearance") {
				t.Errorf("no clearance cookie in the browser: %v", r.Cookies)
			}

			d := r.Donation
			if r.DonateFormStatus != http.StatusOK || d.Status != http.StatusOK {
				t.Fatalf("donation: form %d, submit %d", r.DonateFormStatus, d.Status)
			}
			if d.ContentType != "application/x-www-form-urlencoded" {
				t.Errorf("donation sent as %q", d.ContentType)
			}
			if d.ReceiptSha256 != d.SentSha256 || d.HeaderSha256 != d.SentSha256 {
				t.Errorf("donation body altered: browser sent %s, receipt %s, origin header %s\nbody %q", d.SentSha256, d.ReceiptSha256, d.HeaderSha256, d.SentBody)
			}
			if want := browserFormBody(); d.SentBody != want {
				t.Errorf("the browser's body is not the form's fields encoded:\n got %q\nwant %q", d.SentBody, want)
			}
			if d.ReceiptSha256 != sha256Hex(browserFormBody()) {
				t.Errorf("receipt hash %s is not the SHA-256 of the form's fields encoded", d.ReceiptSha256)
			}
		})
	}
}
