// Package stats is Portcullis' traffic accounting: lock-free counters and
// fixed-memory sketches fed from the request path (or replay) without
// blocking it, and snapshotted once per tick for the detectors. It imports
// no net/http.
package stats
