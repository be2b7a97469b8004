// Strongroom review pages: CSRF header for htmx, keyboard, the exposure heartbeat.
// No inline scripts anywhere (the Content-Security-Policy forbids them).
(function () {
  "use strict";
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }
  document.addEventListener("htmx:configRequest", function (e) {
    e.detail.headers["X-CSRF-Token"] = csrf();
  });

  function video() { return document.getElementById("video"); }
  function click(id) { var b = document.getElementById(id); if (b) { b.click(); } }

  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) { return; }
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var v = video();
    var frame = 1 / 25;
    switch (e.key) {
      case " ": if (v) { e.preventDefault(); if (v.paused) { v.play(); } else { v.pause(); } } break;
      case "ArrowLeft": if (v) { e.preventDefault(); v.currentTime = Math.max(0, v.currentTime - 1); } break;
      case "ArrowRight": if (v) { e.preventDefault(); v.currentTime = v.currentTime + 1; } break;
      case ",": if (v) { v.pause(); v.currentTime = Math.max(0, v.currentTime - frame); } break;
      case ".": if (v) { v.pause(); v.currentTime = v.currentTime + frame; } break;
      case "r": case "R": click("reveal"); break;
      case "h": case "H": click("hide"); break;
      case "n": case "N": var n = document.getElementById("next"); if (n) { window.location = n.href; } break;
      case "i": case "I": mark("in", v); break;
      case "o": case "O": mark("out", v); break;
    }
  });

  // I and O: the in and out points of an incident, in seconds of the clip; shown as m:ss.
  function mark(which, v) {
    if (!v) { return; }
    var field = document.getElementById("mark-" + which);
    var shown = document.getElementById("mark-" + which + "-shown");
    if (!field || !shown) { return; }
    var t = v.currentTime;
    field.value = t.toFixed(3);
    var m = Math.floor(t / 60), sec = (t - m * 60).toFixed(1);
    shown.textContent = m + ":" + (sec < 10 ? "0" : "") + sec;
  }

  // While revealed video is on screen (revealed, and the tab visible), tell the server every
  // few seconds; it answers whether today's limit is reached, and a quiet banner appears.
  function heartbeat() {
    var v = video();
    if (!v || v.getAttribute("data-revealed") !== "1") { return; }
    var every = parseFloat(v.getAttribute("data-heartbeat") || "10");
    var sha = v.getAttribute("data-sha");
    var last = Date.now();
    window.setInterval(function () {
      var now = Date.now();
      var seconds = (now - last) / 1000;
      last = now;
      if (document.visibilityState !== "visible") { return; }
      fetch("/api/clips/" + sha + "/exposure", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
        body: JSON.stringify({ seconds: Math.min(seconds, 30) })
      }).then(function (r) { return r.ok ? r.json() : null; }).then(function (j) {
        if (j && j.needs_break) { var b = document.getElementById("break"); if (b) { b.hidden = false; } }
      }).catch(function () {});
    }, every * 1000);
  }
  document.addEventListener("DOMContentLoaded", heartbeat);

  // ?t=SECONDS (a timeline bar's link): the player opens at that time of the clip, paused.
  function seekFromLink() {
    var v = video();
    var t = parseFloat(new URLSearchParams(window.location.search).get("t") || "");
    if (!v || !isFinite(t) || t <= 0) { return; }
    function go() { v.currentTime = isFinite(v.duration) ? Math.min(t, v.duration) : t; }
    if (v.readyState >= 1) { go(); } else { v.addEventListener("loadedmetadata", go, { once: true }); }
  }
  document.addEventListener("DOMContentLoaded", seekFromLink);
})();
