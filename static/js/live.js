// What the live pages share (the campaign page, the wallboard): a poll that says when it fails, and
// the banner that tells the reader what the page shows may be stale (templates/_stale.html).
window.Live = (function () {
  "use strict";

  // health(source, ok): each source (the poll, a socket) reports; while any is down the banner shows
  // since when the first went down.
  function staleBanner(banner) {
    var down = {};
    return function health(source, ok) {
      if (ok) delete down[source];
      else if (!down[source]) down[source] = new Date();
      var since = Object.keys(down).map(function (k) { return down[k]; }).sort(function (a, b) { return a - b; })[0];
      banner.hidden = !since;
      if (since) banner.querySelector("time").textContent = since.toLocaleTimeString();
    };
  }

  // Fetch `url` every `every` ms (ten times less often while slow() says so), hand the body to
  // show(), and report to health("poll", …). Only an answer of `type` counts: a redirect to sign in
  // (a lost session) is no answer either.
  function poll(url, options) {
    function again() {
      var slow = document.hidden || (options.slow && options.slow());
      window.setTimeout(once, slow ? options.every * 10 : options.every);
    }
    function once() {
      fetch(url, { headers: { Accept: options.type }, credentials: "same-origin" })
        .then(function (r) {
          var type = (r.headers.get("Content-Type") || "").split(";")[0];
          if (!r.ok || r.redirected || type !== options.type) throw new Error(r.status);
          return options.type === "application/json" ? r.json() : r.text();
        })
        .then(function (body) { options.show(body); options.health("poll", true); })
        .catch(function () { options.health("poll", false); /* the next poll tries again */ })
        .finally(again);
    }
    window.setTimeout(once, options.every);
  }

  return { staleBanner: staleBanner, poll: poll };
})();
