package attack

import (
	"fmt"
	"math"
	"os/exec"
	"slices"
	"strings"
)

// Attack kinds (Spec.Kind).
const (
	KindGetFlood         = "get_flood"
	KindDistributedFlood = "distributed_flood"
	KindCacheBusting     = "cache_busting"
	KindLoginFlood       = "login_flood"
	KindSlowloris        = "slowloris"
	KindSlowPost         = "slow_post"
	KindSlowRead         = "slow_read"
	KindRapidReset       = "rapid_reset"
	KindH2Flood          = "h2_flood"
	KindFlashCrowd       = "flash_crowd"
)

// Drivers (Spec.Tool).
const (
	ToolGo           = "go"
	ToolWrk          = "wrk"
	ToolH2load       = "h2load"
	ToolSlowhttptest = "slowhttptest"
)

// kindInfo lists, per kind, the tools that can drive it (the first is the
// default) and the default number of connections.
var kindInfo = map[string]struct {
	tools       []string
	connections int
}{
	KindGetFlood:         {[]string{ToolWrk, ToolGo}, 64},
	KindDistributedFlood: {[]string{ToolWrk, ToolGo}, 64},
	KindCacheBusting:     {[]string{ToolWrk, ToolGo}, 64},
	KindLoginFlood:       {[]string{ToolWrk, ToolGo}, 32},
	KindFlashCrowd:       {[]string{ToolGo, ToolWrk}, 32},
	KindSlowloris:        {[]string{ToolSlowhttptest, ToolGo}, 500},
	KindSlowPost:         {[]string{ToolSlowhttptest, ToolGo}, 200},
	KindSlowRead:         {[]string{ToolSlowhttptest, ToolGo}, 200},
	KindRapidReset:       {[]string{ToolGo}, 1},
	KindH2Flood:          {[]string{ToolH2load, ToolGo}, 16},
}

// Kinds returns every known Spec.Kind, sorted.
func Kinds() []string {
	ks := make([]string, 0, len(kindInfo))
	for k := range kindInfo {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// isSlow reports whether kind holds connections open rather than sending
// requests (Result.Sent counts connections).
func isSlow(kind string) bool {
	return kind == KindSlowloris || kind == KindSlowPost || kind == KindSlowRead
}

// Validate checks a Spec: kind and tool known and compatible, start ≥ 0,
// 0 < duration ≤ MaxDuration, pulse on/off > 0, 0 ≤ rate ≤ MaxRate,
// 0 ≤ connections ≤ MaxConnections, paths absolute and printable, method an
// upper-case token, country codes ISO 3166-1 alpha-2 with finite weights
// ≥ 0. Whether the tool is installed is not checked. The error wraps
// ErrInvalidSpec and names the field by its YAML key.
func (s Spec) Validate() error {
	info, ok := kindInfo[s.Kind]
	switch {
	case s.Kind == "":
		return specErr("kind", "missing (want one of %s)", strings.Join(Kinds(), ", "))
	case !ok:
		return specErr("kind", "unknown %q (want one of %s)", s.Kind, strings.Join(Kinds(), ", "))
	case s.Tool != "" && !slices.Contains(info.tools, s.Tool):
		return specErr("tool", "%q cannot drive %s (want one of %s)", s.Tool, s.Kind, strings.Join(info.tools, ", "))
	case s.Start < 0 || s.Start > MaxDuration:
		return specErr("start", "%v out of range [0, %v]", s.Start, MaxDuration)
	case s.Duration <= 0 || s.Duration > MaxDuration:
		return specErr("duration", "%v out of range (0, %v]", s.Duration, MaxDuration)
	case math.IsNaN(s.Rate) || s.Rate < 0 || s.Rate > MaxRate:
		return specErr("rate", "%v out of range [0, %v] requests/s", s.Rate, float64(MaxRate))
	case s.Connections < 0 || s.Connections > MaxConnections:
		return specErr("connections", "%d out of range [0, %d]", s.Connections, MaxConnections)
	case s.Sources < 0:
		return specErr("sources", "%d is negative", s.Sources)
	case s.Rate > 0 && (s.Tool == ToolWrk || s.Tool == ToolH2load):
		return specErr("rate", "%s cannot pace requests; set tool: go or rate: 0", s.Tool)
	}
	if s.Pulse != nil {
		if s.Pulse.On <= 0 {
			return specErr("pulse.on", "%v must be > 0", s.Pulse.On)
		}
		if s.Pulse.Off <= 0 {
			return specErr("pulse.off", "%v must be > 0", s.Pulse.Off)
		}
	}
	for i, p := range s.Paths {
		if err := checkPath(p); err != nil {
			return specErr(fmt.Sprintf("paths[%d]", i), "%q: %s", p, err)
		}
	}
	if s.Method != "" {
		if !isToken(s.Method) {
			return specErr("method", "%q is not an upper-case HTTP method token", s.Method)
		}
		if s.Kind == KindH2Flood && s.Method != "GET" && s.Method != "HEAD" {
			return specErr("method", "h2_flood sends GET or HEAD only, got %q", s.Method)
		}
		if s.Kind == KindSlowPost && (s.Method == "GET" || s.Method == "HEAD") {
			return specErr("method", "slow_post needs a method with a body, got %q", s.Method)
		}
	}
	for cc, w := range s.Countries {
		if len(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z' {
			return specErr("countries", "%q is not an upper-case ISO 3166-1 alpha-2 code", cc)
		}
		if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
			return specErr("countries."+cc, "weight %v must be finite and ≥ 0", w)
		}
	}
	return nil
}

// specErr builds a Validate error naming field.
func specErr(field, format string, args ...any) error {
	return fmt.Errorf("attack: %s: %s: %w", field, fmt.Sprintf(format, args...), ErrInvalidSpec)
}

// checkPath accepts an origin-form request target: "/", printable ASCII, no
// spaces, quotes or backslashes, at most 2048 bytes.
func checkPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("must start with /")
	}
	if len(p) > 2048 {
		return fmt.Errorf("longer than 2048 bytes")
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return fmt.Errorf("byte %d (%q) not allowed", i, c)
		}
	}
	return nil
}

// isToken reports whether m is 1–16 upper-case letters (RFC 9110 §9.1
// allows any token; the lab's tools and origin expect the usual methods).
func isToken(m string) bool {
	if len(m) == 0 || len(m) > 16 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if m[i] < 'A' || m[i] > 'Z' {
			return false
		}
	}
	return true
}

// withDefaults fills Tool, Connections, Paths and Method; s must be valid.
func (s Spec) withDefaults() Spec {
	info := kindInfo[s.Kind]
	if s.Tool == "" {
		s.Tool = info.tools[0]
		if s.Rate > 0 && (s.Tool == ToolWrk || s.Tool == ToolH2load) {
			s.Tool = ToolGo // a paced vector needs the paced generator
		}
	}
	if s.Connections == 0 {
		s.Connections = info.connections
	}
	if len(s.Paths) == 0 {
		s.Paths = []string{"/"}
	}
	if s.Method == "" {
		s.Method = "GET"
		if s.Kind == KindLoginFlood || s.Kind == KindSlowPost {
			s.Method = "POST"
		}
	}
	return s
}

// lookTool checks that binary is on PATH; the error names the Debian
// package that provides it.
func lookTool(binary, pkg string) error {
	if _, err := exec.LookPath(binary); err != nil {
		return fmt.Errorf("attack: %s not found (apt-get install %s): %w", binary, pkg, ErrToolMissing)
	}
	return nil
}
