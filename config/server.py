"""The web server: daphne, with the WebSocket limits Exotel's streams need.

Run it as daphne itself, with the same arguments:

    python -m config.server -b 127.0.0.1 -p 8000 config.asgi:application

Beyond daphne's defaults:
- An incoming message may be at most `MAX_MESSAGE_BYTES` (the reference's largest legal chunk is
  100 000 bytes of audio, about 137 kB as base64 in its JSON frame). autobahn's own answer to a
  bigger one is to drop the TCP connection, which a stream could only record as a bare 1006; here
  the stream is closed with "message too big" (`exotel.protocol.wire_code`, 4009) and the application
  is told so by the disconnect's code.
- A protocol failure is answered with a close frame rather than a dropped connection, and a peer that
  does not answer our close within `CLOSE_HANDSHAKE_SECONDS` is cut off (autobahn rounds the deadline
  down to a whole second, so it comes sooner, never later): every close from our side has ended the
  socket within a second.
"""

from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol

from exotel.protocol import CloseCode, wire_code

MAX_MESSAGE_BYTES = 256 * 1024
CLOSE_HANDSHAKE_SECONDS = 1
MESSAGE_TOO_BIG = wire_code(CloseCode.MESSAGE_TOO_BIG)


class StreamProtocol(WebSocketProtocol):
    def _max_message_size_exceeded(self, msg_size, max_msg_size, reason) -> None:
        # autobahn's hook for an oversized message; its default fails with the reserved 1009.
        self._fail_connection(MESSAGE_TOO_BIG, reason)

    def onClose(self, wasClean, code, reason) -> None:
        if self.wasMaxMessagePayloadSizeExceeded or self.wasMaxFramePayloadSizeExceeded:
            code = MESSAGE_TOO_BIG  # what we sent, whatever the peer answered
        super().onClose(wasClean, code, reason)


class StreamServer(Server):
    def __init__(self, *args, ready_callable=None, **kwargs) -> None:
        super().__init__(*args, ready_callable=lambda: self._configure(ready_callable), **kwargs)

    def _configure(self, ready_callable) -> None:
        # daphne calls this once its WebSocket factory exists and before it accepts a connection.
        self.ws_factory.protocol = StreamProtocol
        self.ws_factory.setProtocolOptions(failByDrop=False, closeHandshakeTimeout=CLOSE_HANDSHAKE_SECONDS)
        if ready_callable:
            ready_callable()


class StreamServerCommand(CommandLineInterface):
    server_class = StreamServer

    def __init__(self) -> None:
        super().__init__()
        self.parser.set_defaults(websocket_max_message_size=MAX_MESSAGE_BYTES,
                                 websocket_max_frame_size=MAX_MESSAGE_BYTES)


if __name__ == "__main__":
    StreamServerCommand.entrypoint()
