package demo

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strings"
	"testing"
)

// TestFeeds: feed readers without cookies or JS get the XML with the right
// media type (HANDED F24 steps 1–2).
func TestFeeds(t *testing.T) {
	srv, c := testSite(t, Options{})
	readerUA := http.Header{
		"User-Agent": {"Miniflux/2.2 (+https://miniflux.app; Mozilla compatible)"},
		"Accept":     {"application/atom+xml, application/rss+xml"},
	}
	tests := []struct {
		name, path, ctype string
		atom              bool
	}{
		{name: "rss", path: "/feed.xml", ctype: "application/rss+xml"},
		{name: "rss directory", path: "/feed/", ctype: "application/rss+xml"},
		{name: "atom", path: "/index.atom", ctype: "application/atom+xml", atom: true},
		{name: "atom via query", path: "/?format=atom", ctype: "application/atom+xml", atom: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, c, "GET", srv.URL+tt.path, nil, readerUA)
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.ctype) {
				t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if resp.Header.Get("ETag") == "" || resp.Header.Get("Last-Modified") == "" {
				t.Error("missing ETag or Last-Modified")
			}
			if tt.atom {
				var f struct {
					XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
					ID      string   `xml:"id"`
					Entries []struct {
						ID    string `xml:"id"`
						Title string `xml:"title"`
						Link  struct {
							Href string `xml:"href,attr"`
						} `xml:"link"`
					} `xml:"entry"`
				}
				if err := xml.Unmarshal([]byte(body), &f); err != nil {
					t.Fatal(err)
				}
				if len(f.Entries) != 6 || f.Entries[0].Link.Href != srv.URL+"/news/6" || f.ID != srv.URL+"/" {
					t.Errorf("atom feed: id %q, %d entries, first %+v", f.ID, len(f.Entries), f.Entries)
				}
				return
			}
			var r struct {
				Version string `xml:"version,attr"`
				Channel struct {
					Title string `xml:"title"`
					Items []struct {
						Title   string `xml:"title"`
						Link    string `xml:"link"`
						PubDate string `xml:"pubDate"`
						GUID    string `xml:"guid"`
					} `xml:"item"`
				} `xml:"channel"`
			}
			if err := xml.Unmarshal([]byte(body), &r); err != nil {
				t.Fatal(err)
			}
			if r.Version != "2.0" || len(r.Channel.Items) != 6 || r.Channel.Items[0].Link != srv.URL+"/news/6" ||
				r.Channel.Items[0].GUID != r.Channel.Items[0].Link || r.Channel.Items[0].PubDate == "" {
				t.Errorf("rss: %+v", r)
			}
		})
	}
}

// TestConditionalGET: If-None-Match revalidation answers 304 with no body
// (HANDED F24 step 3), for feeds and static assets alike.
func TestConditionalGET(t *testing.T) {
	srv, c := testSite(t, Options{})
	etag := func(path string) string {
		resp, _ := do(t, c, "GET", srv.URL+path, nil, nil)
		e := resp.Header.Get("ETag")
		if !strings.HasPrefix(e, `"`) {
			t.Fatalf("%s: ETag %q is not a quoted strong tag", path, e)
		}
		return e
	}
	rss, atom, css := etag("/feed.xml"), etag("/index.atom"), etag("/static/site.css")
	tests := []struct {
		name, path, ifNoneMatch string
		status                  int
	}{
		{name: "rss matching", path: "/feed.xml", ifNoneMatch: rss, status: 304},
		{name: "rss weak form matches", path: "/feed.xml", ifNoneMatch: "W/" + rss, status: 304},
		{name: "rss in a list", path: "/feed.xml", ifNoneMatch: `"abc", ` + rss, status: 304},
		{name: "rss star", path: "/feed.xml", ifNoneMatch: "*", status: 304},
		{name: "rss stale", path: "/feed.xml", ifNoneMatch: `"stale"`, status: 200},
		{name: "rss with another feed's tag", path: "/feed.xml", ifNoneMatch: atom, status: 200},
		{name: "atom matching", path: "/index.atom", ifNoneMatch: atom, status: 304},
		{name: "css matching", path: "/static/site.css", ifNoneMatch: css, status: 304},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, c, "GET", srv.URL+tt.path, nil, http.Header{"If-None-Match": {tt.ifNoneMatch}})
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status == 304 && (body != "" || resp.Header.Get("ETag") == "") {
				t.Errorf("304 with %d body bytes, ETag %q", len(body), resp.Header.Get("ETag"))
			}
		})
	}
}

func TestStaticCaching(t *testing.T) {
	srv, c := testSite(t, Options{})
	for _, name := range []string{"site.css", "site.js", "logo.svg"} {
		t.Run(name, func(t *testing.T) {
			resp, body := do(t, c, "GET", srv.URL+"/static/"+name, nil, nil)
			if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=86400" {
				t.Errorf("Cache-Control %q", cc)
			}
			if body == "" {
				t.Error("empty asset")
			}
		})
	}
}

func TestAPI(t *testing.T) {
	srv, c := testSite(t, Options{})
	tests := []struct {
		name, path string
		check      func(t *testing.T, body []byte)
	}{
		{name: "events", path: "/api/v1/events", check: func(t *testing.T, b []byte) {
			var v struct{ Events []Event }
			if err := json.Unmarshal(b, &v); err != nil || len(v.Events) != 4 || v.Events[0].Starts.IsZero() {
				t.Errorf("events %+v, %v", v, err)
			}
		}},
		{name: "news", path: "/api/v1/news", check: func(t *testing.T, b []byte) {
			var v struct{ News []NewsItem }
			if err := json.Unmarshal(b, &v); err != nil || len(v.News) != 6 || v.News[0].ID != 6 || len(v.News[0].Body) == 0 {
				t.Errorf("news %+v, %v", v, err)
			}
		}},
		{name: "news item", path: "/api/v1/news/3", check: func(t *testing.T, b []byte) {
			var v NewsItem
			if err := json.Unmarshal(b, &v); err != nil || v.ID != 3 || v.Title == "" {
				t.Errorf("news item %+v, %v", v, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, c, "GET", srv.URL+tt.path, nil, nil)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			tt.check(t, []byte(body))
		})
	}
}
