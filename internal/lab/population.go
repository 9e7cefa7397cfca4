package lab

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/portcullis/portcullis/internal/geo"
)

// Population draws simulated public IPv4 source addresses from the real
// networks of chosen countries. It is read-only after construction and
// safe for concurrent use (each Draw brings its own random source).
type Population struct {
	// Source says where the networks came from: the mmdb file, or
	// "built-in table" (see builtinNetworks).
	Source string
	nets   map[string][]netip.Prefix
	cum    map[string][]uint64 // running sum of network sizes, for weighted choice
}

// countryMMDB is the country database scripts/fetch-geodata.sh provides
// (ip-location-db geo-whois-asn-country, CC0).
var countryMMDB = geo.DefaultFiles[0]

// OpenPopulation loads the IPv4 networks of countries (ISO 3166-1 alpha-2)
// from the country mmdb of the first directory in dirs that holds one
// (empty entries skipped): the layout of scripts/fetch-geodata.sh. With no
// data in any directory it returns the built-in table and fallback=true;
// the caller should say so. Errors: a present mmdb that cannot be read, a
// country with no networks in the data.
func OpenPopulation(countries []string, dirs ...string) (p *Population, fallback bool, err error) {
	for _, d := range dirs {
		if d == "" {
			continue
		}
		file := filepath.Join(d, countryMMDB)
		if _, err := os.Stat(file); err != nil {
			continue
		}
		p, err := loadMMDB(file, countries)
		return p, false, err
	}
	p = BuiltinPopulation()
	for _, c := range countries {
		if len(p.nets[c]) == 0 {
			return nil, true, fmt.Errorf("lab: country %s is not in the built-in table (fetch the geo data: scripts/fetch-geodata.sh testdata/geodata)", c)
		}
	}
	return p, true, nil
}

// loadMMDB walks every IPv4 network of the mmdb (maxminddb-golang v2
// Reader.NetworksWithin) and keeps those of the wanted countries.
func loadMMDB(file string, countries []string) (*Population, error) {
	r, err := maxminddb.Open(file)
	if err != nil {
		return nil, fmt.Errorf("lab: population: %w", err)
	}
	defer r.Close()
	want := map[string]bool{}
	for _, c := range countries {
		want[c] = true
	}
	byOffset := map[uintptr]string{}
	nets := map[string][]netip.Prefix{}
	for res := range r.NetworksWithin(netip.MustParsePrefix("0.0.0.0/0")) {
		if err := res.Err(); err != nil {
			return nil, fmt.Errorf("lab: population: %s: %w", file, err)
		}
		cc, ok := byOffset[res.Offset()]
		if !ok {
			var rec struct {
				CountryCode string `maxminddb:"country_code"`
				Country     struct {
					ISOCode string `maxminddb:"iso_code"`
				} `maxminddb:"country"`
			}
			if err := res.Decode(&rec); err != nil {
				return nil, fmt.Errorf("lab: population: %s: %w", file, err)
			}
			cc = rec.CountryCode
			if cc == "" {
				cc = rec.Country.ISOCode
			}
			byOffset[res.Offset()] = cc
		}
		if p := res.Prefix(); want[cc] && p.Addr().Is4() && p.Bits() <= 30 && geo.Public(p.Addr().Next()) {
			nets[cc] = append(nets[cc], p)
		}
	}
	p := newPopulation(file, nets)
	for _, c := range countries {
		if len(p.nets[c]) == 0 {
			return nil, fmt.Errorf("lab: population: no IPv4 networks for country %s in %s", c, file)
		}
	}
	return p, nil
}

func newPopulation(source string, nets map[string][]netip.Prefix) *Population {
	p := &Population{Source: source, nets: nets, cum: map[string][]uint64{}}
	for cc, ps := range nets {
		cum := make([]uint64, len(ps))
		var sum uint64
		for i, n := range ps {
			sum += uint64(1) << (32 - n.Bits())
			cum[i] = sum
		}
		p.cum[cc] = cum
	}
	return p
}

// Networks returns the number of networks known for country cc.
func (p *Population) Networks(cc string) int { return len(p.nets[cc]) }

// Draw returns n distinct public IPv4 addresses: for each, a country chosen
// by the weights, a network of that country chosen in proportion to its
// size, and a host inside it. Addresses for which exclude returns true are
// skipped (exclude may be nil). The result depends only on rng's state.
// Errors: a country without networks, or not enough distinct addresses
// after 20·n+100 attempts.
func (p *Population) Draw(rng *rand.Rand, countries map[string]float64, n int, exclude func(netip.Addr) bool) ([]netip.Addr, error) {
	if n <= 0 {
		return nil, nil
	}
	ccs := make([]string, 0, len(countries))
	var total float64
	for cc, w := range countries {
		if len(p.nets[cc]) == 0 {
			return nil, fmt.Errorf("lab: population: no networks for country %s (%s)", cc, p.Source)
		}
		ccs = append(ccs, cc)
		total += w
	}
	if len(ccs) == 0 || !(total > 0) {
		return nil, errors.New("lab: population: no country weights")
	}
	slices.Sort(ccs) // map order must not change the draw
	seen := make(map[netip.Addr]struct{}, n)
	out := make([]netip.Addr, 0, n)
	for tries := 0; len(out) < n; tries++ {
		if tries > 20*n+100 {
			return nil, fmt.Errorf("lab: population: only %d distinct addresses of %d after %d attempts", len(out), n, tries)
		}
		x := rng.Float64() * total
		cc := ccs[len(ccs)-1]
		for _, c := range ccs {
			if x < countries[c] {
				cc = c
				break
			}
			x -= countries[c]
		}
		cum := p.cum[cc]
		k := rng.Uint64N(cum[len(cum)-1])
		i := sort.Search(len(cum), func(i int) bool { return cum[i] > k })
		pfx := p.nets[cc][i]
		size := uint64(1) << (32 - pfx.Bits())
		host := uint64(0)
		if size > 2 {
			host = 1 + rng.Uint64N(size-2) // not the network's first or last address
		}
		b := pfx.Addr().As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		v += uint32(host)
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		if !geo.Public(a) || (exclude != nil && exclude(a)) {
			continue
		}
		if _, dup := seen[a]; dup {
			continue
		}
		seen[a] = struct{}{}
		out = append(out, a)
	}
	return out, nil
}

// BuiltinPopulation returns the population of the built-in table: four
// real networks per country for 40 countries, taken from the ip-location-db
// geo-whois-asn-country database (CC0), version 2.3.2026061719 — enough for
// a lab run without the geo data, not for attribution.
func BuiltinPopulation() *Population {
	nets := make(map[string][]netip.Prefix, len(builtinNetworks))
	for cc, list := range builtinNetworks {
		for _, s := range list {
			nets[cc] = append(nets[cc], netip.MustParsePrefix(s))
		}
	}
	return newPopulation("built-in table", nets)
}

// builtinNetworks are real IPv4 networks (/12 to /20) per country: for each
// country, four of the largest networks the ip-location-db
// geo-whois-asn-country mmdb (CC0, v2.3.2026061719) assigns to it, spread
// over its 40 largest.
var builtinNetworks = map[string][]string{
	"AR": {"186.128.0.0/12", "181.96.0.0/14", "190.172.0.0/14", "181.8.0.0/15"},
	"AT": {"77.116.0.0/14", "80.108.0.0/15", "62.218.0.0/16", "90.146.0.0/16"},
	"AU": {"49.176.0.0/12", "110.144.0.0/13", "14.200.0.0/14", "144.136.0.0/14"},
	"BD": {"114.130.0.0/16", "123.49.0.0/18", "182.160.96.0/19", "38.242.32.0/20"},
	"BE": {"109.128.0.0/12", "78.20.0.0/14", "57.82.0.0/15", "178.50.0.0/15"},
	"BR": {"152.240.0.0/12", "191.192.0.0/12", "179.176.0.0/13", "189.16.0.0/13"},
	"CA": {"70.64.0.0/12", "70.48.0.0/13", "173.176.0.0/13", "65.92.0.0/14"},
	"CH": {"85.0.0.0/13", "16.18.0.0/15", "57.224.0.0/15", "129.194.0.0/15"},
	"CN": {"1.80.0.0/12", "42.224.0.0/12", "106.32.0.0/12", "114.208.0.0/12"},
	"CZ": {"85.160.0.0/14", "109.80.0.0/15", "83.208.0.0/16", "156.137.0.0/16"},
	"DE": {"2.160.0.0/12", "141.64.0.0/12", "47.64.0.0/13", "95.112.0.0/13"},
	"EG": {"41.32.0.0/12", "102.40.0.0/13", "217.52.0.0/14", "41.176.0.0/16"},
	"ES": {"79.144.0.0/12", "95.16.0.0/13", "92.56.0.0/14", "37.222.0.0/15"},
	"FR": {"77.192.0.0/12", "109.208.0.0/12", "83.152.0.0/13", "2.4.0.0/14"},
	"GB": {"31.112.0.0/12", "2.216.0.0/13", "84.64.0.0/13", "31.72.0.0/14"},
	"HK": {"113.252.0.0/14", "58.176.0.0/15", "123.202.0.0/15", "4.252.0.0/16"},
	"ID": {"114.0.0.0/12", "108.136.0.0/15", "112.215.0.0/16", "149.113.0.0/16"},
	"IN": {"49.32.0.0/12", "42.104.0.0/13", "13.232.0.0/14", "115.96.0.0/14"},
	"IR": {"2.176.0.0/12", "5.238.0.0/15", "5.237.0.0/16", "93.110.0.0/16"},
	"IT": {"2.32.0.0/12", "5.88.0.0/13", "2.156.0.0/14", "80.180.0.0/14"},
	"JP": {"27.80.0.0/12", "125.192.0.0/12", "211.0.0.0/12", "1.72.0.0/13"},
	"KR": {"1.96.0.0/12", "61.96.0.0/12", "175.112.0.0/12", "58.72.0.0/13"},
	"MX": {"187.160.0.0/12", "148.216.0.0/14", "201.164.0.0/14", "187.188.0.0/15"},
	"NG": {"105.112.0.0/12", "41.71.128.0/17", "82.101.128.0/18", "197.149.64.0/18"},
	"NL": {"77.160.0.0/12", "145.24.0.0/13", "81.204.0.0/14", "94.168.0.0/14"},
	"PH": {"49.144.0.0/13", "1.37.0.0/16", "120.28.0.0/16", "61.9.0.0/17"},
	"PK": {"182.176.0.0/12", "116.58.0.0/17", "110.36.128.0/18", "175.107.0.0/18"},
	"PL": {"89.64.0.0/12", "217.96.0.0/14", "79.162.0.0/15", "37.47.0.0/16"},
	"RO": {"92.80.0.0/13", "86.124.0.0/15", "84.117.0.0/16", "188.173.0.0/16"},
	"RU": {"5.136.0.0/13", "37.192.0.0/14", "178.44.0.0/14", "37.112.0.0/15"},
	"SA": {"188.48.0.0/13", "176.16.0.0/14", "89.4.0.0/15", "188.248.0.0/15"},
	"SE": {"78.64.0.0/12", "16.168.0.0/14", "213.112.0.0/14", "92.34.0.0/15"},
	"SG": {"8.128.0.0/12", "8.208.0.0/15", "52.220.0.0/15", "203.116.0.0/15"},
	"TH": {"171.96.0.0/13", "49.48.0.0/15", "203.150.0.0/15", "61.19.0.0/16"},
	"TR": {"85.96.0.0/12", "176.88.0.0/14", "94.54.0.0/15", "31.206.0.0/16"},
	"TW": {"1.160.0.0/12", "27.240.0.0/13", "140.128.0.0/13", "111.80.0.0/14"},
	"UA": {"37.52.0.0/14", "5.207.0.0/16", "46.211.0.0/16", "159.224.0.0/16"},
	"US": {"3.48.0.0/12", "16.80.0.0/12", "23.112.0.0/12", "40.144.0.0/12"},
	"VN": {"27.64.0.0/12", "58.186.0.0/15", "125.212.128.0/17", "101.96.64.0/18"},
	"ZA": {"41.112.0.0/12", "197.168.0.0/13", "41.156.0.0/15", "152.110.0.0/15"},
}
