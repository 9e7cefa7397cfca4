// Package detect turns per-tick traffic accounting (package stats) into
// attack state: detectors that are pure functions of a snapshot view, a
// baseline and their own state with time passed in; per-site and
// per-destination EWMA baselines with warm-up and floors; and an Engine
// running one state machine per target (normal → suspected → attack →
// recovering → normal, with hysteresis) that opens, updates and closes
// incidents through a Sink. Pipeline drives accounting and engine on event
// time for replay and tests. It imports no net/http.
package detect
