package app

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/record"
)

// TestRecordOriginOutcomes: what the origin wrapper records for each kind
// of answer, through the real shield and origin pool — the origin's own
// 5xx are origin errors, the proxy's own 503 (no origin capacity) is load
// shedding, a cache hit is passed but not an origin request, and a
// sensitive route counts its successful responses and bytes.
func TestRecordOriginOutcomes(t *testing.T) {
	o := newOrigin(t)
	release := make(chan struct{})
	held := make(chan struct{}, 1)
	o.handle("/slow", func(w http.ResponseWriter, r *http.Request) {
		held <- struct{}{}
		<-release
	})
	o.handle("/boom", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	})
	o.handle("/fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "bug", http.StatusInternalServerError) })
	o.handle("/cached", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=60")
		fmt.Fprint(w, "cacheable")
	})
	o.handle("/members/export", func(w http.ResponseWriter, r *http.Request) { w.Write(exportBody) })
	s := startShield(t, o, func(c *config.Config) {
		st := &c.Sites[0]
		st.MaxOriginConcurrency, st.MinOriginConcurrency, st.QueueTimeout = 1, 1, dur(50*time.Millisecond)
		st.SensitiveRoutes = []string{"/members/export"}
	})
	site := s.app.mitigation.rec.rec.Lookup("test")
	c := &http.Client{Transport: &http.Transport{DialContext: dialerFrom(trustedPeer).DialContext}, Timeout: 10 * time.Second}
	n := 0
	get := func(path string) hResult {
		n++ // every request from its own address: none is a known visitor (critical priority)
		return hGet(c, s.URL+path, "X-Forwarded-For", "198.51.100."+strconv.Itoa(n))
	}

	tests := []struct {
		name   string
		do     func() []int // the statuses the client saw
		want   record.Totals
		status []int
	}{
		{
			name: "origin 503 is an origin error", do: func() []int { return []int{get("/boom").Status} },
			status: []int{503}, want: record.Totals{Requests: 1, Passed: 1, OriginRequests: 1, OriginErrors: 1},
		},
		{
			name: "origin 500 is an origin error", do: func() []int { return []int{get("/fail").Status} },
			status: []int{500}, want: record.Totals{Requests: 1, Passed: 1, OriginRequests: 1, OriginErrors: 1},
		},
		{
			name: "no origin capacity is load shedding",
			do: func() []int {
				var wg sync.WaitGroup
				var slow int
				wg.Add(1)
				go func() { defer wg.Done(); slow = get("/slow").Status }()
				<-held
				shed := get("/").Status
				close(release)
				wg.Wait()
				return []int{slow, shed}
			},
			status: []int{200, 503}, want: record.Totals{Requests: 2, Passed: 1, Shed: 1, OriginRequests: 1},
		},
		{
			name: "a cache hit passes without an origin request",
			do:   func() []int { return []int{get("/cached").Status, get("/cached").Status} },
			// The first fills the cache from the origin, the second hits.
			status: []int{200, 200}, want: record.Totals{Requests: 2, Passed: 2, OriginRequests: 1},
		},
		{
			name:   "a sensitive route counts responses and bytes",
			do:     func() []int { return []int{get("/members/export").Status, get("/members/export").Status} },
			status: []int{200, 200}, want: record.Totals{Requests: 2, Passed: 2, OriginRequests: 2, RouteRequests: []uint64{2}, RouteBytes: []uint64{2 * uint64(len(exportBody))}},
		},
	}
	// Totals are per whole second: each case compares the totals since
	// the test began before and after it.
	began := time.Now()
	counts := func() [7]uint64 {
		tot := site.Totals(began, time.Now())
		return [...]uint64{tot.Requests, tot.Passed, tot.Shed, tot.OriginRequests, tot.OriginErrors, tot.RouteRequests[0], tot.RouteBytes[0]}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := counts()
			got := tc.do()
			for i := range tc.status {
				if got[i] != tc.status[i] {
					t.Fatalf("client saw %v, want %v", got, tc.status)
				}
			}
			if tc.want.RouteRequests == nil {
				tc.want.RouteRequests, tc.want.RouteBytes = []uint64{0}, []uint64{0}
			}
			g := counts()
			for i := range g {
				g[i] -= before[i]
			}
			w := [...]uint64{tc.want.Requests, tc.want.Passed, tc.want.Shed, tc.want.OriginRequests, tc.want.OriginErrors, tc.want.RouteRequests[0], tc.want.RouteBytes[0]}
			if g != w {
				t.Errorf("recorded requests, passed, shed, origin, origin errors, route requests, route bytes = %v, want %v", g, w)
			}
		})
	}
}

func TestTagTable(t *testing.T) {
	tests := []struct {
		name string
		set  []struct {
			id   string
			bits uint64
		}
		id   string
		want uint64
	}{
		{name: "unknown id", id: "a-1", want: 0},
		{name: "bits add up", set: []struct {
			id   string
			bits uint64
		}{{"a-1", tagCleared}, {"a-1", tagOrigin5xx}}, id: "a-1", want: tagCleared | tagOrigin5xx},
		{name: "another id's tags are not this one's", set: []struct {
			id   string
			bits uint64
		}{{"a-2", tagMember}}, id: "a-3", want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tt tagTable
			for _, s := range tc.set {
				tt.set(s.id, s.bits)
			}
			if got := tt.get(tc.id); got != tc.want {
				t.Errorf("get(%q) = %b, want %b", tc.id, got, tc.want)
			}
		})
	}
}

// BenchmarkOriginRecorder is the request path's recording cost around the
// origin: the pooled writer, two clock reads, a tag lookup and Record —
// against an origin handler that does nothing.
func BenchmarkOriginRecorder(b *testing.B) {
	r := newRecorder()
	sites, err := r.configure(&config.Config{Sites: []config.Site{{Name: "www", SensitiveRoutes: []string{"/members/export"}}}})
	if err != nil {
		b.Fatal(err)
	}
	h := sites[0].origin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	req, _ := http.NewRequest(http.MethodGet, "http://x/news/1", nil)
	req.Header.Set("X-Request-Id", "0123abcd-1f")
	w := nopWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

type nopWriter struct{ h http.Header }

func (w nopWriter) Header() http.Header         { return w.h }
func (w nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w nopWriter) WriteHeader(int)             {}

// TestRecordChallengeAndCohorts: a challenge page shown, solved, and the
// visitor's next request counted as a cleared visitor's; a member's
// requests as a member's — through the real shield in under-attack mode.
func TestRecordChallengeAndCohorts(t *testing.T) {
	o := newOrigin(t)
	o.handle("/login", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Portcullis-Member", "member-7")
		fmt.Fprintln(w, "welcome")
	})
	s := startDemoShield(t, o.URL, nil)
	site := s.app.mitigation.rec.rec.Lookup("test")
	member := newBrowser(t, s.URL, "81.2.1.10")
	if r := member.get("/login"); r.Status != http.StatusOK {
		t.Fatalf("login: %d", r.Status)
	}
	began := time.Now()
	s.underAttack(t, true)
	tests := []struct {
		name string
		do   func(t *testing.T)
		want func(tot record.Totals) bool
	}{
		{
			name: "a visitor solves the challenge, then browses as a cleared visitor",
			do:   func(t *testing.T) { newBrowser(t, s.URL, "81.2.2.20").passChallenge(t, "/") },
			want: func(tot record.Totals) bool {
				return tot.ChallengesShown == 1 && tot.ChallengesSolved == 1 && tot.Challenged == 1 && tot.ClearedRequests == 1 && tot.ClearedServed == 1
			},
		},
		{
			name: "a member passes on standing",
			do: func(t *testing.T) {
				for _, p := range []string{"/", "/account"} {
					if r := member.get(p); r.Status != http.StatusOK {
						t.Fatalf("member GET %s: %d", p, r.Status)
					}
				}
			},
			want: func(tot record.Totals) bool { return tot.MemberRequests == 2 && tot.MemberServed == 2 },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := site.Totals(began, time.Now())
			tc.do(t)
			after := site.Totals(began, time.Now())
			d := record.Totals{ChallengesShown: after.ChallengesShown - before.ChallengesShown, ChallengesSolved: after.ChallengesSolved - before.ChallengesSolved,
				Challenged: after.Challenged - before.Challenged, ClearedRequests: after.ClearedRequests - before.ClearedRequests,
				ClearedServed: after.ClearedServed - before.ClearedServed, MemberRequests: after.MemberRequests - before.MemberRequests,
				MemberServed: after.MemberServed - before.MemberServed}
			if !tc.want(d) {
				t.Errorf("recorded %+v", d)
			}
		})
	}
}
