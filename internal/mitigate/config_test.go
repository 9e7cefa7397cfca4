package mitigate

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" = valid
		check   func(t *testing.T, c Config)
	}{
		{name: "zero value works", check: func(t *testing.T, c Config) {
			s := c.site(7)
			if s.MaxLevel != LevelBlock || s.HoldFor != 30*time.Second || s.AutoBanIPv6Bits != 64 ||
				len(s.WidenIPv6) != 3 || s.MaxBlockCollateral != 5 {
				t.Fatalf("defaults = %+v", s)
			}
		}},
		{name: "site inherits Site then built-in", cfg: Config{Site: SiteConfig{HoldFor: time.Minute}, Sites: []SiteConfig{{EscalateAfter: time.Second}}},
			check: func(t *testing.T, c Config) {
				s := c.site(0)
				if s.HoldFor != time.Minute || s.EscalateAfter != time.Second || s.BlockTTL != 10*time.Minute {
					t.Fatalf("site 0 = %+v", s)
				}
			}},
		{name: "empty widen list means no widening", cfg: Config{Site: SiteConfig{WidenIPv6: []int{}}},
			check: func(t *testing.T, c Config) {
				if len(c.site(0).WidenIPv6) != 0 {
					t.Fatal("empty list replaced by the default")
				}
			}},
		{name: "auto-ban prefix too short", cfg: Config{Site: SiteConfig{AutoBanIPv6Bits: 32}}, wantErr: "Site.AutoBanIPv6Bits"},
		{name: "auto-ban IPv4 too short", cfg: Config{Sites: []SiteConfig{{AutoBanIPv4Bits: 8}}}, wantErr: "Sites[0].AutoBanIPv4Bits"},
		{name: "widen not decreasing", cfg: Config{Site: SiteConfig{WidenIPv6: []int{48, 56}}}, wantErr: "WidenIPv6"},
		{name: "widen out of range", cfg: Config{Site: SiteConfig{WidenIPv4: []int{32}}}, wantErr: "WidenIPv4"},
		{name: "share above one", cfg: Config{Site: SiteConfig{ASNShare: 1.5}}, wantErr: "ASNShare"},
		{name: "negative duration", cfg: Config{Site: SiteConfig{HoldFor: -time.Second}}, wantErr: "HoldFor"},
		{name: "unknown shadow rule", cfg: Config{Site: SiteConfig{ShadowRules: []string{"blokc"}}}, wantErr: "ShadowRules"},
		{name: "max level beyond drop", cfg: Config{Site: SiteConfig{MaxLevel: 9}}, wantErr: "MaxLevel"},
		{name: "rotation of one", cfg: Config{Site: SiteConfig{RotationMin: 1}}, wantErr: "RotationMin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg.Default()
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
			if _, perr := NewPolicy(tt.cfg); (perr == nil) != (tt.wantErr == "") {
				t.Fatalf("NewPolicy error = %v", perr)
			}
		})
	}
}

func TestParseNames(t *testing.T) {
	for a := range numActions {
		if got, err := ParseAction(a.String()); err != nil || got != a {
			t.Errorf("ParseAction(%q) = %v, %v", a, got, err)
		}
	}
	for s := range numScopes {
		if got, err := ParseScope(s.String()); err != nil || got != s {
			t.Errorf("ParseScope(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseAction("ban"); !errors.Is(err, ErrDecision) {
		t.Errorf("ParseAction(ban) error = %v", err)
	}
}

func TestBlanket(t *testing.T) {
	tests := []struct {
		name string
		rule string
		want bool
	}{
		{name: "under-attack mode", rule: RuleUnderAttack, want: true},
		{name: "auth route", rule: RuleAuthRoute, want: true},
		{name: "per-source challenge", rule: RuleChallenge},
		{name: "operator", rule: RuleOperator},
		{name: "asn", rule: RuleASN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Blanket(tt.rule); got != tt.want {
				t.Errorf("Blanket(%q) = %v, want %v", tt.rule, got, tt.want)
			}
		})
	}
}
