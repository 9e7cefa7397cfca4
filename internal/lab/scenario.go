package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/portcullis/portcullis/internal/lab/attack"
	"github.com/portcullis/portcullis/lab/scenarios"
)

// Scenario is one lab scenario file (lab/scenarios/NAME.yaml, or a user
// file). Decoding is strict: an unknown key is an error.
//
//	name: get-flood
//	description: one line
//	phases: {before: 10s, attack: 20s, after: 10s}
//	legit: {visitors: 40, members: 10, feed_readers: 4, api_clients: 4, countries: {NL: 0.8, DE: 0.2}}
//	attacks: [ <attack.Spec>, ... ]
//	shield: {detect: {tick: 100ms}}
type Scenario struct {
	// Name identifies the scenario: lowercase letters, digits and dashes.
	Name string `yaml:"name"`
	// Description is one line for `lab list`.
	Description string `yaml:"description"`
	// Phases are the lengths of the three phases.
	Phases Phases `yaml:"phases"`
	// Legit sizes the legitimate traffic models, which run in all phases.
	Legit Legit `yaml:"legit"`
	// Attacks are the attack vectors, each started Start after the attack
	// phase begins; Start+Duration must fit in the attack phase.
	Attacks []attack.Spec `yaml:"attacks"`
	// Shield holds Portcullis configuration overrides for self-contained
	// mode, deep-merged over the lab's generated configuration (see
	// ShieldConfig): maps merge key by key, anything else replaces. The key
	// "site" (singular) merges into the lab's one site.
	Shield map[string]any `yaml:"shield"`
}

// Phases are the lengths of a run's phases: legitimate traffic alone
// (Before), with the attacks (Attack), and alone again (After).
type Phases struct {
	Before time.Duration `yaml:"before"`
	Attack time.Duration `yaml:"attack"`
	After  time.Duration `yaml:"after"`
}

// Total is the length of the whole run.
func (p Phases) Total() time.Duration { return p.Before + p.Attack + p.After }

// Legit sizes the legitimate traffic models; each count is a number of
// concurrent simulated people, each with a stable simulated address drawn
// from Countries.
type Legit struct {
	// Visitors browse pages with their assets, think, and now and then
	// POST a login or donation form.
	Visitors int `yaml:"visitors"`
	// Members log in once (the origin names them in the member header,
	// the shield gives them standing) and browse member pages.
	Members int `yaml:"members"`
	// FeedReaders poll /feed.xml with conditional GETs.
	FeedReaders int `yaml:"feed_readers"`
	// APIClients poll JSON under /api/v1/.
	APIClients int `yaml:"api_clients"`
	// Countries weights the countries of the simulated addresses, ISO
	// 3166-1 alpha-2 codes to positive weights (normalised).
	Countries map[string]float64 `yaml:"countries"`
}

// Total is the number of simulated legitimate clients.
func (l Legit) Total() int { return l.Visitors + l.Members + l.FeedReaders + l.APIClients }

// Limits on scenario values, so a typo cannot start a runaway run.
const (
	MaxRunLength   = 15 * time.Minute // Phases.Total
	MaxLegit       = 5000             // Legit.Total
	MaxAttackCount = 16               // len(Attacks)
	MaxSources     = 1_000_000        // per attack
)

// ErrScenario is wrapped by every validation error of a scenario.
var ErrScenario = errors.New("lab: invalid scenario")

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Validate checks the scenario and the shield configuration it implies
// (decoded and validated by the config package). Errors wrap ErrScenario
// and name the field, e.g. "attacks[1].start".
func (s *Scenario) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrScenario, field, fmt.Sprintf(format, args...)))
	}
	if !nameRE.MatchString(s.Name) {
		bad("name", "%q: want lowercase letters, digits and dashes", s.Name)
	}
	if strings.ContainsAny(s.Description, "\r\n") {
		bad("description", "must be one line")
	}
	for _, p := range []struct {
		f string
		d time.Duration
	}{{"phases.before", s.Phases.Before}, {"phases.attack", s.Phases.Attack}, {"phases.after", s.Phases.After}} {
		if p.d <= 0 {
			bad(p.f, "must be > 0")
		}
	}
	if t := s.Phases.Total(); t > MaxRunLength {
		bad("phases", "total %s exceeds %s", t, MaxRunLength)
	}
	for _, c := range []struct {
		f string
		n int
	}{{"legit.visitors", s.Legit.Visitors}, {"legit.members", s.Legit.Members}, {"legit.feed_readers", s.Legit.FeedReaders}, {"legit.api_clients", s.Legit.APIClients}} {
		if c.n < 0 {
			bad(c.f, "must be ≥ 0")
		}
	}
	if n := s.Legit.Total(); n <= 0 || n > MaxLegit {
		bad("legit", "%d clients in total: want 1..%d (the score is about them)", n, MaxLegit)
	}
	if err := validCountries(s.Legit.Countries); err != nil {
		bad("legit.countries", "%v", err)
	}
	if len(s.Attacks) > MaxAttackCount {
		bad("attacks", "%d vectors: at most %d", len(s.Attacks), MaxAttackCount)
	}
	for i, a := range s.Attacks {
		f := fmt.Sprintf("attacks[%d]", i)
		if err := a.Validate(); err != nil {
			bad(f, "%v", err)
		}
		if a.Start < 0 {
			bad(f+".start", "must be ≥ 0")
		}
		if a.Start+a.Duration > s.Phases.Attack {
			bad(f+".duration", "start %s + duration %s runs past the attack phase (%s)", a.Start, a.Duration, s.Phases.Attack)
		}
		if a.Sources < 0 || a.Sources > MaxSources {
			bad(f+".sources", "%d: want 0..%d (0 = one source)", a.Sources, MaxSources)
		}
		if len(a.Countries) > 0 {
			if err := validCountries(a.Countries); err != nil {
				bad(f+".countries", "%v", err)
			}
		}
	}
	if len(errs) == 0 {
		if _, err := s.ShieldConfig(ShieldParams{Listen: "127.0.0.1:8080", Admin: "127.0.0.1:9090", Origin: "http://127.0.0.1:3000", DataDir: os.TempDir()}); err != nil {
			bad("shield", "%v", err)
		}
	}
	return errors.Join(errs...)
}

func validCountries(m map[string]float64) error {
	if len(m) == 0 {
		return errors.New("at least one country with a positive weight")
	}
	for cc, w := range m {
		if len(cc) != 2 || strings.ToUpper(cc) != cc || strings.IndexFunc(cc, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0 {
			return fmt.Errorf("%q is not an ISO 3166-1 alpha-2 code (e.g. NL)", cc)
		}
		if !(w > 0) {
			return fmt.Errorf("%s: weight %v must be > 0", cc, w)
		}
	}
	return nil
}

// Parse strictly decodes a scenario file (file names it in errors) and
// validates it. Errors: a decoding error with line and column, or
// validation errors wrapping ErrScenario.
func Parse(file string, data []byte) (*Scenario, error) {
	var s Scenario
	if err := yaml.UnmarshalWithOptions(data, &s, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("lab: %s: %w", file, err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("lab: %s: %w", file, err)
	}
	return &s, nil
}

// Load returns the shipped scenario called nameOrPath, or, when nameOrPath
// contains a slash or ends in .yaml/.yml, the scenario in that file.
// Errors: unknown name (listing the shipped ones), unreadable file, or
// Parse's errors.
func Load(nameOrPath string) (*Scenario, error) {
	isFile := strings.HasSuffix(nameOrPath, ".yaml") || strings.HasSuffix(nameOrPath, ".yml") || strings.ContainsRune(nameOrPath, '/')
	if isFile {
		data, err := os.ReadFile(nameOrPath)
		if err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		return Parse(nameOrPath, data)
	}
	data, err := fs.ReadFile(scenarios.FS(), nameOrPath+".yaml")
	if err != nil {
		names, _ := Shipped()
		return nil, fmt.Errorf("lab: no scenario %q (shipped: %s; or give a FILE.yaml)", nameOrPath, strings.Join(names, ", "))
	}
	return Parse(path.Join("lab/scenarios", nameOrPath+".yaml"), data)
}

// Shipped returns the names of the embedded scenarios, sorted.
func Shipped() ([]string, error) {
	ents, err := fs.ReadDir(scenarios.FS(), ".")
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	var names []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}
