package incident

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemoryStore is a Backend kept in memory (tests, dry runs). It stores deep
// copies, so callers may reuse what they pass in and change what they get.
type MemoryStore struct {
	mu   sync.Mutex
	byID map[string]*memEntry
}

type memEntry struct {
	in      *Incident // record without timeline
	events  []Event
	digests map[string]bool
}

var _ Backend = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{byID: map[string]*memEntry{}}
}

// clone deep-copies in through its JSON form (the form Store keeps), so
// both backends return the same values.
func clone(in *Incident) (*Incident, error) {
	rec, _, err := record(in)
	if err != nil {
		return nil, err
	}
	return decodeRecord(in.ID, string(rec))
}

func (m *MemoryStore) appendLocked(e *memEntry, events []Event) error {
	for i := range events {
		ev := events[i]
		digest, body, err := eventDigest(&ev)
		if err != nil {
			return err
		}
		if e.digests[digest] {
			continue
		}
		var c Event
		if err := json.Unmarshal(body, &c); err != nil {
			return fmt.Errorf("incident: copy event: %w", err)
		}
		e.digests[digest] = true
		e.events = append(e.events, c)
	}
	return nil
}

// Create implements Backend.
func (m *MemoryStore) Create(_ context.Context, in *Incident) error {
	if err := validate(in); err != nil {
		return err
	}
	c, err := clone(in)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byID[in.ID]; ok {
		return fmt.Errorf("incident: create %s: %w", in.ID, ErrExists)
	}
	e := &memEntry{in: c, digests: map[string]bool{}}
	if err := m.appendLocked(e, in.Timeline); err != nil {
		return err
	}
	m.byID[in.ID] = e
	return nil
}

// Update implements Backend.
func (m *MemoryStore) Update(_ context.Context, in *Incident) error {
	if err := validate(in); err != nil {
		return err
	}
	return m.update("update", in)
}

func (m *MemoryStore) update(op string, in *Incident) error {
	c, err := clone(in)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byID[in.ID]
	if !ok {
		return fmt.Errorf("incident: %s %s: %w", op, in.ID, ErrNotFound)
	}
	e.in = c
	return m.appendLocked(e, in.Timeline)
}

// CloseIncident implements Backend.
func (m *MemoryStore) CloseIncident(_ context.Context, in *Incident) error {
	if err := validate(in); err != nil {
		return err
	}
	if in.End.IsZero() {
		return fmt.Errorf("incident: close %s without an end time: %w", in.ID, ErrInvalid)
	}
	return m.update("close", in)
}

// AppendEvent implements Backend.
func (m *MemoryStore) AppendEvent(_ context.Context, id string, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byID[id]
	if !ok {
		return fmt.Errorf("incident: append event to %s: %w", id, ErrNotFound)
	}
	return m.appendLocked(e, []Event{ev})
}

func (m *MemoryStore) getLocked(e *memEntry, timeline bool) *Incident {
	c, _ := clone(e.in) // e.in was encoded once already
	if timeline {
		c.Timeline = make([]Event, 0, len(e.events))
		for _, ev := range e.events {
			b, _ := json.Marshal(ev)
			var cp Event
			_ = json.Unmarshal(b, &cp)
			c.Timeline = append(c.Timeline, cp)
		}
		// Time order, stable for equal times (insertion order).
		slices.SortStableFunc(c.Timeline, func(a, b Event) int { return a.Time.Compare(b.Time) })
	}
	return c
}

// Get implements Backend.
func (m *MemoryStore) Get(_ context.Context, id string) (*Incident, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byID[id]
	if !ok {
		return nil, fmt.Errorf("incident: get %s: %w", id, ErrNotFound)
	}
	return m.getLocked(e, true), nil
}

func newestFirst(a, b *Incident) int {
	if c := b.Start.Compare(a.Start); c != 0 {
		return c
	}
	return cmp.Compare(b.ID, a.ID)
}

// List implements Backend.
func (m *MemoryStore) List(_ context.Context, f Filter) ([]*Incident, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Incident
	for _, e := range m.byID {
		if f.match(e.in) {
			out = append(out, m.getLocked(e, false))
		}
	}
	slices.SortFunc(out, newestFirst)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// Latest implements Backend.
func (m *MemoryStore) Latest(_ context.Context, site string) (*Incident, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var best *memEntry
	for _, e := range m.byID {
		if site != "" && e.in.Site != site {
			continue
		}
		if best == nil || newestFirst(e.in, best.in) < 0 {
			best = e
		}
	}
	if best == nil {
		return nil, fmt.Errorf("incident: latest for site %q: %w", site, ErrNotFound)
	}
	return m.getLocked(best, true), nil
}

// Delete implements Backend.
func (m *MemoryStore) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byID[id]; !ok {
		return fmt.Errorf("incident: delete %s: %w", id, ErrNotFound)
	}
	delete(m.byID, id)
	return nil
}

// Prune implements Backend.
func (m *MemoryStore) Prune(_ context.Context, olderThan time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, e := range m.byID {
		if !e.in.Open() && e.in.End.Before(olderThan) {
			delete(m.byID, id)
			n++
		}
	}
	return n, nil
}
