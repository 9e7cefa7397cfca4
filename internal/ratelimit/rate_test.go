package ratelimit

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRateEffectiveBurst(t *testing.T) {
	tests := []struct {
		name string
		rate Rate
		want int
	}{
		{name: "F07 6000 per minute defaults to the whole minute", rate: Rate{Count: 6000, Period: time.Minute}, want: 6000},
		{name: "F08 70 per 100 s defaults to 70", rate: Rate{Count: 70, Period: 100 * time.Second}, want: 70},
		{name: "F11 10 per 10 s", rate: Rate{Count: 10, Period: 10 * time.Second}, want: 10},
		{name: "F10 50 per second", rate: Rate{Count: 50, Period: time.Second}, want: 50},
		{name: "sub-second period gets a second's worth", rate: Rate{Count: 5, Period: 100 * time.Millisecond}, want: 50},
		{name: "sub-second rounds up", rate: Rate{Count: 1, Period: 300 * time.Millisecond}, want: 4},
		{name: "one per hour", rate: Rate{Count: 1, Period: time.Hour}, want: 1},
		{name: "explicit burst wins", rate: Rate{Count: 6000, Period: time.Minute, Burst: 3}, want: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rate.EffectiveBurst(); got != tt.want {
				t.Fatalf("EffectiveBurst(%+v) = %d, want %d", tt.rate, got, tt.want)
			}
			// F07: the default is never below the per-second equivalent.
			if tt.rate.Burst == 0 && tt.rate.EffectiveBurst() < tt.rate.perSecond() {
				t.Fatalf("default burst %d below per-second %d", tt.rate.EffectiveBurst(), tt.rate.perSecond())
			}
		})
	}
}

func TestRateInterval(t *testing.T) {
	tests := []struct {
		name string
		rate Rate
		want time.Duration
	}{
		{name: "exact", rate: Rate{Count: 6000, Period: time.Minute}, want: 10 * time.Millisecond},
		{name: "rounded up so the rate is never exceeded", rate: Rate{Count: 70, Period: 100 * time.Second}, want: 1428571429},
		{name: "invalid", rate: Rate{Count: 0, Period: time.Second}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rate.Interval(); got != tt.want {
				t.Fatalf("Interval() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestRateValidate(t *testing.T) {
	tests := []struct {
		name     string
		rate     Rate
		wantErr  string // substring; "" for valid
		wantWarn bool
	}{
		{name: "zero count", rate: Rate{Count: 0, Period: time.Second}, wantErr: "count 0"},
		{name: "negative period", rate: Rate{Count: 1, Period: -time.Second}, wantErr: "period"},
		{name: "negative burst", rate: Rate{Count: 1, Period: time.Second, Burst: -1}, wantErr: "burst -1"},
		{name: "faster than 1/ns", rate: Rate{Count: 2, Period: 1}, wantErr: "nanosecond"},
		{name: "window overflow", rate: Rate{Count: 1, Period: 1 << 40, Burst: 1 << 30}, wantErr: "exceeds"},
		{name: "default burst is quiet", rate: Rate{Count: 6000, Period: time.Minute}},
		{name: "F07 burst 1 per minute warns", rate: Rate{Count: 6000, Period: time.Minute, Burst: 1}, wantWarn: true},
		{name: "burst below a second's worth warns", rate: Rate{Count: 6000, Period: time.Minute, Burst: 50}, wantWarn: true},
		{name: "burst of a second's worth is fine", rate: Rate{Count: 6000, Period: time.Minute, Burst: 100}},
		{name: "burst 1 for 70/100 s warns", rate: Rate{Count: 70, Period: 100 * time.Second, Burst: 1}, wantWarn: true},
		{name: "burst 1 of 1/hour cannot be bigger", rate: Rate{Count: 1, Period: time.Hour, Burst: 1}},
		{name: "one-second period never warns", rate: Rate{Count: 50, Period: time.Second, Burst: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			warns, err := tt.rate.Validate()
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrInvalidRate) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Validate() err = %v, want ErrInvalidRate containing %q", err, tt.wantErr)
				}
				if _, err := NewLimiter(tt.rate, Options{MaxKeys: 8}); !errors.Is(err, ErrInvalidRate) {
					t.Fatalf("NewLimiter accepted invalid rate: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate() err = %v", err)
			}
			if got := len(warns) > 0; got != tt.wantWarn {
				t.Fatalf("Validate() warnings = %q, want any: %v", warns, tt.wantWarn)
			}
		})
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	tests := []struct {
		name string
		d    Decision
		want int
	}{
		{name: "allowed", d: Decision{Allowed: true, Remaining: 3}, want: 0},
		{name: "F07 10 ms interval rounds up to 1", d: Decision{RetryAfter: 10 * time.Millisecond}, want: 1},
		{name: "whole second", d: Decision{RetryAfter: time.Second}, want: 1},
		{name: "just over", d: Decision{RetryAfter: time.Second + 1}, want: 2},
		{name: "F08 100 s", d: Decision{RetryAfter: 100 * time.Second}, want: 100},
		{name: "refused never says 0", d: Decision{}, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.RetryAfterSeconds(); got != tt.want {
				t.Fatalf("RetryAfterSeconds() = %d, want %d", got, tt.want)
			}
		})
	}
}
