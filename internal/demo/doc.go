// Package demo is the embedded campaign website that `portcullis demo` puts
// behind the shield: a plain net/http origin with no shield logic of its own.
//
// The site belongs to a fictional party (by default "Harbour Party") and
// exercises every kind of traffic the shield must carry without loss:
// ordinary HTML pages and forms (rendered from html/template, usable without
// JavaScript), a member login that signs an HMAC-SHA-256 session cookie and
// announces the member to the shield with the X-Portcullis-Member response
// header, a donation form whose receipt shows the SHA-256 of the received
// body, a streaming upload that hashes arbitrarily large bodies in constant
// memory, RSS 2.0 and Atom feeds with ETag revalidation, a small JSON API, a
// request echo for proxy tests, a deliberately CPU-expensive search, a
// Server-Sent Events stream, a WebSocket echo and cacheable static assets.
//
// Every loop and every stream is bounded: SSE and NDJSON streams stop after at
// most MaxLiveEvents events, WebSocket connections after Options.WSLifetime or
// 10,000 messages, bodies are capped per route, and every wait honours
// the request context so a client that leaves frees its handler at once.
//
// All assets live in an embed.FS; the package keeps no mutable global state, so any
// number of Sites can run side by side (as tests do).
package demo
