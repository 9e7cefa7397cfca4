package record

import (
	"errors"
	"fmt"
	"strings"
)

// MaxRoutes bounds the sensitive routes of one site (each costs two
// counters per second of the ring).
const MaxRoutes = 16

// ErrPattern is returned (wrapped) for an invalid sensitive-route pattern.
var ErrPattern = errors.New("record: invalid route pattern")

// Routes are a site's sensitive-route patterns, in configuration order. A
// pattern matches a URL path (no query):
//
//   - "/members/export" matches that path and every path below it
//     ("/members/export/2026.csv"), not "/members/exports";
//   - "/members/export*" matches every path that starts with
//     "/members/export" ("/members/export.csv", "/members/exports").
//
// The first matching pattern counts the request.
type Routes []string

// ValidatePattern reports whether p is a usable pattern: it starts with
// "/", and "*" appears only as its last character. Errors wrap ErrPattern.
func ValidatePattern(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%w %q: must start with /", ErrPattern, p)
	case strings.Contains(strings.TrimSuffix(p, "*"), "*"):
		return fmt.Errorf("%w %q: * is allowed only at the end", ErrPattern, p)
	}
	return nil
}

// Match returns the index of the first pattern matching path, or -1. It
// allocates nothing.
func (rs Routes) Match(path string) int {
	for i, p := range rs {
		if matchRoute(p, path) {
			return i
		}
	}
	return -1
}

func matchRoute(p, path string) bool {
	if n := len(p); n > 0 && p[n-1] == '*' {
		return strings.HasPrefix(path, p[:n-1])
	}
	if !strings.HasPrefix(path, p) {
		return false
	}
	return len(path) == len(p) || p[len(p)-1] == '/' || path[len(p)] == '/'
}
