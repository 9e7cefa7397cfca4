// Runs assets/challenge.js against a minimal DOM and a Worker stand-in that
// runs assets/worker.js in-process; prints what the page did as JSON.
// Usage: node page_harness.js WORKER_JS CHALLENGE_JS SEED BITS MODE
// MODE: ok | throws | silent | nocookies | workererror
'use strict';
const fs = require('fs');
const [workerPath, pagePath, seed, bitsText, mode] = process.argv.slice(2);
const W = require(workerPath);
const texts = [];
let submitted = null;
const status = {
  dataset: { working: 'working', progress: 'progress {p}', done: 'done', doneManual: 'done manual', error: 'error', cookies: 'cookies' },
  set textContent(v) { texts.push(v); },
};
const nInput = { value: '' };
const attrs = { 'data-seed': seed, 'data-difficulty': bitsText, 'data-worker': '/.portcullis/worker.js', 'data-auto': 'true' };
const form = { getAttribute: (k) => attrs[k], elements: { n: nInput }, submit() { submitted = nInput.value; } };
const late = { className: 'pc-late' };
const elements = { 'pc-form': form, 'pc-status': status, 'pc-progress': { hidden: true, value: 0 }, 'pc-late': late, 'pc-done': null };
global.document = { documentElement: { className: '' }, getElementById: (id) => elements[id] || null };
global.navigator = { cookieEnabled: mode !== 'nocookies', hardwareConcurrency: 4 };
const timers = [];
global.setTimeout = (fn, ms) => { timers.push({ fn, ms }); return timers.length; };
global.clearTimeout = (id) => { if (timers[id - 1]) timers[id - 1].fn = null; };
let workers = 0;
global.Worker = class {
  constructor(url) {
    if (mode === 'throws') throw new Error('blocked by policy');
    this.url = url;
    workers++;
  }
  postMessage(m) {
    if (mode === 'silent') return;
    if (mode === 'workererror') { queueMicrotask(() => this.onerror({ preventDefault() {} })); return; }
    queueMicrotask(() => {
      this.onmessage({ data: { type: 'progress', tried: 0 } });
      const n = W.solve(m.seed, m.bits, m.start, m.step, null);
      this.onmessage({ data: { type: 'found', nonce: String(n) } });
    });
  }
  terminate() {}
};
eval(fs.readFileSync(pagePath, 'utf8'));
setImmediate(() => {
  // Time passes: fire the page's timers (the 10-second watchdog).
  for (const t of timers) if (t.fn) t.fn();
  console.log(JSON.stringify({ submitted, texts, late: late.className, root: document.documentElement.className, workers }));
});
