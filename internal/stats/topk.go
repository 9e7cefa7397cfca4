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
	idx  map[K]int32
	heap []tkEntry[K]
	cap  int
	n    uint64 // total weight added
}

type tkEntry[K comparable] struct {
	key   K
	count uint64
	err   uint64
	slot  int32 // stable side-data index, reused by the key that evicts this one
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
	if k < 1 {
		k = 1
	}
	return &TopK[K]{idx: make(map[K]int32, k), heap: make([]tkEntry[K], 0, k), cap: k}
}

// Capacity returns k.
func (t *TopK[K]) Capacity() int { return t.cap }

// Total returns the total weight added since the last Reset.
func (t *TopK[K]) Total() uint64 { return t.n }

// Len returns the number of keys currently monitored.
func (t *TopK[K]) Len() int { return len(t.heap) }

// Add adds weight w to key k. It returns k's slot, an index in [0, k) that
// stays k's for as long as k is monitored (callers keep per-key side data,
// such as labels or sketches, in arrays indexed by slot), and fresh=true when
// k has just been given the slot (its side data must be reset).
func (t *TopK[K]) Add(k K, w uint64) (slot int32, fresh bool) {
	t.n += w
	if i, ok := t.idx[k]; ok {
		i := t.incr(int(i), w)
		return t.heap[i].slot, false
	}
	i := t.insert(k, w)
	return t.heap[i].slot, true
}

// Reset empties the summary, keeping its memory.
func (t *TopK[K]) Reset() {
	clear(t.idx)
	t.heap = t.heap[:0]
	t.n = 0
}

func (t *TopK[K]) incr(i int, w uint64) int {
	t.heap[i].count += w
	return t.down(i)
}

// insert adds a key not in the summary, evicting the minimum when full.
func (t *TopK[K]) insert(k K, w uint64) int {
	if len(t.heap) < t.cap {
		t.heap = append(t.heap, tkEntry[K]{key: k, count: w, slot: int32(len(t.heap))})
		i := len(t.heap) - 1
		t.idx[k] = int32(i)
		return t.up(i)
	}
	min := &t.heap[0]
	delete(t.idx, min.key)
	min.err = min.count
	min.count += w
	min.key = k
	t.idx[k] = 0
	return t.down(0)
}

func (t *TopK[K]) swap(i, j int) {
	h := t.heap
	h[i], h[j] = h[j], h[i]
	t.idx[h[i].key] = int32(i)
	t.idx[h[j].key] = int32(j)
}

func (t *TopK[K]) up(i int) int {
	for i > 0 {
		p := (i - 1) / 2
		if t.heap[p].count <= t.heap[i].count {
			break
		}
		t.swap(i, p)
		i = p
	}
	return i
}

func (t *TopK[K]) down(i int) int {
	n := len(t.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return i
		}
		m := l
		if r := l + 1; r < n && t.heap[r].count < t.heap[l].count {
			m = r
		}
		if t.heap[i].count <= t.heap[m].count {
			return i
		}
		t.swap(i, m)
		i = m
	}
}

// Top appends to dst up to n entries, heaviest first, and returns it.
func (t *TopK[K]) Top(dst []Counted[K], n int) []Counted[K] {
	start := len(dst)
	for _, e := range t.heap {
		dst = append(dst, Counted[K]{Key: e.key, Count: e.count, Err: e.err, slot: e.slot})
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
