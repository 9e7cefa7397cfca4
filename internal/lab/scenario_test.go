package lab

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/lab/scenarios"
)

// TestShippedScenarios validates every embedded scenario file, as `lab run`
// would load it, and the shield configuration each implies.
func TestShippedScenarios(t *testing.T) {
	files, err := fs.Glob(scenarios.FS(), "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"smoke", "get-flood", "distributed-flood", "cache-busting", "login-flood", "slowloris",
		"slow-post", "slow-read", "rapid-reset", "pulse-wave", "multi-vector", "flash-crowd"}
	names, err := Shipped()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !strings.Contains(","+strings.Join(names, ",")+",", ","+w+",") {
			t.Errorf("scenario %s is not shipped (have %v)", w, names)
		}
	}
	for _, file := range files {
		name := strings.TrimSuffix(file, ".yaml")
		t.Run(name, func(t *testing.T) {
			sc, err := Load(name)
			if err != nil {
				t.Fatal(err)
			}
			if sc.Name != name {
				t.Errorf("name %q in %s: want the file name", sc.Name, file)
			}
			if sc.Description == "" {
				t.Error("no description")
			}
			if name != "flash-crowd" && len(sc.Attacks) == 0 {
				t.Error("no attack vector")
			}
			if name == "smoke" && sc.Phases.Total() > 35*time.Second {
				t.Errorf("smoke runs %s: it must finish in < 45 s with startup", sc.Phases.Total())
			}
			if name == "distributed-flood" && sc.Attacks[0].Sources < 20000 {
				t.Errorf("distributed flood from %d sources, want ≥ 20,000", sc.Attacks[0].Sources)
			}
		})
	}
}

func TestScenarioErrors(t *testing.T) {
	const good = `name: t
description: d
phases: {before: 1s, attack: 2s, after: 1s}
legit: {visitors: 1, countries: {NL: 1}}
attacks:
  - {kind: get_flood, tool: go, duration: 1s, rate: 10}
`
	tests := []struct {
		name, yaml, field string
	}{
		{"good", good, ""},
		{"unknown key", good + "extra: 1\n", "extra"},
		{"bad name", strings.Replace(good, "name: t", "name: T_1", 1), "name"},
		{"zero phase", strings.Replace(good, "before: 1s", "before: 0s", 1), "phases.before"},
		{"run too long", strings.Replace(good, "attack: 2s", "attack: 20m", 1), "phases"},
		{"no legitimate clients", strings.Replace(good, "visitors: 1", "visitors: 0", 1), "legit"},
		{"negative count", strings.Replace(good, "visitors: 1", "visitors: 1, members: -1", 1), "legit.members"},
		{"no legit countries", strings.Replace(good, ", countries: {NL: 1}", "", 1), "legit.countries"},
		{"bad country code", strings.Replace(good, "NL: 1", "nl: 1", 1), "legit.countries"},
		{"zero weight", strings.Replace(good, "NL: 1", "NL: 0", 1), "legit.countries"},
		{"attack past the phase", strings.Replace(good, "duration: 1s", "start: 1500ms, duration: 1s", 1), "attacks[0].duration"},
		{"attack kind unknown (attack.Spec.Validate)", strings.Replace(good, "get_flood", "syn_flood", 1), "attacks[0]"},
		{"attack country", strings.Replace(good, "rate: 10}", "rate: 10, countries: {XXX: 1}}", 1), "attacks[0]"},
		{"shield override invalid", good + "shield: {detect: {tick: soon}}\n", "shield"},
		{"shield override unknown key", good + "shield: {nonsense: 1}\n", "shield"},
		{"shield sites", good + "shield: {sites: []}\n", "shield"},
		{"shield site not a mapping", good + "shield: {site: 3}\n", "shield"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.yaml))
			if tc.field == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one naming %s", tc.field)
			}
			if !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), "t.yaml") {
				t.Errorf("error %q does not name the file and %s", err, tc.field)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	user := filepath.Join(dir, "mine.yaml")
	if err := os.WriteFile(user, []byte(`name: mine
phases: {before: 1s, attack: 1s, after: 1s}
legit: {api_clients: 1, countries: {DE: 1}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, arg, want, err string
	}{
		{"shipped by name", "smoke", "smoke", ""},
		{"user file", user, "mine", ""},
		{"unknown name lists the shipped ones", "nope", "", "shipped: "},
		{"missing file", filepath.Join(dir, "absent.yaml"), "", "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := Load(tc.arg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sc.Name != tc.want {
				t.Errorf("name %q, want %q", sc.Name, tc.want)
			}
		})
	}
}

func TestShieldConfig(t *testing.T) {
	sc := &Scenario{Shield: map[string]any{
		"detect": map[string]any{"tick": "100ms"},
		"site":   map[string]any{"queue_timeout": "250ms", "rules": map[string]any{"rate_limits": []any{}}},
	}}
	out, err := sc.ShieldConfig(ShieldParams{Listen: "127.0.0.1:1", Admin: "127.0.0.1:2", Origin: "http://127.0.0.1:3", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("shield", out)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Sites[0]
	tests := []struct {
		name      string
		got, want any
	}{
		{"override: detect tick", cfg.Detect.Tick.D(), 100 * time.Millisecond},
		{"override merged into the site", s.QueueTimeout.D(), 250 * time.Millisecond},
		{"override replaced a list", len(s.Rules.RateLimits), 0},
		{"site keeps the lab's origin", s.Origins[0], "http://127.0.0.1:3"},
		{"site keeps the auth route", s.AuthRoutes[0], "/login"},
		{"trusted proxy is loopback", cfg.ClientIP.TrustedProxies[0].P().String(), "127.0.0.1/32"},
		{"member header", cfg.Challenge.MemberHeader, MemberHeader},
		{"listener", cfg.Listeners[0].Address, "127.0.0.1:1"},
		{"admin", cfg.Admin.Address, "127.0.0.1:2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
	// The defaults, without overrides, carry the demo's rate limits.
	def, err := (&Scenario{}).ShieldConfig(ShieldParams{Listen: "127.0.0.1:1", Admin: "127.0.0.1:2", Origin: "http://127.0.0.1:3", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Sites []struct {
			Rules struct {
				RateLimits []struct{ Name string } `yaml:"rate_limits"`
			} `yaml:"rules"`
		} `yaml:"sites"`
	}
	if err := yaml.Unmarshal(def, &doc); err != nil {
		t.Fatal(err)
	}
	if n := len(doc.Sites[0].Rules.RateLimits); n != 3 {
		t.Errorf("default config has %d rate limits, want 3:\n%s", n, def)
	}
}

func TestValidateWrapsErrScenario(t *testing.T) {
	err := (&Scenario{}).Validate()
	if !errors.Is(err, ErrScenario) {
		t.Fatalf("Validate of an empty scenario: %v, want ErrScenario", err)
	}
}
