package challenge

import (
	"net/http"

	"github.com/cespare/xxhash/v2"

	"github.com/portcullis/portcullis/internal/filter"
	"github.com/portcullis/portcullis/internal/netset"
)

// FilterOptions configures a Filter.
type FilterOptions struct {
	// ShouldChallenge reports whether r must show clearance or standing:
	// under-attack mode for r.Site, or a decision to challenge r's address
	// or prefix. Nil: never (the filter passes everything). It is called
	// for every request and should not allocate.
	ShouldChallenge func(r *filter.Request) bool
	// VerifiedCrawlers are the published address ranges of crawlers the
	// site wants (HANDED F25); they always pass. A crawler's User-Agent
	// from anywhere else counts for nothing.
	VerifiedCrawlers *netset.Set
	// APIPaths are API route prefixes; nil means ["/api/"]. Such
	// requests without clearance get a machine-readable 503.
	APIPaths []string
	// HealthPaths are health-check prefixes; nil means ["/healthz",
	// "/livez", "/readyz"].
	// They pass unless ChallengeHealth is set.
	HealthPaths []string
	// FeedPaths are extra feed path prefixes, beyond those IsFeed knows.
	FeedPaths []string
	// ChallengeFeeds refuses feeds without clearance (machine-readable
	// 503) instead of letting them pass. Default false: feeds pass and are
	// kept in check by their own rate limit (HANDED F24).
	ChallengeFeeds bool
	// ChallengeHealth refuses health checks without clearance.
	ChallengeHealth bool
	// Shadow decides and logs without enforcing.
	Shadow bool
}

// Filter is the filter.Filter for filter.StageChallenge. See Check.
type Filter struct {
	s    *Service
	opts FilterOptions
}

// NewFilter returns the challenge-stage filter for s.
func NewFilter(s *Service, opts FilterOptions) *Filter {
	if opts.APIPaths == nil {
		opts.APIPaths = []string{"/api/"}
	}
	if opts.HealthPaths == nil {
		opts.HealthPaths = []string{"/healthz", "/livez", "/readyz"}
	}
	return &Filter{s: s, opts: opts}
}

// Name implements filter.Filter.
func (f *Filter) Name() string { return "challenge" }

// Check implements filter.Filter. Requests pass when ShouldChallenge says
// no, for the endpoints under PathPrefix, from verified crawlers, for
// health checks and feeds (unless configured otherwise), and with valid
// clearance or member standing — a request with a body also on a clearance
// that expired less than Options.PostGrace ago, so a form is never
// challenged mid-flight. Otherwise the verdict is filter.Challenge with
// status 503 and Retry-After, and its Rule says what Service.Write sends:
//
//   - GET/HEAD navigations that accept HTML: RuleInterstitial (the page);
//     RuleCookies (429, no new challenge) for a client known to refuse
//     cookies that has had RefuserChallengesPerMinute challenges this minute;
//   - POST, PUT, PATCH, DELETE: RuleForm — refused whole, nothing is
//     forwarded, and the page says the form was not sent;
//   - everything else (feeds, APIs, assets, XHR, curl): RuleNonDocument, a
//     machine-readable answer, never HTML.
//
// Check allocates nothing when the request passes on a cookie.
func (f *Filter) Check(r *filter.Request) filter.Verdict {
	if Handles(r.Path) || f.opts.ShouldChallenge == nil || !f.opts.ShouldChallenge(r) {
		return filter.Verdict{}
	}
	if f.opts.VerifiedCrawlers != nil && f.opts.VerifiedCrawlers.Contains(r.Addr) {
		return filter.Verdict{}
	}
	hr := r.HTTP
	c := f.classify(hr, r.Path)
	switch {
	case c == classHealth && !f.opts.ChallengeHealth, c == classFeed && !f.opts.ChallengeFeeds:
		return filter.Verdict{}
	}
	s := f.s
	now := s.now()
	var grace = s.opts.PostGrace
	if c != classForm {
		grace = 0
	}
	if _, ok := s.verifyClearance(hr.Header, r.Prefix, now, grace); ok {
		return filter.Verdict{}
	}
	if s.hasStanding(hr.Header, now) {
		return filter.Verdict{}
	}
	v := filter.Verdict{Action: filter.Challenge, Status: http.StatusServiceUnavailable, RetryAfter: s.opts.RetryAfter, Shadow: f.opts.Shadow}
	switch c {
	case classDocument:
		if !s.state.allowChallenge(newRefuserKey(r.Addr, xxhash.Sum64String(first(hr.Header["User-Agent"]))), now) {
			v.Status, v.RetryAfter, v.Rule = http.StatusTooManyRequests, refuserWindow, RuleCookies
			v.Reason, v.Cause = "cookies required", "client refuses cookies; challenge budget spent"
			return v
		}
		v.Rule, v.Reason, v.Cause = RuleInterstitial, "checking that you are a person", "no clearance or standing"
	case classForm:
		v.Rule, v.Reason, v.Cause = RuleForm, "your form was not sent: a browser check is required first", "body request without clearance"
	default:
		v.Rule, v.Reason = RuleNonDocument, "a browser check is required; retry later or load the page in a browser"
		v.Cause = nonDocumentCause[c]
	}
	return v
}

// nonDocumentCause is the private cause by class, as constants so that
// deciding allocates nothing.
var nonDocumentCause = [...]string{
	classDocument: "no clearance: document",
	classForm:     "no clearance: form",
	classFeed:     "no clearance: feed",
	classHealth:   "no clearance: health check",
	classAPI:      "no clearance: api",
	classAsset:    "no clearance: asset",
	classOther:    "no clearance: non-navigation",
}
