package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/portcullis/portcullis/internal/netset"
)

// Duration is a time.Duration written in YAML as a Go duration string
// ("250ms", "5s", "1h30m").
type Duration time.Duration

// UnmarshalYAML implements goccy/go-yaml's NodeUnmarshaler so that a bad
// value is reported with its line and field.
func (d *Duration) UnmarshalYAML(n ast.Node) error {
	s := scalar(n)
	v, err := time.ParseDuration(s)
	if err != nil {
		return nodeError(n, "invalid duration %q (want e.g. 250ms, 5s, 2m)", s)
	}
	if v < 0 {
		return nodeError(n, "duration %q must not be negative", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ByteSize is a size in bytes written in YAML as an integer or with a binary
// suffix ("64KiB", "10MiB", "1GiB"; "KB"/"MB"/"GB" are read as powers of 1024 too).
type ByteSize int64

// UnmarshalYAML implements goccy/go-yaml's NodeUnmarshaler.
func (b *ByteSize) UnmarshalYAML(n ast.Node) error {
	s := scalar(n)
	v, err := ParseByteSize(s)
	if err != nil {
		return nodeError(n, "%v", err)
	}
	*b = ByteSize(v)
	return nil
}

// ParseByteSize parses "1048576", "512KiB", "10MiB", "1GiB", "1.5MB".
// Errors: empty, negative or unknown suffix.
func ParseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, suf := range []struct {
		s string
		m int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, suf.s) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, suf.s)), suf.m
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || t == "" {
		return 0, fmt.Errorf("invalid size %q (want e.g. 65536, 64KiB, 10MiB)", s)
	}
	if f < 0 {
		return 0, fmt.Errorf("size %q must not be negative", s)
	}
	return int64(f * float64(mult)), nil
}

// Prefix is a netip.Prefix written as a CIDR ("203.0.113.0/24") or a bare
// address (read as a /32 or /128). Host bits are masked off.
type Prefix netip.Prefix

// UnmarshalYAML implements goccy/go-yaml's NodeUnmarshaler.
func (p *Prefix) UnmarshalYAML(n ast.Node) error {
	s := scalar(n)
	v, err := ParsePrefix(s)
	if err != nil {
		return nodeError(n, "%v", err)
	}
	*p = Prefix(v)
	return nil
}

// MarshalYAML writes the prefix as a string.
func (p Prefix) MarshalYAML() (any, error) { return netip.Prefix(p).String(), nil }

// P returns the netip.Prefix.
func (p Prefix) P() netip.Prefix { return netip.Prefix(p) }

// ParsePrefix parses a CIDR or bare address (netset.ParsePrefix: host bits
// masked, IPv4-mapped IPv6 unmapped). Errors name the bad value.
func ParsePrefix(s string) (netip.Prefix, error) { return netset.ParsePrefix(s) }

// RateSpec is a rate written as "COUNT/PERIOD" ("100/10s", "6000/1m",
// "5/s"), with an optional burst set separately.
type RateSpec struct {
	Count  int
	Period time.Duration
}

// UnmarshalYAML implements goccy/go-yaml's NodeUnmarshaler.
func (r *RateSpec) UnmarshalYAML(n ast.Node) error {
	v, err := ParseRate(scalar(n))
	if err != nil {
		return nodeError(n, "%v", err)
	}
	*r = v
	return nil
}

// MarshalYAML writes the rate as "COUNT/PERIOD".
func (r RateSpec) MarshalYAML() (any, error) { return r.String(), nil }

// String formats the rate as "COUNT/PERIOD".
func (r RateSpec) String() string {
	if r.Count == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%s", r.Count, r.Period)
}

// ParseRate parses "COUNT/PERIOD" where PERIOD is a Go duration or one of
// s, m, h ("10/s" = 10 per second). Errors name the bad value.
func ParseRate(s string) (RateSpec, error) {
	c, p, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return RateSpec{}, fmt.Errorf("invalid rate %q (want COUNT/PERIOD, e.g. 100/10s)", s)
	}
	count, err := strconv.Atoi(strings.TrimSpace(c))
	if err != nil || count <= 0 {
		return RateSpec{}, fmt.Errorf("invalid rate %q: count must be a positive integer", s)
	}
	p = strings.TrimSpace(p)
	switch p {
	case "s", "sec", "second":
		p = "1s"
	case "m", "min", "minute":
		p = "1m"
	case "h", "hour":
		p = "1h"
	}
	d, err := time.ParseDuration(p)
	if err != nil || d <= 0 {
		return RateSpec{}, fmt.Errorf("invalid rate %q: period must be a positive duration", s)
	}
	return RateSpec{Count: count, Period: d}, nil
}

func scalar(n ast.Node) string {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value
	case nil:
		return ""
	default:
		return strings.Trim(n.String(), `"'`)
	}
}
