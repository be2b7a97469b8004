// The publication page's box editor: shows the redaction spec's boxes over the draft on the
// frame at hand (interpolated between a track's keys and held on past them, as
// publish/tracking.py does), and lets staff add a box (a new track), move one (a key on this
// frame), hide one for the whole range, or delete a track; then saves the whole spec as a
// new version (the server checks it and renders a new draft).
(function () {
  "use strict";
  var video = document.getElementById("draft");
  var canvas = document.getElementById("boxes");
  var holder = document.getElementById("spec");
  if (!video || !canvas || !holder) return;
  var spec = JSON.parse(holder.dataset.spec);
  var save = document.getElementById("save-spec");
  var del = document.getElementById("delete-track");
  var hold = document.getElementById("hold-track");
  var state = document.getElementById("editor-state");
  var editable = !!save;
  var selected = null;
  var drag = null;
  var changed = false;
  var fps = spec.fps || 25;

  function frame() { return Math.round(video.currentTime * fps); }
  function keysOf(t) {
    return Object.keys(t.boxes).map(Number).sort(function (a, b) { return a - b; });
  }
  function lerp(a, b, w) { return a.map(function (v, i) { return v + (b[i] - v) * w; }); }
  function boxAt(t, f) {
    var ks = keysOf(t);
    if (!ks.length) return null;
    if (t.boxes[f]) return t.boxes[f];
    if (f < ks[0]) return ks[0] - f <= spec.max_gap ? t.boxes[ks[0]] : null;
    var last = ks[ks.length - 1];
    if (f > last) {
      if (f - last > spec.max_gap) return null;
      if (ks.length < 2) return t.boxes[last];
      // moved on at its centre's velocity, its size kept (as publish/tracking.py does)
      var prev = ks[ks.length - 2], a = t.boxes[prev], b = t.boxes[last];
      var w = (f - last) / (last - prev);
      var dx = ((b[0] + b[2]) - (a[0] + a[2])) / 2 * w, dy = ((b[1] + b[3]) - (a[1] + a[3])) / 2 * w;
      return [b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy];
    }
    var before = ks.filter(function (k) { return k < f; }).pop();
    var after = ks.filter(function (k) { return k > f; })[0];
    return lerp(t.boxes[before], t.boxes[after], (f - before) / (after - before));
  }
  function scale() { return canvas.width / spec.width; }
  function draw() {
    canvas.width = video.clientWidth;
    canvas.height = video.clientHeight;
    var ctx = canvas.getContext("2d"), s = scale(), f = frame();
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    spec.tracks.forEach(function (t) {
      var b = boxAt(t, f);
      if (!b) return;
      ctx.lineWidth = t.id === selected ? 3 : 2;
      ctx.strokeStyle = t.id === selected ? "#ffcc00" : "#ff3b30";
      ctx.strokeRect(b[0] * s, b[1] * s, (b[2] - b[0]) * s, (b[3] - b[1]) * s);
    });
    if (drag && drag.kind === "new") {
      ctx.strokeStyle = "#34c759";
      ctx.strokeRect(drag.x0, drag.y0, drag.x1 - drag.x0, drag.y1 - drag.y0);
    }
    if (del) del.disabled = selected === null;
    if (hold) hold.disabled = selected === null;
    if (save) save.disabled = !changed;
  }
  function at(e) {
    var r = canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }
  function hit(p) {
    var s = scale(), f = frame(), found = null;
    spec.tracks.forEach(function (t) {
      var b = boxAt(t, f);
      if (b && p[0] >= b[0] * s && p[0] <= b[2] * s && p[1] >= b[1] * s && p[1] <= b[3] * s) found = t;
    });
    return found;
  }
  function clamp(b) {
    var x0 = Math.max(0, Math.min(b[0], b[2])), y0 = Math.max(0, Math.min(b[1], b[3]));
    var x1 = Math.min(spec.width, Math.max(b[0], b[2])), y1 = Math.min(spec.height, Math.max(b[1], b[3]));
    return [x0, y0, x1, y1].map(function (v) { return Math.round(v * 10) / 10; });
  }
  function touched() { changed = true; if (state) state.textContent = ""; draw(); }

  if (editable) {
    canvas.addEventListener("mousedown", function (e) {
      video.pause();
      var p = at(e), t = hit(p);
      if (t) {
        selected = t.id;
        drag = {kind: "move", track: t, from: p, box: boxAt(t, frame()).slice()};
      } else {
        selected = null;
        drag = {kind: "new", x0: p[0], y0: p[1], x1: p[0], y1: p[1]};
      }
      draw();
    });
    canvas.addEventListener("mousemove", function (e) {
      if (!drag) return;
      var p = at(e);
      if (drag.kind === "new") { drag.x1 = p[0]; drag.y1 = p[1]; draw(); return; }
      var s = scale(), dx = (p[0] - drag.from[0]) / s, dy = (p[1] - drag.from[1]) / s, b = drag.box;
      drag.track.boxes[String(frame())] = clamp([b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy]);
      drag.moved = true;
      draw();
    });
    window.addEventListener("mouseup", function () {
      if (!drag) return;
      var d = drag;
      drag = null;
      if (d.kind === "new") {
        var s = scale();
        if (Math.abs(d.x1 - d.x0) >= 4 && Math.abs(d.y1 - d.y0) >= 4) {
          var id = spec.tracks.reduce(function (m, t) { return Math.max(m, t.id); }, 0) + 1;
          var keys = {};
          keys[String(frame())] = clamp([d.x0 / s, d.y0 / s, d.x1 / s, d.y1 / s]);
          var track = {id: id, boxes: keys};
          var follow = document.getElementById("follow-new");
          if (follow && follow.checked) track.follow = true;  // the server follows it
          spec.tracks.push(track);
          selected = id;
          touched();
          return;
        }
      } else if (d.moved) {
        touched();
        return;
      }
      draw();
    });
    del.addEventListener("click", function () {
      spec.tracks = spec.tracks.filter(function (t) { return t.id !== selected; });
      selected = null;
      touched();
    });
    hold.addEventListener("click", function () {
      var t = spec.tracks.filter(function (x) { return x.id === selected; })[0];
      if (!t) return;
      var b = boxAt(t, frame()) || t.boxes[keysOf(t)[0]];
      var last = Math.max(0, Math.round(video.duration * fps) - 1);
      var keys = {};
      keys["0"] = clamp(b);
      keys[String(last)] = clamp(b);
      t.boxes = keys;
      touched();
    });
    save.addEventListener("click", function () {
      save.disabled = true;
      if (state) state.textContent = save.dataset.saving || "…";
      fetch(save.dataset.url, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": save.dataset.csrf},
        body: JSON.stringify(spec)
      }).then(function (r) {
        if (r.ok) { window.location.reload(); return; }
        return r.text().then(function (t) {
          if (state) state.textContent = r.status + ": " + t.replace(/<[^>]*>/g, " ").slice(0, 300);
          save.disabled = false;
        });
      });
    });
  }
  var seek = document.getElementById("seek"), number = document.getElementById("frame-number");
  function step(n) {
    video.pause();
    video.currentTime = Math.max(0, Math.min(video.duration || 0, (frame() + n + 0.5) / fps));
  }
  document.getElementById("frame-back").addEventListener("click", function () { step(-1); });
  document.getElementById("frame-on").addEventListener("click", function () { step(1); });
  document.getElementById("play").addEventListener("click", function () {
    if (video.paused) video.play(); else video.pause();
  });
  seek.addEventListener("input", function () {
    video.pause();
    video.currentTime = (video.duration || 0) * seek.value / 1000;
  });
  function where() {
    if (video.duration) seek.value = Math.round(1000 * video.currentTime / video.duration);
    number.textContent = "frame " + frame() + " · " + video.currentTime.toFixed(2) + " s";
    draw();
  }
  ["loadeddata", "seeked", "timeupdate", "pause"].forEach(function (ev) {
    video.addEventListener(ev, where);
  });
  window.addEventListener("resize", draw);
  function tick() { if (!video.paused) draw(); window.requestAnimationFrame(tick); }
  window.requestAnimationFrame(tick);
  draw();
})();
