// Supervising one live call (wire formats in streams/supervision.py): both sides of the call mixed
// in WebAudio, hints to the bot, and the microphone in place of the bot while taken over (pcm.js).
(function () {
  "use strict";
  var root = document.getElementById("supervise");
  if (!root) return;
  var CALLER = 0, LINE = 1;
  var JITTER_S = 0.12;  // played this far behind arrival, so that network jitter makes no gaps
  var socket, context, stopMicrophone, players, rate = 8000, holder = "";
  var heard = [0, 0];
  var $ = function (selector) { return root.querySelector(selector); };

  function status(text) { $("[data-status]").textContent = text; }

  function showHolder() {
    var mine = holder === root.dataset.me;
    $("[data-take-over]").hidden = !!holder;
    $("[data-hand-back]").hidden = !mine;
    status(holder ? (mine ? "You are speaking to the caller; the bot is muted." : holder + " has taken over.")
                  : "Listening. The bot is speaking.");
  }

  function play(track, playsInMs, samples) {
    heard[track] += samples.length / rate;
    $('[data-heard="' + (track === CALLER ? "caller" : "line") + '"]').textContent = heard[track].toFixed(1);
    if (track === LINE && holder === root.dataset.me) return;  // your own voice, not played back to you
    if (!players || players[track].rate !== rate) {
      players = [new PcmAudio.Player(context, rate, JITTER_S, 1), new PcmAudio.Player(context, rate, JITTER_S, 1)];
    }
    // The line's audio was sent ahead of the caller hearing it: play it when the caller does.
    var delay = players[track].play(samples, playsInMs / 1000);
    $("[data-delay]").textContent = Math.round(delay * 1000) + " ms";
  }

  function onMessage(event) {
    if (event.data instanceof ArrayBuffer) {
      var header = new DataView(event.data, 0, 4);
      play(header.getUint8(0), header.getUint16(2, true), new Int16Array(event.data, 4));
      return;
    }
    var message = JSON.parse(event.data);
    if (message.type === "state") {
      rate = message.rate;
      holder = message.holder;
      $("[data-whisper]").hidden = false;
      showHolder();
    } else if (message.type === "refused") {
      status(message.reason);
      if (message.action === "take_over") microphoneOff();
    } else if (message.type === "done") {
      status("Whispered to the bot.");
    } else if (message.type === "ended") {
      status("The call has ended.");
      microphoneOff();
    }
  }

  function listen() {
    // Made in the click, so that the browser lets it play.
    context = new AudioContext();
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + root.dataset.path);
    socket.binaryType = "arraybuffer";
    socket.addEventListener("message", onMessage);
    socket.addEventListener("close", function () {
      status("Disconnected.");
      microphoneOff();
      $("[data-listen]").hidden = false;
      $("[data-take-over]").hidden = $("[data-hand-back]").hidden = true;
    });
    $("[data-listen]").hidden = true;
    status("Connecting…");
  }

  function takeOver() {
    // The microphone at the call's rate, sent as 16-bit PCM while we hold the line.
    PcmAudio.capture(context, root.dataset.worklet, rate, function (pcm) {
      if (socket.readyState === WebSocket.OPEN) socket.send(pcm.buffer);
    }).then(function (stop) {
      stopMicrophone = stop;
      socket.send(JSON.stringify({ action: "take_over" }));
    }).catch(function (error) { status("No microphone: " + error.message); });
  }

  function microphoneOff() {
    if (!stopMicrophone) return;
    stopMicrophone();
    stopMicrophone = null;
  }

  $("[data-listen]").addEventListener("click", listen);
  $("[data-take-over]").addEventListener("click", takeOver);
  $("[data-hand-back]").addEventListener("click", function () {
    socket.send(JSON.stringify({ action: "hand_back" }));
    microphoneOff();
  });
  $("[data-whisper]").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    socket.send(JSON.stringify({ action: "whisper", text: form.text.value, step: form.step ? form.step.value : "" }));
    form.text.value = "";
  });
})();
