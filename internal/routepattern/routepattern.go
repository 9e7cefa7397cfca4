// Package routepattern is the sensitive-route path pattern
// (sites[].sensitive_routes): the one rule the configuration validates
// against and the incident recorder matches with, in a leaf package so
// that both can import it (the recorder's package pulls in SQLite).
//
// A pattern matches a URL path (no query):
//
//   - "/members/export" matches that path and every path below it
//     ("/members/export/2026.csv"), not "/members/exports";
//   - "/members/export*" matches every path that starts with
//     "/members/export" ("/members/export.csv", "/members/exports").
package routepattern

import (
	"errors"
	"fmt"
	"strings"
)

// Max bounds the sensitive routes of one site (each costs the incident
// recorder two counters per second of its ring).
const Max = 16

// ErrPattern is matched (errors.Is) by every error Validate returns.
var ErrPattern = errors.New("invalid route pattern")

// PatternError is an invalid pattern and the rule it breaks; it matches
// ErrPattern.
type PatternError struct {
	Pattern string
	Rule    string // "must start with / …", "* is allowed only at the end …"
}

func (e *PatternError) Error() string { return fmt.Sprintf("%s, got %q", e.Rule, e.Pattern) }

// Is reports whether target is ErrPattern.
func (e *PatternError) Is(target error) bool { return target == ErrPattern }

// Validate reports whether p is a usable pattern: it starts with "/", and
// "*" appears only as its last character. Errors are *PatternError.
func Validate(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return &PatternError{Pattern: p, Rule: "must start with / (a path such as /members/export)"}
	case strings.Contains(strings.TrimSuffix(p, "*"), "*"):
		return &PatternError{Pattern: p, Rule: "* is allowed only at the end (a prefix such as /api/donors*)"}
	}
	return nil
}

// List is a site's patterns, in configuration order; the first that
// matches a path counts it.
type List []string

// Match returns the index of the first pattern matching path, or -1. It
// allocates nothing.
func (l List) Match(path string) int {
	for i, p := range l {
		if match(p, path) {
			return i
		}
	}
	return -1
}

func match(p, path string) bool {
	if n := len(p); n > 0 && p[n-1] == '*' {
		return strings.HasPrefix(path, p[:n-1])
	}
	if !strings.HasPrefix(path, p) {
		return false
	}
	return len(path) == len(p) || p[len(p)-1] == '/' || path[len(p)] == '/'
}
