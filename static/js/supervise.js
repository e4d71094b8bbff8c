// Supervising one live call (wire formats in streams/supervision.py): both sides of the call mixed
// in WebAudio, hints to the bot, and the microphone in place of the bot while taken over.
(function () {
  "use strict";
  var root = document.getElementById("supervise");
  if (!root) return;
  var CALLER = 0, LINE = 1;
  var JITTER_S = 0.12;  // played this far behind arrival, so that network jitter makes no gaps
  var SEND_MS = 100;  // microphone audio goes out in blocks of this length
  var socket, context, microphone, rate = 8000, holder = "";
  var nextAt = [0, 0], heard = [0, 0], captured = [];
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
    var buffer = context.createBuffer(1, samples.length, rate);
    var data = buffer.getChannelData(0);
    for (var i = 0; i < samples.length; i++) data[i] = samples[i] / 32768;
    var now = context.currentTime;
    // The line's audio was sent ahead of the caller hearing it: play it when the caller does.
    var at = Math.max(now + JITTER_S + playsInMs / 1000, nextAt[track]);
    if (at > now + 1) at = now + JITTER_S;  // fell behind (a stall): drop the backlog, stay live
    var source = context.createBufferSource();
    source.buffer = buffer;
    source.connect(context.destination);
    source.start(at);
    nextAt[track] = at + buffer.duration;
    $("[data-delay]").textContent = Math.round((at - now) * 1000) + " ms";
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
      if (message.action === "take_over") stopMicrophone();
    } else if (message.type === "done") {
      status("Whispered to the bot.");
    } else if (message.type === "ended") {
      status("The call has ended.");
      stopMicrophone();
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
      stopMicrophone();
      $("[data-listen]").hidden = false;
      $("[data-take-over]").hidden = $("[data-hand-back]").hidden = true;
    });
    $("[data-listen]").hidden = true;
    status("Connecting…");
  }

  // The microphone at the context's rate, resampled to the call's and sent as 16-bit PCM.
  function sendCaptured() {
    var wanted = Math.round(context.sampleRate * SEND_MS / 1000);
    while (captured.length >= wanted) {
      var block = captured.splice(0, wanted), step = context.sampleRate / rate;
      var pcm = new Int16Array(Math.floor(block.length / step));
      for (var i = 0; i < pcm.length; i++) {
        var x = block[Math.floor(i * step)];
        pcm[i] = Math.max(-32768, Math.min(32767, Math.round(x * 32767)));
      }
      if (socket.readyState === WebSocket.OPEN) socket.send(pcm.buffer);
    }
  }

  function takeOver() {
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      return context.audioWorklet.addModule(root.dataset.worklet).then(function () {
        var source = context.createMediaStreamSource(stream);
        var node = new AudioWorkletNode(context, "capture");
        node.port.onmessage = function (event) {
          Array.prototype.push.apply(captured, event.data);
          sendCaptured();
        };
        source.connect(node);
        microphone = { stream: stream, node: node };
        socket.send(JSON.stringify({ action: "take_over" }));
      });
    }).catch(function (error) { status("No microphone: " + error.message); });
  }

  function stopMicrophone() {
    if (!microphone) return;
    microphone.node.disconnect();
    microphone.stream.getTracks().forEach(function (track) { track.stop(); });
    microphone = null;
    captured = [];
  }

  $("[data-listen]").addEventListener("click", listen);
  $("[data-take-over]").addEventListener("click", takeOver);
  $("[data-hand-back]").addEventListener("click", function () {
    socket.send(JSON.stringify({ action: "hand_back" }));
    stopMicrophone();
  });
  $("[data-whisper]").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    socket.send(JSON.stringify({ action: "whisper", text: form.text.value, step: form.step ? form.step.value : "" }));
    form.text.value = "";
  });
})();
