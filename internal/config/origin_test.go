package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestOriginProtection checks the defaults and validation of the
// origin-protection settings: adaptive limit floor, reserved share, route
// priorities and the micro-cache.
func TestOriginProtection(t *testing.T) {
	const head = "sites:\n  - origins: [\"http://127.0.0.1:8081\"]\n"
	tests := []struct {
		name    string
		yaml    string
		wantErr string // "" = valid
		check   func(t *testing.T, s Site)
	}{
		{
			name: "defaults",
			yaml: head,
			check: func(t *testing.T, s Site) {
				c := s.Cache
				if s.MinOriginConcurrency != 4 || s.ReservedShare != 0.2 || c.Enabled == nil || !*c.Enabled ||
					c.DefaultTTL != 0 || c.StaleFor.D() != 10*time.Minute || c.MaxEntries != 10000 ||
					c.MaxBytes != 64<<20 || c.MaxObjectBytes != 1<<20 || strings.Join(c.AnonymousCookies, ",") != "portcullis_*" {
					t.Errorf("defaults: %+v cache %+v", s, c)
				}
			},
		},
		{
			name: "a small origin keeps the floor within the ceiling",
			yaml: head + "    max_origin_concurrency: 2\n",
			check: func(t *testing.T, s Site) {
				if s.MinOriginConcurrency != 2 {
					t.Errorf("floor %d with ceiling 2", s.MinOriginConcurrency)
				}
			},
		},
		{
			name: "priorities and cache settings",
			yaml: head + "    priorities:\n      - {path: /login, priority: critical}\n      - {path: /search, priority: low}\n      - {path: /about}\n" +
				"    cache: {enabled: false, default_ttl: 1s, ignore_query_on: [/], keep_query: [lang]}\n",
			check: func(t *testing.T, s Site) {
				if len(s.Priorities) != 3 || s.Priorities[0].Priority != "critical" || s.Priorities[2].Priority != "normal" {
					t.Errorf("priorities %+v", s.Priorities)
				}
				if *s.Cache.Enabled || s.Cache.DefaultTTL.D() != time.Second || s.Cache.IgnoreQueryOn[0] != "/" || s.Cache.KeepQuery[0] != "lang" {
					t.Errorf("cache %+v", s.Cache)
				}
			},
		},
		{name: "unknown priority", yaml: head + "    priorities: [{path: /x, priority: urgent}]\n", wantErr: "sites[0].priorities[0].priority: must be critical, normal or low"},
		{name: "relative priority path", yaml: head + "    priorities: [{path: x, priority: low}]\n", wantErr: "sites[0].priorities[0].path: must start with /"},
		{name: "floor above the ceiling", yaml: head + "    max_origin_concurrency: 8\n    min_origin_concurrency: 9\n", wantErr: "sites[0].min_origin_concurrency: must be between 1 and max_origin_concurrency"},
		{name: "reserved share too large", yaml: head + "    reserved_share: 0.95\n", wantErr: "sites[0].reserved_share: must be between 0 and 0.9"},
		{name: "object larger than the cache", yaml: head + "    cache: {max_bytes: 1KiB, max_object_bytes: 2KiB}\n", wantErr: "sites[0].cache.max_bytes: must be at least max_object_bytes"},
		{name: "relative ignore_query_on path", yaml: head + "    cache: {ignore_query_on: [news]}\n", wantErr: "sites[0].cache.ignore_query_on[0]: must start with /"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("origin.yaml", []byte(tt.yaml))
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg.Sites[0])
		})
	}
}
