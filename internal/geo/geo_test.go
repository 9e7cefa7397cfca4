package geo

import (
	"compress/gzip"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	fixtureCSV  = "../../testdata/geo/asn-sample.csv"
	sharedDir   = "../../../shared/data/ip-location-db"
	sharedMMDB  = sharedDir + "/geo-whois-asn-country.mmdb"
	sharedASNv4 = sharedDir + "/asn-ipv4.csv.gz"
	sharedASNv6 = sharedDir + "/asn-ipv6.csv.gz"
)

func requireFile(t testing.TB, name string) {
	t.Helper()
	if _, err := os.Stat(name); err != nil {
		t.Skipf("shared data file %s absent (run scripts/fetch-geodata.sh): %v", name, err)
	}
}

func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gzipFile(t testing.TB, src string) string {
	t.Helper()
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "asn.csv.gz")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// csvCases hold expectations for testdata/geo/asn-sample.csv (DB-IP/RouteViews
// rows, see testdata/geo/SOURCES.md).
var csvCases = []struct {
	name string
	addr string
	want Info
}{
	{name: "ipv4 quoted org with comma", addr: "1.1.1.1", want: Info{ASN: 13335, ASOrg: "Cloudflare, Inc."}},
	{name: "ipv4 plain org", addr: "8.8.8.8", want: Info{ASN: 15169, ASOrg: "Google LLC"}},
	{name: "ipv4 range end inclusive", addr: "8.8.8.255", want: Info{ASN: 15169, ASOrg: "Google LLC"}},
	{name: "ipv4 next range", addr: "8.8.9.0", want: Info{ASN: 23089, ASOrg: "Hotwire Communications"}},
	{name: "ipv4-mapped ipv6 resolves as ipv4", addr: "::ffff:8.8.8.8", want: Info{ASN: 15169, ASOrg: "Google LLC"}},
	{name: "escaped quotes in org", addr: "2.26.200.1", want: Info{ASN: 201907, ASOrg: `LLC "SPUTNIK"`}},
	{name: "overlap: earlier range keeps its head", addr: "214.95.0.1", want: Info{ASN: 749, ASOrg: "United States Department of Defense (DoD)"}},
	{name: "overlap: later range wins the overlap", addr: "215.0.0.5", want: Info{ASN: 721, ASOrg: "DoD Network Information Center"}},
	{name: "private address unknown", addr: "10.0.0.1", want: Info{}},
	{name: "below first range unknown", addr: "0.0.0.1", want: Info{}},
	{name: "ipv6", addr: "2001:4860:4860::8888", want: Info{ASN: 15169, ASOrg: "Google LLC"}},
	{name: "ipv6 zone ignored", addr: "2001:4860:4805::1%eth0", want: Info{ASN: 43515, ASOrg: "Google Ireland Limited"}},
	{name: "ipv6 documentation prefix unknown", addr: "2001:db8::1", want: Info{}},
}

func TestLookupCSV(t *testing.T) {
	plain, err := Open(fixtureCSV)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	gz, err := Open(gzipFile(t, fixtureCSV))
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Close()
	for _, tc := range csvCases {
		t.Run(tc.name, func(t *testing.T) {
			a := netip.MustParseAddr(tc.addr)
			if got := plain.Lookup(a); got != tc.want {
				t.Errorf("plain Lookup(%s) = %+v, want %+v", a, got, tc.want)
			}
			if got := gz.Lookup(a); got != tc.want {
				t.Errorf("gzip Lookup(%s) = %+v, want %+v", a, got, tc.want)
			}
		})
	}
}

func TestInternedOrgs(t *testing.T) {
	db, err := Open(fixtureCSV)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, o := range db.asn.orgs {
		seen[o]++
	}
	for o, n := range seen {
		if n > 1 {
			t.Errorf("org %q stored %d times", o, n)
		}
	}
	if rows := len(db.asn.v4start) + len(db.asn.v6start); len(db.asn.orgs) >= rows {
		t.Errorf("%d org strings for %d rows: not interned", len(db.asn.orgs), rows)
	}
}

func TestUnknownWithoutData(t *testing.T) {
	empty, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		db   *DB
		addr netip.Addr
	}{
		{name: "nil db", db: nil, addr: netip.MustParseAddr("8.8.8.8")},
		{name: "empty db ipv4", db: empty, addr: netip.MustParseAddr("8.8.8.8")},
		{name: "empty db ipv6", db: empty, addr: netip.MustParseAddr("2001:4860::1")},
		{name: "invalid addr", db: empty, addr: netip.Addr{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.db.Lookup(tc.addr); got != (Info{}) {
				t.Errorf("Lookup = %+v, want unknown", got)
			}
		})
	}
	if err := (*DB)(nil).Close(); err != nil {
		t.Errorf("nil Close: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		file    string
		wantSub []string // substrings the error must contain
	}{
		{name: "missing file", file: filepath.Join(dir, "nope.mmdb"), wantSub: []string{"nope.mmdb", "no such file"}},
		{name: "missing csv", file: filepath.Join(dir, "nope.csv.gz"), wantSub: []string{"nope.csv.gz"}},
		{name: "garbage mmdb", file: writeFile(t, "bad.mmdb", []byte("not a database at all")), wantSub: []string{"bad.mmdb", "MaxMind DB"}},
		{name: "truncated mmdb", file: writeFile(t, "trunc.mmdb", buildMMDB(t, "GeoLite2-Country", []mmdbNet{{"1.0.0.0/8", map[string]any{"country": map[string]any{"iso_code": "AU"}}}})[:40]), wantSub: []string{"trunc.mmdb"}},
		{name: "mmdb without supported fields", file: writeFile(t, "city.mmdb", buildMMDB(t, "Weird", []mmdbNet{{"1.0.0.0/8", map[string]any{"city": "x"}}})), wantSub: []string{"city.mmdb", `"Weird"`}},
		{name: "csv bad address", file: writeFile(t, "a.csv", []byte("1.0.0.0,1.0.0.255,13335,x\nfoo,1.0.1.255,1,y\n")), wantSub: []string{"a.csv line 2", "range_start"}},
		{name: "csv missing fields", file: writeFile(t, "b.csv", []byte("1.0.0.0,1.0.0.255\n")), wantSub: []string{"b.csv line 1", "range_start,range_end,asn,org"}},
		{name: "csv bad asn", file: writeFile(t, "c.csv", []byte("1.0.0.0,1.0.0.255,AS1,x\n")), wantSub: []string{"c.csv line 1", "asn"}},
		{name: "csv reversed range", file: writeFile(t, "d.csv", []byte("1.0.0.9,1.0.0.1,1,x\n")), wantSub: []string{"d.csv line 1", "before"}},
		{name: "csv mixed families", file: writeFile(t, "e.csv", []byte("1.0.0.0,2001::1,1,x\n")), wantSub: []string{"e.csv line 1", "mixes"}},
		{name: "csv unterminated quote", file: writeFile(t, "f.csv", []byte("1.0.0.0,1.0.0.1,1,\"x\n")), wantSub: []string{"f.csv line 1", "unterminated"}},
		{name: "corrupt gzip", file: writeFile(t, "g.csv.gz", []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3}), wantSub: []string{"g.csv.gz"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Open(fixtureCSV, tc.file)
			if err == nil {
				t.Fatalf("Open(%s) succeeded, want error", tc.file)
			}
			if db != nil {
				t.Errorf("Open returned a DB with the error")
			}
			for _, s := range tc.wantSub {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestMMDBSchemas(t *testing.T) {
	flat := writeFile(t, "flat.mmdb", buildMMDB(t, "country ipvAll", []mmdbNet{
		{"8.8.0.0/16", map[string]any{"country_code": "US"}},
		{"2a00:1450::/32", map[string]any{"country_code": "IE"}},
	}))
	geoip2 := writeFile(t, "GeoLite2-Country.mmdb", buildMMDB(t, "GeoLite2-Country", []mmdbNet{
		{"81.2.69.0/24", map[string]any{"country": map[string]any{"iso_code": "GB", "names": map[string]any{"en": "United Kingdom"}}, "registered_country": map[string]any{"iso_code": "GB"}}},
		{"8.8.0.0/16", map[string]any{"country": map[string]any{"iso_code": "CA"}}},
		{"5.6.7.0/24", map[string]any{"registered_country": map[string]any{"iso_code": "NL"}}},
	}))
	asnDB := writeFile(t, "GeoLite2-ASN.mmdb", buildMMDB(t, "GeoLite2-ASN", []mmdbNet{
		{"81.2.69.0/24", map[string]any{"autonomous_system_number": uint32(20712), "autonomous_system_organization": "Andrews & Arnold Ltd"}},
		{"8.8.8.0/24", map[string]any{"autonomous_system_number": uint32(64500), "autonomous_system_organization": "Test Override"}},
	}))
	// A file without the .mmdb extension is recognised by its metadata marker.
	noExt := writeFile(t, "country.db", buildMMDB(t, "GeoIP2-Country", []mmdbNet{
		{"81.2.69.0/24", map[string]any{"country": map[string]any{"iso_code": "GB"}}},
	}))
	tests := []struct {
		name  string
		files []string
		addr  string
		want  Info
	}{
		{name: "flat country_code", files: []string{flat}, addr: "8.8.8.8", want: Info{Country: "US"}},
		{name: "flat ipv6", files: []string{flat}, addr: "2a00:1450:4001::1", want: Info{Country: "IE"}},
		{name: "flat mapped", files: []string{flat}, addr: "::ffff:8.8.4.4", want: Info{Country: "US"}},
		{name: "flat not found", files: []string{flat}, addr: "9.9.9.9", want: Info{}},
		{name: "geoip2 country.iso_code", files: []string{geoip2}, addr: "81.2.69.142", want: Info{Country: "GB"}},
		{name: "geoip2 registered_country fallback", files: []string{geoip2}, addr: "5.6.7.8", want: Info{Country: "NL"}},
		{name: "geolite2 asn", files: []string{asnDB}, addr: "81.2.69.142", want: Info{ASN: 20712, ASOrg: "Andrews & Arnold Ltd"}},
		{name: "country and asn combined", files: []string{geoip2, asnDB}, addr: "::ffff:81.2.69.1", want: Info{Country: "GB", ASN: 20712, ASOrg: "Andrews & Arnold Ltd"}},
		{name: "first file wins country", files: []string{flat, geoip2}, addr: "8.8.8.8", want: Info{Country: "US"}},
		{name: "first file wins country reversed", files: []string{geoip2, flat}, addr: "8.8.8.8", want: Info{Country: "CA"}},
		{name: "mmdb asn before csv", files: []string{asnDB, fixtureCSV}, addr: "8.8.8.8", want: Info{ASN: 64500, ASOrg: "Test Override"}},
		{name: "csv fills asn mmdb lacks", files: []string{asnDB, fixtureCSV, flat}, addr: "8.8.4.4", want: Info{Country: "US", ASN: 15169, ASOrg: "Google LLC"}},
		{name: "sniffed without extension", files: []string{noExt}, addr: "81.2.69.142", want: Info{Country: "GB"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Open(tc.files...)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if got := db.Lookup(netip.MustParseAddr(tc.addr)); got != tc.want {
				t.Errorf("Lookup(%s) = %+v, want %+v", tc.addr, got, tc.want)
			}
		})
	}
}

// TestSharedData checks the real open data in ../shared/data (CC0 country
// mmdb, CC BY 4.0 ASN tables).
func TestSharedData(t *testing.T) {
	requireFile(t, sharedMMDB)
	requireFile(t, sharedASNv4)
	requireFile(t, sharedASNv6)
	if testing.Short() {
		t.Skip("loads 515k ranges; skipped with -short")
	}
	db, err := Open(sharedMMDB, sharedASNv4, sharedASNv6)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n4, n6 := len(db.asn.v4start), len(db.asn.v6start); n4 < 400_000 || n6 < 100_000 {
		t.Errorf("loaded %d IPv4 and %d IPv6 ranges, want the whole tables", n4, n6)
	}
	tests := []struct {
		name string
		addr string
		want Info
	}{
		{name: "google dns", addr: "8.8.8.8", want: Info{Country: "US", ASN: 15169, ASOrg: "Google LLC"}},
		{name: "google dns mapped", addr: "::ffff:8.8.8.8", want: Info{Country: "US", ASN: 15169, ASOrg: "Google LLC"}},
		{name: "cloudflare", addr: "1.1.1.1", want: Info{Country: "AU", ASN: 13335, ASOrg: "Cloudflare, Inc."}},
		{name: "google ipv6 ireland", addr: "2a00:1450:4001::1", want: Info{Country: "IE", ASN: 15169, ASOrg: "Google LLC"}},
		{name: "private unknown", addr: "192.168.1.1", want: Info{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := db.Lookup(netip.MustParseAddr(tc.addr)); got != tc.want {
				t.Errorf("Lookup(%s) = %+v, want %+v", tc.addr, got, tc.want)
			}
		})
	}
}

func TestLookupAllocs(t *testing.T) {
	files := []string{fixtureCSV, writeFile(t, "flat.mmdb", buildMMDB(t, "country ipvAll", []mmdbNet{
		{"8.0.0.0/8", map[string]any{"country_code": "US"}},
	}))}
	db, err := Open(files...)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := netip.MustParseAddr("8.8.8.8")
	db.Lookup(a) // warm the decoder's string cache
	if n := testing.AllocsPerRun(100, func() { db.Lookup(a) }); n != 0 {
		t.Errorf("Lookup allocates %.1f times, want 0", n)
	}
}

// BenchmarkGeoLookup measures one Lookup over random public-range IPv4 and
// IPv6 addresses (3:1) on the shared open data: the ASN range table alone,
// the country mmdb alone, and both. Skipped when the shared data is absent.
func BenchmarkGeoLookup(b *testing.B) {
	requireFile(b, sharedMMDB)
	requireFile(b, sharedASNv4)
	r := rand.New(rand.NewPCG(1, 2))
	addrs := make([]netip.Addr, 4096)
	for i := range addrs {
		if i%4 == 3 {
			var a [16]byte
			a[0], a[1] = 0x2a, byte(r.UintN(16))
			for j := 2; j < 8; j++ {
				a[j] = byte(r.UintN(256))
			}
			addrs[i] = netip.AddrFrom16(a)
		} else {
			addrs[i] = netip.AddrFrom4([4]byte{byte(1 + r.UintN(222)), byte(r.UintN(256)), byte(r.UintN(256)), byte(r.UintN(256))})
		}
	}
	for _, bc := range []struct {
		name  string
		files []string
	}{
		{name: "asn-csv", files: []string{sharedASNv4, sharedASNv6}},
		{name: "country-mmdb", files: []string{sharedMMDB}},
		{name: "both", files: []string{sharedMMDB, sharedASNv4, sharedASNv6}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			db, err := Open(bc.files...)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			b.ReportAllocs()
			var sink uint32
			for i := 0; b.Loop(); i++ {
				in := db.Lookup(addrs[i&4095])
				sink += in.ASN + uint32(len(in.Country))
			}
			_ = sink
		})
	}
}

func TestPublic(t *testing.T) {
	tests := []struct {
		name string
		addr string
		want bool
	}{
		{name: "public ipv4", addr: "8.8.8.8", want: true},
		{name: "public ipv6", addr: "2a00:1450::1", want: true},
		{name: "mapped public", addr: "::ffff:8.8.8.8", want: true},
		{name: "rfc1918", addr: "192.168.1.1", want: false},
		{name: "rfc1918 mapped", addr: "::ffff:172.16.0.5", want: false},
		{name: "loopback", addr: "127.0.0.1", want: false},
		{name: "cgnat", addr: "100.64.1.1", want: false},
		{name: "test-net-3", addr: "203.0.113.7", want: false},
		{name: "benchmarking", addr: "198.19.0.1", want: false},
		{name: "ula", addr: "fd00::1", want: false},
		{name: "link-local v6", addr: "fe80::1", want: false},
		{name: "documentation v6", addr: "2001:db8::1", want: false},
		{name: "multicast", addr: "224.0.0.1", want: false},
		{name: "reserved class e", addr: "250.1.1.1", want: false},
		{name: "unspecified", addr: "::", want: false},
		{name: "just below cgnat", addr: "100.63.255.255", want: true},
		{name: "just above cgnat", addr: "100.128.0.0", want: true},
		{name: "just above 172.16/12", addr: "172.32.0.1", want: true},
		{name: "just below 172.16/12", addr: "172.15.255.255", want: true},
		{name: "just below benchmarking", addr: "198.17.255.255", want: true},
		{name: "just above benchmarking", addr: "198.20.0.0", want: true},
		{name: "192.0.1.0 public", addr: "192.0.1.1", want: true},
		{name: "192.0.0.0/24 reserved", addr: "192.0.0.9", want: false},
		{name: "last unicast", addr: "223.255.255.255", want: true},
		{name: "link-local v4", addr: "169.254.1.1", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Public(netip.MustParseAddr(tc.addr)); got != tc.want {
				t.Errorf("Public(%s) = %v, want %v", tc.addr, got, tc.want)
			}
		})
	}
}

// TestPublicMatchesReference compares the bit-twiddled IPv4 path of Public
// with a plain prefix-list implementation around every boundary.
func TestPublicMatchesReference(t *testing.T) {
	special := []string{"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/3"}
	ref := func(a netip.Addr) bool {
		for _, s := range special {
			if netip.MustParsePrefix(s).Contains(a) {
				return false
			}
		}
		return true
	}
	var probes []netip.Addr
	for _, s := range special {
		p := netip.MustParsePrefix(s)
		first := p.Addr()
		last := netip.AddrFrom4([4]byte(lastOf(p)))
		probes = append(probes, first, last, first.Prev(), last.Next())
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 100_000 {
		probes = append(probes, netip.AddrFrom4([4]byte{byte(r.UintN(256)), byte(r.UintN(256)), byte(r.UintN(256)), byte(r.UintN(256))}))
	}
	for _, a := range probes {
		if !a.IsValid() {
			continue
		}
		if got, want := Public(a), ref(a); got != want {
			t.Errorf("Public(%s) = %v, reference says %v", a, got, want)
		}
	}
}

func lastOf(p netip.Prefix) []byte {
	b := p.Masked().Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		b[i/8] |= 1 << (7 - uint(i%8))
	}
	return b[:]
}

func TestOpenDir(t *testing.T) {
	full := t.TempDir()
	mmdb := buildMMDB(t, "country ipvAll", []mmdbNet{{"8.8.0.0/16", map[string]any{"country_code": "US"}}})
	os.WriteFile(filepath.Join(full, DefaultFiles[0]), mmdb, 0o644)
	raw, _ := os.ReadFile(gzipFile(t, fixtureCSV))
	os.WriteFile(filepath.Join(full, DefaultFiles[1]), raw, 0o644)
	os.WriteFile(filepath.Join(full, DefaultFiles[2]), raw, 0o644)
	partial := t.TempDir()
	os.WriteFile(filepath.Join(partial, DefaultFiles[1]), raw, 0o644)
	corrupt := t.TempDir()
	os.WriteFile(filepath.Join(corrupt, DefaultFiles[0]), []byte("garbage"), 0o644)
	tests := []struct {
		name        string
		dir         string
		wantMissing int
		want        Info
		wantErr     string
	}{
		{name: "all files", dir: full, want: Info{Country: "US", ASN: 15169, ASOrg: "Google LLC"}},
		{name: "only ipv4 asn", dir: partial, wantMissing: 2, want: Info{ASN: 15169, ASOrg: "Google LLC"}},
		{name: "empty dir answers unknown", dir: t.TempDir(), wantMissing: 3},
		{name: "corrupt file is an error", dir: corrupt, wantErr: DefaultFiles[0]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, missing, err := OpenDir(tc.dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to name %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if len(missing) != tc.wantMissing {
				t.Errorf("missing %v, want %d files", missing, tc.wantMissing)
			}
			if got := db.Lookup(netip.MustParseAddr("8.8.8.8")); got != tc.want {
				t.Errorf("Lookup = %+v, want %+v", got, tc.want)
			}
		})
	}
}
