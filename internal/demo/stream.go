package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// copyBufferBytes is the read buffer of the streaming body handlers: the
// most of a body held in memory at once.
const copyBufferBytes = 32 << 10

// UploadResult is the JSON answer of POST /upload.
type UploadResult struct {
	Bytes  int64  `json:"bytes"`  // body length received
	SHA256 string `json:"sha256"` // lowercase hex SHA-256 of the body
}

// hashBody streams body through SHA-256 in copyBufferBytes chunks, never
// holding more of it, and returns its length and hex digest.
func hashBody(body io.Reader) (int64, string, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, body, make([]byte, copyBufferBytes))
	if err != nil {
		return n, "", fmt.Errorf("demo: read body: %w", err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// upload hashes a body of any length up to Options.MaxUploadBytes in constant
// memory and answers UploadResult as JSON; 413 (JSON error) beyond the cap,
// 400 if the body breaks off.
func (s *Site) upload(w http.ResponseWriter, r *http.Request) {
	limit := s.opts.MaxUploadBytes
	if r.ContentLength > limit {
		writeJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", limit))
		return
	}
	n, sum, err := hashBody(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if tooBig, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", tooBig.Limit))
			return
		}
		s.log.Debug("demo: upload interrupted", "bytes", n, "err", err)
		writeJSONError(w, http.StatusBadRequest, "body could not be read")
		return
	}
	writeJSON(w, http.StatusOK, UploadResult{Bytes: n, SHA256: sum})
}

// EchoResponse is the JSON answer of /api/v1/echo (any method): what the
// origin received, for proxy tests.
type EchoResponse struct {
	Method     string `json:"method"`
	Path       string `json:"path"`
	RawQuery   string `json:"raw_query"`
	Host       string `json:"host"`
	Proto      string `json:"proto"`       // e.g. "HTTP/1.1"
	RemoteAddr string `json:"remote_addr"` // the direct peer, "ip:port"
	// ContentLength is the declared length, -1 when unknown (chunked).
	ContentLength    int64    `json:"content_length"`
	TransferEncoding []string `json:"transfer_encoding,omitempty"`
	// Headers holds the selected headers (echoHeaders and any X-Portcullis-*),
	// every value in arrival order, canonical names.
	Headers map[string][]string `json:"headers"`
	// HeaderNames lists every request header name received, sorted; values of
	// headers outside Headers are not echoed (cookies, credentials).
	HeaderNames []string `json:"header_names"`
	// Trailers are the request trailers received after the body.
	Trailers   map[string][]string `json:"trailers,omitempty"`
	BodyBytes  int64               `json:"body_bytes"`
	BodySHA256 string              `json:"body_sha256"` // lowercase hex
}

// echoHeaders are the request headers whose values /api/v1/echo returns.
func echoHeaders() []string {
	return []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port",
		"Forwarded", "X-Real-Ip", "X-Request-Id", "Via", "User-Agent", "Accept", "Accept-Encoding",
		"Content-Type", "Content-Encoding", "Connection", "Upgrade", "Te", "Trailer"}
}

func (s *Site) echo(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > s.opts.MaxUploadBytes {
		writeJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", s.opts.MaxUploadBytes))
		return
	}
	n, sum, err := hashBody(http.MaxBytesReader(w, r.Body, s.opts.MaxUploadBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeJSONError(w, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		writeJSONError(w, http.StatusBadRequest, "body could not be read")
		return
	}
	e := EchoResponse{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host, Proto: r.Proto,
		RemoteAddr: r.RemoteAddr, ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding,
		Headers: map[string][]string{}, BodyBytes: n, BodySHA256: sum,
	}
	for _, k := range echoHeaders() {
		if v := r.Header.Values(k); len(v) > 0 {
			e.Headers[k] = v
		}
	}
	for k, v := range r.Header {
		e.HeaderNames = append(e.HeaderNames, k)
		if strings.HasPrefix(k, "X-Portcullis-") {
			e.Headers[k] = v
		}
	}
	sort.Strings(e.HeaderNames)
	if len(r.Trailer) > 0 {
		e.Trailers = map[string][]string(r.Trailer)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, e)
}

// liveEvent is the payload of one /live (SSE data field) or /live.ndjson
// line.
type liveEvent struct {
	Seq      int    `json:"seq"` // 1-based
	Of       int    `json:"of"`
	Time     string `json:"time"` // RFC 3339, server clock
	Headline string `json:"headline"`
}

// live streams n events (?n=, default DefaultLiveEvents, at most
// MaxLiveEvents), one per Options.LiveInterval, as Server-Sent Events (WHATWG
// HTML §9.2) on /live or newline-delimited JSON on /live.ndjson. Headers are
// flushed before the first event; the stream ends after the last event or
// when the client leaves. An SSE Last-Event-ID resumes after that event.
func (s *Site) live(w http.ResponseWriter, r *http.Request) {
	ndjson := strings.HasSuffix(r.URL.Path, ".ndjson")
	n := DefaultLiveEvents
	if q := r.URL.Query().Get("n"); q != "" {
		v, err := strconv.Atoi(q)
		if err != nil || v < 1 {
			http.Error(w, "n must be a positive integer", http.StatusBadRequest)
			return
		}
		n = min(v, MaxLiveEvents)
	}
	first := 1
	if last, err := strconv.Atoi(r.Header.Get("Last-Event-ID")); err == nil && last >= 0 && !ndjson {
		first = min(last, n) + 1
	}
	h := w.Header()
	if ndjson {
		h.Set("Content-Type", "application/x-ndjson")
	} else {
		h.Set("Content-Type", "text/event-stream")
	}
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	// The stream's length is known, so lift a server-wide write timeout to
	// exactly what it needs (errors: the writer has no deadlines; fine).
	_ = rc.SetWriteDeadline(time.Now().Add(time.Duration(n-first+2)*s.opts.LiveInterval + 10*time.Second))
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil || r.Method == http.MethodHead {
		return
	}
	tick := time.NewTicker(s.opts.LiveInterval)
	defer tick.Stop()
	var line []byte
	for seq := first; seq <= n; seq++ {
		select {
		case <-r.Context().Done():
			return
		case now := <-tick.C:
			ev := liveEvent{Seq: seq, Of: n, Time: now.UTC().Format(time.RFC3339Nano),
				Headline: s.content.news[seq%len(s.content.news)].Title}
			data, _ := json.Marshal(ev) // plain struct: cannot fail
			line = line[:0]
			if ndjson {
				line = append(append(line, data...), '\n')
			} else {
				line = fmt.Appendf(line, "id: %d\nevent: tick\ndata: %s\n\n", seq, data)
			}
			if _, err := w.Write(line); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// maxSlow bounds /slow?ms=.
const maxSlow = 10 * time.Second

// slow answers after ?ms= milliseconds (default 1000, at most 10 s), or not
// at all if the client leaves first: a stand-in for a slow backend call.
func (s *Site) slow(w http.ResponseWriter, r *http.Request) {
	d := time.Second
	if q := r.URL.Query().Get("ms"); q != "" {
		ms, err := strconv.Atoi(q)
		if err != nil || ms < 0 || time.Duration(ms)*time.Millisecond > maxSlow {
			http.Error(w, "ms must be an integer in [0, 10000]", http.StatusBadRequest)
			return
		}
		d = time.Duration(ms) * time.Millisecond
	}
	if !wait(r.Context(), d) {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = fmt.Fprintf(w, "slept %d ms\n", d.Milliseconds())
}

// WebSocket bounds per connection.
const (
	wsMaxMessageBytes = 64 << 10
	wsMaxMessages     = 10_000
	wsCloseGrace      = 5 * time.Second
)

// ws is a WebSocket (RFC 6455) echo: every text or binary message comes back
// unchanged. A connection ends with status 1001 after Options.WSLifetime, or
// 1008 after wsMaxMessages messages; messages over 64 KiB close it with 1009.
// Cross-origin handshakes are refused (coder/websocket's default check).
func (s *Site) ws(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has already answered the client
	}
	defer func() { _ = c.CloseNow() }()
	c.SetReadLimit(wsMaxMessageBytes)
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.WSLifetime+wsCloseGrace)
	defer cancel()
	lifetime := time.AfterFunc(s.opts.WSLifetime, func() {
		_ = c.Close(websocket.StatusGoingAway, "connection lifetime reached")
	})
	defer lifetime.Stop()
	for range wsMaxMessages {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
	_ = c.Close(websocket.StatusPolicyViolation, "message limit reached")
}
