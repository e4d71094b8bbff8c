// Campaign page: counters by short polling of one small JSON row, live calls over the live socket.
(function () {
  "use strict";
  var root = document.getElementById("campaign");
  if (!root) return;
  var POLL_MS = 2000;
  var state = root.dataset.state;

  // What the page shows is only as fresh as its last answer: say so while the poll or the socket is down.
  var health = Live.staleBanner(document.getElementById("stale"));

  function show(data) {
    document.querySelectorAll("[data-counter]").forEach(function (el) {
      var value = data[el.dataset.counter];
      if (value === undefined) return;
      if (el.tagName === "PROGRESS") { el.value = value; el.textContent = value + "%"; }
      else { el.textContent = value === null ? "—" : value; }
    });
    var badge = root.querySelector(".state");
    if (badge) badge.className = "state state-" + data.state;
    showActions(data.state);
    // "Campaign running." was about the click that led here; once the state moves on it misleads.
    if (data.state !== state) document.querySelectorAll("[data-flash]").forEach(function (el) { el.remove(); });
  }

  function showActions(state) {
    root.querySelectorAll("[data-states]").forEach(function (el) {
      el.hidden = el.dataset.states.split(" ").indexOf(state) < 0;
    });
  }
  showActions(root.dataset.state);

  Live.poll(root.dataset.countersUrl, {
    type: "application/json",
    every: POLL_MS,
    // A finished campaign barely changes: ask less often.
    slow: function () { return state === "completed" || state === "cancelled"; },
    show: function (data) { show(data); showLive(data.live); followCharts(data); state = data.state; },
    health: health,
  });

  // Charts (read from the rollups the engine keeps) and the A/B test are fetched apart from the page, and
  // again when the counters they are drawn from move, at most every CHARTS_MS.
  var CHARTS_MS = 5000;
  var sections = ["charts", "experiment"].map(function (id) { return document.getElementById(id); })
    .filter(Boolean);
  var chartsOf = null, chartsAt = 0;
  function followCharts(data) {
    var of = [data.calls_total, data.calls_live, data.calls_answered].join("/");
    if (!sections.length || of === chartsOf || Date.now() - chartsAt < CHARTS_MS) return;
    chartsOf = of;
    chartsAt = Date.now();
    sections.forEach(function (section) {
      fetch(section.dataset.url, { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
        .then(function (html) { section.innerHTML = html; })
        .catch(function () { chartsOf = null; /* keep what is shown; the next poll asks again */ });
    });
  }
  followCharts({});

  // --- live calls: the poll lists which calls are live (from the database), the socket adds each
  // stream's audio level and events (message format in streams/live.py) ---------------------------
  var table = document.querySelector("#live-calls tbody");
  var empty = document.getElementById("live-empty");

  function ensureRow(id, phone) {
    var tr = table.querySelector('tr[data-call="' + id + '"]');
    if (tr) return tr;
    tr = document.createElement("tr");
    tr.dataset.call = id;
    var link = document.createElement("a");
    link.href = "/calls/" + id + "/";
    link.textContent = phone || "call " + id;
    [link, "", '<span class="level"><i></i></span>', ""].forEach(function (content) {
      var td = document.createElement("td");
      if (content instanceof Node) td.appendChild(content); else td.innerHTML = content;
      tr.appendChild(td);
    });
    if (root.dataset.maySupervise) {  // operators and above: listen, whisper, take over
      var listen = document.createElement("a");
      listen.className = "listen";
      listen.href = "/calls/" + id + "/supervise/";
      listen.textContent = "Listen";
      tr.children[0].append(" · ", listen);
    }
    table.appendChild(tr);
    return tr;
  }

  function refreshEmpty() { empty.hidden = table.children.length > 0; }

  function showLive(live) {
    var ids = {};
    live.forEach(function (call) {
      ids[call.id] = true;
      var tr = ensureRow(call.id, call.phone);
      if (!tr.dataset.streaming) tr.children[1].textContent = call.state;
      if (!tr.dataset.heard) tr.children[3].textContent = call.event;  // the stream's own events say more
    });
    table.querySelectorAll("tr[data-call]").forEach(function (tr) {
      if (!ids[tr.dataset.call]) tr.remove();  // ended since the last poll
    });
    refreshEmpty();
  }

  function onMessage(event) {
    var message;
    try { message = JSON.parse(event.data); } catch (err) { return; }
    if (!message.call) return;
    var starting = message.type === "state" && message.state !== "stopped";
    var tr = starting ? ensureRow(message.call, message.phone)
                      : table.querySelector('tr[data-call="' + message.call + '"]');
    if (!tr) return;
    if (message.type === "state") {
      tr.dataset.streaming = message.state === "stopped" ? "" : "yes";
      tr.children[1].textContent = message.state === "started" ? "streaming" : message.state;
      if (message.state === "stopped") window.setTimeout(function () { tr.remove(); refreshEmpty(); }, 1500);
    } else if (message.type === "level") {
      var pct = Math.max(0, Math.min(100, ((message.dbfs + 60) / 60) * 100));
      tr.querySelector(".level i").style.width = pct + "%";
      tr.querySelector(".level").title = message.dbfs.toFixed(1) + " dBFS";
    } else if (message.type === "event") {
      tr.dataset.heard = "yes";
      tr.children[3].textContent = message.event + (message.detail ? " " + message.detail : "");
    }
    refreshEmpty();
  }

  function connect(delay) {
    if (!("WebSocket" in window)) return;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + root.dataset.livePath);
    socket.addEventListener("message", onMessage);
    socket.addEventListener("open", function () { health("socket", true); delay = 1000; });
    socket.addEventListener("close", function () {
      health("socket", false);
      // The server restarted or the network blinked: come back, more slowly each time.
      window.setTimeout(function () { connect(Math.min(delay * 2, 30000)); }, delay);
    });
  }
  connect(1000);
})();
