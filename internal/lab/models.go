package lab

import (
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Browser-like request headers of the traffic models.
const (
	browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	feedUA        = "Miniflux/2.2 (+https://miniflux.app; Mozilla compatible)"
	feedAccept    = "application/rss+xml, application/atom+xml;q=0.9, */*;q=0.1"
	apiUA         = "CampaignApp/3.1 (Android 14; okhttp/4.12)"
)

// browserUAs are real browser User-Agent strings; each simulated person
// keeps one (clearance is bound to it).
var browserUAs = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
}

// Think times of the models (exponential, clamped).
const (
	meanThink       = 3 * time.Second
	meanSessionGap  = 5 * time.Second
	formProbability = 0.12
)

func think(rng *rand.Rand, mean time.Duration) time.Duration {
	d := time.Duration(rng.ExpFloat64() * float64(mean))
	return min(max(d, mean/6), 4*mean)
}

func pageHeaders() http.Header {
	return http.Header{"Accept": {browserAccept}, "Sec-Fetch-Dest": {"document"}, "Sec-Fetch-Mode": {"navigate"}}
}

// pickPage chooses a public page as visitors do: mostly the home page and
// news, sometimes about or search.
func pickPage(rng *rand.Rand) string {
	switch x := rng.IntN(100); {
	case x < 35:
		return "/"
	case x < 75:
		return "/news/" + strconv.Itoa(1+rng.IntN(50))
	case x < 85:
		return "/about"
	case x < 92:
		return "/events"
	default:
		return "/search?q=" + strconv.Itoa(rng.IntN(1000))
	}
}

var assets = []struct{ path, dest, accept string }{
	{"/static/site.css", "style", "text/css,*/*;q=0.1"},
	{"/static/app.js", "script", "*/*"},
	{"/static/logo.png", "image", "image/avif,image/webp,image/png,*/*;q=0.8"},
}

// loadAssets fetches the page's sub-resources in parallel, as a browser does
// when its cache is cold.
func (c *client) loadAssets() {
	var wg sync.WaitGroup
	for _, a := range assets {
		wg.Go(func() {
			h := http.Header{"Accept": {a.accept}, "Sec-Fetch-Dest": {a.dest}, "Sec-Fetch-Mode": {"no-cors"}}
			c.do("asset", http.MethodGet, a.path, h, nil, okStatus)
		})
	}
	wg.Wait()
}

// submitForm loads a form page and posts a checksummed body of 200 B to
// 4 KiB to it.
func (c *client) submitForm(rng *rand.Rand, path string, fields url.Values) bool {
	if c.stopped() || !c.do("page", http.MethodGet, path, pageHeaders(), nil, okStatus).OK {
		return false
	}
	if c.formFill > 0 && !c.pause(c.formFill/3+time.Duration(rng.Int64N(int64(2*c.formFill/3)+1))) { // filling in the form
		return false
	}
	body, sum := formBody(fields, 200+rng.IntN(4000), byte(rng.IntN(26)))
	h := pageHeaders()
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set("Origin", c.base)
	h.Set(SumHeader, sum)
	return c.do("form", http.MethodPost, path, h, body, checkForm(sum)).OK
}

// visitor browses sessions of 3–6 pages with think times; the first page
// of a session loads the assets; now and then a page leads to a donation
// or a (non-member) login form.
func (c *client) visitor(rng *rand.Rand, id int) {
	for !c.stopped() {
		pages := 3 + rng.IntN(4)
		for p := 0; p < pages && !c.stopped(); p++ {
			q := c.do("page", http.MethodGet, pickPage(rng), pageHeaders(), nil, okStatus)
			if p == 0 && q.OK {
				c.loadAssets()
			}
			if rng.Float64() < formProbability {
				if rng.IntN(2) == 0 {
					c.submitForm(rng, "/donate", url.Values{"amount": {strconv.Itoa(5 + rng.IntN(100))}, "name": {"visitor " + strconv.Itoa(id)}})
				} else {
					c.submitForm(rng, "/login", url.Values{"user": {"v-" + strconv.Itoa(id)}, "password": {"correct horse"}})
				}
			}
			if !c.pause(think(rng, meanThink)) {
				return
			}
		}
		if !c.pause(think(rng, meanSessionGap)) {
			return
		}
	}
}

// member logs in (the origin names the member in MemberHeader, a shield
// turns that into member standing) and then browses member pages, now and
// then donating; a failed login is retried after a pause.
func (c *client) member(rng *rand.Rand, id int) {
	loggedIn := false
	for !c.stopped() {
		if !loggedIn {
			loggedIn = c.submitForm(rng, "/login", url.Values{"user": {"m-" + strconv.Itoa(id)}, "password": {"correct horse"}})
		} else {
			path := "/account"
			if rng.IntN(3) > 0 {
				path = "/members/news-" + strconv.Itoa(1+rng.IntN(20))
			}
			c.do("page", http.MethodGet, path, pageHeaders(), nil, okStatus)
			if rng.Float64() < formProbability/2 {
				c.submitForm(rng, "/donate", url.Values{"amount": {strconv.Itoa(10 + rng.IntN(200))}, "name": {"member " + strconv.Itoa(id)}})
			}
		}
		if !c.pause(think(rng, meanThink)) {
			return
		}
	}
}

// feedReader polls /feed.xml every 2–6 s with If-None-Match after the
// first copy, as Miniflux does.
func (c *client) feedReader(rng *rand.Rand) {
	etag := ""
	for !c.stopped() {
		h := http.Header{"Accept": {feedAccept}}
		if etag != "" {
			h.Set("If-None-Match", etag)
		}
		c.do("feed", http.MethodGet, "/feed.xml", h, nil, func(a answer) (bool, bool) {
			if a.status == http.StatusOK {
				etag = a.header.Get("ETag")
			}
			return okStatus(a)
		})
		if !c.pause(2*time.Second + time.Duration(rng.Int64N(int64(4*time.Second)))) {
			return
		}
	}
}

// apiClient polls JSON endpoints every 1–3 s, as a campaign app does.
func (c *client) apiClient(rng *rand.Rand) {
	for !c.stopped() {
		what := [...]string{"news", "events", "items"}[rng.IntN(3)]
		c.do("api", http.MethodGet, "/api/v1/"+what, http.Header{"Accept": {"application/json"}}, nil, okStatus)
		if !c.pause(time.Second + time.Duration(rng.Int64N(int64(2*time.Second)))) {
			return
		}
	}
}
