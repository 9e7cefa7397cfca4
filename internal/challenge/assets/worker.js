// Portcullis proof-of-work worker (hashcash, Back 2002).
//
// Input message: {seed: 32 hex chars, bits: difficulty, start: first nonce,
// step: nonce stride (one stride per worker)}.
// Finds the smallest nonce N = start + k*step such that
// SHA-256(seed + decimal(N)) starts with `bits` zero bits (bits <= 32), and
// posts {type: "found", nonce: "N"}; posts {type: "progress", tried: n}
// right away and about every 250 ms. The message is at most 48 bytes, so
// each try is one SHA-256 compression (FIPS 180-4), of which the first 8
// rounds depend only on the seed and are computed once.
'use strict';

var K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
]);
var H = new Int32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
]);

// Solver holds the seed's precomputed words and the state after 8 rounds.
function Solver(seed) {
  this.W = new Int32Array(64);
  this.S = new Int32Array(8);
  this.tail = new Uint8Array(24); // message bytes 32..55
  var W = this.W, i;
  for (i = 0; i < 8; i++) {
    W[i] = (seed.charCodeAt(4 * i) << 24) | (seed.charCodeAt(4 * i + 1) << 16) |
      (seed.charCodeAt(4 * i + 2) << 8) | seed.charCodeAt(4 * i + 3);
  }
  var a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7], t1, t2;
  for (i = 0; i < 8; i++) {
    t1 = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
      ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
    t2 = ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
      ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
  }
  var S = this.S;
  S[0] = a; S[1] = b; S[2] = c; S[3] = d; S[4] = e; S[5] = f; S[6] = g; S[7] = h;
}

// first returns the first 32-bit word of SHA-256(seed + decimal(n)) as an
// unsigned number.
Solver.prototype.first = function (n) {
  var W = this.W, tail = this.tail, len = 0, i, x = n;
  // decimal digits of n, most significant first
  var digits = 1;
  for (var p = 10; p <= x; p *= 10) digits++;
  for (i = digits - 1; i >= 0; i--) {
    tail[i] = 48 + (x % 10);
    x = Math.floor(x / 10);
  }
  len = digits;
  tail[len] = 0x80;
  for (i = len + 1; i < 24; i++) tail[i] = 0;
  for (i = 0; i < 6; i++) {
    W[8 + i] = (tail[4 * i] << 24) | (tail[4 * i + 1] << 16) | (tail[4 * i + 2] << 8) | tail[4 * i + 3];
  }
  W[14] = 0;
  W[15] = (32 + len) * 8;
  for (i = 16; i < 64; i++) {
    var w15 = W[i - 15], w2 = W[i - 2];
    var s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    var s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
  }
  var S = this.S;
  var a = S[0], b = S[1], c = S[2], d = S[3], e = S[4], f = S[5], g = S[6], h = S[7], t1, t2;
  for (i = 8; i < 64; i++) {
    t1 = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
      ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
    t2 = ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
      ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
  }
  return (H[0] + a) >>> 0;
};

// solve searches nonces start, start+step, ... and calls report(tried)
// about every 250 ms; it returns the nonce found.
function solve(seed, bits, start, step, report) {
  var s = new Solver(seed);
  var limit = bits >= 32 ? 1 : Math.pow(2, 32 - bits); // first word below limit
  var tried = 0, last = Date.now();
  for (var n = start; ; n += step) {
    if (s.first(n) < limit) return n;
    if ((++tried & 0xffff) === 0 && report) {
      var now = Date.now();
      if (now - last >= 250) { last = now; report(tried); }
    }
  }
}

if (typeof self !== 'undefined' && typeof self.postMessage === 'function' && typeof module === 'undefined') {
  self.onmessage = function (ev) {
    var m = ev.data;
    self.postMessage({ type: 'progress', tried: 0 });
    var n = solve(String(m.seed), m.bits | 0, m.start | 0, Math.max(1, m.step | 0), function (tried) {
      self.postMessage({ type: 'progress', tried: tried });
    });
    self.postMessage({ type: 'found', nonce: String(n) });
  };
}
if (typeof module !== 'undefined') {
  module.exports = { solve: solve, Solver: Solver };
}
