package demo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

type homeData struct {
	News   []NewsItem
	Events []Event
}

func (s *Site) home(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("format") == "atom" { // feed readers probe "/?format=atom" (HANDED F24)
		s.atom(w, r)
		return
	}
	s.render(w, r, http.StatusOK, "home", "home", "", homeData{
		News:   s.content.news[:4],
		Events: s.content.events[:2],
	})
}

func (s *Site) about(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "about", "about", "About us", nil)
}

func (s *Site) events(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "events", "events", "Events", s.content.events)
}

func (s *Site) news(w http.ResponseWriter, r *http.Request) {
	n, ok := s.content.newsByID(r.PathValue("id"))
	if !ok {
		s.notFound(w, r)
		return
	}
	s.render(w, r, http.StatusOK, "news", "home", n.Title, n)
}

// searchRounds is the number of chained SHA-256 evaluations one search costs:
// a few milliseconds of CPU, so /search is the "expensive" route that load
// shedding and cost-based limits can be tested against.
const searchRounds = 20_000

// maxQueryRunes bounds the ?q= of /search.
const maxQueryRunes = 200

type searchResult struct {
	Title   string
	URL     string
	Snippet string
}

type searchData struct {
	Query    string
	Searched bool
	Results  []searchResult
}

func (s *Site) search(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if utf8.RuneCountInString(q) > maxQueryRunes {
		s.errorPage(w, r, http.StatusBadRequest, "Search terms are limited to 200 characters.")
		return
	}
	data := searchData{Query: q}
	if q != "" {
		data.Searched = true
		burn(q)
		data.Results = s.content.find(q)
	}
	s.render(w, r, http.StatusOK, "search", "", "Search", data)
}

// burn spends searchRounds chained SHA-256 evaluations seeded by q.
func burn(q string) [sha256.Size]byte {
	h := sha256.Sum256([]byte(q))
	for range searchRounds {
		h = sha256.Sum256(h[:])
	}
	return h
}

// find is a case-insensitive substring search over news and events.
func (c *content) find(q string) []searchResult {
	q = strings.ToLower(q)
	var out []searchResult
	for _, n := range c.news {
		text := n.Title + " " + n.Summary + " " + strings.Join(n.Body, " ")
		if strings.Contains(strings.ToLower(text), q) {
			out = append(out, searchResult{Title: n.Title, URL: "/news/" + strconv.Itoa(n.ID), Snippet: n.Summary})
		}
	}
	for _, e := range c.events {
		text := e.Title + " " + e.Place + " " + e.Description
		if strings.Contains(strings.ToLower(text), q) {
			out = append(out, searchResult{Title: e.Title, URL: "/events#event-" + strconv.Itoa(e.ID), Snippet: e.Description})
		}
	}
	return out
}

// staticTypes maps the static assets' extensions to their media types; fixed
// here so the host's mime.types cannot change them.
func staticTypes() map[string]string {
	return map[string]string{
		".css": "text/css; charset=utf-8",
		".js":  "text/javascript; charset=utf-8",
		".svg": "image/svg+xml",
	}
}

// staticFile is one embedded asset with its precomputed validator.
type staticFile struct {
	body  []byte
	etag  string // strong, quoted
	ctype string
}

func mustLoadStatic() map[string]staticFile {
	out := make(map[string]staticFile)
	err := fs.WalkDir(assets, "assets/static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assets, p)
		if err != nil {
			return err
		}
		ctype, ok := staticTypes()[path.Ext(p)]
		if !ok {
			return fmt.Errorf("demo: static asset %s: unknown type", p)
		}
		out[path.Base(p)] = staticFile{body: b, etag: strongETag(b), ctype: ctype}
		return nil
	})
	if err != nil {
		panic(err)
	}
	return out
}

// strongETag is a quoted strong entity tag (RFC 9110 §8.8.3) derived from the
// first 16 bytes of the SHA-256 of b.
func strongETag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// staticMaxAge is the Cache-Control max-age of /static/ assets.
const staticMaxAge = 24 * time.Hour

func (s *Site) staticAsset(w http.ResponseWriter, r *http.Request) {
	f, ok := s.static[r.PathValue("file")]
	if !ok {
		s.notFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("ETag", f.etag)
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(staticMaxAge/time.Second)))
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

func (s *Site) robots(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write([]byte("User-agent: *\nDisallow: /account\nDisallow: /api/\nDisallow: /search\n"))
}
