// Portcullis challenge page script. No inline script, no build step.
//
// Reads the challenge from #pc-form (data-seed, data-difficulty,
// data-worker, data-auto), runs the proof of work in Web Workers, announces
// progress as text in the aria-live region #pc-status, and submits the form
// with the nonce. If the workers do not start within 10 seconds or fail,
// it says so and shows #pc-late (retry link and the no-JavaScript button).
(function () {
  'use strict';
  var d = document;
  d.documentElement.className += ' pc-js';
  var form = d.getElementById('pc-form');
  var status = d.getElementById('pc-status');
  if (!form || !status) return;
  var bar = d.getElementById('pc-progress');
  var late = d.getElementById('pc-late');
  var done = d.getElementById('pc-done');
  var msg = status.dataset;
  var workers = [];
  var finished = false;

  function say(text) { status.textContent = text; }
  function stop() {
    for (var i = 0; i < workers.length; i++) workers[i].terminate();
    workers = [];
  }
  function fail(text) {
    if (finished) return;
    finished = true;
    stop();
    say(text);
    if (late) late.className += ' pc-show';
  }

  if (!navigator.cookieEnabled) { fail(msg.cookies); return; }
  if (typeof Worker === 'undefined') { fail(msg.error); return; }

  var seed = form.getAttribute('data-seed');
  var bits = parseInt(form.getAttribute('data-difficulty'), 10);
  var expected = Math.pow(2, bits);
  var cores = navigator.hardwareConcurrency || 2;
  var n = Math.max(1, Math.min(4, cores - 1));
  var tried = [];
  var started = false;
  var lastSaid = Date.now();

  var timer = setTimeout(function () { if (!started) fail(msg.error); }, 10000);
  say(msg.working);

  function onMessage(i) {
    return function (ev) {
      if (finished) return;
      var m = ev.data || {};
      if (m.type === 'progress') {
        started = true;
        tried[i] = m.tried;
        var total = 0;
        for (var j = 0; j < tried.length; j++) total += tried[j] || 0;
        // probability that a solution has been found by now, as a percentage
        var p = Math.min(99, Math.floor(100 * (1 - Math.exp(-total / expected))));
        if (bar) { bar.hidden = false; bar.value = p; }
        var now = Date.now();
        if (now - lastSaid >= 3000) { lastSaid = now; say(msg.progress.replace('{p}', String(p))); }
      } else if (m.type === 'found') {
        finished = true;
        clearTimeout(timer);
        stop();
        form.elements.n.value = m.nonce;
        if (bar) bar.value = 100;
        if (form.getAttribute('data-auto') === 'true') {
          say(msg.done);
          form.submit();
        } else {
          say(msg.doneManual);
          if (done) {
            done.hidden = false;
            var b = done.querySelector('button');
            if (b) b.focus();
          }
        }
      }
    };
  }

  try {
    for (var i = 0; i < n; i++) {
      var w = new Worker(form.getAttribute('data-worker'));
      w.onmessage = onMessage(i);
      w.onerror = function (e) { if (e && e.preventDefault) e.preventDefault(); fail(msg.error); };
      w.postMessage({ seed: seed, bits: bits, start: i, step: n });
      workers.push(w);
    }
  } catch (e) {
    fail(msg.error);
  }
})();
