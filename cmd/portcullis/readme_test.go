package main

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/config"
)

var update = flag.Bool("update", false, "rewrite the README's configuration reference")

// TestReadmeConfigReference keeps the README's configuration reference in
// step with the code. Run `go test ./cmd/portcullis -run Readme -update` to
// regenerate it.
func TestReadmeConfigReference(t *testing.T) {
	const begin, end = "<!-- BEGIN CONFIG REFERENCE -->\n", "<!-- END CONFIG REFERENCE -->"
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatal("README lacks the config reference markers")
	}
	want := config.Reference()
	if got := s[i+len(begin) : j]; got != want {
		if *update {
			s = s[:i+len(begin)] + want + s[j:]
			if err := os.WriteFile("../../README.md", []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatal("README configuration reference is stale: run go test ./cmd/portcullis -run Readme -update")
	}
}
