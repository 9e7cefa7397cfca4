package report

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// xmllint validates against the RFC 7970 schema in testdata/iodef (imports
// resolved locally, --nonet). Debian's libxml2-utils provides it;
// scripts/test.sh installs it, and the test skips only when it is missing.
func xmllint(t *testing.T, doc []byte) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		t.Skip("xmllint not installed (Debian: apt-get install libxml2-utils)")
	}
	path := filepath.Join(t.TempDir(), "doc.xml")
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--noout", "--nonet", "--schema", filepath.Join("testdata", "iodef", "iodef-2.0.xsd"), path).CombinedOutput()
	return string(out), err
}

// TestIODEFSchema validates every golden case's IODEF document with
// xmllint against the RFC 7970 schema, and checks that the validator
// rejects documents that break it.
func TestIODEFSchema(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			doc := render(t, tc.load(t), IODEF, tc.opts)
			if out, err := xmllint(t, doc); err != nil {
				t.Fatalf("not valid IODEF v2: %v\n%s", err, out)
			}
		})
	}
	doc := render(t, loadFixture(t, "http-flood"), IODEF, goldenCases[0].opts)
	broken := []struct {
		name, old, new string
	}{
		{name: "unknown purpose", old: `purpose="reporting"`, new: `purpose="gossip"`},
		{name: "GenerationTime missing", old: "<GenerationTime>", new: "<Generated>"},
		{name: "bad address category", old: `category="ipv4-net"`, new: `category="ipv4-prefix"`},
		{name: "history action outside the vocabulary", old: `action="block-network"`, new: `action="nuke"`},
		{name: "elements out of order", old: "<DetectTime>", new: "<X/><DetectTime>"},
	}
	for _, b := range broken {
		t.Run("validator rejects "+b.name, func(t *testing.T) {
			if !bytes.Contains(doc, []byte(b.old)) {
				t.Fatalf("document lacks %q", b.old)
			}
			bad := bytes.Replace(doc, []byte(b.old), []byte(b.new), 1)
			if b.name == "GenerationTime missing" {
				bad = bytes.Replace(bad, []byte("</GenerationTime>"), []byte("</Generated>"), 1)
			}
			out, err := xmllint(t, bad)
			if err == nil {
				t.Fatalf("broken document validated:\n%s", out)
			}
			if !strings.Contains(out, "fails to validate") {
				t.Errorf("unexpected xmllint output: %s", out)
			}
		})
	}
}
