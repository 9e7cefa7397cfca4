package app

// Request-body buffering through the real shield (case F15, slow POST;
// F19/F04 framing): a body is read whole at the edge before it takes an
// origin slot, and reaches the origin byte-exact with an exact
// Content-Length and no Transfer-Encoding.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/config"
)

// seenBody is what the body origin saw of one request.
type seenBody struct {
	Path             string
	ContentLength    int64    // r.ContentLength (-1: chunked on the wire)
	TransferEncoding []string // as framed on the wire
	Header           http.Header
	Len              int64
	SHA256           string
}

// bodyOrigin answers the paths it is installed on by reading the whole
// body, recording its framing and checksum and counting, per path, the
// requests in flight and their peak.
type bodyOrigin struct {
	mu   sync.Mutex
	seen []seenBody
	in   map[string]*atomic.Int64
	peak map[string]*atomic.Int64
}

func newBodyOrigin(o *recOrigin, paths ...string) *bodyOrigin {
	b := &bodyOrigin{in: map[string]*atomic.Int64{}, peak: map[string]*atomic.Int64{}}
	for _, p := range paths {
		b.in[p], b.peak[p] = new(atomic.Int64), new(atomic.Int64)
		o.handle(p, b.serve)
	}
	return b
}

func (b *bodyOrigin) serve(w http.ResponseWriter, r *http.Request) {
	in, peak := b.in[r.URL.Path], b.peak[r.URL.Path]
	n := in.Add(1)
	defer in.Add(-1)
	for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
	}
	sum := sha256.New()
	nb, err := io.Copy(sum, r.Body)
	if err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	s := seenBody{Path: r.URL.Path, ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding,
		Header: r.Header.Clone(), Len: nb, SHA256: hex.EncodeToString(sum.Sum(nil))}
	b.mu.Lock()
	b.seen = append(b.seen, s)
	b.mu.Unlock()
	fmt.Fprintf(w, "%s", s.SHA256)
}

// bySum returns what the origin saw of the body with the given checksum.
func (b *bodyOrigin) bySum(sum string) (seenBody, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.seen {
		if s.SHA256 == sum {
			return s, true
		}
	}
	return seenBody{}, false
}

func (b *bodyOrigin) count(path string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, s := range b.seen {
		if s.Path == path {
			n++
		}
	}
	return n
}

// payload returns n pseudo-random bytes (seeded) and their SHA-256.
func payload(seed, n int) ([]byte, string) {
	p := make([]byte, n)
	x := uint32(seed*2654435761 + 1)
	for i := range p {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		p[i] = byte(x)
	}
	sum := sha256.Sum256(p)
	return p, hex.EncodeToString(sum[:])
}

// onlyReader hides bytes.Reader's type so net/http cannot learn the
// length: the request goes out chunked (HTTP/1) or without
// content-length (HTTP/2).
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// postPayload POSTs n bytes of payload(seed) to url, over h2 when useH2
// (else h1), with the length withheld from the client library when
// chunked; it returns the result and the payload's checksum.
func postPayload(h1, h2 *http.Client, url string, seed, n int, chunked, useH2 bool) (hResult, string) {
	data, sum := payload(seed, n)
	var body io.Reader = bytes.NewReader(data)
	if chunked {
		body = onlyReader{bytes.NewReader(data)}
	}
	c := h1
	if useH2 {
		c = h2
	}
	return hDo(c, http.MethodPost, url, nil, body), sum
}

// stallBody opens an HTTP/1.1 POST of data from src with its exact
// Content-Length and sends all of it but the last KiB: the edge buffers
// it and waits for the rest, which finishStalled sends.
func stallBody(t *testing.T, src, addr, path string, data []byte) net.Conn {
	t.Helper()
	c := dialFrom(t, src, addr)
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", path, len(data))
	c.Write(data[:len(data)-1024])
	return c
}

// finishStalled sends the rest of a stallBody body and checks it is
// answered 200.
func finishStalled(t *testing.T, c net.Conn, data []byte) {
	t.Helper()
	c.Write(data[len(data)-1024:])
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("held body: %v %v", resp, err)
	}
	resp.Body.Close()
}

// gauge returns the value of a gauge metric with the given labels.
func (s *testShield) gauge(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matchLabels(m, labels) && m.Gauge != nil {
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

// TestRequestBuffering is the table of framings and limits: every buffered
// body reaches the origin byte-exact with Content-Length and no
// Transfer-Encoding (F19/F04: one framing toward the origin), over-cap
// bodies get 413 at the route cap without reaching it, the opt-out route
// streams, and a full buffer answers 503 with Retry-After, then recovers.
func TestRequestBuffering(t *testing.T) {
	o := newOrigin(t)
	bo := newBodyOrigin(o, "/form", "/small", "/stream", "/hold")
	s := startShield(t, o, func(c *config.Config) {
		c.Limits.RequestBufferBytes = 64 << 10
		c.Limits.RequestBufferTotalBytes = 128 << 10
		c.Sites[0].Routes = []config.Route{
			{Path: "/small", MaxBodyBytes: 300 << 10},
			{Path: "/stream", BufferRequest: new(false)},
		}
	})
	h1 := clientFrom(t, "127.0.0.2")
	h2 := h2cClientFrom(t, "127.0.0.3")

	tests := []struct {
		name    string
		path    string
		size    int
		chunked bool // length not told to the client library
		h2      bool

		wantStatus   int
		wantStreamed bool // the origin sees the body chunked (opt-out route)
	}{
		{name: "Content-Length, in memory", path: "/form", size: 10 << 10, wantStatus: 200},
		{name: "chunked, in memory", path: "/form", size: 10 << 10, chunked: true, wantStatus: 200},
		{name: "empty chunked body", path: "/form", size: 0, chunked: true, wantStatus: 200},
		{name: "chunked, spooled", path: "/form", size: 500 << 10, chunked: true, wantStatus: 200},
		{name: "Content-Length, spooled", path: "/form", size: 2 << 20, wantStatus: 200},
		{name: "h2 without content-length", path: "/form", size: 100 << 10, chunked: true, h2: true, wantStatus: 200},
		{name: "h2 with content-length, spooled", path: "/form", size: 300 << 10, h2: true, wantStatus: 200},
		{name: "at the route cap", path: "/small", size: 300 << 10, chunked: true, wantStatus: 200},
		{name: "Content-Length over the route cap: 413", path: "/small", size: 300<<10 + 1, wantStatus: 413},
		{name: "chunked over the route cap: 413", path: "/small", size: 400 << 10, chunked: true, wantStatus: 413},
		{name: "h2 over the route cap: 413", path: "/small", size: 400 << 10, chunked: true, h2: true, wantStatus: 413},
		{name: "opt-out route streams", path: "/stream", size: 100 << 10, chunked: true, wantStatus: 200, wantStreamed: true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, sum := postPayload(h1, h2, s.URL+tc.path, i, tc.size, tc.chunked, tc.h2)
			if r.Err != nil || r.Status != tc.wantStatus {
				t.Fatalf("status %d (%v), want %d; body %.200q", r.Status, r.Err, tc.wantStatus, r.Body)
			}
			seen, ok := bo.bySum(sum)
			if tc.wantStatus != 200 {
				if ok && tc.size > 0 {
					t.Fatalf("the origin received a refused body (%d bytes)", seen.Len)
				}
				return
			}
			if !ok || seen.Len != int64(tc.size) || r.Body != sum {
				t.Fatalf("origin got %d bytes (found %v, echo %.16s), want %d bytes sha256 %.16s", seen.Len, ok, r.Body, tc.size, sum)
			}
			if tc.wantStreamed {
				if seen.ContentLength != -1 || len(seen.TransferEncoding) == 0 {
					t.Fatalf("opt-out route: origin saw Content-Length %d, Transfer-Encoding %q; want it streamed (chunked)", seen.ContentLength, seen.TransferEncoding)
				}
				return
			}
			if len(seen.TransferEncoding) != 0 {
				t.Errorf("origin saw Transfer-Encoding %q, want none", seen.TransferEncoding)
			}
			if cl := seen.Header.Get("Content-Length"); seen.ContentLength != int64(tc.size) || (tc.size > 0 && cl != strconv.Itoa(tc.size)) {
				t.Errorf("origin saw Content-Length %d (header %q), want %d", seen.ContentLength, cl, tc.size)
			}
			if v := seen.Header.Values("Expect"); len(v) > 0 {
				t.Errorf("origin saw Expect %q", v)
			}
		})
	}

	t.Run("memory full: a form spills to the disk spool and is served", func(t *testing.T) {
		// Two bodies of 64 KiB, each stalled 1 KiB short, reserve the whole
		// 128 KiB: they wait at the edge, not at the origin. They come from
		// two addresses: one address may hold only its share (64 KiB here,
		// TestRequestBufferPerClientShare).
		const holdLen = 64 << 10
		type held struct {
			c    net.Conn
			data []byte
		}
		var holders []held
		for i := range 2 {
			data, _ := payload(100+i, holdLen)
			c := stallBody(t, fmt.Sprintf("127.0.0.%d", 4+i), s.Addr, "/hold", data)
			holders = append(holders, held{c, data})
		}
		full := time.Now().Add(5 * time.Second)
		tk := time.NewTicker(10 * time.Millisecond)
		for s.gauge(t, "portcullis_edge_request_buffer_in_use_bytes", map[string]string{"store": "memory"}) < 128<<10 && time.Now().Before(full) {
			<-tk.C
		}
		tk.Stop()
		if n := bo.count("/hold"); n != 0 {
			t.Fatalf("origin saw %d held bodies before they were complete", n)
		}
		// With memory full, a form goes to the disk spool at once rather
		// than waiting for 503 (the spool, 16× larger, is empty): held
		// bodies from a few networks cannot refuse everyone's forms.
		// Both stores full still answer 503 (internal/edge
		// TestBufferMemoryFullSpills).
		disk := s.counter(t, "portcullis_edge_request_buffer_bytes_total", map[string]string{"store": "disk"})
		data, sum := payload(200, 10<<10)
		r := hDo(h1, http.MethodPost, s.URL+"/form", nil, bytes.NewReader(data))
		if r.Status != http.StatusOK || r.Body != sum {
			t.Fatalf("with the memory budget full: status %d (%v), want 200 byte-exact from the spool", r.Status, r.Err)
		}
		if seen, ok := bo.bySum(sum); !ok || seen.Len != int64(len(data)) {
			t.Fatalf("origin got the spilled form: %v (%d bytes), want %d bytes", ok, seen.Len, len(data))
		}
		if got := s.counter(t, "portcullis_edge_request_buffer_bytes_total", map[string]string{"store": "disk"}); got < disk+float64(len(data)) {
			t.Errorf("disk bytes %v after the spill, want ≥ %v", got, disk+float64(len(data)))
		}
		if got := s.counter(t, "portcullis_edge_request_buffer_refused_total", map[string]string{"store": "memory"}); got != 0 {
			t.Errorf("refused counter %v, want 0", got)
		}
		// The holders finish: served, and the buffer empties.
		for _, h := range holders {
			finishStalled(t, h.c, h.data)
		}
		if r := hDo(h1, http.MethodPost, s.URL+"/form", nil, bytes.NewReader(data)); r.Status != 200 || r.Body != sum {
			t.Fatalf("retry after the buffer emptied: status %d (%v)", r.Status, r.Err)
		}
		if m := s.gauge(t, "portcullis_edge_request_buffer_in_use_bytes", map[string]string{"store": "memory"}); m != 0 {
			t.Errorf("%v bytes of buffer still reserved after every request ended", m)
		}
	})
	t.Run("metrics count memory and disk bytes", func(t *testing.T) {
		if got := s.counter(t, "portcullis_edge_request_buffer_bytes_total", map[string]string{"store": "memory"}); got < 10<<10 {
			t.Errorf("memory bytes %v", got)
		}
		if got := s.counter(t, "portcullis_edge_request_buffer_bytes_total", map[string]string{"store": "disk"}); got < 2<<20 {
			t.Errorf("disk bytes %v", got)
		}
	})
}

// TestF15_SlowPostHeldAtTheEdge runs slowhttptest's slow-body attack
// (R.U.D.Y., -B: 200 connections announcing 8 KiB form bodies and sending a
// few bytes every 2 s, 10 s) against a buffered route, and a smaller one
// against a route that opted out of buffering, while a normal client posts
// checksummed forms of every size. The buffered route's slow bodies never
// take an origin slot; the opt-out route's do (the control that shows the
// measurement sees held slots); every normal POST arrives byte-exact.
func TestF15_SlowPostHeldAtTheEdge(t *testing.T) {
	slow, err := exec.LookPath("slowhttptest")
	if err != nil {
		t.Skip("slowhttptest not installed (apt-get install slowhttptest)")
	}
	o := newOrigin(t)
	bo := newBodyOrigin(o, "/donate", "/upload", "/form")
	s := startShield(t, o, func(c *config.Config) {
		c.Limits.BodyGrace = dur(3 * time.Second)
		// slowhttptest connects from one address: let the body limits,
		// not the per-client caps, meet every connection.
		c.Limits.MaxInflightPerClient = 1000
		c.Limits.MaxConnsPerClient = 1000
		c.Sites[0].Routes = []config.Route{{Path: "/upload", BufferRequest: new(false)}}
	})

	attacks := []struct {
		path  string
		conns int
	}{{"/donate", 200}, {"/upload", 20}}
	outs := make([]string, len(attacks))
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	for i, a := range attacks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, _ := exec.CommandContext(ctx, slow, "-B", "-c", strconv.Itoa(a.conns), "-i", "2", "-r", "100", "-l", "10",
				"-s", "8192", "-x", "10", "-p", "3", "-u", s.URL+a.path).CombinedOutput()
			outs[i] = string(out)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	// The normal client posts forms of every size, chunked and not, one
	// every 20 ms, until the attack ends.
	c := clientFrom(t, "127.0.0.2")
	sizes := []int{300, 4 << 10, 100 << 10, 1<<20 + 1, 3 << 20}
	var sent, failed []string
	pace := time.NewTicker(20 * time.Millisecond)
	defer pace.Stop()
	for i := 0; ; i++ {
		select {
		case <-done:
		case <-pace.C:
			data, sum := payload(i, sizes[i%len(sizes)])
			var body io.Reader = bytes.NewReader(data)
			if i%2 == 1 {
				body = onlyReader{bytes.NewReader(data)}
			}
			r := hDo(c, http.MethodPost, s.URL+"/form", nil, body)
			if r.Err != nil || r.Status != 200 || r.Body != sum {
				failed = append(failed, fmt.Sprintf("%d bytes: status %d %v", len(data), r.Status, r.Err))
			}
			sent = append(sent, sum)
			continue
		}
		break
	}
	for i, out := range outs {
		if !strings.Contains(out, "slowhttptest") && !strings.Contains(out, "Test type") {
			t.Fatalf("attack %d did not run:\n%.600s", i, out)
		}
		if j := strings.LastIndex(out, "slow HTTP test status"); j >= 0 {
			t.Logf("%s: %s", attacks[i].path, strings.Join(strings.Fields(out[j:]), " "))
		}
	}

	t.Logf("origin peak concurrency: buffered %d (%d arrivals), streaming %d (%d arrivals); %d normal POSTs",
		bo.peak["/donate"].Load(), bo.count("/donate"), bo.peak["/upload"].Load(), bo.count("/upload"), len(sent))
	t.Run("slow POSTs never hold an origin slot", func(t *testing.T) {
		if p := bo.peak["/donate"].Load(); p > 2 {
			t.Errorf("origin peak concurrency from slow POSTs on a buffered route: %d (want ≤ 2: at most slowhttptest's probe)", p)
		}
	})
	t.Run("control: on the opt-out route they do", func(t *testing.T) {
		if p := bo.peak["/upload"].Load(); p < int64(attacks[1].conns)/2 {
			t.Errorf("origin peak concurrency from slow POSTs on the streaming route: %d, want ≥ %d", p, attacks[1].conns/2)
		}
	})
	t.Run("normal POSTs succeed and arrive byte-exact", func(t *testing.T) {
		if len(sent) < 10 {
			t.Fatalf("only %d normal POSTs during the attack", len(sent))
		}
		if len(failed) > 0 {
			t.Fatalf("%d of %d normal POSTs failed: %q", len(failed), len(sent), failed)
		}
		for _, sum := range sent {
			seen, ok := bo.bySum(sum)
			if !ok {
				t.Fatalf("body %.16s never reached the origin", sum)
			}
			if len(seen.TransferEncoding) != 0 || seen.ContentLength != seen.Len {
				t.Fatalf("body %.16s framed Content-Length %d, Transfer-Encoding %q (length %d)", sum, seen.ContentLength, seen.TransferEncoding, seen.Len)
			}
		}
	})
}

// TestRequestBufferPerClientShare is the reviewer's hole through the real
// shield (case F15, slow POST): one address opens bodies that stall just
// short of their end and so stay in the request buffer. With a per-client
// share it holds its share and no more (its further bodies get 429 with
// Retry-After) while another client's POSTs of every framing keep
// arriving byte-exact; the control row, whose share is the whole buffer,
// shows the same attacker filling the memory, and the other client's
// bodies then spilled to the disk spool and still served.
func TestRequestBufferPerClientShare(t *testing.T) {
	const (
		bodyCap = 64 << 10
		total   = 256 << 10
		holdLen = bodyCap // each stalled body reserves a whole 64 KiB
	)
	tests := []struct {
		name      string
		perClient int64
		attempts  int // stalled bodies the attacker opens, one after another

		wantHeld    int  // of them held in the buffer
		wantOther   int  // the other client's status while they are held
		wantRefused int  // attacker bodies answered 429
		wantSpill   bool // the other client's bodies went to the disk spool
	}{
		{name: "share of 128 KiB: the attacker holds two bodies, others are served", perClient: 128 << 10, attempts: 4,
			wantHeld: 2, wantOther: http.StatusOK, wantRefused: 2},
		{name: "control: share = whole buffer: the attacker fills memory, others spill to disk", perClient: total, attempts: 4,
			wantHeld: 4, wantOther: http.StatusOK, wantSpill: true},
	}
	for ti, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newOrigin(t)
			bo := newBodyOrigin(o, "/form", "/hold")
			s := startShield(t, o, func(c *config.Config) {
				c.Limits.RequestBufferBytes = bodyCap
				c.Limits.RequestBufferTotalBytes = total
				c.Limits.RequestBufferPerClientBytes = config.ByteSize(tc.perClient)
			})
			inUse := func() float64 {
				return s.gauge(t, "portcullis_edge_request_buffer_in_use_bytes", map[string]string{"store": "memory"})
			}
			// waitFor polls until done (the shield has read what was sent,
			// or released it) or 5 s pass.
			waitFor := func(done func() bool) {
				deadline := time.Now().Add(5 * time.Second)
				tk := time.NewTicker(5 * time.Millisecond)
				defer tk.Stop()
				for !done() && time.Now().Before(deadline) {
					<-tk.C
				}
			}

			// The attacker (127.0.0.4): bodies sent fast up to their last
			// KiB, then stalled (as a trickle under the idle timeout would).
			type held struct {
				c    net.Conn
				data []byte
			}
			var holders []held
			refused := 0
			for i := range tc.attempts {
				data, _ := payload(1000*ti+i, holdLen)
				c := stallBody(t, "127.0.0.4", s.Addr, "/hold", data)
				if len(holders) < tc.wantHeld {
					want := float64((len(holders) + 1) * holdLen)
					waitFor(func() bool { return inUse() >= want })
					holders = append(holders, held{c, data})
					continue
				}
				// Over its share: answered at once (after the buffer's
				// short wait), without waiting for the rest of the body.
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatalf("attacker body %d: %v", i, err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
					t.Fatalf("attacker body %d over its share: status %d Retry-After %q, want 429 with Retry-After", i, resp.StatusCode, resp.Header.Get("Retry-After"))
				}
				refused++
			}
			if got := inUse(); got != float64(tc.wantHeld*holdLen) {
				t.Fatalf("buffer holds %v bytes, want the attacker's %d bodies (%d)", got, tc.wantHeld, tc.wantHeld*holdLen)
			}
			if refused != tc.wantRefused {
				t.Fatalf("%d attacker bodies refused, want %d", refused, tc.wantRefused)
			}

			// Another client, while the attacker's bodies are held.
			disk := s.counter(t, "portcullis_edge_request_buffer_bytes_total", map[string]string{"store": "disk"})
			h1 := clientFrom(t, "127.0.0.2")
			h2 := h2cClientFrom(t, "127.0.0.3")
			others := []struct {
				size    int
				chunked bool
				h2      bool
			}{{10 << 10, false, false}, {bodyCap, false, false}, {20 << 10, true, false}, {300 << 10, true, false}, {500 << 10, false, true}, {30 << 10, true, true}}
			for i, oc := range others {
				r, sum := postPayload(h1, h2, s.URL+"/form", 1000*ti+100+i, oc.size, oc.chunked, oc.h2)
				if r.Err != nil || r.Status != tc.wantOther {
					t.Fatalf("other client's POST %d (%d bytes, chunked %v, h2 %v): status %d (%v), want %d", i, oc.size, oc.chunked, oc.h2, r.Status, r.Err, tc.wantOther)
				}
				seen, ok := bo.bySum(sum)
				if tc.wantOther != http.StatusOK {
					if ok {
						t.Fatal("a refused body reached the origin")
					}
					break // one refusal shows the hole
				}
				if !ok || seen.Len != int64(oc.size) || r.Body != sum || len(seen.TransferEncoding) != 0 {
					t.Fatalf("other client's POST %d: origin got %d bytes (found %v, Transfer-Encoding %q), want %d byte-exact", i, seen.Len, ok, seen.TransferEncoding, oc.size)
				}
				if i == 0 {
					// The first body, 10 KiB, is kept in memory when there
					// is room: it shows on the disk counter only if it
					// spilled.
					spilled := s.counter(t, "portcullis_edge_request_buffer_bytes_total", map[string]string{"store": "disk"}) - disk
					if got := spilled >= float64(oc.size); got != tc.wantSpill {
						t.Errorf("disk bytes grew by %v for a %d-byte form; spilled %v, want %v", spilled, oc.size, got, tc.wantSpill)
					}
				}
			}

			share := s.counter(t, "portcullis_edge_request_buffer_client_refused_total", nil)
			full := s.counter(t, "portcullis_edge_request_buffer_refused_total", map[string]string{"store": "memory"})
			if want := float64(tc.wantRefused); share != want {
				t.Errorf("client refused counter %v, want %v", share, want)
			}
			if wantFull := tc.wantOther != http.StatusOK; (full > 0) != wantFull {
				t.Errorf("buffer-full refused counter %v, want > 0: %v", full, wantFull)
			}

			// The attacker's held bodies were never cut: they finish and
			// are served, and the buffer empties.
			for _, h := range holders {
				finishStalled(t, h.c, h.data)
			}
			if n := bo.count("/hold"); n != tc.wantHeld {
				t.Errorf("origin got %d held bodies, want %d", n, tc.wantHeld)
			}
			waitFor(func() bool { return inUse() == 0 })
			if m := inUse(); m != 0 {
				t.Errorf("%v bytes of buffer still reserved after every request ended", m)
			}
			if c := s.gauge(t, "portcullis_edge_request_buffer_clients", nil); c != 0 {
				t.Errorf("%v clients still in the per-client table", c)
			}
		})
	}
}
