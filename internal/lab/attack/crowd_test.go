package attack

import "testing"

// TestCrowdReferer: a flash crowd looks like people following a shared
// link — pages referred from outside, assets from the page — which is what
// the shield's flash-crowd recognition reads (asset and referer shares).
func TestCrowdReferer(t *testing.T) {
	tests := []struct{ name, path, want string }{
		{name: "home page from the shared link", path: "/", want: "https://t.co/campaign-video"},
		{name: "article from the shared link", path: "/news/1", want: "https://t.co/campaign-video"},
		{name: "stylesheet from the page", path: "/static/site.css", want: "http://127.0.0.1:8080/"},
		{name: "image from the page", path: "/static/logo.png", want: "http://127.0.0.1:8080/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := crowdReferer("http://127.0.0.1:8080", tc.path); got != tc.want {
				t.Fatalf("crowdReferer(%q) = %q, want %q", tc.path, got, tc.want)
			}
		})
	}
}
