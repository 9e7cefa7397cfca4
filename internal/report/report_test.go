package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// testNow is the generation time of every golden report.
var testNow = time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC)

var testKey = []byte("0123456789abcdef0123456789abcdef")

var testReporter = Reporter{
	Org: "Example Party", Name: "Sam Jones", Role: "Head of IT", Email: "security@example.org",
	Phone: "+44 20 7946 0000", Notified: []string{"Hosting provider (Example Hosting Ltd)", "Party press office"},
}

func loadFixture(t testing.TB, name string) *incident.Incident {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "incidents", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	in := new(incident.Incident)
	if err := json.Unmarshal(data, in); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return in
}

func render(t testing.TB, in *incident.Incident, f Format, opts Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Render(&buf, in, f, opts); err != nil {
		t.Fatalf("Render %s: %v", f, err)
	}
	return buf.Bytes()
}

// goldenCases are the incidents × options every format is rendered for.
var goldenCases = []goldenCase{
	{name: "http-flood", fixture: "http-flood", opts: Options{Reporter: testReporter, Now: testNow}},
	{name: "http-flood-pseudonymised", fixture: "http-flood", opts: Options{Reporter: testReporter, Now: testNow, Pseudonymise: true, Key: testKey}},
	{name: "snmp-amplification", fixture: "snmp-amplification", opts: Options{Reporter: testReporter, Now: testNow}},
	{name: "syn-flood-spoofed", fixture: "syn-flood-spoofed", opts: Options{Now: testNow}},
	{name: "cic-syn-flood-pseudonymised", fixture: "cic-syn-flood", opts: Options{Reporter: testReporter, Now: testNow, Pseudonymise: true, Key: testKey}},
	{name: "http-flood-replayed", fixture: "http-flood", opts: Options{Reporter: testReporter, Now: testNow},
		mutate: func(in *incident.Incident) { in.Impact = nil }}, // as replay records it: a log cannot tell members
	{name: "http-flood-open", fixture: "http-flood", opts: Options{Reporter: Reporter{Org: "Example Party", Email: "security@example.org"}, Now: time.Date(2026, 11, 29, 21, 7, 36, 0, time.UTC)},
		mutate: func(in *incident.Incident) { // an initial report, one minute in
			in.End = time.Time{}
			cut := in.Start.Add(time.Minute)
			in.Timeline = slices.DeleteFunc(in.Timeline, func(e incident.Event) bool { return e.Time.After(cut) })
			in.Series = slices.DeleteFunc(in.Series, func(p incident.SeriesPoint) bool { return p.Time.After(cut) })
		}},
}

type goldenCase struct {
	name    string
	fixture string
	opts    Options
	// mutate, if set, changes the fixture before rendering.
	mutate func(*incident.Incident)
}

func (tc goldenCase) load(t testing.TB) *incident.Incident {
	in := loadFixture(t, tc.fixture)
	if tc.mutate != nil {
		tc.mutate(in)
	}
	return in
}

// TestGolden renders every case in every format and compares with
// testdata/golden (go test -run TestGolden -update rewrites them).
func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		in := tc.load(t)
		for _, f := range Formats {
			t.Run(tc.name+"/"+string(f), func(t *testing.T) {
				got := render(t, in, f, tc.opts)
				path := filepath.Join("testdata", "golden", tc.name+f.Ext())
				if *update {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -run TestGolden -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from the golden file; diff with -update and git diff\n%s", path, firstDiff(got, want))
				}
				// Rendering is deterministic: a second run gives the same bytes.
				if again := render(t, in, f, tc.opts); !bytes.Equal(got, again) {
					t.Errorf("%s: two renders differ", f)
				}
			})
		}
	}
}

func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			if len(a) > 200 {
				a = a[:200] + "…"
			}
			if len(b) > 200 {
				b = b[:200] + "…"
			}
			return "line " + fmtInt(uint64(i+1)) + ":\n got: " + a + "\nwant: " + b
		}
	}
	return ""
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		name, in string
		want     Format
		err      bool
	}{
		{name: "md", in: "md", want: Markdown},
		{name: "markdown", in: "Markdown", want: Markdown},
		{name: "html", in: "html", want: HTML},
		{name: "json", in: "json", want: JSON},
		{name: "stix", in: "stix", want: STIX},
		{name: "iodef", in: "IODEF", want: IODEF},
		{name: "unknown", in: "pdf", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFormat(tc.in)
			if tc.err {
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("err = %v, want ErrFormat", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseFormat(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	in := loadFixture(t, "snmp-amplification")
	tests := []struct {
		name string
		f    Format
		opts Options
		want error
	}{
		{name: "pseudonymise without key", f: Markdown, opts: Options{Pseudonymise: true}, want: ErrKey},
		{name: "short key", f: Markdown, opts: Options{Pseudonymise: true, Key: []byte("short")}, want: ErrKey},
		{name: "unknown format", f: Format("pdf"), want: ErrFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Render(&bytes.Buffer{}, in, tc.f, tc.opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if err := Render(&bytes.Buffer{}, in, Markdown, Options{MinShare: 2}); err == nil {
		t.Error("threshold 2 accepted")
	}
}

func TestLoadKey(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(dir string)
		wantErr error
	}{
		{name: "created on first use"},
		{name: "existing key kept", prepare: func(dir string) {
			os.WriteFile(filepath.Join(dir, KeyFile), testKey, 0o600)
		}},
		{name: "short key refused", prepare: func(dir string) {
			os.WriteFile(filepath.Join(dir, KeyFile), []byte("short"), 0o600)
		}, wantErr: ErrKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.prepare != nil {
				tc.prepare(dir)
			}
			k1, err := LoadKey(dir)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(k1) < 16 {
				t.Fatalf("LoadKey: %x, %v", k1, err)
			}
			k2, err := LoadKey(dir)
			if err != nil || !bytes.Equal(k1, k2) {
				t.Fatalf("second LoadKey gave a different key (%v)", err)
			}
			st, err := os.Stat(filepath.Join(dir, KeyFile))
			if err != nil {
				t.Fatal(err)
			}
			if tc.prepare == nil && st.Mode().Perm() != 0o600 {
				t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
			}
		})
	}
}
