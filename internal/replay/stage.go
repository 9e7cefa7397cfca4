package replay

import (
	"context"
	"fmt"
	"time"
	"unsafe"

	"github.com/portcullis/portcullis/internal/detect"
	"github.com/portcullis/portcullis/internal/stats"
)

// Replay runs as a two-stage pipeline, so that parsing and detection use
// two cores. A reader goroutine (readStage) parses the file into batches of
// records, copying their strings out of the reader's buffer, and attributes
// requests to countries and ASNs (through its own geo cache: detection is
// the slower stage, so whatever can move off it does). The goroutine that
// called Run (feeder) takes the batches in file order and, record by
// record, sets event time, paces and feeds the detect.Pipeline, so
// detection sees exactly the sequence the single-goroutine replay fed it.
//
// Batches circulate between the two stages through a free list of
// batchesInFlight batches, so the memory held for parsed records is bounded
// whatever the file size (about 1.5 MiB; an arena grows past its initial
// 64 KiB only for lines of tens of KiB, see batch.fits), and reading never
// runs more than a few batches ahead of detection (which matters when
// --speed paces the consumer).

const (
	// batchRecords is the most records (log lines, or capture packets) a
	// batch holds.
	batchRecords = 1024
	// batchArenaBytes is the initial size of a batch's string arena.
	batchArenaBytes = 64 << 10
	// batchesInFlight is how many batches exist per replay: one being
	// filled, one being fed and the rest queued between the stages.
	batchesInFlight = 4
)

// batch is a run of consecutive records of one file. Log batches hold
// requests only; capture batches hold packets and the HTTP requests found
// in some of them: http[i] reports that packet i carried the next request
// of reqs. The requests' strings point into arena (or are constants and
// geo strings), never into the readers' buffers, so a batch stays valid
// after the reader has moved on; they are overwritten when the batch is
// reused, after the consumer has fed it (detect.Pipeline copies what it
// buffers and stats.Accountant what it keeps).
type batch struct {
	reqs  []stats.Request
	pkts  []stats.Packet
	http  []bool
	arena []byte
	// read is how many bytes of the file had been read when the batch was
	// completed (for the progress bar).
	read int64
}

// newBatchPool returns the free list of a replay, holding all its batches.
// Their storage is allocated on first use.
func newBatchPool() chan *batch {
	free := make(chan *batch, batchesInFlight)
	for range batchesInFlight {
		free <- &batch{}
	}
	return free
}

func (b *batch) reset() {
	if b.reqs == nil {
		b.reqs = make([]stats.Request, 0, batchRecords)
		b.arena = make([]byte, 0, batchArenaBytes)
	}
	b.reqs, b.pkts, b.http, b.arena = b.reqs[:0], b.pkts[:0], b.http[:0], b.arena[:0]
}

// records returns how many records (requests of a log, packets of a
// capture) the batch holds.
func (b *batch) records() int { return max(len(b.reqs), len(b.pkts)) }

// full reports whether the batch holds batchRecords records.
func (b *batch) full() bool { return b.records() >= batchRecords }

// fits reports whether r can be added: its strings fit the arena, or the
// batch is still small enough that growing the arena is better than
// shipping a short batch. Requests with long strings therefore make
// batches shorter, not arenas larger: an arena grows only while its batch
// holds fewer than batchRecords/4 records.
func (b *batch) fits(r *stats.Request) bool {
	return len(b.arena)+stringBytes(r) <= cap(b.arena) || b.records() < batchRecords/4
}

// stringBytes returns the length of r's strings.
func stringBytes(r *stats.Request) int {
	return len(r.Country) + len(r.Method) + len(r.Path) + len(r.Query) + len(r.UserAgent)
}

// addRequest appends r with its strings copied into the arena, growing the
// arena if they do not fit (see fits).
func (b *batch) addRequest(r *stats.Request) {
	if need := stringBytes(r); len(b.arena)+need > cap(b.arena) {
		// A new array: strings already in this batch keep the old one alive
		// until the batch is reused.
		b.arena = make([]byte, 0, max(2*cap(b.arena), need, batchArenaBytes))
	}
	b.reqs = append(b.reqs, *r)
	c := &b.reqs[len(b.reqs)-1]
	c.Country = b.str(c.Country)
	c.Method = b.method(c.Method)
	c.Path = b.str(c.Path)
	c.Query = b.str(c.Query)
	c.UserAgent = b.str(c.UserAgent)
}

// str copies s into the arena, which has room for it, and returns the copy.
func (b *batch) str(s string) string {
	if s == "" {
		return ""
	}
	off := len(b.arena)
	b.arena = append(b.arena, s...)
	return unsafe.String(&b.arena[off], len(s))
}

// method returns a constant for the common HTTP methods, else a copy.
func (b *batch) method(m string) string {
	switch m {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "HEAD":
		return "HEAD"
	}
	return b.str(m)
}

// readStage parses one file into batches on its own goroutine.
type readStage struct {
	in   *input
	geo  *geoCache // the reader's own cache (a geoCache is single-goroutine)
	free chan *batch
	full chan<- *batch
	stop <-chan struct{}
}

// run reads the whole file, or until stop closes, and closes full. Every
// batch it took from free is either sent on full or returned to free.
func (s *readStage) run() {
	defer close(s.full)
	b := s.get()
	if b == nil {
		return
	}
	var req stats.Request
	var pkt stats.Packet
	if lr := s.in.log; lr != nil {
		for lr.Next(&req) {
			s.attribute(&req)
			if !b.fits(&req) {
				if b = s.ship(b); b == nil {
					return
				}
			}
			b.addRequest(&req)
			if b.full() {
				if b = s.ship(b); b == nil {
					return
				}
			}
		}
	} else {
		pr := s.in.pcap
		for pr.Next(&pkt, &req) {
			http := pr.HTTP()
			if http {
				s.attribute(&req)
				if !b.fits(&req) {
					if b = s.ship(b); b == nil {
						return
					}
				}
				b.addRequest(&req)
			}
			b.pkts = append(b.pkts, pkt)
			b.http = append(b.http, http)
			if b.full() {
				if b = s.ship(b); b == nil {
					return
				}
			}
		}
	}
	if b.records() == 0 {
		s.free <- b
		return
	}
	b.read = s.in.count.n
	select {
	case s.full <- b:
	case <-s.stop:
		s.free <- b
	}
}

// attribute sets r's country and ASN from the geo data, if any.
func (s *readStage) attribute(r *stats.Request) {
	if s.geo != nil {
		info := s.geo.lookup(r.Addr)
		r.Country, r.ASN = info.Country, info.ASN
	}
}

// get takes an empty batch from the free list; nil once stop has closed.
func (s *readStage) get() *batch {
	select {
	case b := <-s.free:
		b.reset()
		return b
	case <-s.stop:
		return nil
	}
}

// ship hands b to the consumer and returns the next empty batch; nil once
// stop has closed.
func (s *readStage) ship(b *batch) *batch {
	b.read = s.in.count.n
	select {
	case s.full <- b:
	case <-s.stop:
		s.free <- b
		return nil
	}
	return s.get()
}

// feeder replays one file: it runs the reader stage on a goroutine and
// feeds the batches to the pipeline, in order, on the calling goroutine.
type feeder struct {
	ctx         context.Context
	pipe        *detect.Pipeline
	readGeo     *geoCache
	free        chan *batch
	pace        *pacer
	bar         *progress
	eventNow    *time.Time
	file, files int
	base        int64
	in          *input
	sink        *fanout
	// rec counts every request in the incident record.
	rec *recording
	// first and last are the earliest and latest record times fed (Unix
	// ns; 0: none yet).
	first, last int64
}

// see moves event time to a record's time t (Unix ns).
func (f *feeder) see(t int64) {
	if f.first == 0 || t < f.first {
		f.first = t
	}
	f.last = max(f.last, t)
	*f.eventNow = time.Unix(0, t)
}

// run replays the file, filling fs. Errors: the context's, and the log
// reader's read error (after every record before it was fed); prefixed
// "replay: <file>:".
func (f *feeder) run(fs *FileSummary) error {
	full := make(chan *batch, batchesInFlight)
	stop := make(chan struct{})
	rs := &readStage{in: f.in, geo: f.readGeo, free: f.free, full: full, stop: stop}
	go rs.run()
	defer func() {
		// Stop the reader (when returning early) and take its batches
		// back; it has finished once full is closed.
		close(stop)
		for b := range full {
			f.free <- b
		}
	}()
	defer func() {
		if f.first != 0 {
			fs.First, fs.Last = time.Unix(0, f.first).UTC(), time.Unix(0, f.last).UTC()
		}
	}()
	var fed uint64
	for {
		if err := f.ctx.Err(); err != nil {
			return fmt.Errorf("replay: %s: %w", f.in.name, err)
		}
		b, ok := <-full
		if !ok {
			break
		}
		f.bar.update(f.file, f.files, f.base+b.read, fed, f.sink.opened)
		err := f.feed(b, fs)
		fed += uint64(b.records())
		f.free <- b
		if err != nil {
			return fmt.Errorf("replay: %s: %w", f.in.name, err)
		}
	}
	// full is closed: the reader has finished and its counts are final.
	if lr := f.in.log; lr != nil {
		fs.Format = lr.Format().String()
		fs.Lines, fs.Skipped, fs.Malformed = lr.Lines(), lr.Skipped(), lr.Malformed()
		if err := lr.Err(); err != nil {
			return fmt.Errorf("replay: %s: %w", f.in.name, err)
		}
		return nil
	}
	pr := f.in.pcap
	fs.Format = pr.Format()
	fs.Packets, fs.NonIP, fs.Duplicates, fs.Malformed = pr.Packets(), pr.NonIP(), pr.Duplicates(), pr.Malformed()
	return nil
}

// feed paces and feeds b's records to the pipeline; the error is the
// pacing's (the context's). Store errors are kept in the sink.
func (f *feeder) feed(b *batch, fs *FileSummary) error {
	if len(b.pkts) == 0 {
		for i := range b.reqs {
			r := &b.reqs[i]
			f.see(r.Time)
			if err := f.pace.wait(f.ctx, r.Time); err != nil {
				return err
			}
			f.rec.observe(r)
			f.sink.keep(f.pipe.Request(f.ctx, r))
			fs.Requests++
		}
		return nil
	}
	next := 0
	for i := range b.pkts {
		p := &b.pkts[i]
		f.see(p.Time)
		if err := f.pace.wait(f.ctx, p.Time); err != nil {
			return err
		}
		f.sink.keep(f.pipe.Packet(f.ctx, p))
		if b.http[i] {
			f.rec.observe(&b.reqs[next])
			f.sink.keep(f.pipe.Request(f.ctx, &b.reqs[next]))
			next++
			fs.Requests++
		}
	}
	return nil
}
