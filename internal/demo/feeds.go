package demo

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// baseURL is the absolute site root for feed links, from the request: the
// scheme is https when the client came over TLS (directly or, per
// X-Forwarded-Proto, to the shield), the host is the request's Host.
func baseURL(r *http.Request) string {
	scheme := "http"
	if secure(r) {
		scheme = "https"
	}
	host := r.Host
	if host == "" || strings.ContainsAny(host, "/\\ \"<>") {
		host = "localhost"
	}
	return scheme + "://" + host
}

// RSS 2.0 (https://www.rssboard.org/rss-specification).
type rssDoc struct {
	XMLName xml.Name   `xml:"rss"`
	Version string     `xml:"version,attr"`
	Channel rssChannel `xml:"channel"`
}

type rssChannel struct {
	Title         string    `xml:"title"`
	Link          string    `xml:"link"`
	Description   string    `xml:"description"`
	Language      string    `xml:"language"`
	LastBuildDate string    `xml:"lastBuildDate"`
	Items         []rssItem `xml:"item"`
}

type rssItem struct {
	Title       string  `xml:"title"`
	Link        string  `xml:"link"`
	GUID        rssGUID `xml:"guid"`
	PubDate     string  `xml:"pubDate"`
	Description string  `xml:"description"`
}

type rssGUID struct {
	IsPermaLink bool   `xml:"isPermaLink,attr"`
	Value       string `xml:",chardata"`
}

// rss serves the news as RSS 2.0 on /feed.xml and /feed/.
func (s *Site) rss(w http.ResponseWriter, r *http.Request) {
	base := baseURL(r)
	doc := rssDoc{Version: "2.0", Channel: rssChannel{
		Title: s.opts.Name + " news", Link: base + "/", Language: "en-gb",
		Description:   "News from " + s.opts.Name,
		LastBuildDate: s.content.updated().Format(time.RFC1123Z),
	}}
	for _, n := range s.content.news {
		link := base + "/news/" + strconv.Itoa(n.ID)
		doc.Channel.Items = append(doc.Channel.Items, rssItem{
			Title: n.Title, Link: link, GUID: rssGUID{IsPermaLink: true, Value: link},
			PubDate: n.Published.Format(time.RFC1123Z), Description: n.Summary,
		})
	}
	s.serveFeed(w, r, "application/rss+xml; charset=utf-8", doc)
}

// Atom, RFC 4287.
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	Lang    string      `xml:"xml:lang,attr"`
	ID      string      `xml:"id"`
	Title   string      `xml:"title"`
	Updated string      `xml:"updated"`
	Author  atomPerson  `xml:"author"`
	Links   []atomLink  `xml:"link"`
	Entries []atomEntry `xml:"entry"`
}

type atomPerson struct {
	Name string `xml:"name"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr,omitempty"`
	Type string `xml:"type,attr,omitempty"`
	Href string `xml:"href,attr"`
}

type atomEntry struct {
	ID        string     `xml:"id"`
	Title     string     `xml:"title"`
	Updated   string     `xml:"updated"`
	Published string     `xml:"published"`
	Author    atomPerson `xml:"author"`
	Link      atomLink   `xml:"link"`
	Summary   string     `xml:"summary"`
}

// atom serves the news as an Atom feed on /index.atom and /?format=atom.
func (s *Site) atom(w http.ResponseWriter, r *http.Request) {
	base := baseURL(r)
	f := atomFeed{
		Lang: "en-GB", ID: base + "/", Title: s.opts.Name + " news",
		Updated: s.content.updated().Format(time.RFC3339),
		Author:  atomPerson{Name: s.opts.Name},
		Links: []atomLink{
			{Rel: "self", Type: "application/atom+xml", Href: base + "/index.atom"},
			{Rel: "alternate", Type: "text/html", Href: base + "/"},
		},
	}
	for _, n := range s.content.news {
		link := base + "/news/" + strconv.Itoa(n.ID)
		f.Entries = append(f.Entries, atomEntry{
			ID: link, Title: n.Title, Updated: n.Published.Format(time.RFC3339),
			Published: n.Published.Format(time.RFC3339), Author: atomPerson{Name: n.Author},
			Link: atomLink{Rel: "alternate", Type: "text/html", Href: link}, Summary: n.Summary,
		})
	}
	s.serveFeed(w, r, "application/atom+xml; charset=utf-8", f)
}

// serveFeed marshals doc and serves it with a strong ETag and Last-Modified,
// so If-None-Match (weak comparison, RFC 9110 §13.1.2) and If-Modified-Since
// get 304, and Range and HEAD work (http.ServeContent).
func (s *Site) serveFeed(w http.ResponseWriter, r *http.Request, ctype string, doc any) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(doc); err != nil {
		s.log.Error("demo: encode feed", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("ETag", strongETag(buf.Bytes()))
	h.Set("Cache-Control", "public, max-age=300")
	http.ServeContent(w, r, "", s.content.updated(), bytes.NewReader(buf.Bytes()))
}

// writeJSON writes v as a JSON document with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// APIError is the JSON body of every API error: {"error": "..."}.
type APIError struct {
	Error string `json:"error"`
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, APIError{Error: msg})
}

// apiEvents answers GET /api/v1/events: {"events": [Event...]}.
func (s *Site) apiEvents(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=60")
	writeJSON(w, http.StatusOK, map[string]any{"events": s.content.events})
}

// apiNews answers GET /api/v1/news: {"news": [NewsItem...]}, newest first.
func (s *Site) apiNews(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=60")
	writeJSON(w, http.StatusOK, map[string]any{"news": s.content.news})
}

// apiNewsItem answers GET /api/v1/news/{id} with one NewsItem, or 404.
func (s *Site) apiNewsItem(w http.ResponseWriter, r *http.Request) {
	n, ok := s.content.newsByID(r.PathValue("id"))
	if !ok {
		writeJSONError(w, http.StatusNotFound, "no such news item")
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=60")
	writeJSON(w, http.StatusOK, n)
}
