package attack

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSpecValidate(t *testing.T) {
	ok := Spec{Kind: KindGetFlood, Duration: time.Second}
	with := func(f func(*Spec)) Spec { s := ok; f(&s); return s }
	tests := []struct {
		name  string
		spec  Spec
		field string // "" = valid
	}{
		{"minimal get flood", ok, ""},
		{"slow read with default tool", with(func(s *Spec) { s.Kind = KindSlowRead }), ""},
		{"explicit compatible tool", with(func(s *Spec) { s.Tool = ToolGo }), ""},
		{"full spec", Spec{Kind: KindDistributedFlood, Tool: ToolGo, Start: time.Second, Duration: 20 * time.Second,
			Rate: 2000, Connections: 64, Paths: []string{"/", "/news?page=2"}, Method: "GET",
			Pulse: &Pulse{On: 2 * time.Second, Off: 3 * time.Second}, Sources: 20000,
			Countries: map[string]float64{"RU": 0.6, "BR": 0.3, "CN": 0.1}}, ""},
		{"rate without tool picks go", with(func(s *Spec) { s.Rate = 100 }), ""},
		{"missing kind", with(func(s *Spec) { s.Kind = "" }), "kind"},
		{"unknown kind", with(func(s *Spec) { s.Kind = "syn_flood" }), "kind"},
		{"unknown tool", with(func(s *Spec) { s.Tool = "ab" }), "tool"},
		{"tool cannot drive kind", with(func(s *Spec) { s.Kind = KindRapidReset; s.Tool = ToolH2load }), "tool"},
		{"slowhttptest cannot flood", with(func(s *Spec) { s.Tool = ToolSlowhttptest }), "tool"},
		{"zero duration", with(func(s *Spec) { s.Duration = 0 }), "duration"},
		{"negative duration", with(func(s *Spec) { s.Duration = -time.Second }), "duration"},
		{"duration over cap", with(func(s *Spec) { s.Duration = MaxDuration + 1 }), "duration"},
		{"negative start", with(func(s *Spec) { s.Start = -1 }), "start"},
		{"negative rate", with(func(s *Spec) { s.Rate = -1 }), "rate"},
		{"NaN rate", with(func(s *Spec) { s.Rate = math.NaN() }), "rate"},
		{"infinite rate", with(func(s *Spec) { s.Rate = math.Inf(1) }), "rate"},
		{"wrk cannot pace", with(func(s *Spec) { s.Tool = ToolWrk; s.Rate = 10 }), "rate"},
		{"negative connections", with(func(s *Spec) { s.Connections = -1 }), "connections"},
		{"too many connections", with(func(s *Spec) { s.Connections = MaxConnections + 1 }), "connections"},
		{"negative sources", with(func(s *Spec) { s.Sources = -1 }), "sources"},
		{"pulse on zero", with(func(s *Spec) { s.Pulse = &Pulse{Off: time.Second} }), "pulse.on"},
		{"pulse off zero", with(func(s *Spec) { s.Pulse = &Pulse{On: time.Second} }), "pulse.off"},
		{"relative path", with(func(s *Spec) { s.Paths = []string{"login"} }), "paths[0]"},
		{"path with space", with(func(s *Spec) { s.Paths = []string{"/", "/a b"} }), "paths[1]"},
		{"path with quote", with(func(s *Spec) { s.Paths = []string{`/"`} }), "paths[0]"},
		{"lower-case method", with(func(s *Spec) { s.Method = "get" }), "method"},
		{"h2 flood POST", with(func(s *Spec) { s.Kind = KindH2Flood; s.Method = "POST" }), "method"},
		{"slow post GET", with(func(s *Spec) { s.Kind = KindSlowPost; s.Method = "GET" }), "method"},
		{"bad country code", with(func(s *Spec) { s.Countries = map[string]float64{"ru": 1} }), "countries"},
		{"negative weight", with(func(s *Spec) { s.Countries = map[string]float64{"RU": -1} }), "countries.RU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error naming %q", tt.field)
			}
			if !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("Validate() = %v, does not wrap ErrInvalidSpec", err)
			}
			if !strings.HasPrefix(err.Error(), "attack: "+tt.field+": ") {
				t.Errorf("Validate() = %q, want it to name field %q", err, tt.field)
			}
		})
	}
}

func TestSpecDefaults(t *testing.T) {
	tests := []struct {
		name   string
		spec   Spec
		tool   string
		method string
	}{
		{"flood defaults to wrk", Spec{Kind: KindGetFlood}, ToolWrk, "GET"},
		{"paced flood defaults to go", Spec{Kind: KindGetFlood, Rate: 50}, ToolGo, "GET"},
		{"login flood posts", Spec{Kind: KindLoginFlood}, ToolWrk, "POST"},
		{"slowloris uses slowhttptest", Spec{Kind: KindSlowloris}, ToolSlowhttptest, "GET"},
		{"slow post posts", Spec{Kind: KindSlowPost}, ToolSlowhttptest, "POST"},
		{"rapid reset is go", Spec{Kind: KindRapidReset}, ToolGo, "GET"},
		{"h2 flood uses h2load", Spec{Kind: KindH2Flood}, ToolH2load, "GET"},
		{"flash crowd is paced go", Spec{Kind: KindFlashCrowd}, ToolGo, "GET"},
		{"explicit tool kept", Spec{Kind: KindGetFlood, Tool: ToolGo}, ToolGo, "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.spec.withDefaults()
			if s.Tool != tt.tool || s.Method != tt.method || s.Connections <= 0 || len(s.Paths) != 1 || s.Paths[0] != "/" {
				t.Errorf("withDefaults() = tool %q method %q connections %d paths %v; want tool %q method %q, connections > 0, paths [/]",
					s.Tool, s.Method, s.Connections, s.Paths, tt.tool, tt.method)
			}
		})
	}
}

func TestPulseBursts(t *testing.T) {
	s := time.Second
	type iv = [2]time.Duration
	tests := []struct {
		name  string
		d     time.Duration
		pulse *Pulse
		want  []iv
	}{
		{"continuous", 10 * s, nil, []iv{{0, 10 * s}}},
		{"even pulses", 10 * s, &Pulse{On: 2 * s, Off: 3 * s}, []iv{{0, 2 * s}, {5 * s, 7 * s}}},
		{"last burst cut at duration", 6 * s, &Pulse{On: 2 * s, Off: 3 * s}, []iv{{0, 2 * s}, {5 * s, 6 * s}}},
		{"burst longer than duration", s, &Pulse{On: 5 * s, Off: s}, []iv{{0, s}}},
		{"invalid pulse is continuous", 4 * s, &Pulse{On: 0, Off: s}, []iv{{0, 4 * s}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.pulse.Bursts(tt.d)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Bursts(%v) = %v, want %v", tt.d, got, tt.want)
			}
		})
	}
}
