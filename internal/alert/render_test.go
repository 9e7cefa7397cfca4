package alert

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenAlerts returns the fixture's three alerts as the policy raises
// them (explicit times, fixed pseudonym key).
func goldenAlerts() map[string]*Alert {
	p := newPolicy(time.Minute, 20, &privacy{cfg: Config{}.Default().Privacy, key: testKey})
	in := fixture()
	open, _ := p.open(in, t0.Add(2*time.Second))
	esc, _ := p.update(escalated(in), t0.Add(2*time.Minute))
	cl, _ := p.close(closed(escalated(in)), t0.Add(5*time.Minute+10*time.Second))
	return map[string]*Alert{"opened": open, "escalation": esc, "closed": cl}
}

// TestGolden renders every alert kind in every format and compares with
// testdata/golden (go test -run TestGolden -update rewrites them).
func TestGolden(t *testing.T) {
	formats := []struct {
		name   string
		ext    string
		render func(*Alert) (string, error)
	}{
		{"text", "txt", func(a *Alert) (string, error) { return Text(a), nil }},
		{"html", "html", HTML},
		{"generic json", "json", func(a *Alert) (string, error) { b, err := GenericJSON(a); return indent(b), err }},
		{"slack json", "slack.json", func(a *Alert) (string, error) { b, err := SlackJSON(a); return indent(b), err }},
	}
	alerts := goldenAlerts()
	for _, kind := range []string{"opened", "escalation", "closed"} {
		for _, f := range formats {
			t.Run(kind+"/"+f.name, func(t *testing.T) {
				a := alerts[kind]
				if a == nil {
					t.Fatalf("policy raised no %s alert", kind)
				}
				got, err := f.render(a)
				if err != nil {
					t.Fatal(err)
				}
				assertNoVisitor(t, kind+"."+f.ext, got)
				if !utf8.ValidString(got) {
					t.Errorf("not UTF-8")
				}
				path := filepath.Join("testdata", "golden", kind+"."+f.ext)
				if *update {
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create)", err)
				}
				if got != string(want) {
					t.Errorf("%s differs from the golden file (run with -update after checking):\n%s", path, got)
				}
			})
		}
	}
}

func indent(b []byte) string {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return "invalid JSON: " + err.Error() + "\n" + string(b)
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	return string(out) + "\n"
}

// TestSlackLimits checks Slack's size limits on long inputs: the header is
// cut to 150 characters and fields to 2,000.
func TestSlackLimits(t *testing.T) {
	tests := []struct {
		name    string
		vectors int
	}{
		{"few vectors", 2},
		{"many vectors", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := goldenAlerts()["opened"]
			a.Incident.Vectors = nil
			for range tt.vectors {
				a.Incident.Vectors = append(a.Incident.Vectors, "udp_amplification:memcached")
			}
			b, err := SlackJSON(a)
			if err != nil {
				t.Fatal(err)
			}
			var p struct {
				Blocks []struct {
					Type   string
					Text   *struct{ Text string }
					Fields []struct{ Text string }
				}
			}
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatal(err)
			}
			if n := utf8.RuneCountInString(p.Blocks[0].Text.Text); n > 150 {
				t.Errorf("header %d characters", n)
			}
			for _, bl := range p.Blocks {
				for _, f := range bl.Fields {
					if n := utf8.RuneCountInString(f.Text); n > 2000 {
						t.Errorf("field %d characters", n)
					}
				}
			}
			if tt.vectors > 100 && !strings.Contains(p.Blocks[0].Text.Text, "…") {
				t.Errorf("long header not marked as cut")
			}
		})
	}
}
