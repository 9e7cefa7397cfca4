package replay

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/portcullis/portcullis/internal/detect"
	"github.com/portcullis/portcullis/internal/geo"
	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/stats"
)

// Options configures Run.
type Options struct {
	// Files are replayed one after the other, in this order (give rotated
	// logs oldest first). Each is sniffed: a pcap/pcapng capture (also
	// gzip-compressed classic pcap) or an access log (plain or gzip).
	Files []string
	// Format forces the access log format (default: detected per file).
	Format Format
	// Speed is the replay speed: 0 replays as fast as possible, N > 0 paces
	// records at N times real time (by their timestamps).
	Speed float64
	// JSON selects the output: one JSON object per incident per line
	// (true) or a readable summary table (false).
	JSON bool
	// DataDir, when set, is the data directory whose incident store
	// (incident.Open) receives the incidents as they open, change and close.
	DataDir string
	// Geo attributes sources to countries and ASNs, and names the ASNs
	// (geo.Info.ASOrg) in the incidents (nil: unknown).
	Geo *geo.DB
	// Site names the site the replayed requests belong to, as incidents
	// and reports show it ("www.example.org"; default DefaultSite). It
	// names Detect.Sites[0] when Detect.Sites is set. Errors (wrapping
	// ErrSite) for a name longer than 64 bytes or holding spaces or
	// control characters.
	Site string
	// Detect configures the engine (defaults applied; a single site named
	// Site when Sites is empty). Log records and HTTP requests from
	// captures all belong to site 0.
	Detect detect.Config
	// Stats sizes the accountant; its Sites are taken from Detect, and a
	// zero TopN becomes Detect.StatsTopN() (every network the incident
	// lists is counted in every tick).
	Stats stats.Config
	// SensitiveRoutes are path patterns (record.Routes: "/members/export",
	// "/api/donors*") whose successful responses and bytes each incident's
	// Integrity compares with the log's pre-incident rate.
	SensitiveRoutes []string
	// Progress receives a progress bar while files are read, only if it is
	// a terminal (normally os.Stderr); nil draws none.
	Progress io.Writer
	// Diagnostics receives, with JSON output, the per-file summary (records
	// read, malformed records with their line or packet numbers) that the
	// table output includes; normally os.Stderr. Nil: Progress is used (a
	// terminal or not), so malformed input is never silently dropped.
	Diagnostics io.Writer
	// MaxMalformed is how many malformed records are kept per file (default
	// DefaultMalformedSamples).
	MaxMalformed int
	// Now and Sleep are the wall clock and the pacing sleep (defaults
	// time.Now and a context-aware timer); tests replace them.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// FileSummary reports what was read from one file.
type FileSummary struct {
	// Name is the file name as given.
	Name string `json:"name"`
	// Format is "combined", "common", "json", "pcap" or "pcapng".
	Format string `json:"format"`
	// Lines counts log lines; Skipped the blank and comment lines among them.
	Lines   int64  `json:"lines,omitempty"`
	Skipped uint64 `json:"skipped,omitempty"`
	// Packets counts capture records; NonIP the frames without IP.
	Packets uint64 `json:"packets,omitempty"`
	NonIP   uint64 `json:"non_ip,omitempty"`
	// Requests counts requests fed to detection (log records, or HTTP
	// requests found in TCP payloads); Duplicates the retransmitted request
	// segments not counted again.
	Requests   uint64 `json:"requests"`
	Duplicates uint64 `json:"duplicates,omitempty"`
	// Malformed counts the records that could not be parsed, with the first
	// ones' line or packet numbers.
	Malformed Malformed `json:"malformed"`
	// First and Last are the earliest and latest record times.
	First time.Time `json:"first,omitzero"`
	Last  time.Time `json:"last,omitzero"`
}

// DefaultSite is the site name of a replay without Options.Site: reports
// then read "the site “replay”", which says where the record came from
// without pretending to know the site's name.
const DefaultSite = "replay"

// ErrSite: an unusable Options.Site.
var ErrSite = errors.New("replay: invalid site name")

// maxSiteName bounds a site name (it appears in incident ids, report
// titles and alert subjects).
const maxSiteName = 64

// siteName returns the name of the replayed site: name, else the
// configured first site's, else DefaultSite.
func siteName(name string, sites []detect.SiteConfig) (string, error) {
	if name == "" {
		if len(sites) > 0 && sites[0].Name != "" {
			return sites[0].Name, nil
		}
		return DefaultSite, nil
	}
	if len(name) > maxSiteName {
		return "", fmt.Errorf("%w: %d bytes, at most %d", ErrSite, len(name), maxSiteName)
	}
	if i := strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar }); i >= 0 {
		return "", fmt.Errorf("%w: %q holds a space, control character or invalid UTF-8", ErrSite, name)
	}
	return name, nil
}

// Summary is the outcome of Run.
type Summary struct {
	Files []FileSummary `json:"files"`
	// Incidents are the incidents detected, in the order they opened.
	Incidents []*incident.Incident `json:"incidents"`
	// Elapsed is the wall-clock time the replay took.
	Elapsed time.Duration `json:"elapsed"`
}

// input is one opened file with its reader.
type input struct {
	name   string
	f      *os.File
	count  *countingReader
	size   int64
	log    *LogReader
	pcap   *PcapReader
	closer io.Closer
}

func (in *input) Close() {
	if in.closer != nil {
		in.closer.Close()
	}
	if in.log != nil {
		in.log.Close()
	}
	in.f.Close()
}

// openInput opens name and builds the reader its content calls for.
func openInput(name string, opts *Options) (*input, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	in := &input{name: name, f: f, count: &countingReader{r: f}}
	if st, err := f.Stat(); err == nil {
		in.size = st.Size()
	}
	br := bufio.NewReaderSize(in.count, 64<<10)
	var r io.Reader = br
	head, _ := br.Peek(4)
	if len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("replay: %s: gzip: %w", name, err)
		}
		in.closer = zr
		zbr := bufio.NewReaderSize(zr, 64<<10)
		head, _ = zbr.Peek(4)
		r = zbr
	}
	if IsCapture(head) {
		in.pcap, err = NewPcapReader(r, PcapOptions{
			PrefixBits4: 24, PrefixBits6: 64, MaxMalformed: opts.MaxMalformed,
		})
	} else {
		in.log, err = NewLogReader(r, LogOptions{Format: opts.Format, MaxMalformed: opts.MaxMalformed})
	}
	if err != nil {
		in.Close()
		return nil, fmt.Errorf("replay: %s: %w", name, err)
	}
	return in, nil
}

// Run replays opts.Files through traffic accounting and the detection
// engine on the records' own timestamps, writes the incidents to out (JSON
// lines or a table, see Options.JSON) and, with DataDir, to the incident
// store. Malformed records are counted in the Summary, never fatal. Errors:
// a file that cannot be opened or is in no supported format (checked for
// every file before any is replayed), an invalid configuration, a store
// that cannot be opened or written (the replay still completes and the
// Summary is returned with the error), a read error, and ctx's error if it
// ends first. Errors are prefixed "replay:".
//
// Files are parsed on a goroutine of Run's own while the calling goroutine
// runs detection (see package doc); detection sees the records in file
// order, exactly as a single-goroutine loop would feed them.
func Run(ctx context.Context, opts Options, out io.Writer) (Summary, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	started := opts.Now()
	var sum Summary
	if len(opts.Files) == 0 {
		return sum, errors.New("replay: no input files")
	}
	site, err := siteName(opts.Site, opts.Detect.Sites)
	if err != nil {
		return sum, err
	}
	// Check every file before replaying any: a file that cannot be read or
	// is in no known format is reported and skipped, not fatal to the
	// others. The rest are replayed oldest first, by their first record's
	// time: `replay access.log*` expands to the newest file first, and
	// detection's clock only moves forward.
	var fileErrs []error
	type firstRec struct {
		name string
		t    int64
	}
	var order []firstRec
	for _, name := range opts.Files {
		in, err := openInput(name, &opts)
		if err != nil {
			fileErrs = append(fileErrs, err)
			if opts.Diagnostics != nil {
				fmt.Fprintf(opts.Diagnostics, "replay: skipping %s: %v\n", name, err)
			}
			continue
		}
		order = append(order, firstRec{name, firstTime(in)})
		in.Close()
	}
	if len(order) == 0 {
		return sum, errors.Join(fileErrs...)
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].t < order[j].t })
	opts.Files = opts.Files[:0:0]
	for _, f := range order {
		opts.Files = append(opts.Files, f.name)
	}

	cfg := opts.Detect
	cfg.Sites = slices.Clone(cfg.Sites)
	if len(cfg.Sites) == 0 {
		cfg.Sites = []detect.SiteConfig{{}}
	}
	cfg.Sites[0].Name = site
	scfg := opts.Stats
	scfg.Sites = cfg.StatsSites()
	if scfg.TopN == 0 {
		scfg.TopN = cfg.StatsTopN()
	}
	acc, err := stats.New(scfg)
	if err != nil {
		return sum, fmt.Errorf("replay: %w", err)
	}
	sink := &fanout{mem: &detect.MemorySink{}}
	if opts.DataDir != "" {
		st, err := incident.Open(opts.DataDir)
		if err != nil {
			return sum, fmt.Errorf("replay: %w", err)
		}
		defer st.Close()
		sink.store = incident.Sink{B: st}
	}
	names := &detect.ASNames{}
	gc := newGeoCache(opts.Geo, names)
	readGeo := newGeoCache(opts.Geo, names) // the reader goroutine's own
	free := newBatchPool()
	var eventNow time.Time
	rec, err := newRecording(cfg.Sites, opts.SensitiveRoutes, sink, &eventNow)
	if err != nil {
		return sum, err
	}
	dopts := detect.Options{Clock: func() time.Time { return eventNow }}
	if gc != nil {
		dopts.Geo = gc.countryASN
		dopts.ASName = names.Name
	}
	eng, err := detect.NewEngine(cfg, len(cfg.Sites), rec.sink, dopts)
	if err != nil {
		return sum, fmt.Errorf("replay: %w", err)
	}
	pipe := detect.NewPipeline(acc, eng)

	var total int64
	for _, name := range opts.Files {
		if st, err := os.Stat(name); err == nil {
			total += st.Size()
		}
	}
	bar := newProgress(opts.Progress, total, opts.Now)
	pace := pacer{speed: opts.Speed, now: opts.Now, sleep: opts.Sleep}
	var done int64
	var runErr error
	for i, name := range opts.Files {
		in, err := openInput(name, &opts)
		if err != nil {
			runErr = err
			break
		}
		fs := FileSummary{Name: name}
		feed := feeder{ctx: ctx, pipe: pipe, readGeo: readGeo, free: free, pace: &pace, bar: bar, eventNow: &eventNow,
			file: i + 1, files: len(opts.Files), base: done, in: in, sink: sink, rec: rec}
		err = feed.run(&fs)
		done += in.size
		in.Close()
		sum.Files = append(sum.Files, fs)
		if err != nil {
			if ctx.Err() != nil {
				runErr = err
				break
			}
			// A damaged file (e.g. a truncated .gz) ends its own replay,
			// not the others'.
			fileErrs = append(fileErrs, err)
			if opts.Diagnostics != nil {
				fmt.Fprintf(opts.Diagnostics, "replay: %s ended early: %v\n", name, err)
			}
		}
	}
	bar.clear()
	// Close what is still open even when interrupted, so that the store
	// holds no incident that will never end.
	sink.keep(pipe.Finish(context.WithoutCancel(ctx)))
	sum.Incidents = sink.mem.Incidents()
	sum.Elapsed = opts.Now().Sub(started)
	var werr error
	if opts.JSON {
		werr = WriteJSON(out, sum.Incidents)
		diag := opts.Diagnostics
		if diag == nil {
			diag = opts.Progress
		}
		if diag != nil {
			werr = errors.Join(werr, sum.WriteFiles(diag))
		}
	} else {
		werr = sum.WriteTable(out)
	}
	return sum, errors.Join(runErr, errors.Join(fileErrs...), sink.err(), werr)
}

// fanout is the engine's sink: every incident goes to memory (for the
// output) and, with a data directory, to the store. The first store error is
// kept and returned by Run.
type fanout struct {
	mem    *detect.MemorySink
	store  incident.Sink
	first  error
	opened int // incidents opened so far (for the progress bar)
}

func (s *fanout) keep(err error) {
	if err != nil && s.first == nil {
		s.first = err
	}
}

func (s *fanout) err() error {
	if s.first != nil {
		return fmt.Errorf("replay: incident store: %w", s.first)
	}
	return nil
}

// Open implements detect.Sink.
func (s *fanout) Open(ctx context.Context, in *incident.Incident) error {
	s.opened++
	s.mem.Open(ctx, in)
	if s.store.B != nil {
		return s.store.Open(ctx, in)
	}
	return nil
}

// Update implements detect.Sink.
func (s *fanout) Update(ctx context.Context, in *incident.Incident) error {
	s.mem.Update(ctx, in)
	if s.store.B != nil {
		return s.store.Update(ctx, in)
	}
	return nil
}

// Close implements detect.Sink.
func (s *fanout) Close(ctx context.Context, in *incident.Incident) error {
	s.mem.Close(ctx, in)
	if s.store.B != nil {
		return s.store.Close(ctx, in)
	}
	return nil
}

// pacer holds records back to Speed × real time.
type pacer struct {
	speed float64
	first int64
	start time.Time
	now   func() time.Time
	sleep func(context.Context, time.Duration) error
}

// wait returns when the record at event time t (Unix ns) is due.
func (p *pacer) wait(ctx context.Context, t int64) error {
	if p.speed <= 0 {
		return nil
	}
	if p.first == 0 {
		p.first, p.start = t, p.now()
		return nil
	}
	due := time.Duration(float64(t-p.first) / p.speed)
	if ahead := due - p.now().Sub(p.start); ahead > time.Millisecond {
		return p.sleep(ctx, ahead)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// countingReader counts the bytes read through it (for the progress bar).
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// firstTime returns the time of in's first record (Unix ns), or 0 when it
// has none; it consumes in.
func firstTime(in *input) int64 {
	var req stats.Request
	if in.log != nil {
		if in.log.Next(&req) {
			return req.Time
		}
		return 0
	}
	var pkt stats.Packet
	if in.pcap != nil && in.pcap.Next(&pkt, &req) {
		return pkt.Time
	}
	return 0
}
