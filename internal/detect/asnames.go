package detect

import "sync"

// MaxASNames bounds the names an ASNames keeps: more than the about 80,000
// autonomous systems that announce routes, so in practice every one seen.
const MaxASNames = 1 << 17

// ASNames is an ASN → registered-name table learned from address lookups
// (geo.Info's ASN and ASOrg), for Options.ASName when the geo data can only
// be asked by address: whoever looks addresses up calls Learn, and the
// engine asks Name for the ASNs it attributes. The first non-empty name
// learned for an ASN is kept; once MaxASNames names are held, new ones are
// dropped (Name answers "" for them). The zero value is ready; safe for
// concurrent use (Learn on a lookup cache's miss path, Name from the
// engine); both are allocation-free once an ASN is known.
type ASNames struct {
	mu sync.RWMutex
	m  map[uint32]string
}

// Learn records name as asn's registered name unless asn is 0, name is
// empty, asn already has a name or the table is full.
func (a *ASNames) Learn(asn uint32, name string) {
	if a == nil || asn == 0 || name == "" {
		return
	}
	a.mu.RLock()
	_, known := a.m[asn]
	a.mu.RUnlock()
	if known {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[uint32]string{}
	}
	if _, ok := a.m[asn]; !ok && len(a.m) < MaxASNames {
		a.m[asn] = name
	}
}

// Name returns asn's learned name, "" when none was learned (or a is nil).
func (a *ASNames) Name(asn uint32) string {
	if a == nil {
		return ""
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.m[asn]
}

// Len returns how many names are held.
func (a *ASNames) Len() int {
	if a == nil {
		return 0
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.m)
}
