package app

// The incident record of a live flood (issue 5, "make the incident record
// complete"): the shield in front of a real origin on loopback, a member
// and a cleared visitor browsing through peace time, a bounded flood from
// simulated sources (X-Forwarded-For from the trusted peer) and the
// recovery; then the closed incident in the store must carry a per-second
// series whose verdicts add up to what the clients saw, the impact on the
// member and the visitor, and the integrity evidence of the sensitive
// route the member keeps fetching.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/report"
)

// seen is one response a test client got.
type seen struct {
	at     time.Time // when the response (or the error) arrived
	status int       // 0: transport error (a dropped connection)
}

// seenLog collects what the clients saw.
type seenLog struct {
	mu   sync.Mutex
	recs []seen
}

func (l *seenLog) add(r hResult) {
	s := seen{at: time.Now(), status: r.Status}
	if r.Err != nil {
		s.status = 0
	}
	l.mu.Lock()
	l.recs = append(l.recs, s)
	l.mu.Unlock()
}

// tally counts the responses that arrived in [from, to) by the verdict
// class a client can tell: passed (the origin's answer, 2xx–4xx other than
// the shield's 403 and 429, and 502/504), blocked (403 or a dropped
// connection), throttled (429), challenged or shed (503).
func (l *seenLog) tally(from, to time.Time) (passed, blocked, throttled, refused503 int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.recs {
		if s.at.Before(from) || !s.at.Before(to) {
			continue
		}
		switch s.status {
		case 0, http.StatusForbidden:
			blocked++
		case http.StatusTooManyRequests:
			throttled++
		case http.StatusServiceUnavailable:
			refused503++
		default:
			passed++
		}
	}
	return
}

// exportBody is the sensitive route's answer (a members' export).
var exportBody = bytes.Repeat([]byte("member,email\n"), 200)

func TestIncidentRecordLiveFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("live flood test: -short")
	}
	tests := []struct {
		name       string
		floodFor   time.Duration
		floodRPS   int // paced: the incident lasts about floodFor
		floodAddrs int
		workers    int
	}{
		{name: "2,000 sources, 600/s for 8 s", floodFor: 8 * time.Second, floodRPS: 600, floodAddrs: 2000, workers: 12},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newOrigin(t)
			o.recording.Store(false) // thousands of flood requests: keep memory flat
			o.handle("/login", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Portcullis-Member", "member-1")
				fmt.Fprintln(w, "welcome")
			})
			o.handle("/members/export", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/csv")
				w.Write(exportBody)
			})
			// The flood's networks (20.0.0.0/8, see floodAddr) in an ASN
			// table, so the incident names them.
			asnCSV := filepath.Join(t.TempDir(), "asn.csv")
			if err := os.WriteFile(asnCSV, []byte("20.0.0.0,20.255.255.255,64500,EXAMPLE-FLOOD-NET\n81.2.0.0,81.2.255.255,64501,EXAMPLE-HOME-ISP\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			s := startDemoShield(t, o.URL, func(c *config.Config) {
				c.Geo.ASNCSV = []string{asnCSV}
				c.Sites[0].SensitiveRoutes = []string{"/members/export"}
				c.Detect.StaticRPS = 150
			})
			var clients seenLog

			// A member signs in; a visitor earns a clearance (under-attack
			// mode switched on for a moment by the operator).
			member := newBrowser(t, s.URL, "81.2.1.10")
			if r := member.get("/login"); r.Status != http.StatusOK {
				t.Fatalf("login: %d", r.Status)
			}
			visitor := newBrowser(t, s.URL, "81.2.2.20")
			s.underAttack(t, true)
			visitor.passChallenge(t, "/")
			s.underAttack(t, false)

			stop := make(chan struct{})
			var wg sync.WaitGroup
			browse := func(b *browser, pages []string) {
				defer wg.Done()
				tk := time.NewTicker(250 * time.Millisecond)
				defer tk.Stop()
				for i := 0; ; i++ {
					clients.add(b.get(pages[i%len(pages)]))
					select {
					case <-stop:
						return
					case <-tk.C:
					}
				}
			}
			wg.Add(2)
			go browse(member, []string{"/", "/members/export", "/account", "/news/1"})
			go browse(visitor, []string{"/", "/about", "/events"})

			// Peace time: the baseline of the sensitive route.
			<-time.After(5 * time.Second)

			// The flood: paced, bounded in time and requests.
			var sent atomic.Int64
			start := time.Now()
			total := int(tc.floodFor.Seconds() * float64(tc.floodRPS))
			every := time.Second / time.Duration(tc.floodRPS)
			var fw sync.WaitGroup
			for w := range tc.workers {
				fw.Add(1)
				go func() {
					defer fw.Done()
					tr := &http.Transport{DialContext: dialerFrom(trustedPeer).DialContext, MaxIdleConnsPerHost: 4, DisableCompression: true}
					defer tr.CloseIdleConnections()
					c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
					for i := w; i < total; i += tc.workers {
						if wait := time.Until(start.Add(time.Duration(i) * every)); wait > 0 {
							<-time.After(wait)
						}
						sent.Add(1)
						clients.add(hGet(c, s.URL+fmt.Sprintf("/?p=%d", i), "X-Forwarded-For", floodAddr(i%tc.floodAddrs),
							"User-Agent", "Mozilla/5.0 (compatible; flood/1.0)", "Accept", "*/*"))
					}
				}()
			}
			fw.Wait()
			t.Logf("flood: %d requests in %v", sent.Load(), time.Since(start).Round(time.Millisecond))

			// An operator acts while the incident is open: the action lands
			// in its timeline with who and why.
			if code := s.adminJSON(t, http.MethodPost, "/api/v1/decisions", DecisionRequest{Action: "block", Scope: "prefix",
				Value: "198.51.100.0/24", TTL: "10m", Reason: "C2 range from the hosting provider", Who: "alice"}, nil); code != http.StatusCreated {
				t.Fatalf("operator block: %d", code)
			}

			// Recovery: the member and the visitor browse on until the
			// incident has closed.
			in := waitClosedIncident(t, s.app.store, "test", 60*time.Second)
			close(stop)
			wg.Wait()
			t.Logf("incident %s: %v → %v, vectors %v, %d requests", in.ID, in.Start.Format(time.TimeOnly), in.End.Format(time.TimeOnly), in.Vectors, in.Requests)

			named := false
			for _, c := range in.TopASNs {
				named = named || (c.Key == "AS64500" && c.Name == "EXAMPLE-FLOOD-NET")
			}
			if !named {
				t.Errorf("the flood's network is not named in the incident: %+v", in.TopASNs)
			}
			operatorSeen := false
			for _, e := range in.Timeline {
				if e.Kind == "decision" && strings.Contains(e.Message, "operator:alice") && strings.Contains(e.Message, "C2 range from the hosting provider") {
					operatorSeen = true
				}
			}
			if !operatorSeen {
				t.Errorf("the operator's block is not in the incident timeline: %+v", in.Timeline)
			}

			// The series: verdicts add up to what the clients saw.
			if len(in.Series) == 0 {
				t.Fatal("no per-second series")
			}
			from := in.Series[0].Time
			to := in.Series[len(in.Series)-1].Time.Add(time.Second)
			tot := incident.SumSeries(in.Series)
			passed, blocked, throttled, refused := clients.tally(from, to)
			all := passed + blocked + throttled + refused
			t.Logf("series %d s: requests %d passed %d challenged %d throttled %d blocked %d shed %d origin errors %d",
				len(in.Series), tot.Requests, tot.Passed, tot.Challenged, tot.Throttled, tot.Blocked, tot.Shed, tot.OriginErrors)
			t.Logf("clients saw in the same seconds: %d responses: passed %d blocked/dropped %d throttled %d 503 %d", all, passed, blocked, throttled, refused)
			// Boundary seconds: a client stamps a response when it arrives,
			// the shield when it has written it.
			tol := 0.03*float64(all) + 30
			for _, c := range []struct {
				what     string
				rec, cli int
			}{
				{"requests", int(tot.Requests), all},
				{"passed", int(tot.Passed), passed},
				{"blocked", int(tot.Blocked), blocked},
				{"throttled", int(tot.Throttled), throttled},
				{"challenged + shed", int(tot.Challenged + tot.Shed), refused},
			} {
				if d := float64(c.rec - c.cli); d > tol || -d > tol {
					t.Errorf("%s: the series says %d, the clients saw %d", c.what, c.rec, c.cli)
				}
			}
			if tot.Requests < 500 {
				t.Errorf("the series holds only %d requests: the flood is not in it", tot.Requests)
			}

			// Impact on real people.
			im := in.Impact
			if im == nil {
				t.Fatal("no impact recorded")
			}
			t.Logf("impact: members %+v cleared %+v shed %d challenges %d/%d collateral %d",
				im.Members, im.Cleared, im.Shed, im.ChallengesSolved, im.ChallengesShown, im.Collateral)
			if im.Members.Requests < 20 {
				t.Errorf("members made %d requests during the incident, want ≥ 20 (standing not recognised?)", im.Members.Requests)
			} else if r := float64(im.Members.Served) / float64(im.Members.Requests); r < 0.99 {
				t.Errorf("members served %.3f, want ≥ 0.99", r)
			}
			if im.Cleared.Requests < 20 {
				t.Errorf("cleared visitors made %d requests during the incident, want ≥ 20 (clearance not recognised?)", im.Cleared.Requests)
			}
			if im.Members.BaselineLatencyP95 == 0 || im.Members.LatencyP95 == 0 {
				t.Errorf("member latency p95 %v, baseline %v: want both measured", im.Members.LatencyP95, im.Members.BaselineLatencyP95)
			}

			// Integrity: the sensitive route answered about as usual.
			ig := in.Integrity
			if ig == nil || len(ig.Routes) != 1 || ig.Routes[0].Route != "/members/export" {
				t.Fatalf("integrity %+v", ig)
			}
			rv := ig.Routes[0]
			t.Logf("integrity: origin %d/%d failed (baseline %.3f); %+v", ig.OriginErrors, ig.OriginRequests, ig.BaselineErrorRate, rv)
			if rv.BaselineRequests == 0 || rv.Requests == 0 {
				t.Fatalf("sensitive route: %d requests against a baseline of %d, want both > 0", rv.Requests, rv.BaselineRequests)
			}
			if r := float64(rv.Requests) / float64(rv.BaselineRequests); r < 0.5 || r > 2 {
				t.Errorf("sensitive route: %d requests against a baseline of %d (ratio %.2f), want within ×2", rv.Requests, rv.BaselineRequests, r)
			}
			if rv.ResponseBytes != rv.Requests*uint64(len(exportBody)) {
				t.Errorf("sensitive route bytes %d, want %d × %d", rv.ResponseBytes, rv.Requests, len(exportBody))
			}
			if ig.OriginRequests == 0 {
				t.Error("no origin requests recorded")
			}

			// The report says so.
			var md strings.Builder
			if err := report.Render(&md, in, report.Markdown, report.Options{Now: time.Now()}); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(md.String(), "No sign of data being accessed") {
				t.Errorf("the report does not clear the sensitive route:\n%s", md.String())
			}
		})
	}
}

// waitClosedIncident waits until site has a closed incident in the store
// and returns the one with the most requests, with its timeline.
func waitClosedIncident(t *testing.T, st *incident.Store, site string, d time.Duration) *incident.Incident {
	t.Helper()
	ctx := context.Background()
	deadline := time.After(d)
	tk := time.NewTicker(250 * time.Millisecond)
	defer tk.Stop()
	for {
		list, err := st.List(ctx, incident.Filter{Site: site})
		if err != nil {
			t.Fatal(err)
		}
		var best *incident.Incident
		open := false
		for _, in := range list {
			open = open || in.Open()
			if best == nil || in.Requests > best.Requests {
				best = in
			}
		}
		if best != nil && !open {
			in, err := st.Get(ctx, best.ID)
			if err != nil {
				t.Fatal(err)
			}
			return in
		}
		select {
		case <-deadline:
			t.Fatalf("no closed incident for %s within %v (incidents: %d, one open: %v)", site, d, len(list), open)
		case <-tk.C:
		}
	}
}
