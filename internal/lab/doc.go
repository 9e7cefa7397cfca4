// Package lab is Portcullis' attack lab (issue 6): scenario files, traffic
// models of real people, an instrumented origin, a population sampler for
// simulated source addresses, the runner and the score. Attack traffic
// itself comes from the sibling package attack.
//
// A run has three phases — before, attack, after — and records events:
//
//   - every request of the legitimate traffic models ([Request]: visitors
//     browsing pages with their assets and occasional checksummed form
//     POSTs, members with standing, feed readers, API clients), as seen by
//     the client, challenges solved like a browser would;
//   - per 100 ms bin, the requests the instrumented [Origin] received, by
//     the class the sender declared in the X-Lab-Class header (or the
//     lab_class cookie): legit, member, feed, api, bot, crowd;
//   - what each attack driver reported ([attack.Result]);
//   - when the shield opened an incident (from its admin API), and the CPU
//     time and peak resident memory of the front under test (from /proc).
//
// [Compute] turns a [Record] into a [Score], a pure function unit-tested on
// hand-built records. [Run] drives a [Scenario] either self-contained (it
// starts the origin and `portcullis serve` as a child process) or against a
// running front (Portcullis, nginx or HAProxy) whose upstream is the origin
// the lab starts.
//
// Everything stays on loopback: simulated public source addresses travel in
// X-Forwarded-For (or a PROXY protocol v1 header) from 127.0.0.1, which the
// front must trust.
package lab
