package ratelimit

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// TestF21ConcurrencyCap: with a per-IP cap of 2 the third socket is refused,
// the first two are unaffected, and closing one frees its slot immediately.
func TestF21ConcurrencyCap(t *testing.T) {
	a, b := addrKey("127.0.0.2"), addrKey("127.0.0.3")
	type op struct {
		acquire bool // false: release
		k       Key
		want    bool // Acquire result
	}
	tests := []struct {
		name       string
		ops        []op
		wantLen    int
		wantUnbal  uint64
		wantInUseA int
	}{
		{name: "third socket refused", ops: []op{{true, a, true}, {true, a, true}, {true, a, false}}, wantLen: 1, wantInUseA: 2},
		{name: "other client unaffected", ops: []op{{true, a, true}, {true, a, true}, {true, b, true}, {true, b, true}, {true, b, false}}, wantLen: 2, wantInUseA: 2},
		{name: "closing frees the slot at once", ops: []op{{true, a, true}, {true, a, true}, {false, a, false}, {true, a, true}, {true, a, false}}, wantLen: 1, wantInUseA: 2},
		{name: "all closed: key forgotten", ops: []op{{true, a, true}, {true, a, true}, {false, a, false}, {false, a, false}}, wantLen: 0},
		{name: "unbalanced release ignored, cap intact", ops: []op{{false, a, false}, {true, a, true}, {true, a, true}, {true, a, false}}, wantLen: 1, wantUnbal: 1, wantInUseA: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewConcurrency(2, Options{MaxKeys: 64})
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range tt.ops {
				if !o.acquire {
					c.Release(o.k)
					continue
				}
				if got := c.Acquire(o.k); got != o.want {
					t.Fatalf("op %d: Acquire(%v) = %v, want %v", i, o.k, got, o.want)
				}
			}
			st := c.Stats()
			if c.Len() != tt.wantLen || st.Keys != tt.wantLen || st.Unbalanced != tt.wantUnbal || c.InUse(a) != tt.wantInUseA {
				t.Fatalf("Len %d InUse(a) %d stats %+v", c.Len(), c.InUse(a), st)
			}
		})
	}
}

// TestConcurrencyFull: keys are bounded; a full shard refuses new keys but
// never forgets a holder.
func TestConcurrencyFull(t *testing.T) {
	c, err := NewConcurrency(1, Options{MaxKeys: 8, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if !c.Acquire(v6Key(uint64(i))) {
			t.Fatalf("key %d refused below capacity", i)
		}
	}
	if c.Acquire(v6Key(8)) {
		t.Fatal("ninth key admitted past MaxKeys")
	}
	c.Release(v6Key(3))
	if !c.Acquire(v6Key(8)) {
		t.Fatal("ninth key refused after a release")
	}
	if st := c.Stats(); st.Full != 1 || st.Keys != 8 || st.InUse != 8 || st.Capacity != 8 {
		t.Fatalf("stats %+v", st)
	}
}

// TestConcurrencyRace: many goroutines acquire and release on a few keys; the
// number actually held never exceeds the cap and everything drains to zero.
func TestConcurrencyRace(t *testing.T) {
	const limit = 3
	c, err := NewConcurrency(limit, Options{MaxKeys: 64, Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	keys := []Key{addrKey("192.0.2.1"), addrKey("192.0.2.2"), addrKey("2001:db8::1"), addrKey("2001:db8::2")}
	var held [4]atomic.Int32
	var over atomic.Bool
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 500 {
				j := (g + i) % len(keys)
				if !c.Acquire(keys[j]) {
					continue
				}
				if held[j].Add(1) > limit {
					over.Store(true)
				}
				held[j].Add(-1)
				c.Release(keys[j])
			}
		})
	}
	wg.Wait()
	if over.Load() {
		t.Fatal("more than the cap held at once")
	}
	if st := c.Stats(); c.Len() != 0 || st.InUse != 0 || st.Unbalanced != 0 || st.Acquired == 0 {
		t.Fatalf("after drain: Len %d stats %+v", c.Len(), st)
	}
}

func TestConcurrencySetMax(t *testing.T) {
	c, err := NewConcurrency(2, Options{MaxKeys: 8})
	if err != nil {
		t.Fatal(err)
	}
	k := addrKey("192.0.2.1")
	c.Acquire(k)
	c.Acquire(k)
	if err := c.SetMax(1); err != nil {
		t.Fatal(err)
	}
	if c.Acquire(k) || c.InUse(k) != 2 {
		t.Fatal("lowered cap: holders must stay, new acquires fail")
	}
	c.Release(k)
	if c.Acquire(k) {
		t.Fatal("still at the lowered cap after one release")
	}
	c.Release(k)
	if !c.Acquire(k) {
		t.Fatal("below the lowered cap but refused")
	}
	for _, bad := range []int{0, -1, 1<<30 + 1} {
		if err := c.SetMax(bad); !errors.Is(err, ErrInvalidOptions) {
			t.Fatalf("SetMax(%d) = %v", bad, err)
		}
		if _, err := NewConcurrency(bad, Options{}); !errors.Is(err, ErrInvalidOptions) {
			t.Fatalf("NewConcurrency(%d) = %v", bad, err)
		}
	}
}
