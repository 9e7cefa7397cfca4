package record

import "github.com/portcullis/portcullis/internal/routepattern"

// MaxRoutes bounds the sensitive routes of one site (routepattern.Max).
const MaxRoutes = routepattern.Max

// ErrPattern is matched by the error for an invalid sensitive-route
// pattern (routepattern.ErrPattern).
var ErrPattern = routepattern.ErrPattern

// Routes are a site's sensitive-route patterns, in configuration order
// (routepattern.List: the first match counts the request).
type Routes = routepattern.List

// ValidatePattern reports whether p is a usable pattern
// (routepattern.Validate); errors match ErrPattern.
func ValidatePattern(p string) error { return routepattern.Validate(p) }
