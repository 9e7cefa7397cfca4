package replay

import (
	"fmt"
	"net/http"
	"time"

	"github.com/portcullis/portcullis/internal/detect"
	"github.com/portcullis/portcullis/internal/record"
	"github.com/portcullis/portcullis/internal/stats"
)

// recording is a replay's incident record (package record): every request
// read is counted in the per-second ring of site 0 by its status, and the
// engine's sink is wrapped so that each incident carries its Series and
// Integrity. Impact stays nil: a log cannot tell members or cleared
// visitors from anyone else.
type recording struct {
	rec  *record.Recorder
	site *record.Site
	sink *record.Sink
}

// newRecording returns the recording of a replay whose engine reports to
// next: sites as the engine's, the sensitive routes on each, event time
// read from *now. Errors: an invalid route pattern.
func newRecording(sites []detect.SiteConfig, routes []string, next detect.Sink, now *time.Time) (*recording, error) {
	rec := record.New(record.Options{})
	scs := make([]record.SiteConfig, len(sites))
	for i, s := range sites {
		scs[i] = record.SiteConfig{Name: s.Name, Routes: record.Routes(routes)}
	}
	rs, err := rec.Configure(scs)
	if err != nil {
		return nil, fmt.Errorf("replay: sensitive routes: %w", err)
	}
	return &recording{rec: rec, site: rs[0],
		sink: &record.Sink{Next: next, Rec: rec, Clock: func() time.Time { return *now }}}, nil
}

// observe counts one request by what its logged status says the server
// did: 5xx an origin error, 429 throttled, 403 blocked, any other status
// passed (answered by the origin); a request without a status (found in a
// capture, whose answer is not read) counts as a request only. A nil
// recording counts nothing.
func (r *recording) observe(req *stats.Request) {
	if r == nil {
		return
	}
	o := record.Outcome{Status: req.Status, Bytes: req.Bytes, Route: -1, Latency: req.OriginLatency}
	switch s := req.Status; {
	case s == 0:
		o.Latency = 0
	case s == http.StatusTooManyRequests:
		o.Verdict = record.Throttled
	case s == http.StatusForbidden:
		o.Verdict = record.Blocked
	default:
		o.Verdict, o.Origin, o.OriginError = record.Passed, true, s >= 500
	}
	if routes := r.site.Routes(); len(routes) > 0 {
		o.Route = routes.Match(req.Path)
	}
	n := uint64(max(req.SampleRate, 1))
	for range n {
		r.site.Record(req.Time, &o)
	}
}
