package incident

import "testing"

func TestParseASNKey(t *testing.T) {
	tests := []struct {
		name string
		key  string
		want uint32
		ok   bool
	}{
		{name: "ASN", key: "AS8359", want: 8359, ok: true},
		{name: "32-bit ASN", key: "AS4200000000", want: 4200000000, ok: true},
		{name: "unknown", key: "unknown"},
		{name: "prefix", key: "203.0.113.0/24"},
		{name: "AS0", key: "AS0"},
		{name: "too large", key: "AS4294967296"},
		{name: "bare AS", key: "AS"},
		{name: "sign", key: "AS+5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, ok := ParseASNKey(tc.key)
			if ok != tc.ok || n != tc.want && tc.ok {
				t.Errorf("ParseASNKey(%q) = %d, %v; want %d, %v", tc.key, n, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestASNKey(t *testing.T) {
	tests := []struct {
		name string
		asn  uint32
		want string
	}{
		{name: "unknown", asn: 0, want: "unknown"},
		{name: "ASN", asn: 8359, want: "AS8359"},
		{name: "32-bit ASN", asn: 4200000000, want: "AS4200000000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ASNKey(tc.asn)
			if got != tc.want {
				t.Fatalf("ASNKey(%d) = %q, want %q", tc.asn, got, tc.want)
			}
			n, ok := ParseASNKey(got)
			if ok != (tc.asn != 0) || n != tc.asn {
				t.Errorf("ParseASNKey(%q) = %d, %v; want the round trip to %d", got, n, ok, tc.asn)
			}
		})
	}
}
