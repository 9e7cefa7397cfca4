package geo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Info is the attribution of one address. The zero value means unknown.
type Info struct {
	// Country is the ISO 3166-1 alpha-2 code ("DE"), "" when unknown.
	Country string
	// ASN is the origin autonomous system number, 0 when unknown.
	ASN uint32
	// ASOrg is the autonomous system's organisation name, "" when unknown.
	ASOrg string
}

// DB answers country and ASN lookups from the files given to Open. The zero
// value and a nil *DB are valid and answer "unknown". A DB is immutable after
// Open and safe for concurrent use.
type DB struct {
	mmdbs []*mmdbFile
	asn   asnTable
	files []string
}

// mmdbRecord is the decoded part of one MaxMind DB record that Lookup uses.
type mmdbRecord struct {
	offset  uintptr
	country string
	asn     uint32
	org     string
}

// mmdbCacheSize is the number of slots of a file's decoded-record cache.
const mmdbCacheSize = 4096

// mmdbFile is one opened MaxMind DB with the record fields it was found to
// carry.
type mmdbFile struct {
	name string
	r    *maxminddb.Reader
	// flatCountry: ip-location-db records {country_code: "XX"}.
	flatCountry bool
	// geoip2Country: GeoIP2/GeoLite2 records {country: {iso_code}} and/or
	// {registered_country: {iso_code}}.
	geoip2Country bool
	// asn: GeoLite2-ASN / GeoIP2-ISP records {autonomous_system_number,
	// autonomous_system_organization}.
	asn bool
	// cache is a direct-mapped cache of decoded records keyed by their data
	// section offset: a country database has a few hundred distinct records,
	// so after warm-up a lookup is a tree walk and a pointer load, with no
	// decoding and no allocation. A miss allocates one record.
	cache [mmdbCacheSize]atomic.Pointer[mmdbRecord]
}

// record returns the decoded record of a found Result, from the cache when
// possible.
func (m *mmdbFile) record(res maxminddb.Result) *mmdbRecord {
	off := res.Offset()
	slot := &m.cache[(uint64(off)*0x9E3779B97F4A7C15)>>(64-12)]
	if r := slot.Load(); r != nil && r.offset == off {
		return r
	}
	r := &mmdbRecord{offset: off}
	if m.flatCountry {
		_ = res.DecodePath(&r.country, "country_code")
	}
	if m.geoip2Country && r.country == "" {
		_ = res.DecodePath(&r.country, "country", "iso_code")
		if r.country == "" {
			_ = res.DecodePath(&r.country, "registered_country", "iso_code")
		}
	}
	if m.asn {
		if res.DecodePath(&r.asn, "autonomous_system_number") == nil && r.asn != 0 {
			_ = res.DecodePath(&r.org, "autonomous_system_organization")
		} else {
			r.asn = 0
		}
	}
	slot.Store(r)
	return r
}

// mmdbMarker starts the metadata section of every MaxMind DB file.
var mmdbMarker = []byte("\xab\xcd\xefMaxMind.com")

// Open loads the given data files, in order of precedence: for each field of
// Info the first file that knows the address wins. Each file is either a
// MaxMind DB (name ending ".mmdb", or carrying the MaxMind metadata marker)
// or an ASN range CSV (plain or gzip). Open with no files returns an empty DB
// that answers "unknown".
//
// Errors name the file: a missing or unreadable file, a MaxMind DB that does
// not open or whose records carry neither a country nor an ASN, a CSV with a
// malformed line (with its line number). On error no DB is returned and
// nothing stays open.
func Open(files ...string) (*DB, error) {
	db := &DB{asn: asnTable{orgIndex: map[string]uint32{}}}
	var v4 []row4
	var v6 []row6
	for _, name := range files {
		isMMDB, err := sniffMMDB(name)
		if err != nil {
			db.Close()
			return nil, err
		}
		if isMMDB {
			m, err := openMMDB(name)
			if err != nil {
				db.Close()
				return nil, err
			}
			db.mmdbs = append(db.mmdbs, m)
		} else {
			f, err := os.Open(name)
			if err != nil {
				db.Close()
				return nil, fmt.Errorf("geo: %w", err)
			}
			err = db.asn.loadCSV(name, f, &v4, &v6)
			f.Close()
			if err != nil {
				db.Close()
				return nil, err
			}
		}
		db.files = append(db.files, name)
	}
	db.asn.build(v4, v6)
	return db, nil
}

// sniffMMDB reports whether name is a MaxMind DB: by its extension, else by
// the metadata marker in its last 128 KiB (where the format puts it).
func sniffMMDB(name string) (bool, error) {
	f, err := os.Open(name)
	if err != nil {
		return false, fmt.Errorf("geo: %w", err)
	}
	defer f.Close()
	if strings.HasSuffix(strings.ToLower(name), ".mmdb") {
		return true, nil
	}
	st, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("geo: %w", err)
	}
	const tail = 128 << 10
	off := max(st.Size()-tail, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("geo: %s: %w", name, err)
	}
	return bytes.Contains(buf, mmdbMarker), nil
}

// openMMDB opens a MaxMind DB and finds which supported fields its records
// carry by decoding the first records of its tree.
func openMMDB(name string) (*mmdbFile, error) {
	r, err := maxminddb.Open(name)
	if err != nil {
		return nil, fmt.Errorf("geo: %s: not a readable MaxMind DB: %w", name, err)
	}
	m := &mmdbFile{name: name, r: r}
	const probe = 256
	n := 0
	for res := range r.Networks() {
		if err := res.Err(); err != nil {
			r.Close()
			return nil, fmt.Errorf("geo: %s: corrupt MaxMind DB: %w", name, err)
		}
		var rec map[string]any
		if err := res.Decode(&rec); err != nil {
			r.Close()
			return nil, fmt.Errorf("geo: %s: corrupt MaxMind DB record: %w", name, err)
		}
		if _, ok := rec["country_code"].(string); ok {
			m.flatCountry = true
		}
		if _, ok := rec["country"].(map[string]any); ok {
			m.geoip2Country = true
		}
		if _, ok := rec["registered_country"].(map[string]any); ok {
			m.geoip2Country = true
		}
		if _, ok := rec["autonomous_system_number"]; ok {
			m.asn = true
		}
		if n++; n >= probe {
			break
		}
	}
	if !m.flatCountry && !m.geoip2Country && !m.asn {
		r.Close()
		return nil, fmt.Errorf("geo: %s: MaxMind DB type %q has no country_code, country.iso_code or autonomous_system_number in its records",
			name, r.Metadata.DatabaseType)
	}
	return m, nil
}

// Close releases the MaxMind DB files. Lookups after Close answer unknown for
// the fields those files provided. Close on a nil DB is a no-op.
func (db *DB) Close() error {
	if db == nil {
		return nil
	}
	var errs []error
	for _, m := range db.mmdbs {
		if err := m.r.Close(); err != nil {
			errs = append(errs, fmt.Errorf("geo: close %s: %w", m.name, err))
		}
	}
	db.mmdbs = nil
	return errors.Join(errs...)
}

// Files lists the data files loaded, in precedence order (for logs and the
// status page).
func (db *DB) Files() []string {
	if db == nil {
		return nil
	}
	return slices.Clone(db.files)
}

// Lookup returns the attribution of addr. IPv4-mapped IPv6 addresses
// (::ffff:a.b.c.d) resolve like their IPv4 form and zones are ignored.
// Unknown fields are zero; an invalid addr and a non-Public one give the zero
// Info. Lookup does not allocate except on a MaxMind record-cache miss (one
// small allocation; a country database stops missing after warm-up).
func (db *DB) Lookup(addr netip.Addr) Info {
	var in Info
	if db == nil || !addr.IsValid() {
		return in
	}
	addr = addr.Unmap()
	if !Public(addr) {
		return in
	}
	for _, m := range db.mmdbs {
		needCountry := in.Country == "" && (m.flatCountry || m.geoip2Country)
		needASN := in.ASN == 0 && m.asn
		if !needCountry && !needASN {
			continue
		}
		res := m.r.Lookup(addr)
		if !res.Found() {
			continue
		}
		r := m.record(res)
		if needCountry {
			in.Country = r.country
		}
		if needASN && r.asn != 0 {
			in.ASN, in.ASOrg = r.asn, r.org
		}
	}
	if in.ASN == 0 {
		if info, ok := db.asn.lookup(addr); ok && info.asn != 0 {
			in.ASN = info.asn
			in.ASOrg = db.asn.orgs[info.org]
		}
	}
	return in
}

// DefaultFiles are the files scripts/fetch-geodata.sh writes, in the
// precedence OpenDir gives them.
var DefaultFiles = []string{"geo-whois-asn-country.mmdb", "asn-ipv4.csv.gz", "asn-ipv6.csv.gz"}

// OpenDir opens the DefaultFiles present in dir (the fetch script's
// output). Files that do not exist are skipped and returned in missing, so
// the caller can warn that attribution will be partly "unknown"; a present
// but unreadable or corrupt file is an error naming it. With none present
// the DB answers unknown.
func OpenDir(dir string) (db *DB, missing []string, err error) {
	var files []string
	for _, name := range DefaultFiles {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, p)
			continue
		}
		files = append(files, p)
	}
	db, err = Open(files...)
	return db, missing, err
}

// OpenFirstDir opens the DefaultFiles of the first directory in dirs that
// holds at least one of them (empty entries are skipped), returning the DB
// and the directory used. With no data anywhere it returns nil, "", nil:
// attribution is then "unknown". A present but corrupt file is an error.
func OpenFirstDir(dirs ...string) (*DB, string, error) {
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		db, missing, err := OpenDir(dir)
		if err != nil {
			return nil, dir, err
		}
		if len(missing) < len(DefaultFiles) {
			return db, dir, nil
		}
		db.Close()
	}
	return nil, "", nil
}
