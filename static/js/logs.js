// The Logs tab: lines arrive over the websocket as JSON (deployments/logs/consumers.py).
// Filter, wrap, timestamps and pause happen here, on the lines already received; a reconnect
// sends the last position seen per pod, so the server resumes there without duplicates.
(function () {
  "use strict";
  var root = document.getElementById("logs");
  if (!root) return;
  var MAX_LINES = 5000; // lines kept on the page; older ones go
  var out = root.querySelector(".logs-lines");
  var state = root.querySelector(".logs-state");
  var filterBox = root.querySelector(".logs-filter");
  var wrapBox = root.querySelector(".logs-wrap");
  var stampBox = root.querySelector(".logs-timestamps");
  var pauseButton = root.querySelector(".logs-pause");
  var positions = {}; // pod -> {stamp, seen, text}
  var paused = false;
  var held = []; // lines that arrived while paused
  var multi = !root.dataset.pod;
  var ended = false;
  var retry = 500;

  function matches(el) {
    var needle = filterBox.value.toLowerCase();
    return !needle || el.dataset.text.indexOf(needle) !== -1;
  }

  function lineElement(pod, stamp, text) {
    var el = document.createElement("div");
    el.className = "log-line";
    el.dataset.text = text.toLowerCase();
    var ts = document.createElement("span");
    ts.className = "log-stamp";
    ts.textContent = stamp + " ";
    el.appendChild(ts);
    if (multi) {
      var p = document.createElement("span");
      p.className = "log-pod";
      p.textContent = pod + " ";
      el.appendChild(p);
    }
    el.appendChild(document.createTextNode(text));
    el.hidden = !matches(el);
    return el;
  }

  function marker(text) {
    var el = document.createElement("div");
    el.className = "log-line log-marker";
    el.dataset.text = "";
    el.textContent = text;
    return el;
  }

  function append(nodes) {
    var follow = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
    var fragment = document.createDocumentFragment();
    nodes.forEach(function (n) { fragment.appendChild(n); });
    out.appendChild(fragment);
    while (out.childElementCount > MAX_LINES) out.removeChild(out.firstElementChild);
    if (follow) out.scrollTop = out.scrollHeight;
  }

  function take(message) {
    var nodes = [];
    if (message.skipped) nodes.push(marker("… " + message.skipped + " lines skipped"));
    (message.lines || []).forEach(function (line) {
      var pod = line[0], stamp = line[1];
      var at = positions[pod];
      if (at && at.stamp === stamp) at.seen += 1;
      else positions[pod] = { stamp: stamp, seen: 1 };
      positions[pod].text = line[2]; // a command source's re-run is matched on its last line
      nodes.push(lineElement(pod, stamp, line[2]));
    });
    (message.ended || []).forEach(function (end) {
      nodes.push(marker("— " + end[0] + ": " + end[1]));
    });
    if (!nodes.length) return;
    if (paused) held = held.concat(nodes).slice(-MAX_LINES);
    else append(nodes);
  }

  function connect() {
    var params = new URLSearchParams();
    ["pod", "component", "container", "source"].forEach(function (k) { if (root.dataset[k]) params.set(k, root.dataset[k]); });
    if (root.dataset.previous) params.set("previous", "1");
    Object.keys(positions).forEach(function (pod) {
      var at = positions[pod];
      var value = pod + "@" + at.stamp + "~" + at.seen;
      if (root.dataset.source) value += "~" + at.text.slice(0, 500);
      params.append("resume", value);
    });
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + root.dataset.socket + "?" + params.toString());
    var resuming = Object.keys(positions).length > 0;
    state.textContent = resuming ? "reconnecting…" : "connecting…";
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (message.error) { state.textContent = message.error; ended = true; return; }
      if (message.state === "open") {
        state.textContent = resuming ? "catching up (resuming after a reconnect)…" : "catching up…";
        retry = 500;
        return;
      }
      if (message.state === "caught-up") { state.textContent = "live: caught up"; return; }
      if (message.state === "ended") { state.textContent = "the cluster has no more"; ended = true; return; }
      take(message);
    };
    socket.onclose = function (event) {
      if (ended || event.code === 4404 || event.code === 4400 || event.code === 4429) {
        if (event.code === 4404) state.textContent = "no such deployment";
        if (event.code === 4429) state.textContent = event.reason;
        return;
      }
      state.textContent = "disconnected, reconnecting…";
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }

  filterBox.addEventListener("input", function () {
    Array.prototype.forEach.call(out.children, function (el) {
      if (!el.classList.contains("log-marker")) el.hidden = !matches(el);
    });
  });
  wrapBox.addEventListener("change", function () { out.classList.toggle("wrap", wrapBox.checked); });
  stampBox.addEventListener("change", function () { out.classList.toggle("with-stamps", stampBox.checked); });
  pauseButton.addEventListener("click", function () {
    paused = !paused;
    pauseButton.textContent = paused ? "Follow" : "Pause";
    pauseButton.setAttribute("aria-pressed", paused ? "true" : "false");
    if (!paused && held.length) { append(held); held = []; out.scrollTop = out.scrollHeight; }
  });
  connect();
})();
