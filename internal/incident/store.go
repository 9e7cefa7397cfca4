package incident

import (
	"context"
	"errors"
	"time"
)

// Errors returned by every Backend; match them with errors.Is.
var (
	// ErrNotFound: no incident with that id (or none matching).
	ErrNotFound = errors.New("incident: not found")
	// ErrExists: Create with an id already stored.
	ErrExists = errors.New("incident: already exists")
	// ErrInvalid: an incident without id, site or start time.
	ErrInvalid = errors.New("incident: invalid")
)

// Backend persists incidents and their timelines. Implementations: Store
// (SQLite, crash-safe) and MemoryStore. All methods are safe for concurrent
// use. Timelines are append-only: an event, once stored, is never changed or
// removed except with its incident (Delete, Prune).
type Backend interface {
	// Create stores a new incident with its timeline; ErrExists if the id
	// is taken, ErrInvalid if ID, Site or Start is missing.
	Create(ctx context.Context, in *Incident) error
	// Update replaces the incident's record (figures, vectors, attribution,
	// End) and appends the events of in.Timeline not stored yet (an event
	// is identified by its content, so events added with AppendEvent are
	// kept). ErrNotFound if the id is unknown.
	Update(ctx context.Context, in *Incident) error
	// AppendEvent adds one timeline entry (an operator action, a decision)
	// to incident id; ErrNotFound if unknown. An identical event already
	// present is not added twice.
	AppendEvent(ctx context.Context, id string, e Event) error
	// CloseIncident is Update for an incident that has ended: in.End must
	// be set (ErrInvalid otherwise).
	CloseIncident(ctx context.Context, in *Incident) error
	// Get returns the incident with its whole timeline, in time order
	// (events at the same time in the order they were stored).
	Get(ctx context.Context, id string) (*Incident, error)
	// List returns the incidents matching f, newest start first, without
	// their timelines (Timeline is nil).
	List(ctx context.Context, f Filter) ([]*Incident, error)
	// Latest returns the incident with the latest start for site ("" = any
	// site), with its timeline; ErrNotFound if there is none.
	Latest(ctx context.Context, site string) (*Incident, error)
	// Delete removes an incident and its timeline; ErrNotFound if unknown.
	Delete(ctx context.Context, id string) error
	// Prune removes closed incidents that ended before olderThan, with
	// their timelines, and returns how many it removed. Open incidents are
	// never pruned.
	Prune(ctx context.Context, olderThan time.Time) (int, error)
}

// Filter selects incidents for List. Zero fields do not filter.
type Filter struct {
	// Site matches the incident's site exactly.
	Site string
	// Since and Until bound the start time: Since ≤ Start < Until.
	Since, Until time.Time
	// Open: only incidents that have not ended; Closed: only those that
	// have. Both false: all.
	Open, Closed bool
	// Vector matches incidents that saw this vector ("syn_flood").
	Vector string
	// Limit caps the number returned (0: no limit).
	Limit int
}

// match reports whether in passes f (for backends that filter in Go).
func (f *Filter) match(in *Incident) bool {
	if f.Site != "" && in.Site != f.Site {
		return false
	}
	if !f.Since.IsZero() && in.Start.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !in.Start.Before(f.Until) {
		return false
	}
	if f.Open && !in.Open() || f.Closed && in.Open() {
		return false
	}
	if f.Vector != "" {
		found := false
		for _, v := range in.Vectors {
			if v == f.Vector {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func validate(in *Incident) error {
	if in == nil || in.ID == "" || in.Site == "" || in.Start.IsZero() {
		return ErrInvalid
	}
	return nil
}

// Sink adapts a Backend to the detection engine's sink interface (package
// detect: Open, Update, Close with a full incident copy each time). Open
// replaces an incident stored under the same id — replaying the same file
// twice into one data directory yields the same ids, and the second run's
// record is the one to keep.
type Sink struct {
	B Backend
}

// Open stores a newly opened incident, replacing one with the same id.
func (s Sink) Open(ctx context.Context, in *Incident) error {
	err := s.B.Create(ctx, in)
	if errors.Is(err, ErrExists) {
		if err = s.B.Delete(ctx, in.ID); err == nil {
			err = s.B.Create(ctx, in)
		}
	}
	return err
}

// Update stores the incident's new figures and timeline entries; an
// incident the backend does not have yet (the store was attached mid-attack)
// is created.
func (s Sink) Update(ctx context.Context, in *Incident) error {
	err := s.B.Update(ctx, in)
	if errors.Is(err, ErrNotFound) {
		err = s.B.Create(ctx, in)
	}
	return err
}

// Close stores the ended incident (created if unknown, as for Update).
func (s Sink) Close(ctx context.Context, in *Incident) error {
	err := s.B.CloseIncident(ctx, in)
	if errors.Is(err, ErrNotFound) {
		err = s.B.Create(ctx, in)
	}
	return err
}
