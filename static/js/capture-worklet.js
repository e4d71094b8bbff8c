// The microphone, handed to the page in blocks (Float32, the context's rate): static/js/pcm.js.
class Capture extends AudioWorkletProcessor {
  process(inputs) {
    var channel = inputs[0] && inputs[0][0];
    if (channel) this.port.postMessage(channel.slice(0));
    return true;
  }
}
registerProcessor("capture", Capture);
