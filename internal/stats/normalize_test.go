package stats

import (
	"strings"
	"testing"
)

func TestAppendNormalizedPath(t *testing.T) {
	tests := []struct {
		name, in, want string
		max            int
	}{
		{name: "root", in: "/", want: "/"},
		{name: "empty", in: "", want: "/"},
		{name: "numeric id", in: "/news/2024/10/123", want: "/news/:n/:n/:n"},
		{name: "uuid", in: "/api/items/550e8400-e29b-41d4-a716-446655440000/edit", want: "/api/items/:uuid/edit"},
		{name: "hex hash", in: "/static/app.3f2a9c1d.js", want: "/static/app.3f2a9c1d.js"},
		{name: "hex segment", in: "/commit/3f2a9c1d7e", want: "/commit/:hex"},
		{name: "word that is hex", in: "/deadbeef/cafe", want: "/deadbeef/cafe"},
		{name: "no leading slash", in: "a/1", want: "/a/:n"},
		{name: "double slash kept", in: "//x//1", want: "//x//:n"},
		{name: "truncated", in: "/" + strings.Repeat("a", 50), max: 10, want: "/aaaaaaaaa"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(AppendNormalizedPath(nil, tc.in, tc.max))
			if got != tc.want {
				t.Fatalf("AppendNormalizedPath(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if b := string(AppendNormalizedPath(nil, []byte(tc.in), tc.max)); b != got {
				t.Fatalf("byte form %q differs from string form %q", b, got)
			}
		})
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/1/2", "x//550e8400-e29b-41d4-a716-446655440000", "/\xff\x00/123abcdef"} {
		f.Add(s, 16)
	}
	f.Fuzz(func(t *testing.T, p string, max int) {
		max = max % 300
		out := AppendNormalizedPath(nil, p, max)
		if len(out) == 0 || out[0] != '/' {
			t.Fatalf("output %q does not start with /", out)
		}
		if max > 0 && len(out) > max {
			t.Fatalf("output %d bytes > max %d", len(out), max)
		}
		if again := AppendNormalizedPath(nil, string(out), 0); max <= 0 && string(again) != string(out) {
			t.Fatalf("not idempotent: %q → %q", out, again)
		}
		_ = IsAssetPath(p)
		_ = ClassifyUserAgent([]byte(p))
	})
}

func TestIsAssetPath(t *testing.T) {
	tests := []struct {
		name, path string
		want       bool
	}{
		{name: "css", path: "/static/site.css", want: true},
		{name: "upper-case png", path: "/img/LOGO.PNG", want: true},
		{name: "woff2", path: "/f/x.woff2", want: true},
		{name: "page", path: "/donate", want: false},
		{name: "php", path: "/index.php", want: false},
		{name: "dot in directory", path: "/v1.2/page", want: false},
		{name: "empty", path: "", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsAssetPath(tc.path); got != tc.want {
				t.Fatalf("IsAssetPath(%q) = %v", tc.path, got)
			}
		})
	}
}

func TestClassifyUserAgent(t *testing.T) {
	tests := []struct {
		name, ua string
		want     UAClass
	}{
		{name: "empty", ua: "", want: UAEmpty},
		{name: "chrome", ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36", want: UABrowser},
		{name: "firefox", ua: "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", want: UABrowser},
		{name: "googlebot", ua: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", want: UABot},
		{name: "curl", ua: "curl/8.5.0", want: UATool},
		{name: "python", ua: "python-requests/2.31", want: UATool},
		{name: "go", ua: "Go-http-client/1.1", want: UATool},
		{name: "odd", ua: "Mozilla/4.0", want: UAOther},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ClassifyUserAgent([]byte(tc.ua)); got != tc.want {
				t.Fatalf("ClassifyUserAgent(%q) = %v, want %v", tc.ua, got, tc.want)
			}
		})
	}
}
