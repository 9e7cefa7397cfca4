package demo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func multipartBody(t *testing.T, fields [][2]string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

// TestDonateReceipt checks that the receipt echoes the amount and the
// SHA-256 of exactly the bytes sent (the end-to-end integrity check the shield
// tests rely on, HANDED promise 3 "loses nothing").
func TestDonateReceipt(t *testing.T) {
	srv, c := testSite(t, Options{})
	mp, mpType := multipartBody(t, [][2]string{{"amount", "12.5"}, {"name", "Ann Other"}, {"email", "ann@example.org"}, {"message", "Ünïcode ✓"}})
	exactly1MiB := func() []byte {
		head := "amount=5&name=Max&email=max%40example.org&pad="
		return []byte(head + strings.Repeat("z", MaxDonateBytes-len(head)))
	}()
	tests := []struct {
		name       string
		body       []byte
		ctype      string
		chunked    bool
		wantAmount string
	}{
		{name: "urlencoded", body: []byte(url.Values{"amount": {"25"}, "name": {"Jo Bloggs"}, "email": {"jo@example.org"}}.Encode()),
			ctype: "application/x-www-form-urlencoded", wantAmount: "£25.00"},
		{name: "with pound sign and message", body: []byte(url.Values{"amount": {"£7.05"}, "name": {"Jo"}, "email": {"jo@example.org"}, "message": {"Keep going <3"}}.Encode()),
			ctype: "application/x-www-form-urlencoded", wantAmount: "£7.05"},
		{name: "multipart", body: mp, ctype: mpType, wantAmount: "£12.50"},
		{name: "chunked upload of the form", body: []byte("amount=100&name=Chunk&email=c%40example.org"),
			ctype: "application/x-www-form-urlencoded", chunked: true, wantAmount: "£100.00"},
		{name: "exactly 1 MiB", body: exactly1MiB, ctype: "application/x-www-form-urlencoded", wantAmount: "£5.00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = bytes.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length: Transfer-Encoding: chunked
			}
			resp, page := do(t, c, "POST", srv.URL+"/donate", body, http.Header{"Content-Type": {tt.ctype}})
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, want 200; body %.300q", resp.StatusCode, page)
			}
			want := sha256Hex(tt.body)
			if got := resp.Header.Get(BodySHA256Header); got != want {
				t.Errorf("%s %q, want %q", BodySHA256Header, got, want)
			}
			mustContain(t, "receipt", page, `<code id="body-sha256">`+want+`</code>`, tt.wantAmount)
			checkAccessible(t, page)
		})
	}
}

func TestDonateRejects(t *testing.T) {
	srv, c := testSite(t, Options{})
	over := []byte("amount=5&name=Max&email=max%40example.org&pad=" + strings.Repeat("z", MaxDonateBytes))
	tests := []struct {
		name     string
		body     io.Reader
		header   http.Header
		status   int
		contains []string
	}{
		{name: "over 1 MiB declared, expect-continue", body: bytes.NewReader(over),
			header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Expect": {"100-continue"}}, status: 413},
		{name: "over 1 MiB chunked", body: io.MultiReader(bytes.NewReader(over)), header: formHeader(), status: 413},
		{name: "missing fields", body: strings.NewReader("amount="), header: formHeader(), status: 422,
			contains: []string{"Enter an amount", "This field is required", "Enter an email address", `aria-invalid="true"`}},
		{name: "bad amount", body: strings.NewReader("amount=-3&name=A&email=a%40example.org"), header: formHeader(), status: 422,
			contains: []string{"Enter an amount"}},
		{name: "zero amount", body: strings.NewReader("amount=0.00&name=A&email=a%40example.org"), header: formHeader(), status: 422,
			contains: []string{"between £0.01"}},
		{name: "message too long", body: strings.NewReader("amount=1&name=A&email=a%40example.org&message=" + strings.Repeat("m", 1001)),
			header: formHeader(), status: 422, contains: []string{"at most 1000 characters"}},
		{name: "form values are escaped", body: strings.NewReader("amount=x&name=%3Cb%3E&email=a%40example.org"), header: formHeader(), status: 422,
			contains: []string{`value="&lt;b&gt;"`}},
		{name: "json body", body: strings.NewReader(`{"amount":5}`), header: http.Header{"Content-Type": {"application/json"}}, status: 415},
		{name: "no content type", body: strings.NewReader("amount=5"), header: nil, status: 415},
		{name: "bad multipart", body: strings.NewReader("--x\r\nbroken"), header: http.Header{"Content-Type": {"multipart/form-data; boundary=x"}}, status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, page := do(t, c, "POST", srv.URL+"/donate", tt.body, tt.header)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %.300q", resp.StatusCode, tt.status, page)
			}
			mustContain(t, tt.name, page, tt.contains...)
		})
	}
}

func TestParseAmount(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		pence int64
		ok    bool
	}{
		{name: "whole", in: "25", pence: 2500, ok: true},
		{name: "one decimal", in: "25.5", pence: 2550, ok: true},
		{name: "two decimals", in: "0.01", pence: 1, ok: true},
		{name: "pound sign", in: "£3", pence: 300, ok: true},
		{name: "maximum", in: "100000", pence: 100_000_00, ok: true},
		{name: "over maximum", in: "100000.01", ok: false},
		{name: "zero", in: "0", ok: false},
		{name: "three decimals", in: "1.005", ok: false},
		{name: "negative", in: "-1", ok: false},
		{name: "exponent", in: "1e3", ok: false},
		{name: "empty", in: "", ok: false},
		{name: "comma", in: "1,000", ok: false},
		{name: "seven digits", in: "1000000", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parseAmount(tt.in)
			if (err == nil) != tt.ok || p != tt.pence {
				t.Errorf("parseAmount(%q) = %d, %v; want %d, ok %v", tt.in, p, err, tt.pence, tt.ok)
			}
		})
	}
}

func TestVolunteer(t *testing.T) {
	srv, c := testSite(t, Options{})
	tests := []struct {
		name     string
		form     url.Values
		status   int
		contains []string
	}{
		{name: "valid", form: url.Values{"name": {"Sam"}, "email": {"sam@example.org"}, "area": {"Phone banking"}},
			status: 200, contains: []string{"Thank you, Sam", "Phone banking"}},
		{name: "unknown area", form: url.Values{"name": {"Sam"}, "email": {"sam@example.org"}, "area": {"Sabotage"}},
			status: 422, contains: []string{"Choose one of the areas"}},
		{name: "bad email", form: url.Values{"name": {"Sam"}, "email": {"Sam <sam@example.org>"}, "area": {"Events"}},
			status: 422, contains: []string{"Enter an email address"}},
		{name: "too large", form: url.Values{"name": {strings.Repeat("n", maxFormBytes)}}, status: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.form.Encode()
			resp, page := do(t, c, "POST", srv.URL+"/volunteer", strings.NewReader(body), formHeader())
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			mustContain(t, tt.name, page, tt.contains...)
			if tt.status == 200 {
				if got, want := resp.Header.Get(BodySHA256Header), sha256Hex([]byte(body)); got != want {
					t.Errorf("body hash %q, want %q", got, want)
				}
				checkAccessible(t, page)
			}
		})
	}
}
