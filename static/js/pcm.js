// 16-bit PCM between a call and WebAudio, for the pages that put a call on the speakers and the
// microphone on a call (supervise.js, testcall.js).
(function () {
  "use strict";
  var BLOCK_MS = 100;  // microphone audio goes out in blocks of this length

  // Each sample at the call's rate is the mean of the context's samples it stands for: a crude
  // low-pass, so that sound above the call's band does not fold back into it.
  function downsample(block, step) {
    var pcm = new Int16Array(Math.floor(block.length / step));
    for (var i = 0; i < pcm.length; i++) {
      var from = Math.floor(i * step), to = Math.max(from + 1, Math.floor((i + 1) * step)), sum = 0;
      for (var j = from; j < to; j++) sum += block[j];
      pcm[i] = Math.max(-32768, Math.min(32767, Math.round(sum / (to - from) * 32767)));
    }
    return pcm;
  }

  function stopTracks(stream) {
    stream.getTracks().forEach(function (track) { track.stop(); });
  }

  // The microphone, handed to `onBlock` as Int16Arrays of BLOCK_MS at `rate`. Resolves to a function
  // that stops it; rejects when there is no microphone or it was refused.
  function capture(context, workletUrl, rate, onBlock) {
    return navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      return context.audioWorklet.addModule(workletUrl).then(function () {
        var source = context.createMediaStreamSource(stream);
        var node = new AudioWorkletNode(context, "capture");
        var captured = [], wanted = Math.round(context.sampleRate * BLOCK_MS / 1000);
        node.port.onmessage = function (event) {
          Array.prototype.push.apply(captured, event.data);
          while (captured.length >= wanted) onBlock(downsample(captured.splice(0, wanted), context.sampleRate / rate));
        };
        source.connect(node);
        return function stop() {
          source.disconnect();
          node.disconnect();
          node.port.onmessage = null;
          stopTracks(stream);
        };
      }, function (error) {
        stopTracks(stream);
        throw error;
      });
    });
  }

  // Blocks of PCM played one after another, `jitter` seconds behind their arrival so that network
  // jitter makes no gaps; a block due more than `maxAhead` seconds from now (after a stall) is played
  // at once instead, so that the delay does not grow.
  function Player(context, rate, jitter, maxAhead) {
    this.context = context;
    this.rate = rate;
    this.jitter = jitter;
    this.maxAhead = maxAhead;
    this.nextAt = 0;
    this.queued = [];  // {source, at, end}, not yet ended
  }

  // Plays `samples` (an Int16Array), `ahead` seconds later than it otherwise would; returns the
  // delay from now until it starts, in seconds.
  Player.prototype.play = function (samples, ahead) {
    if (!samples.length) return this.pending();
    var context = this.context, buffer = context.createBuffer(1, samples.length, this.rate);
    var data = buffer.getChannelData(0);
    for (var i = 0; i < samples.length; i++) data[i] = samples[i] / 32768;
    var now = context.currentTime;
    var at = Math.max(now + this.jitter + (ahead || 0), this.nextAt);
    if (at > now + this.maxAhead) at = now + this.jitter;
    var source = context.createBufferSource(), queued = this.queued;
    source.buffer = buffer;
    source.connect(context.destination);
    source.start(at);
    var item = { source: source, at: at, end: at + buffer.duration };
    queued.push(item);
    source.onended = function () { queued.splice(queued.indexOf(item), 1); };
    this.nextAt = item.end;
    return at - now;
  };

  // Seconds until everything given so far has played.
  Player.prototype.pending = function () {
    return Math.max(0, this.nextAt - this.context.currentTime);
  };

  // Drops what has not started playing (Exotel's `clear`); the block playing ends as it would.
  Player.prototype.clear = function () {
    var now = this.context.currentTime;
    this.queued = this.queued.filter(function (item) {
      if (item.at <= now) return true;
      item.source.onended = null;
      item.source.stop();
      return false;
    });
    this.nextAt = this.queued.reduce(function (end, item) { return Math.max(end, item.end); }, 0);
  };

  window.PcmAudio = { capture: capture, Player: Player };
})();
