package incident

import (
	"strconv"
	"strings"
)

// ASNKey is the key an autonomous system has in an incident's TopASNs:
// "AS64500"; "unknown" for 0 (no AS known for the source).
func ASNKey(asn uint32) string {
	if asn == 0 {
		return "unknown"
	}
	return "AS" + strconv.FormatUint(uint64(asn), 10)
}

// ParseASNKey parses an ASNKey ("AS64500" → 64500); false for anything
// else ("unknown", a prefix, "AS0", a number over 32 bits, a sign).
func ParseASNKey(key string) (uint32, bool) {
	digits, ok := strings.CutPrefix(key, "AS")
	if !ok || digits == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 32)
	return uint32(n), err == nil && n > 0
}
