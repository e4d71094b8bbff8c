// Wallboard: the board (templates/campaigns/_board.html) fetched again every POLL_MS and swapped in.
(function () {
  "use strict";
  var root = document.getElementById("wallboard");
  if (!root) return;
  var POLL_MS = 3000;
  var board = document.getElementById("board");
  var shown = null;  // the last board swapped in: an unchanged one is left alone (focus, selection)
  Live.poll(root.dataset.url, {
    type: "text/html",
    every: POLL_MS,
    show: function (html) { if (html !== shown) { board.innerHTML = html; shown = html; } },
    health: Live.staleBanner(document.getElementById("stale")),
  });
})();
