"""The web server: daphne, with the WebSocket limits Exotel's streams need and a graceful stop.

Run it as daphne itself, with the same arguments:

    python -m config.server -b 127.0.0.1 -p 8000 config.asgi:application

Beyond daphne's defaults:
- An incoming message may be at most `MAX_MESSAGE_BYTES` (the reference's largest legal chunk is
  100 000 bytes of audio, about 137 kB as base64 in its JSON frame).
- autobahn's own failures (a message over the limit, a broken frame) are answered with a close frame
  with the table's code mapped as ours are (`exotel.protocol.wire_code`: too big is 4009), not by
  dropping the TCP connection, which a stream could only record as a bare 1006; the application's
  disconnect carries the code that was sent.
- The access log names no secret: webhook and call tokens in paths are redacted (config.redaction).
- Our closes are bounded in time, whatever the peer does: a peer that
  does not answer our close within `CLOSE_HANDSHAKE_SECONDS` is cut off (autobahn rounds the deadline
  down to a whole second, so it comes sooner, never later): every close from our side has ended the
  socket within a second.
- SIGTERM and SIGINT stop it gracefully instead of Twisted's immediate stop, which cancels every live
  call: it closes its listening socket, so that a proxy's next connection is refused and goes to
  another server (deploy/nginx), while the sockets it holds go on; it stops its heartbeat; the stream
  server drains (`streams.drain`: live calls given `STREAM_DRAIN_SECONDS` to end, the rest ended as
  "going away"); then daphne stops as usual. A second signal stops at once.

The media path (about fifteen frames a second per call, in and out) skips autobahn's general
machinery where a frame is the ordinary kind (bench/RESULTS.md, Streams):
- in: a whole, final, masked text frame under 64 kB, with no frame of autobahn's half read, is
  unmasked with `websockets`' C `apply_mask` and checked as UTF-8 by decoding it once (autobahn's
  NVX masker and validator and daphne's decode: 9 µs of CPU for a 2 kB media frame, besides its
  per-frame Python; these: 0.6 µs), and goes to the application as daphne
  would send it; anything else (a control frame, a fragment, a frame split across reads, one over the
  limit, one that is not UTF-8) is left to autobahn, so its closes (4007, 4009, 1002) are unchanged;
- out: a text message is framed here (two or four bytes of header) and, when nothing waits in the
  socket's buffer, sent at once instead of through Twisted's writer registration (two epoll changes
  and a reactor turn per frame);
- the garbage collector leaves alone what was loaded before the first connection (`gc.freeze`).
"""

from daphne.server import Server  # isort:skip  (first: it installs Twisted's asyncio reactor)

import asyncio
import gc
import logging
import signal
import time

from daphne.cli import CommandLineInterface
from daphne.ws_protocol import WebSocketProtocol
from django.conf import settings
from twisted.internet import reactor, tcp

from config.redaction import redact
from exotel.protocol import CloseCode, wire_code
from streams.drain import live_streams

try:
    from websockets.speedups import apply_mask
except ImportError:  # no C extension on this platform: every frame goes through autobahn
    apply_mask = None

log = logging.getLogger("config.server")  # not "__main__" when run with -m

MAX_MESSAGE_BYTES = 256 * 1024
CLOSE_HANDSHAKE_SECONDS = 1


class StreamProtocol(WebSocketProtocol):
    def _fail_connection(self, code: int = CloseCode.GOING_AWAY, reason: str = "going away") -> None:
        # autobahn's own closes (a message too big, a broken frame) follow the one mapping too.
        if code in set(CloseCode):  # a code outside the table goes as it is
            code = wire_code(CloseCode(code))
        super()._fail_connection(code, reason)

    # autobahn builds a debug line, coloured for a terminal, on every read and every send, even with
    # debug logging off: 4 µs each, as much as parsing the frame. These two do what autobahn does
    # without that line (its other paths are left to it).
    def dataReceived(self, data: bytes) -> None:
        if (self.state == self.STATE_OPEN and self.current_frame is None and not self.data and not self.inside_message
                and self._perMessageCompress is None and apply_mask is not None):
            data = self._text_frames(data)
            if not data:
                return
        self._dataReceived(data)

    def _text_frames(self, data: bytes) -> bytes:
        """Deliver the whole, plain text frames at the start of `data`; return the rest, for autobahn."""
        pos, size = 0, len(data)
        while size - pos >= 6:
            if data[pos] != 0x81:  # FIN, no RSV bit, text
                break
            length = data[pos + 1] ^ 0x80  # a client's frame is masked: over 127 here if it is not
            if length < 126:
                head = pos + 2
            elif length == 126 and size - pos >= 8:
                length = int.from_bytes(data[pos + 2:pos + 4], "big")
                if length < 126:
                    break  # not the minimal encoding: autobahn's to refuse
                head = pos + 4
            else:
                break  # unmasked, or an 8-byte length
            end = head + 4 + length
            if end > size or 0 < self.maxMessagePayloadSize < length:
                break
            try:
                text = apply_mask(data[head + 4:end], data[head:head + 4]).decode()
            except UnicodeDecodeError:
                break
            pos = end
            if not self.muted:  # as daphne's onMessage
                self.last_ping = time.time()
                self.application_queue.put_nowait({"type": "websocket.receive", "text": text})
        return data[pos:] if pos else data

    def sendMessage(self, payload: bytes, isBinary: bool = False, fragmentSize: int | None = None,
                    sync: bool = False, doNotCompress: bool = False) -> None:
        size = len(payload)
        if (isBinary or fragmentSize is not None or sync or self.state != self.STATE_OPEN or self.send_queue
                or self._perMessageCompress is not None or self.autoFragmentSize or self.logFrames or self.logOctets
                or self.trackedTimings or 0 < self.maxMessagePayloadSize < size):
            super().sendMessage(payload, isBinary, fragmentSize, sync, doNotCompress)
            return
        if size < 126:
            header = bytes((0x81, size))
        elif size < 65536:
            header = b"\x81\x7e" + size.to_bytes(2, "big")
        else:
            header = b"\x81\x7f" + size.to_bytes(8, "big")
        self._write(header + payload)

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if (type(transport) is tcp.Server and transport.connected and not transport.disconnecting
                and not transport._tempDataBuffer and len(transport.dataBuffer) == transport.offset):
            try:
                sent = transport.socket.send(data)
            except OSError:  # full, or broken: Twisted's own write finds out and reports it
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        transport.write(data)

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        if sync or chopsize or self.send_queue or self.state != self.STATE_OPEN or self.logOctets:
            super().sendData(data, sync, chopsize)
            return
        self._write(data)

    def onClose(self, wasClean, code, reason) -> None:
        if self.failedByMe and self.localCloseCode:
            # autobahn closed it: tell the application the code that went on the wire, not the peer's answer.
            code = self.localCloseCode
        super().onClose(wasClean, code, reason)


class StreamServer(Server):
    def __init__(self, *args, ready_callable=None, **kwargs) -> None:
        super().__init__(*args, ready_callable=lambda: self._configure(ready_callable),
                         signal_handlers=False, **kwargs)  # ours replace Twisted's
        self._draining: asyncio.Task | None = None
        self._ports = []  # the listening sockets, closed first on SIGTERM

    def log_action(self, protocol, action, details) -> None:
        # daphne's access log is written from here: redact before any logger sees the path.
        if "path" in details:
            details = {**details, "path": redact(details["path"])}
        super().log_action(protocol, action, details)

    def listen_success(self, port) -> None:
        self._ports.append(port)
        super().listen_success(port)

    def _configure(self, ready_callable) -> None:
        # daphne calls this once its WebSocket factory exists and before it accepts a connection.
        self.ws_factory.protocol = StreamProtocol
        self.ws_factory.setProtocolOptions(failByDrop=False, closeHandshakeTimeout=CLOSE_HANDSHAKE_SECONDS)
        reactor.callWhenRunning(self._handle_signals)
        gc.freeze()  # Django, the application and the modules loaded: long-lived, never garbage
        if ready_callable:
            ready_callable()

    def _handle_signals(self) -> None:
        loop = asyncio.get_event_loop()  # the reactor's (daphne made it current); not yet running
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, self._on_signal, number)

    def _on_signal(self, number: int) -> None:
        if self._draining is not None:
            log.warning("%s again: stopping now", signal.Signals(number).name)
            self.stop()
            return
        log.warning("%s: draining the live streams before stopping", signal.Signals(number).name)
        self._draining = asyncio.get_running_loop().create_task(self._drain_then_stop())

    async def _drain_then_stop(self) -> None:
        from streams.heartbeat import Heartbeat  # its models need the app registry the application loads

        try:
            for port in self._ports:
                port.stopListening()
            if isinstance(self.application, Heartbeat):
                await self.application.withdraw()
            await live_streams.drain(settings.STREAM_DRAIN_SECONDS)
        finally:
            self.stop()


class StreamServerCommand(CommandLineInterface):
    server_class = StreamServer

    def __init__(self) -> None:
        super().__init__()
        self.parser.set_defaults(websocket_max_message_size=MAX_MESSAGE_BYTES,
                                 websocket_max_frame_size=MAX_MESSAGE_BYTES)


if __name__ == "__main__":
    StreamServerCommand.entrypoint()
