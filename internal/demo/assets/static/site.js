// Harbour Party demo site: progressive enhancement only. Every page works
// without this file.
(function () {
  "use strict";

  // Quick-pick donation amounts: fill the amount field.
  var presets = document.querySelector("[data-presets]");
  var amount = document.getElementById("amount");
  if (presets && amount) {
    presets.getAttribute("data-presets").split(" ").forEach(function (v) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = "£" + v;
      b.setAttribute("aria-label", "Donate £" + v);
      b.addEventListener("click", function () { amount.value = v; amount.focus(); });
      presets.appendChild(b);
    });
    presets.hidden = false;
  }

  // Live campaign ticker over Server-Sent Events; the stream ends by itself.
  var live = document.querySelector("[data-live-src]");
  if (live && "EventSource" in window) {
    var line = live.querySelector(".live-line");
    var es = new EventSource(live.getAttribute("data-live-src"));
    live.hidden = false;
    es.addEventListener("tick", function (e) {
      try {
        var ev = JSON.parse(e.data);
        line.textContent = ev.headline;
        if (ev.seq >= ev.of) { es.close(); }
      } catch (err) { es.close(); }
    });
    es.onerror = function () { es.close(); live.hidden = true; };
  }
})();
