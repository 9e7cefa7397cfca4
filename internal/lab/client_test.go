package lab

import (
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/challenge"
	"github.com/portcullis/portcullis/internal/filter"
)

// miniShield is the challenge stage of the shield in front of the lab
// origin, wired as internal/challenge asks its caller to (filter, Write,
// ServeEndpoint, standing from the member header), challenging every
// request without clearance or standing — under-attack mode. The client
// address is the X-Forwarded-For value (the peer is loopback, trusted).
func miniShield(t *testing.T, og *Origin) *url.URL {
	t.Helper()
	svc, err := challenge.New(challenge.Options{Site: "lab", Logger: slog.New(slog.DiscardHandler), Difficulty: challenge.MinDifficulty})
	if err != nil {
		t.Fatal(err)
	}
	f := challenge.NewFilter(svc, challenge.FilterOptions{ShouldChallenge: func(*filter.Request) bool { return true }})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr, err := netip.ParseAddr(r.Header.Get("X-Forwarded-For"))
		if err != nil {
			http.Error(w, "no simulated address", http.StatusBadRequest)
			return
		}
		pfx, _ := addr.Prefix(24)
		fr := &filter.Request{ID: "r", Addr: addr, Prefix: pfx, Peer: netip.MustParseAddr("127.0.0.1"), Method: r.Method, Path: r.URL.Path, HTTP: r}
		if challenge.Handles(r.URL.Path) {
			svc.ServeEndpoint(w, r, fr)
			return
		}
		if v := f.Check(fr); v.Terminal() {
			svc.Write(w, r, fr, v)
			return
		}
		og.ServeHTTP(&standingWriter{ResponseWriter: w, svc: svc, r: r}, r)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u
}

// standingWriter turns the origin's member header into member standing.
type standingWriter struct {
	http.ResponseWriter
	svc  *challenge.Service
	r    *http.Request
	done bool
}

func (s *standingWriter) WriteHeader(code int) {
	if !s.done {
		s.done = true
		if id := s.Header().Get(MemberHeader); id != "" {
			s.Header().Del(MemberHeader)
			_ = s.svc.SetStanding(s.Header(), id, s.r)
		}
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *standingWriter) Write(b []byte) (int, error) {
	if !s.done {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

// TestClientsThroughChallenge drives the traffic models' clients through a
// real challenge stage: a visitor computes the proof of work like a browser
// and is served, a member logs in and keeps being served on standing, a
// form's checksum survives, a feed reader passes, and an API client is
// refused (machine-readable 503) — recorded as a failure, not hidden.
func TestClientsThroughChallenge(t *testing.T) {
	og := NewOrigin(OriginOptions{MinLatency: time.Millisecond, MaxLatency: time.Millisecond})
	base := miniShield(t, og)
	rec := &recorder{t0: time.Now()}
	stop := make(chan struct{})
	ctx := t.Context()
	mk := func(class Class, addr, ua string) *client {
		c := newClient(ctx, stop, rec, base, false, netip.MustParseAddr(addr), class, ua)
		c.formFill = 0
		t.Cleanup(c.close)
		return c
	}
	visitor := mk(ClassLegit, "77.160.0.10", browserUAs[0])
	member := mk(ClassMember, "2.160.0.20", browserUAs[1])
	feed := mk(ClassFeed, "81.204.0.30", feedUA)
	api := mk(ClassAPI, "94.168.0.40", apiUA)

	first := visitor.do("page", http.MethodGet, "/", pageHeaders(), nil, okStatus)
	second := visitor.do("page", http.MethodGet, "/about", pageHeaders(), nil, okStatus)
	body, sum := formBody(url.Values{"amount": {"10"}}, 500, 3)
	h := pageHeaders()
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set(SumHeader, sum)
	donation := visitor.do("form", http.MethodPost, "/donate", h, body, checkForm(sum))
	loggedIn := member.submitForm(rand.New(rand.NewPCG(1, 2)), "/login", url.Values{"user": {"m-1"}})
	account := member.do("page", http.MethodGet, "/account", pageHeaders(), nil, okStatus)
	feedQ := feed.do("feed", http.MethodGet, "/feed.xml", http.Header{"Accept": {feedAccept}}, nil, okStatus)
	apiQ := api.do("api", http.MethodGet, "/api/v1/news", http.Header{"Accept": {"application/json"}}, nil, okStatus)

	tests := []struct {
		name           string
		q              Request
		ok, challenged bool
		status         int
	}{
		{"visitor: first page after solving the challenge", first, true, true, 200},
		{"visitor: next page on clearance", second, true, false, 200},
		{"visitor: donation form, checksum echoed", donation, true, false, 200},
		{"member: account page on standing", account, true, false, 200},
		{"feed reader passes without a challenge", feedQ, true, false, 200},
		{"API client without clearance is refused", apiQ, false, false, 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.q.OK != tc.ok || tc.q.Challenged != tc.challenged || tc.q.Status != tc.status {
				t.Errorf("got ok=%v challenged=%v status=%d, want ok=%v challenged=%v status=%d",
					tc.q.OK, tc.q.Challenged, tc.q.Status, tc.ok, tc.challenged, tc.status)
			}
			if tc.q.IntegrityFailure {
				t.Error("integrity failure")
			}
		})
	}
	if !loggedIn {
		t.Error("member login failed")
	}
	if n := len(rec.requests()); n != 8 {
		t.Errorf("%d requests recorded, want 8 (the member's login is a page and a form)", n)
	}
	if got := og.IntegrityMismatches(); got != 0 {
		t.Errorf("origin saw %d checksum mismatches", got)
	}
}

func TestCheckForm(t *testing.T) {
	const sum = "abc"
	tests := []struct {
		name          string
		status        int
		echo          string
		ok, integrity bool
	}{
		{"origin answered, echo matches", 303, "ABC", true, false},
		{"success without echo: not the origin", 200, "", false, true},
		{"success with a wrong echo: body changed", 200, "abd", false, true},
		{"origin refused a changed body", 400, "abd", false, true},
		{"shield refused the whole form", 503, "", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.echo != "" {
				h.Set(SumEchoHeader, tc.echo)
			}
			ok, integ := checkForm(sum)(answer{status: tc.status, header: h})
			if ok != tc.ok || integ != tc.integrity {
				t.Errorf("got ok=%v integrity failure=%v, want %v %v", ok, integ, tc.ok, tc.integrity)
			}
		})
	}
}
