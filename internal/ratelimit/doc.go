// Package ratelimit holds Portcullis' keyed request-rate and concurrency limiters.
//
// [Limiter] is a keyed GCRA limiter (the Generic Cell Rate Algorithm, virtual
// scheduling form, ATM Forum Traffic Management 4.0 §4.4.2 and ITU-T I.371
// Annex A): per key it stores one theoretical arrival time (TAT) and nothing
// else, which makes a decision one compare-and-add under a shard mutex. Keys
// are small comparable values built from a netip.Addr or an aggregate
// netip.Prefix ([Key]); there is no string key and no empty key.
//
// Memory is fixed at construction: [Options.MaxKeys] slots of [BytesPerKey]
// bytes, split into power-of-two shards of 8-way set-associative buckets.
// Because a GCRA entry whose TAT is not after now is indistinguishable from an
// absent one, idle entries are free to overwrite; when a bucket is full of
// live entries the one with the smallest TAT (the least debt) is evicted, so a
// client that is being refused — whose TAT lies far ahead — is never forgotten
// in favour of a flood of fresh keys. See DESIGN.md for the invariants.
//
// Time is relative and monotonic: the default clock is time.Since a start
// instant (Go's monotonic reading), never the wall clock. A per-shard guard
// clamps time that runs backwards, so a regression can neither lock a client
// out nor hand it a free bucket.
//
// [Concurrency] caps in-flight work per key (open connections, WebSockets).
//
// The package imports no net/http: callers turn a [Decision] into a status and
// a Retry-After header with [Decision.RetryAfterSeconds].
package ratelimit
