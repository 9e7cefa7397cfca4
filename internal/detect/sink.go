package detect

import (
	"context"
	"slices"
	"sync"

	"github.com/portcullis/portcullis/internal/incident"
)

// Sink persists incidents. The engine calls Open when a site enters
// "attack", Update when the incident changes (new vector, attack ↔
// recovering, and at most every Config.UpdateEvery otherwise) and Close
// when it returns to normal. Each call gets a fresh deep copy the sink may
// keep. Calls come from the goroutine running Engine.Step; an error is
// returned from Step (wrapped) and detection carries on.
type Sink interface {
	Open(ctx context.Context, in *incident.Incident) error
	Update(ctx context.Context, in *incident.Incident) error
	Close(ctx context.Context, in *incident.Incident) error
}

// MemorySink keeps the latest copy of every incident in memory, in the order
// they were opened. It is safe for concurrent use; replay and tests use it.
type MemorySink struct {
	mu    sync.Mutex
	order []string
	byID  map[string]*incident.Incident
	calls []string // "open:<id>", "update:<id>", "close:<id>"
}

func (m *MemorySink) put(kind string, in *incident.Incident) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byID == nil {
		m.byID = map[string]*incident.Incident{}
	}
	if _, ok := m.byID[in.ID]; !ok {
		m.order = append(m.order, in.ID)
	}
	m.byID[in.ID] = in
	m.calls = append(m.calls, kind+":"+in.ID)
}

// Open implements Sink.
func (m *MemorySink) Open(_ context.Context, in *incident.Incident) error {
	m.put("open", in)
	return nil
}

// Update implements Sink.
func (m *MemorySink) Update(_ context.Context, in *incident.Incident) error {
	m.put("update", in)
	return nil
}

// Close implements Sink.
func (m *MemorySink) Close(_ context.Context, in *incident.Incident) error {
	m.put("close", in)
	return nil
}

// Incidents returns the incidents in the order they were opened (latest
// copies).
func (m *MemorySink) Incidents() []*incident.Incident {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*incident.Incident, 0, len(m.order))
	for _, id := range m.order {
		out = append(out, m.byID[id])
	}
	return out
}

// Calls returns the sequence of sink calls as "open:<id>", "update:<id>"
// and "close:<id>".
func (m *MemorySink) Calls() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls)
}

// cloneIncident returns a deep copy of in.
func cloneIncident(in *incident.Incident) *incident.Incident {
	c := *in
	c.Vectors = slices.Clone(in.Vectors)
	c.TopCountries = slices.Clone(in.TopCountries)
	c.TopASNs = slices.Clone(in.TopASNs)
	c.TopPrefixes = slices.Clone(in.TopPrefixes)
	c.TopPaths = slices.Clone(in.TopPaths)
	c.TopUserAgents = slices.Clone(in.TopUserAgents)
	c.Timeline = make([]incident.Event, len(in.Timeline))
	for i, e := range in.Timeline {
		e.Evidence = cloneMap(e.Evidence)
		c.Timeline[i] = e
	}
	return &c
}

func cloneMap(m map[string]float64) map[string]float64 {
	if m == nil {
		return nil
	}
	c := make(map[string]float64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
