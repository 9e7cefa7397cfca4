package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/internal/clientip"
	"github.com/portcullis/portcullis/internal/ratelimit"
)

// Request-body buffering (nginx's `proxy_request_buffering on`): the
// handler reads a request body whole at the edge, under the body idle
// timeout and minimum rate, before the request asks the origin pool for a
// slot, so a slow POST (R.U.D.Y., `slowhttptest -B`) is cut at the edge and
// never holds an origin connection. Bodies up to MemoryBytes are kept in
// pooled chunks in memory; larger ones are spooled to an unlinked
// temporary file. The origin then receives the body at once with an exact
// Content-Length and no Transfer-Encoding (which also closes the
// chunked-vs-Content-Length request-smuggling surface toward the origin).
//
// One client address may hold at most its share of the memory budget
// (BufferConfig.PerClientBytes), and the addresses of one aggregate prefix
// (the client's /24 or /64, the same prefix the rest of the shield keys
// on: clientip.PrefixOf) together at most PrefixShareFactor times that, so
// that neither a single address nor a flood rotating addresses inside one
// network (HANDED F06: 2^64 addresses in an IPv6 /64) can fill the buffer
// by holding bodies open (a fast start, then a trickle) and have every
// other client's POST refused; the minimum body rate over a sliding window
// (MinBodyRateWindow) bounds how long it can hold them. The disk spool has
// the same two shares, in proportion to its budget. A share never refuses
// a client's only body (see BufferConfig.PerClientBytes).
//
// A few networks at their prefix shares still fill the memory budget (four
// /24s, or four /64s of one /56, by default, holding it for as long as
// their bodies trickle at the minimum rate). So when the memory budget is
// full (not the client's own share), a body that would be kept in memory
// spills to the spool (SpoolFactor times larger) at once, if the spool and
// the client's spool shares have room for it; only when both are full
// does it wait, then get 503. A spilled body reserves its declared length
// on the spool, at least 64 KiB, and copies through a 4 KiB buffer outside
// the memory budget: at most SpoolTotalBytes/16 of memory in all.

// ErrBufferFull is returned by BodyBuffer.Fill when the memory budget
// stayed full for the whole wait and the body could not spill to the
// spool (spooling off, or the spool full as well), or when a spooled body
// found the spool full for the whole wait; the client gets 503 with
// Retry-After.
var ErrBufferFull = errors.New("edge: request buffer full")

// errSpool marks a spool I/O error (the client gets 503, the log a line).
var errSpool = errors.New("edge: request buffer spool")

// errMemoryFull and errSpoolFull tell which budget was full (metrics).
var (
	errMemoryFull = fmt.Errorf("%w (memory)", ErrBufferFull)
	errSpoolFull  = fmt.Errorf("%w (spool)", ErrBufferFull)
)

// ErrBufferShareFull is returned by BodyBuffer.Fill when the client's
// share of the memory or spool budget (BufferConfig.PerClientBytes) stayed
// full for the whole wait: that client address, or the addresses of its
// prefix together, already hold as much buffered body as they may. It does
// not wrap ErrBufferFull: the client gets 429 with Retry-After (its own or
// its network's doing), not 503 (the site is busy), and clients of other
// prefixes are unaffected.
var ErrBufferShareFull = errors.New("edge: request buffer: client's share full")

// errPrefixShareFull tells (in logs) that the prefix's share was full,
// not the address's own.
var errPrefixShareFull = fmt.Errorf("%w (prefix)", ErrBufferShareFull)

// ErrNotBuffered is returned by BodyBuffer.Fill, having read nothing, for a
// body that cannot be buffered: its Content-Length is above MemoryBytes and
// spooling is off, or above the whole spool budget. The caller streams it.
var ErrNotBuffered = errors.New("edge: request body too large to buffer")

// DefaultBufferWait is how long a body waits for room in a full buffer
// before 503, when BufferConfig.Wait is 0.
const DefaultBufferWait = 250 * time.Millisecond

// PerClientDivisor sizes one client's share of the memory budget when
// BufferConfig.PerClientBytes is 0: TotalBytes/PerClientDivisor (8 MiB of
// 64 MiB), and never less than one whole body (MemoryBytes).
const PerClientDivisor = 8

// PrefixShareFactor sizes the share of one aggregate prefix (all client
// addresses of one IPv4 /24 or IPv6 /64 by default) as PrefixShareFactor ×
// the per-address share, at most the whole budget: 16 MiB of 64 MiB by
// default, so two addresses at their share fill their network's, and it
// takes four networks, not one, to fill the buffer. A prefix share that
// comes to the whole budget is not enforced (the budget's own limit, 503,
// applies).
const PrefixShareFactor = 2

// SpoolFactor sizes the spool's disk budget from the memory budget when
// BufferConfig.SpoolTotalBytes is 0.
const SpoolFactor = 16

// BufferConfig configures request-body buffering.
type BufferConfig struct {
	// MemoryBytes is the largest body kept in memory (bytes, ≥ 4 KiB);
	// larger bodies are spooled to SpoolDir.
	MemoryBytes int64
	// TotalBytes caps the memory of all buffered bodies together (bytes,
	// counted in whole chunks of 4 or 32 KiB, ≥ MemoryBytes). When it is
	// full, a body that would be kept in memory spills to the spool at
	// once if the spool (SpoolTotalBytes) and the client's spool shares
	// have room for its declared length (at least 64 KiB); otherwise it
	// waits (Wait) for memory, then gets ErrBufferFull.
	TotalBytes int64
	// PerClientBytes caps the memory the bodies of one client address hold
	// together (bytes, MemoryBytes ≤ PerClientBytes ≤ TotalBytes; 0 =
	// TotalBytes/PerClientDivisor, at least MemoryBytes); the addresses of
	// one prefix (IPv4PrefixBits, IPv6PrefixBits) may hold PrefixShareFactor
	// times it together, at most TotalBytes. The spool has the same two
	// shares in proportion: SpoolTotalBytes × PerClientBytes / TotalBytes
	// per address, and PrefixShareFactor times that per prefix. Beyond a
	// share the client's bodies wait like any other, then get
	// ErrBufferShareFull; a body over its memory share does not spill to
	// the spool (only a full memory budget makes it spill), and one kept
	// off the spool by a spool share gets ErrBufferShareFull rather than
	// ErrBufferFull. A share never refuses a body that is the only one
	// its address (or prefix) holds in that store, so a single body is
	// bounded only by the whole budget and the route's cap.
	PerClientBytes int64
	// IPv4PrefixBits and IPv6PrefixBits are the aggregate prefix lengths
	// whose shares a client's bodies also count against: the shield's
	// client prefix (clientip.Config's fields of the same names; 8..32 and
	// 48..128, 0 = clientip.DefaultIPv4PrefixBits (/24) and
	// clientip.DefaultIPv6PrefixBits (/64)).
	IPv4PrefixBits, IPv6PrefixBits int
	// SpoolDir holds the temporary files of bodies above MemoryBytes, and
	// of smaller ones spilled from a full memory budget (created 0700;
	// files are unlinked as soon as they are created). "" turns spooling
	// off: a body with a larger Content-Length streams to the origin
	// unbuffered, a chunked one streams once its first MemoryBytes
	// arrived, and a full memory budget means wait, then ErrBufferFull.
	SpoolDir string
	// SpoolTotalBytes caps the disk of all spooled bodies together (0 =
	// SpoolFactor × TotalBytes). A body with a larger Content-Length streams
	// unbuffered; a chunked body that outgrows it is refused with 413. A
	// body spilled from a full memory reserves its declared length, at
	// least 64 KiB, at once.
	SpoolTotalBytes int64
	// Wait is how long a body waits for room before ErrBufferFull (or
	// ErrBufferShareFull): in the spool when spooling, in memory when
	// memory is full and the body cannot spill (0 = DefaultBufferWait). A
	// body that spills does not wait.
	Wait time.Duration
}

// BodyBuffer reads request bodies whole before they are forwarded, within
// a memory budget and a disk (spool) budget, each with per-address and
// per-prefix shares. Safe for concurrent use; one per process, kept across
// configuration reloads (SetLimits).
type BodyBuffer struct {
	memBytes   atomic.Int64
	prefixBits atomic.Uint32 // IPv4 bits << 8 | IPv6 bits
	spoolDir   string
	wait       time.Duration
	mem, disk  budget
	metrics    *bufferMetrics
}

// NewBodyBuffer validates cfg, creates SpoolDir (removing files a crash
// left behind) and registers the buffer's metrics on reg (nil = none).
// Errors are wrapped with the "edge:" prefix; see SetLimits.
func NewBodyBuffer(cfg BufferConfig, reg prometheus.Registerer) (*BodyBuffer, error) {
	b := &BodyBuffer{spoolDir: cfg.SpoolDir, wait: cfg.Wait}
	if b.wait <= 0 {
		b.wait = DefaultBufferWait
	}
	b.mem.trackKeys()
	b.disk.trackKeys()
	if err := b.SetLimits(cfg); err != nil {
		return nil, err
	}
	if b.spoolDir != "" {
		if err := os.MkdirAll(b.spoolDir, 0o700); err != nil {
			return nil, fmt.Errorf("%w: %w", errSpool, err)
		}
		old, _ := filepath.Glob(filepath.Join(b.spoolDir, spoolPattern))
		for _, f := range old {
			os.Remove(f)
		}
	}
	if reg != nil {
		m, err := newBufferMetrics(reg, b)
		if err != nil {
			return nil, err
		}
		b.metrics = m
	}
	return b, nil
}

// SetLimits applies cfg's limits (a configuration reload): MemoryBytes,
// TotalBytes, PerClientBytes, SpoolTotalBytes and the prefix lengths.
// SpoolDir and Wait are fixed when the buffer is made and not read here.
// Bodies being buffered keep what they reserved, and count against the
// address and prefix they started with. Errors: MemoryBytes under 4 KiB,
// TotalBytes under it, a non-zero PerClientBytes outside [MemoryBytes,
// TotalBytes], or prefix lengths clientip refuses (wrapping
// clientip.ErrPrefixBits).
func (b *BodyBuffer) SetLimits(cfg BufferConfig) error {
	memoryBytes, totalBytes, perClientBytes := cfg.MemoryBytes, cfg.TotalBytes, cfg.PerClientBytes
	if memoryBytes < smallChunk || totalBytes < memoryBytes {
		return fmt.Errorf("edge: request buffer: need 4KiB ≤ memory (%d) ≤ total (%d)", memoryBytes, totalBytes)
	}
	if perClientBytes != 0 && (perClientBytes < memoryBytes || perClientBytes > totalBytes) {
		return fmt.Errorf("edge: request buffer: need memory (%d) ≤ per-client (%d) ≤ total (%d)", memoryBytes, perClientBytes, totalBytes)
	}
	v4, v6 := cfg.IPv4PrefixBits, cfg.IPv6PrefixBits
	if err := (clientip.Config{IPv4PrefixBits: v4, IPv6PrefixBits: v6}).Validate(); err != nil {
		return fmt.Errorf("edge: request buffer: %w", err)
	}
	if v4 == 0 {
		v4 = clientip.DefaultIPv4PrefixBits
	}
	if v6 == 0 {
		v6 = clientip.DefaultIPv6PrefixBits
	}
	if perClientBytes == 0 {
		perClientBytes = max(totalBytes/PerClientDivisor, memoryBytes)
	}
	b.memBytes.Store(memoryBytes)
	b.prefixBits.Store(uint32(v4)<<8 | uint32(v6))
	// One body reserves at most memoryBytes rounded up to whole chunks:
	// the budget and every client's share take at least one such body.
	oneBody := (memoryBytes + smallChunk - 1) / smallChunk * smallChunk
	total := max(totalBytes, oneBody)
	perAddr := max(perClientBytes, oneBody)
	b.mem.setLimits(total, perAddr, prefixShare(perAddr, total))
	spool := cfg.SpoolTotalBytes
	if spool <= 0 {
		spool = SpoolFactor * totalBytes
	}
	spoolPerAddr := max(scale(spool, perAddr, total), 1)
	b.disk.setLimits(spool, spoolPerAddr, prefixShare(spoolPerAddr, spool))
	return nil
}

// InUse returns the bytes reserved now in memory (whole chunks) and on disk.
func (b *BodyBuffer) InUse() (memory, disk int64) { return b.mem.inUse(), b.disk.inUse() }

// Clients returns the number of client addresses holding buffer memory
// now: the size of the per-client table, at most TotalBytes/4 KiB.
func (b *BodyBuffer) Clients() int {
	n, _ := b.mem.holders()
	return n
}

// claimOf is whom a body of client counts against: its address and its
// aggregate prefix at the configured lengths, derived as the resolver
// derives filter.Request.Prefix (clientip.PrefixOf) and keyed as the rate
// limits key it (ratelimit.KeyFromPrefix). The zero Addr has neither.
func (b *BodyBuffer) claimOf(client netip.Addr) claim {
	pb := b.prefixBits.Load()
	return claim{
		addr:   ratelimit.KeyFromAddr(client),
		prefix: ratelimit.KeyFromPrefix(clientip.PrefixOf(client, int(pb>>8), int(pb&0xff))),
	}
}

const spoolPattern = "body-*"

// Fill reads src (a request body, already wrapped in the edge's limits:
// idle timeout, minimum rate, route cap) to its end and returns it
// buffered. client is the resolved client address whose shares of the
// memory and spool budgets the body counts against, and its prefix's (the
// zero Addr: no share, only the whole budget). contentLength is the
// declared length (-1 unknown). ctx bounds the waits for room. Errors: ErrNotBuffered (nothing was read;
// stream src instead), ErrBufferFull, ErrBufferShareFull, src's errors
// (*BodyTooLargeError, ErrSlowBody, a client that went away), a
// *BodyTooLargeError for a chunked body larger than the whole spool, or a
// wrapped spool I/O error. The caller must Close the result.
func (b *BodyBuffer) Fill(ctx context.Context, client netip.Addr, src io.Reader, contentLength int64) (*BufferedBody, error) {
	memCap := b.memBytes.Load()
	if contentLength > memCap && (b.spoolDir == "" || contentLength > b.disk.limit()) {
		return nil, ErrNotBuffered
	}
	body := &BufferedBody{b: b, who: b.claimOf(client)}
	body.chunks = body.inline[:0]
	var err error
	if contentLength > memCap {
		err = body.spool(ctx, src, nil, contentLength)
	} else {
		err = body.fillMemory(ctx, src, contentLength, memCap)
	}
	if err != nil {
		body.Close()
		switch {
		case errors.Is(err, ErrBufferFull):
			b.metrics.refuse(errors.Is(err, errSpoolFull))
		case errors.Is(err, ErrBufferShareFull):
			b.metrics.refuseShare()
		}
		return nil, err
	}
	b.metrics.buffered(body.size, body.file != nil)
	return body, nil
}

// fillMemory reads src into pooled chunks up to memCap bytes, then spools
// (or, with spooling off, leaves the rest of src to stream); it spills to
// the spool as soon as the memory budget is full (reserveMemory).
func (body *BufferedBody) fillMemory(ctx context.Context, src io.Reader, contentLength, memCap int64) error {
	for {
		if body.size >= memCap {
			if contentLength >= 0 {
				return nil // exactly as declared
			}
			return body.overflow(ctx, src)
		}
		// A small chunk first for a body of unknown length (most forms
		// fit), big ones while at least one fits what may still come, and
		// small ones for the tail: a body reserves at most memCap rounded
		// up to 4 KiB.
		end := memCap
		if contentLength >= 0 {
			end = contentLength
		}
		size := int64(bigChunk)
		if contentLength < 0 && len(body.chunks) == 0 || end-body.size < bigChunk {
			size = smallChunk
		}
		spilled, err := body.reserveMemory(ctx, size, contentLength)
		if err != nil {
			return err
		}
		if spilled {
			return body.spool(ctx, src, nil, contentLength)
		}
		c := getChunk(size)
		body.chunks = append(body.chunks, c)
		want := min(size, memCap-body.size)
		if contentLength >= 0 {
			want = min(want, contentLength-body.size)
		}
		n, err := readFull(src, c[:want])
		body.size += int64(n)
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		case contentLength >= 0 && body.size == contentLength:
			return nil
		}
	}
}

// overflow handles a body of unknown length that filled memCap: a probe
// read tells an exact fit (EOF) from a larger body, which is spooled — or,
// with spooling off, streamed after the buffered part.
func (body *BufferedBody) overflow(ctx context.Context, src io.Reader) error {
	n, err := readFull(src, body.probe[:])
	switch {
	case err == io.EOF && n == 0:
		return nil
	case err != nil && err != io.EOF:
		return err
	}
	if body.b.spoolDir == "" {
		// Streamed: the probed byte, then the rest of src.
		body.tail = body.probe[:n]
		body.rest = src
		return nil
	}
	return body.spool(ctx, src, body.probe[:n], -1)
}

// spool moves the body to an unlinked temporary file: the chunks read so
// far, then first, then the rest of src through one copy buffer,
// reserving disk as it goes beyond what the body reserved already (a
// spilled body: reserveSpill). contentLength is the declared length (-1
// unknown). The copy buffer is charged to the memory budget, or, when
// that is full, the body spills (reserveMemory) and copies through a 4
// KiB buffer that is not.
func (body *BufferedBody) spool(ctx context.Context, src io.Reader, first []byte, contentLength int64) error {
	b := body.b
	f, err := os.CreateTemp(b.spoolDir, spoolPattern)
	if err != nil {
		return fmt.Errorf("%w: %w", errSpool, err)
	}
	os.Remove(f.Name()) // the open descriptor keeps it; nothing is left after a crash
	body.file = f
	if n := body.size + int64(len(first)) - body.disk; n > 0 {
		if r := b.disk.acquire(ctx, body.who, body.disk, n, b.wait); r != admitted {
			return body.spoolFull(r, n)
		}
		body.disk += n
	}
	rem := body.size
	for _, c := range body.chunks {
		k := min(int64(len(c)), rem)
		if _, err := f.Write(c[:k]); err != nil {
			return fmt.Errorf("%w: %w", errSpool, err)
		}
		rem -= k
	}
	body.releaseChunks()
	if len(first) > 0 {
		if _, err := f.Write(first); err != nil {
			return fmt.Errorf("%w: %w", errSpool, err)
		}
		body.size += int64(len(first))
	}
	cs, charged := int64(smallChunk), int64(0) // a spilled body's copy buffer is not charged
	if !body.spilled {
		size := b.copySize()
		spilled, err := body.reserveMemory(ctx, size, contentLength)
		if err != nil {
			return err
		}
		if !spilled {
			cs, charged = size, size
		}
	}
	body.copyBuf = getChunk(cs)
	for {
		n, rerr := src.Read(body.copyBuf)
		if n > 0 {
			if over := body.size + int64(n) - body.disk; over > 0 {
				if r := b.disk.acquire(ctx, body.who, body.disk, over, b.wait); r != admitted {
					return body.spoolFull(r, over)
				}
				body.disk += over
			}
			if _, err := f.Write(body.copyBuf[:n]); err != nil {
				return fmt.Errorf("%w: %w", errSpool, err)
			}
			body.size += int64(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	putChunk(body.copyBuf)
	body.copyBuf = nil
	b.mem.release(body.who, charged)
	body.mem -= charged
	return nil
}

// readFull reads into p until it is full, src ends (io.EOF, with the bytes
// read) or fails.
func readFull(src io.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := src.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// BufferedBody is a request body read whole at the edge: an io.ReadCloser
// over its memory chunks or spool file. Close returns its memory and disk
// to the budgets; a Read after Close (net/http's transport may still be
// reading when the handler returns) gets http.ErrBodyReadAfterClose,
// never another request's bytes.
type BufferedBody struct {
	b   *BodyBuffer
	who claim // the address and prefix whose shares the body counts against

	mu      sync.Mutex
	closed  bool
	spilled bool     // spooled for want of memory: disk reserved whole, copy buffer not charged
	chunks  [][]byte // full-size chunks; the body fills them in order
	inline  [4][]byte
	copyBuf []byte
	probe   [1]byte
	size    int64 // bytes buffered
	mem     int64 // memory reserved (chunk sizes)
	disk    int64 // disk reserved
	file    *os.File
	off     int64 // read offset
	ci, co  int   // read cursor in chunks
	// tail and rest stream the remainder of a body of unknown length that
	// outgrew memory with spooling off.
	tail []byte
	rest io.Reader
}

// Len is the body's buffered length in bytes: the whole body unless
// Streaming reports true.
func (body *BufferedBody) Len() int64 { return body.size }

// Streaming reports whether only the body's first part is buffered and the
// rest streams from the client (spooling off; length unknown).
func (body *BufferedBody) Streaming() bool { return body.rest != nil }

// Spooled reports whether the body is on disk.
func (body *BufferedBody) Spooled() bool { return body.file != nil }

// Read implements io.Reader.
func (body *BufferedBody) Read(p []byte) (int, error) {
	body.mu.Lock()
	if body.closed {
		body.mu.Unlock()
		return 0, http.ErrBodyReadAfterClose
	}
	if body.off >= body.size {
		if len(body.tail) > 0 {
			n := copy(p, body.tail)
			body.tail = body.tail[n:]
			body.mu.Unlock()
			return n, nil
		}
		rest := body.rest
		body.mu.Unlock()
		if rest != nil {
			return rest.Read(p) // the live client body: safe after Close (net/http)
		}
		return 0, io.EOF
	}
	defer body.mu.Unlock()
	p = p[:min(int64(len(p)), body.size-body.off)]
	if body.file != nil {
		n, err := body.file.ReadAt(p, body.off)
		body.off += int64(n)
		if err == io.EOF && body.off >= body.size {
			err = nil
		}
		return n, err
	}
	n := 0
	for n < len(p) {
		c := body.chunks[body.ci]
		m := copy(p[n:], c[body.co:])
		n += m
		body.co += m
		if body.co == len(c) {
			body.ci, body.co = body.ci+1, 0
		}
	}
	body.off += int64(n)
	return n, nil
}

// Close releases the body's memory and disk; it is idempotent.
func (body *BufferedBody) Close() error {
	body.mu.Lock()
	defer body.mu.Unlock()
	if body.closed {
		return nil
	}
	body.closed = true
	body.releaseChunks()
	if body.copyBuf != nil {
		putChunk(body.copyBuf) // Read never touches it (or tail) after closed is set
	}
	body.copyBuf, body.tail = nil, nil
	body.b.mem.release(body.who, body.mem)
	body.mem = 0
	if body.file != nil {
		body.file.Close()
	}
	body.b.disk.release(body.who, body.disk) // a spilled body reserves before its file exists
	body.disk = 0
	return nil
}

// releaseChunks returns the body's chunks to their pools and their
// reservation to the memory budget.
func (body *BufferedBody) releaseChunks() {
	var n int64
	for i, c := range body.chunks {
		n += int64(cap(c))
		putChunk(c)
		body.chunks[i] = nil
	}
	body.chunks = body.chunks[:0]
	body.b.mem.release(body.who, n)
	body.mem -= n
}
