package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/challenge"
)

// requestTimeout is how long a simulated person waits for one request,
// challenge included, before giving up.
const requestTimeout = 10 * time.Second

// recorder collects the legitimate models' requests. Safe for concurrent use.
type recorder struct {
	t0   time.Time
	mu   sync.Mutex
	reqs []Request
	// n and ok count requests and successes by class, for the progress line.
	n, ok [NumClasses]atomic.Uint64
}

func (r *recorder) add(q Request) {
	r.mu.Lock()
	r.reqs = append(r.reqs, q)
	r.mu.Unlock()
	r.n[q.Class].Add(1)
	if q.OK {
		r.ok[q.Class].Add(1)
	}
}

func (r *recorder) requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

// client is one simulated person: a stable simulated address, a cookie jar
// and a browser's (or feed reader's, or app's) headers.
type client struct {
	hc    *http.Client
	tr    *http.Transport
	base  string
	addr  netip.Addr
	xff   bool
	class Class
	ua    string
	rec   *recorder
	// formFill is the longest a person takes to fill in a form (uniform
	// from a third of it); 0 submits at once.
	formFill time.Duration
	run      context.Context // the run; when it ends, unfinished requests are not recorded
	stop     <-chan struct{} // closed at the end of the run: start no new request
}

// newClient returns a client of class for the front at base that
// presents addr in X-Forwarded-For, or, with proxyProtocol, in a PROXY v1
// header at the start of each connection.
func newClient(run context.Context, stop <-chan struct{}, rec *recorder, base *url.URL, proxyProtocol bool, addr netip.Addr, class Class, ua string) *client {
	jar, _ := cookiejar.New(nil) // never fails without options
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		MaxConnsPerHost: 6, MaxIdleConnsPerHost: 6, IdleConnTimeout: 30 * time.Second,
		DisableCompression: true, DialContext: d.DialContext,
	}
	if proxyProtocol {
		tr.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, address)
			if err != nil {
				return nil, err
			}
			if _, err := io.WriteString(c, proxyV1Header(addr, c)); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		}
	}
	return &client{
		hc: &http.Client{Transport: tr, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		tr: tr, base: strings.TrimSuffix(base.String(), "/"), addr: addr, xff: !proxyProtocol,
		class: class, ua: ua, rec: rec, run: run, stop: stop, formFill: 3 * time.Second,
	}
}

// proxyV1Header is the PROXY protocol v1 line (haproxy proxy-protocol.txt
// §2.1) announcing src as the client of connection c.
func proxyV1Header(src netip.Addr, c net.Conn) string {
	dst, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	lp, _ := netip.ParseAddrPort(c.LocalAddr().String())
	fam := "TCP4"
	if src.Is6() {
		fam = "TCP6"
	}
	d := dst.Addr()
	if src.Is4() != d.Unmap().Is4() {
		d = src // families must match; the destination is not used by fronts
	}
	return fmt.Sprintf("PROXY %s %s %s %d %d\r\n", fam, src, d.Unmap(), lp.Port(), dst.Port())
}

func (c *client) close() { c.tr.CloseIdleConnections() }

// stopped reports whether the run asked for no new requests.
func (c *client) stopped() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// pause waits d or until the run stops; false when stopped.
func (c *client) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.stop:
		return false
	}
}

// answer is a response as a client keeps it.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// send makes one HTTP exchange (no redirects followed, body read up to 1 MiB).
func (c *client) send(ctx context.Context, method, path string, h http.Header, body []byte) (answer, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return answer{}, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", c.ua)
	req.Header.Set(ClassHeader, c.class.String())
	if c.xff {
		req.Header.Set("X-Forwarded-For", c.addr.String())
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return answer{}, err
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// do performs one logical request the way a browser would: when the answer
// is a challenge interstitial, it computes the proof of work, redeems it and
// repeats the request (at most twice). check decides success from the final
// answer. The Request is recorded unless the run ended before it finished.
func (c *client) do(kind, method, path string, h http.Header, body []byte, check func(answer) (ok, integrityFailure bool)) Request {
	start := time.Now()
	q := Request{Start: start.Sub(c.rec.t0), Class: c.class, Kind: kind}
	ctx, cancel := context.WithTimeout(c.run, requestTimeout)
	defer cancel()
	for round := 0; ; round++ {
		a, err := c.send(ctx, method, path, h, body)
		if err != nil {
			q.Status = 0
			break
		}
		q.Status = a.status
		if a.status == http.StatusServiceUnavailable && round < 2 {
			if p, ok := challenge.ParseInterstitial(a.body); ok {
				q.Challenged = true
				if c.redeem(ctx, p) {
					continue
				}
			}
		}
		q.OK, q.IntegrityFailure = check(a)
		break
	}
	q.Latency = time.Since(start)
	if c.run.Err() == nil {
		c.rec.add(q)
	}
	return q
}

// okStatus accepts 200 and 304 (GETs of the lab origin never redirect).
func okStatus(a answer) (bool, bool) {
	return a.status == http.StatusOK || a.status == http.StatusNotModified, false
}

// redeem solves p and posts the answer as the page's script does; true when
// the shield answered 303 (clearance set).
func (c *client) redeem(ctx context.Context, p challenge.Interstitial) bool {
	nonce, ok := challenge.Solve(ctx, p.Seed, p.Bits)
	if !ok {
		return false
	}
	form := p.Answer(nonce)
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {c.base},
		"Accept": {browserAccept}, "Sec-Fetch-Dest": {"document"}, "Sec-Fetch-Mode": {"navigate"}}
	a, err := c.send(ctx, http.MethodPost, p.Action, h, []byte(form.Encode()))
	return err == nil && a.status == http.StatusSeeOther
}

// formBody returns a url-encoded form body of about size bytes and its hex
// SHA-256.
func formBody(fields url.Values, size int, fill byte) ([]byte, string) {
	if pad := size - len(fields.Encode()); pad > 0 {
		fields.Set("message", strings.Repeat(string(rune('a'+fill%26)), pad))
	}
	b := []byte(fields.Encode())
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

// checkForm accepts a 2xx or 3xx whose checksum echo matches sum; an
// answer with a success status and a missing or wrong echo is an integrity
// failure (something other than the origin answered, or the body changed).
func checkForm(sum string) func(answer) (bool, bool) {
	return func(a answer) (bool, bool) {
		if a.status < 200 || a.status >= 400 {
			return false, a.header.Get(SumEchoHeader) != "" && !strings.EqualFold(a.header.Get(SumEchoHeader), sum)
		}
		if !strings.EqualFold(a.header.Get(SumEchoHeader), sum) {
			return false, true
		}
		return true, false
	}
}

// errStopped is returned by models when the run ends.
var errStopped = errors.New("lab: run stopped")
