package routepattern

import (
	"errors"
	"strings"
	"testing"
)

// TestValidate: the rules, their messages (which the configuration
// shows after the field name), and ErrPattern matching.
func TestValidate(t *testing.T) {
	tests := []struct {
		name, pattern, want string // want: message substring; "" = valid
	}{
		{name: "path", pattern: "/members/export"},
		{name: "prefix", pattern: "/api/donors*"},
		{name: "root", pattern: "/"},
		{name: "relative", pattern: "members/export", want: `must start with / (a path such as /members/export), got "members/export"`},
		{name: "empty", pattern: "", want: "must start with /"},
		{name: "inner star", pattern: "/api/*/export", want: `* is allowed only at the end (a prefix such as /api/donors*), got "/api/*/export"`},
		{name: "two stars at the end", pattern: "/a**", want: "* is allowed only at the end"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.pattern)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate(%q) = %v, want nil", tc.pattern, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrPattern) {
				t.Fatalf("Validate(%q) = %v, want an ErrPattern saying %q", tc.pattern, err, tc.want)
			}
		})
	}
}
