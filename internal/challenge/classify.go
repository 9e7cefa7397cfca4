package challenge

import (
	"net/http"
	"strings"
)

// class is what kind of client request a challenge decision is about.
type class uint8

const (
	classDocument class = iota // a browser navigation: may get the interstitial
	classForm                  // a method with a body (POST, PUT, PATCH, DELETE)
	classFeed                  // RSS/Atom/JSON feed
	classHealth                // configured health-check path
	classAPI                   // configured API route
	classAsset                 // style sheet, script, image, font, media
	classOther                 // anything else that is not a navigation (XHR, curl)
)

// classify decides the class of r from its method, path, query and headers.
// It allocates nothing. Path-based classes (health, feed, API) come before
// header-based ones, so that a feed reader that also accepts text/html is
// still a feed reader (HANDED F24).
func (f *Filter) classify(r *http.Request, path string) class {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		return classOther
	default:
		return classForm
	}
	if hasAnyPrefix(path, f.opts.HealthPaths) {
		return classHealth
	}
	if IsFeed(path, r.URL.RawQuery) || hasAnyPrefix(path, f.opts.FeedPaths) {
		return classFeed
	}
	if hasAnyPrefix(path, f.opts.APIPaths) {
		return classAPI
	}
	h := r.Header
	// Fetch metadata (https://www.w3.org/TR/fetch-metadata/) is the most
	// reliable signal where browsers send it.
	if dest := first(h["Sec-Fetch-Dest"]); dest != "" {
		switch dest {
		case "document", "iframe", "frame", "embed", "object":
			// a navigation; the Accept check below still applies
		case "empty":
			return classOther
		default:
			return classAsset
		}
	}
	if isAssetPath(path) {
		return classAsset
	}
	accept := first(h["Accept"])
	if isFeedType(accept) {
		return classOther // a feed reader on a path we do not know as a feed: never HTML
	}
	if strings.Contains(accept, "text/html") || strings.Contains(accept, "application/xhtml+xml") {
		return classDocument
	}
	return classOther
}

// IsFeed reports whether a request for path with the raw query looks like
// a feed: a path ending in .rss, .atom, .rdf or .xml (sitemaps included:
// they are for machines too), a path segment "feed", "feeds", "rss" or
// "atom" ("/feed/", "/blog/feed", "/rss"), or the site root with a query
// selecting a feed ("/?format=atom", "/?feed=rss2"). It allocates nothing.
//
// Exported so that the caller can put a per-address rate limit on the same
// requests (HANDED F24: exempting feeds from challenges must not become a
// bypass).
func IsFeed(path, rawQuery string) bool {
	for _, ext := range [...]string{".rss", ".atom", ".rdf", ".xml"} {
		if hasSuffixFold(path, ext) {
			return true
		}
	}
	rest := path
	for rest != "" {
		var seg string
		seg, rest, _ = strings.Cut(strings.TrimPrefix(rest, "/"), "/")
		for _, name := range [...]string{"feed", "feeds", "rss", "atom"} {
			if strings.EqualFold(seg, name) {
				return true
			}
		}
	}
	if (path == "/" || path == "") && rawQuery != "" {
		for _, q := range [...]string{"format=atom", "format=rss", "feed=rss", "feed=atom", "feed=rdf"} {
			if containsFold(rawQuery, q) {
				return true
			}
		}
	}
	return false
}

// isFeedType reports whether an Accept header names a feed media type.
func isFeedType(accept string) bool {
	return strings.Contains(accept, "rss+xml") || strings.Contains(accept, "atom+xml") ||
		strings.Contains(accept, "feed+json") || strings.Contains(accept, "rdf+xml")
}

// assetExts are extensions of sub-resources that are never documents.
var assetExts = [...]string{
	".css", ".js", ".mjs", ".map", ".json", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif",
	".svg", ".ico", ".woff", ".woff2", ".ttf", ".otf", ".eot", ".mp4", ".webm", ".mp3", ".ogg",
	".wasm", ".txt", ".pdf", ".zip", ".webmanifest",
}

func isAssetPath(path string) bool {
	dot := strings.LastIndexByte(path, '.')
	if dot < 0 || strings.IndexByte(path[dot:], '/') >= 0 {
		return false
	}
	ext := path[dot:]
	for _, e := range assetExts {
		if strings.EqualFold(ext, e) {
			return true
		}
	}
	return false
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func hasAnyPrefix(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// containsFold is an ASCII case-insensitive strings.Contains.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}
