package filter

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fmtHTMLPage is the HTML shield page as WriteVerdict built it with fmt
// and strings.Replacer before appendHTMLPage: the reference the
// allocation-free page must match byte for byte.
func fmtHTMLPage(status int, reason, id string) string {
	esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace
	return fmt.Sprintf(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>%d %s</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>%d &mdash; %s</h1>
<p>This site is protected by Portcullis. If you think this is a mistake, contact the site's team and quote the request id below.</p>
<p>Request id: <code>%s</code></p></main></body></html>
`, status, esc(reason), status, esc(reason), esc(id))
}

func TestAppendHTMLPage(t *testing.T) {
	for _, tc := range []struct {
		name, reason, id string
		status           int
	}{
		{name: "plain", reason: "access from your network is blocked", id: "0a1b2c3d-1f", status: 403},
		{name: "every escaped character", reason: `a&b<c>d"e'f`, id: `<x&"y">`, status: 429},
		{name: "escapes at the ends", reason: `"quoted"`, id: "&", status: 503},
		{name: "empty", reason: "", id: "", status: 403},
		{name: "non-ASCII", reason: "zugriff verweigert — ünd <ß>", id: "id", status: 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(appendHTMLPage([]byte("prefix:"), tc.status, tc.reason, tc.id))
			if want := "prefix:" + fmtHTMLPage(tc.status, tc.reason, tc.id); got != want {
				t.Fatalf("page differs from the fmt page:\n got %q\nwant %q", got, want)
			}
		})
	}
}

// FuzzAppendHTMLEscaped checks the escaper against strings.Replacer.
func FuzzAppendHTMLEscaped(f *testing.F) {
	for _, s := range []string{"", "plain", `<&>"'`, "&&", "a<b", "\xff<\x00"} {
		f.Add(s)
	}
	esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(appendHTMLEscaped(nil, s)), esc.Replace(s); got != want {
			t.Fatalf("appendHTMLEscaped(%q) = %q, want %q", s, got, want)
		}
	})
}

func TestDecimalValue(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int64
	}{
		{name: "zero", n: 0},
		{name: "one digit", n: 7},
		{name: "two digits", n: 42},
		{name: "typical body", n: 519},
		{name: "last in the table", n: numDecimals - 1},
		{name: "first past the table", n: numDecimals},
		{name: "a day of Retry-After", n: 86400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := decimalValue(tc.n)
			if len(v) != 1 || v[0] != strconv.FormatInt(tc.n, 10) {
				t.Fatalf("decimalValue(%d) = %q", tc.n, v)
			}
			if cap(v) != 1 {
				t.Fatalf("cap %d: an append by a header user would write into the shared table", cap(v))
			}
			_ = append(v, "x") // must copy, leaving the table as it was
			if w := decimalValue(tc.n + 1); w[0] != strconv.FormatInt(tc.n+1, 10) {
				t.Fatalf("after an append, decimalValue(%d) = %q", tc.n+1, w)
			}
		})
	}
}

// TestWriteVerdictHeaders checks the header values WriteVerdict takes
// from its table and its handling of an X-Request-Id already set: kept
// when it is the id, replaced when it is anything else.
func TestWriteVerdictHeaders(t *testing.T) {
	for _, tc := range []struct {
		name    string
		preset  []string // X-Request-Id in the header before the call
		v       Verdict
		retry   string
		wantIDs []string
	}{
		{name: "no id set", v: Verdict{Action: Block}, wantIDs: []string{"id-1"}},
		{name: "same id set", preset: []string{"id-1"}, v: Verdict{Action: Block}, wantIDs: []string{"id-1"}},
		{name: "other id set", preset: []string{"client-chosen"}, v: Verdict{Action: Block}, wantIDs: []string{"id-1"}},
		{name: "two ids set", preset: []string{"id-1", "id-2"}, v: Verdict{Action: Block}, wantIDs: []string{"id-1"}},
		{name: "Retry-After from the table", v: Verdict{Action: Throttle, RetryAfter: 60 * time.Second}, retry: "60", wantIDs: []string{"id-1"}},
		{name: "Retry-After past the table", v: Verdict{Action: Throttle, RetryAfter: 4 * time.Hour}, retry: "14400", wantIDs: []string{"id-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if tc.preset != nil {
				rec.Header()["X-Request-Id"] = tc.preset
			}
			WriteVerdict(rec, httptest.NewRequest(http.MethodGet, "/", nil), "id-1", tc.v)
			h := rec.Result().Header
			if got := h["X-Request-Id"]; strings.Join(got, ",") != strings.Join(tc.wantIDs, ",") {
				t.Errorf("X-Request-Id %q, want %q", got, tc.wantIDs)
			}
			if got := h.Get("Retry-After"); got != tc.retry {
				t.Errorf("Retry-After %q, want %q", got, tc.retry)
			}
			if got := h.Get("Content-Length"); got != strconv.Itoa(rec.Body.Len()) {
				t.Errorf("Content-Length %q, body %d bytes", got, rec.Body.Len())
			}
		})
	}
}

// TestWriteVerdictAllocations checks that a 403 or 429 to a writer whose
// header already carries the request id (as the edge sets it) allocates
// nothing in WriteVerdict itself.
func TestWriteVerdictAllocations(t *testing.T) {
	for _, tc := range []struct {
		name, accept string
		v            Verdict
	}{
		{name: "text 403", v: Verdict{Action: Block, Reason: "access from your network is blocked"}},
		{name: "html 403", accept: "text/html", v: Verdict{Action: Block, Reason: "access from your network is blocked"}},
		{name: "json 429", accept: "application/json", v: Verdict{Action: Throttle, RetryAfter: 2 * time.Second, Reason: "rate limit exceeded"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &headerOnlyWriter{h: http.Header{}}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Accept", tc.accept)
			id := []string{"0a1b2c3d-1f"}
			if n := testing.AllocsPerRun(100, func() {
				clear(w.h)
				w.h["X-Request-Id"] = id
				WriteVerdict(w, r, id[0], tc.v)
			}); n != 0 {
				t.Fatalf("%v allocations per response, want 0", n)
			}
		})
	}
}

// headerOnlyWriter is an allocation-free http.ResponseWriter.
type headerOnlyWriter struct{ h http.Header }

func (w *headerOnlyWriter) Header() http.Header         { return w.h }
func (w *headerOnlyWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *headerOnlyWriter) WriteHeader(int)             {}
