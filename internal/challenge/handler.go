package challenge

import (
	"net/http"
	"strconv"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/portcullis/portcullis/internal/filter"
)

// maxVerifyBody bounds the verify endpoint's form body (bytes).
const maxVerifyBody = 4 << 10

// Handles reports whether path belongs to the Service's endpoints.
func Handles(path string) bool {
	return len(path) >= len(PathPrefix) && path[:len(PathPrefix)] == PathPrefix
}

// ServeEndpoint serves a request under PathPrefix for the client of fr
// (its Addr and aggregate Prefix as the request path resolved them):
//
//   - GET PathPrefix+"challenge.js", PathPrefix+"worker.js": the scripts
//     (the page names them with a content-hash query, so they may be cached).
//   - GET or POST PathPrefix+"verify": redeem a challenge (form fields t =
//     token, n = nonce, r = return path). The proof of work (n) is checked,
//     or, without n, that the no-JavaScript wait is over. A valid answer to
//     any outstanding challenge is accepted once; it sets the clearance
//     cookie — unless the request already carries a valid one, which is
//     never overwritten — and redirects (303) to r, which must be a path on
//     this site. Without the test cookie the answer is "cookies required"
//     (403) and the client gets at most RefuserChallengesPerMinute
//     challenges a minute from then on. An expired or foreign token (for
//     another address prefix or browser) redirects to r for a fresh
//     challenge; a reused one gets 409.
//
// Anything else under PathPrefix is 404.
func (s *Service) ServeEndpoint(w http.ResponseWriter, r *http.Request, fr *filter.Request) {
	switch r.URL.Path {
	case PathPrefix + "challenge.js":
		s.serveScript(w, r, s.pages.script)
	case PathPrefix + "worker.js":
		s.serveScript(w, r, s.pages.worker)
	case PathPrefix + "verify":
		s.verify(w, r, fr)
	default:
		w.Header().Set("Cache-Control", "no-store")
		http.NotFound(w, r)
	}
}

func (s *Service) serveScript(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(body)
	}
}

// Redemption results (metric label values).
const (
	resultWork      = "work"
	resultWait      = "wait"
	resultInvalid   = "invalid"
	resultBadWork   = "bad_work"
	resultTooEarly  = "too_early"
	resultNoCookies = "no_cookies"
	resultReplayed  = "replayed"
	resultTooOld    = "too_old"
	resultNoJSOff   = "nojs_disabled"
)

func (s *Service) verify(w http.ResponseWriter, r *http.Request, fr *filter.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Request-Id", fr.ID)
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		h.Set("Allow", "GET, POST")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	lang, m := s.messages(r)
	d := &pageData{Lang: lang, M: m, RequestID: fr.ID}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxVerifyBody)
	}
	if err := r.ParseForm(); err != nil {
		s.metrics.redeemed(resultInvalid)
		d.Heading, d.Paragraphs, d.RetryURL = m.FailedHeading, []string{m.Failed}, "/"
		s.render(w, http.StatusBadRequest, d)
		return
	}
	target := safeTarget(r.Form.Get("r"))
	now := s.now()
	ua := r.UserAgent()
	c, ok := s.openChallenge(r.Form.Get("t"), fr.Prefix, ua, now)
	if !ok {
		// Expired, forged, or issued to another prefix or browser (an
		// address change mid-check): a fresh challenge at the target.
		s.metrics.redeemed(resultInvalid)
		seeOther(w, target)
		return
	}
	method, result := MethodWork, resultWork
	if nonce := r.Form.Get("n"); nonce != "" {
		if !checkWork(&c.id, nonce, c.bits) {
			s.metrics.redeemed(resultBadWork)
			if s.opts.OnFailed != nil {
				s.opts.OnFailed(fr.Addr)
			}
			d.Heading, d.Paragraphs, d.RetryURL = m.FailedHeading, []string{m.Failed}, target
			s.render(w, http.StatusForbidden, d)
			return
		}
	} else {
		method, result = MethodWait, resultWait
		if s.opts.NoJSWait < 0 {
			s.metrics.redeemed(resultNoJSOff)
			d.Heading, d.Paragraphs, d.RetryURL = m.FailedHeading, []string{m.NeedJS}, target
			s.render(w, http.StatusForbidden, d)
			return
		}
		if wait := time.UnixMilli(c.issuedMs).Add(s.opts.NoJSWait).Sub(now); wait > 0 {
			s.metrics.redeemed(resultTooEarly)
			s.tooEarly(w, r, c, d, target, wait)
			return
		}
	}
	if !hasCookie(r.Header, s.testName) {
		// Not consumed: a client that enables cookies can still use it.
		s.state.markRefuser(newRefuserKey(fr.Addr, xxhash.Sum64String(ua)), now)
		s.metrics.redeemed(resultNoCookies)
		d.Heading, d.Paragraphs, d.RetryURL = m.CookiesHeading, []string{m.Cookies}, target
		s.render(w, http.StatusForbidden, d)
		return
	}
	switch s.state.redeem(c.id, c.issuedMs, c.exp, now) {
	case redeemReplayed:
		s.metrics.redeemed(resultReplayed)
		d.Heading, d.Paragraphs, d.RetryURL = m.FailedHeading, []string{m.Used}, target
		s.render(w, http.StatusConflict, d)
		return
	case redeemTooOld:
		s.metrics.redeemed(resultTooOld)
		seeOther(w, target)
		return
	}
	s.metrics.redeemed(result)
	// Never overwrite a valid clearance (HANDED F23): a parallel tab may
	// have set it a moment ago.
	if _, ok := s.verifyClearance(r.Header, fr.Prefix, now, 0); !ok {
		bits := c.bits
		if method == MethodWait {
			bits = 0
		}
		http.SetCookie(w, s.issueClearance(r, fr.Prefix, method, bits, now))
	}
	seeOther(w, target)
}

// tooEarly answers a no-JavaScript redemption that came before the wait
// was over: 503 with Retry-After and the same challenge again (its meta
// refresh fires when the wait is over; with JavaScript the proof of work
// runs instead).
func (s *Service) tooEarly(w http.ResponseWriter, r *http.Request, c challengeToken, d *pageData, target string, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
	d.Heading, d.Paragraphs = d.M.WaitHeading, []string{d.M.Wait}
	var seed [32]byte
	seedHex(&c.id, &seed)
	s.fillChallenge(d, r.Form.Get("t"), string(seed[:]), c.bits, target, true, wait)
	s.render(w, http.StatusServiceUnavailable, d)
}

func seeOther(w http.ResponseWriter, target string) {
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusSeeOther)
}
