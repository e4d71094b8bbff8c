// A test call of the campaign's bot in the browser (streams.consumers.BrowserTestCallConsumer): this
// page plays Exotel's part of the stream protocol, the microphone as the caller and the speakers as
// the line; keys send DTMF, and marks go back once the audio before them has played (pcm.js).
(function () {
  "use strict";
  var root = document.getElementById("test-call");
  if (!root) return;
  var JITTER_S = 0.12;  // played this far behind arrival, so that network jitter makes no gaps
  var MAX_AHEAD_S = 3;  // the bot sends up to a second ahead of playback (streams.playback)
  var rate = Number(root.dataset.rate);
  var socket, context, player, stopMicrophone, sid, seq, sent, heard, marks;
  var $ = function (selector) { return root.querySelector(selector); };

  function status(text) { $("[data-status]").textContent = text; }

  function send(event, fields) {
    var frame = { event: event, sequence_number: String(++seq), stream_sid: sid };
    for (var key in fields) frame[key] = fields[key];
    socket.send(JSON.stringify(frame));
  }

  function toBase64(pcm) {
    var bytes = new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength), text = "";
    for (var i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return btoa(text);
  }

  function fromBase64(payload) {
    var text = atob(payload), bytes = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return new Int16Array(bytes.buffer, 0, bytes.length >> 1);
  }

  function sendMicrophone(pcm) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    send("media", { media: { chunk: String(Math.round(sent * 10) + 1), timestamp: String(Math.round(sent * 1000)),
                             payload: toBase64(pcm) } });
    sent += pcm.length / rate;
    $("[data-sent]").textContent = sent.toFixed(1);
  }

  function onFrame(event) {
    var frame = JSON.parse(event.data);
    if (frame.event === "media") {
      var samples = fromBase64(frame.media.payload);
      player.play(samples);
      heard += samples.length / rate;
      $("[data-heard]").textContent = heard.toFixed(1);
    } else if (frame.event === "mark") {
      var name = frame.mark.name;
      var timer = setTimeout(function () {
        marks.splice(marks.indexOf(timer), 1);
        if (socket.readyState === WebSocket.OPEN) send("mark", { mark: { name: name } });
      }, player.pending() * 1000);
      marks.push(timer);
    } else if (frame.event === "clear") {
      // As Exotel: queued audio and the marks behind it are dropped, the block playing is not.
      player.clear();
      marks.forEach(clearTimeout);
      marks = [];
    }
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + root.dataset.path);
    socket.addEventListener("open", function () {
      socket.send(JSON.stringify({ event: "connected" }));
      send("start", { start: {
        stream_sid: sid, call_sid: "browser-" + sid, account_sid: root.dataset.account, from: "", to: "",
        custom_parameters: { campaign: root.dataset.campaign, test_call: "browser" },
        media_format: { encoding: "audio/x-raw", sample_rate: String(rate), bit_rate: "16" } } });
      status("On the call: speak to the bot.");
      $("[data-hang-up]").hidden = $("[data-keys]").hidden = false;
    });
    socket.addEventListener("message", onFrame);
    socket.addEventListener("close", function (event) {
      status(event.code === 1000 ? "The call has ended." : "The call was cut off (code " + event.code + ").");
      end();
    });
  }

  function start() {
    sid = "MZtest" + Date.now().toString(36);
    seq = sent = heard = 0;
    marks = [];
    $("[data-start]").hidden = true;
    status("Starting the microphone…");
    // Made in the click, so that the browser lets it play.
    context = context || new AudioContext();
    player = new PcmAudio.Player(context, rate, JITTER_S, MAX_AHEAD_S);
    PcmAudio.capture(context, root.dataset.worklet, rate, sendMicrophone).then(function (stop) {
      stopMicrophone = stop;
      connect();
    }).catch(function (error) {
      status("No microphone: " + error.message);
      $("[data-start]").hidden = false;
    });
  }

  function end() {
    if (stopMicrophone) stopMicrophone();
    stopMicrophone = null;
    marks.forEach(clearTimeout);
    marks = [];
    $("[data-start]").hidden = false;
    $("[data-hang-up]").hidden = $("[data-keys]").hidden = true;
  }

  $("[data-start]").addEventListener("click", start);
  $("[data-hang-up]").addEventListener("click", function () {
    send("stop", { stop: { call_sid: "browser-" + sid, account_sid: root.dataset.account, reason: "callended" } });
    socket.close(1000);
  });
  root.querySelectorAll("[data-key]").forEach(function (button) {
    button.addEventListener("click", function () {
      send("dtmf", { dtmf: { digit: button.dataset.key, duration: "100" } });
    });
  });
})();
