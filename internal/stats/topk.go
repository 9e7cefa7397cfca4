package stats

import (
	"cmp"
	"slices"
)

// TopK is a space-saving heavy-hitter summary (Metwally, Agrawal and El
// Abbadi, "Efficient Computation of Frequent and Top-k Elements in Data
// Streams", ICDT 2005) over comparable keys, with a fixed capacity of k
// counters kept in a binary min-heap.
//
// Guarantees (from the paper): every key whose true weight exceeds N/k,
// where N is the total weight added, is in the summary; each reported count
// over-estimates the true weight by at most its Err, and Err ≤ N/k. Memory is
// O(k) whatever the number of distinct keys. Add is O(log k). Not safe for
// concurrent use.
type TopK[K comparable] struct {
	idx     map[K]int32  // key → slot
	entries []tkEntry[K] // by slot
	heap    []int32      // slots, min-heap on count
	pos     []int32      // slot → index in heap
	n       uint64       // total weight added
}

type tkEntry[K comparable] struct {
	key   K
	count uint64
	err   uint64
}

// Counted is one heavy-hitter entry: a key, its estimated weight (requests
// or packets, scaled by any sampling rate) and the maximum over-estimate
// (the true weight lies in [Count-Err, Count]).
type Counted[K comparable] struct {
	Key   K
	Count uint64
	Err   uint64
	slot  int32
}

// NewTopK returns an empty summary with k counters (k ≥ 1).
func NewTopK[K comparable](k int) *TopK[K] {
	k = max(k, 1)
	return &TopK[K]{
		idx:     make(map[K]int32, k),
		entries: make([]tkEntry[K], 0, k),
		heap:    make([]int32, 0, k),
		pos:     make([]int32, k),
	}
}

// Capacity returns k.
func (t *TopK[K]) Capacity() int { return cap(t.entries) }

// Total returns the total weight added since the last Reset.
func (t *TopK[K]) Total() uint64 { return t.n }

// Len returns the number of keys currently monitored.
func (t *TopK[K]) Len() int { return len(t.entries) }

// Add adds weight w to key k. It returns k's slot, an index in [0, k) that
// stays k's for as long as k is monitored (callers keep per-key side data,
// such as labels or sketches, in arrays indexed by slot), and fresh=true when
// k has just been given the slot (its side data must be reset).
func (t *TopK[K]) Add(k K, w uint64) (slot int32, fresh bool) {
	t.n += w
	if s, ok := t.idx[k]; ok {
		t.entries[s].count += w
		t.down(int(t.pos[s]))
		return s, false
	}
	if len(t.entries) < cap(t.entries) {
		s := int32(len(t.entries))
		t.entries = append(t.entries, tkEntry[K]{key: k, count: w})
		t.idx[k] = s
		t.heap = append(t.heap, s)
		t.pos[s] = int32(len(t.heap) - 1)
		t.up(len(t.heap) - 1)
		return s, true
	}
	// Evict the minimum (Metwally et al.: the newcomer inherits its count as
	// the error bound).
	s := t.heap[0]
	e := &t.entries[s]
	delete(t.idx, e.key)
	e.err = e.count
	e.count += w
	e.key = k
	t.idx[k] = s
	t.down(0)
	return s, true
}

// Reset empties the summary, keeping its memory.
func (t *TopK[K]) Reset() {
	clear(t.idx)
	t.entries = t.entries[:0]
	t.heap = t.heap[:0]
	t.n = 0
}

func (t *TopK[K]) less(i, j int) bool {
	return t.entries[t.heap[i]].count < t.entries[t.heap[j]].count
}

func (t *TopK[K]) swap(i, j int) {
	h := t.heap
	h[i], h[j] = h[j], h[i]
	t.pos[h[i]] = int32(i)
	t.pos[h[j]] = int32(j)
}

func (t *TopK[K]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !t.less(i, p) {
			return
		}
		t.swap(i, p)
		i = p
	}
}

func (t *TopK[K]) down(i int) {
	n := len(t.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && t.less(r, l) {
			m = r
		}
		if !t.less(m, i) {
			return
		}
		t.swap(i, m)
		i = m
	}
}

// Top appends to dst up to n entries, heaviest first, and returns it.
func (t *TopK[K]) Top(dst []Counted[K], n int) []Counted[K] {
	start := len(dst)
	for i, e := range t.entries {
		dst = append(dst, Counted[K]{Key: e.key, Count: e.count, Err: e.err, slot: int32(i)})
	}
	sortCounted(dst[start:])
	if len(dst)-start > n {
		dst = dst[:start+n]
	}
	return dst
}

// sortCounted sorts by count descending; the sort is stable so equal counts
// keep a deterministic order.
func sortCounted[K comparable](s []Counted[K]) {
	slices.SortStableFunc(s, func(a, b Counted[K]) int { return cmp.Compare(b.Count, a.Count) })
}
