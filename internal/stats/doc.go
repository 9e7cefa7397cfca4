// Package stats is Portcullis' traffic accounting: lock-free counters and
// fixed-memory sketches fed from the request path (or replay) without
// blocking it, and snapshotted once per tick for the detectors. It imports
// no net/http.
//
// Shape of the data path (see Accountant):
//
//	request path ──► atomic per-site counters (exact: requests, bytes, connections)
//	             └─► bounded MPSC ring of compact records (Vyukov's bounded queue)
//	drain (Run / Snapshot / in-line when full) ──► per-site sketches
//	Snapshot(now) ──► immutable *Snapshot for package detect
//
// Sketches, each with memory fixed by Config:
//   - distinct counts: HyperLogLog (Flajolet, Fusy, Gandouet, Meunier,
//     AofA 2007) — sources per site and per packet destination, normalised
//     paths, (path, query) pairs, query strings per heavy path (cache busting);
//   - heavy hitters: space-saving top-k (Metwally, Agrawal, El Abbadi, ICDT
//     2005) by address, aggregate prefix (/24, /64), ASN, normalised path,
//     user agent, packet source and source prefix; exact small tables for
//     countries, methods, status classes, verdicts, user-agent classes and
//     UDP reflector ports (AmplificationVectors);
//   - origin latency: a fixed log-linear histogram (LatencyHistogram).
//
// Counts from sampled inputs are multiplied by their sampling rate before
// they reach any counter or sketch; a packet record without a rate counts
// once and is reported (Snapshot.ZeroSampleRate), never silently as 1.
//
// Memory: ten million distinct sources in one tick cost nothing beyond the
// fixed sketches (TestTenMillionSources: about 13 MiB of heap with the
// default configuration), and any source with more than 1/TopK of a tick's
// requests is guaranteed to be among the heavy hitters.
package stats
